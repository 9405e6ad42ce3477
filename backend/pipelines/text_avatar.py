"""The `text_avatar` job: a prompt in, a rigged, textured, dressed Anny out
(AvatarCLIP S1 shape + S2 appearance, embedded tier; styles after StyleAvatar3D).

Params (normalise validates every field and fills defaults):

    prompt        required text (backend/text/prompt.py rules)
    seed          0..2**32-1 (default 0): skin jitter, eye colour, fabric noise
    texture_size  base-colour texture edge, 256..4096 (default 1024)
    name          the avatar's name, up to 63 characters (default "text_avatar")
    encoder       "minilm" (default, tier "minilm") | "clip" (tier "clip": needs an open_clip
                  checkpoint in the CLIP folder; the shape is then ranked on rendered bodies;
                  garments, colours and styles are always read with MiniLM, whose similarities
                  the appearance thresholds are calibrated on)
    phenotypes    {name: value in [0, 1]}: overrides of the estimated phenotypes (sliders a
                  user moved after a first generation)
    local_changes {name: value in [-1, 1]}: overrides of the estimated local changes

Stages: understand the shape (text/shape/) and the appearance
(text/appearance.py, text/styles.py), build the Anny body (the body job's
model), then paint its texture with a TexturePainter. Painters are swappable
(PAINTERS, one per painter component of pipelines/catalogue.py): the embedded
"attributes" painter places garments from the parsed appearance; a neural
painter (diffusion in UV space, CLIP-guided optimisation) takes the same
PaintRequest and returns the same PNG, so adding one is a component, a painter
here and a tier naming it, not a rewrite of this job.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable

from avatarforge.protocol import ErrorCode, Material, ProtocolError, RiggedAvatar

from ..config import BackendConfig
from ..core.components import Tier
from ..models.body_model import BodyMesh
from ..models.encoders import ENCODER_NAMES, load_text_encoder
from ..models.text_encoder import TextEncoder
from ..text.appearance import Appearance
from ..text.prompt import clean_prompt
from .base import JobContext, Pipeline
from .body import BodyPipeline, avatar_provenance, rigged_avatar
from .catalogue import ANNY, APPEARANCE_READER, ATTRIBUTE_PAINTER, CLIP, MINILM, SHAPE_ESTIMATOR, TEXT_AVATAR_JOB
from .params import SEED_MAX, bad_field, integer_param, check_param_names, name_param

PARAM_NAMES = ("prompt", "seed", "texture_size", "name", "encoder", "phenotypes", "local_changes")
DEFAULTS = {"seed": 0, "texture_size": 1024, "encoder": "minilm", "name": "text_avatar"}
TEXTURE_SIZE_RANGE = (256, 4096)


@dataclass
class PaintRequest:
    """What a texture painter gets: the body to paint, what the prompt asked for,
    and where to report progress (fraction of painting in [0, 1])."""
    mesh: BodyMesh
    appearance: Appearance
    prompt: str
    size: int
    seed: int
    encoder: TextEncoder
    config: BackendConfig
    progress: Callable[[float], None]


class TexturePainter(ABC):
    """Paints an Anny body's base-colour texture (PNG) for a prompt. `name` is its
    component's (the catalogue declares what it runs and when it can)."""
    name: str

    @abstractmethod
    def paint(self, request: PaintRequest) -> bytes:
        """PNG bytes in the mesh's UV layout."""


class AttributePainter(TexturePainter):
    """The embedded tier: skin, hair and garments from the parsed Appearance
    (render/clothing_texture.py)."""
    name = ATTRIBUTE_PAINTER.name

    def paint(self, request: PaintRequest) -> bytes:
        from ..render.clothing_texture import paint_avatar_texture

        return paint_avatar_texture(request.mesh, request.appearance, request.size, request.seed,
                                    progress=request.progress)


PAINTERS: dict[str, TexturePainter] = {p.name: p for p in (AttributePainter(),)}
# Each encoder is a tier; both paint with attributes today (a diffusion tier names its
# painter). The appearance is always read with MiniLM (its thresholds are calibrated
# on it), so the CLIP tier runs both encoders.
UNDERSTANDING = {"pipeline": TEXT_AVATAR_JOB, "shape_estimator": SHAPE_ESTIMATOR,
                 "appearance_reader": APPEARANCE_READER, "body_model": ANNY}
TIERS = (Tier("minilm", {**UNDERSTANDING, "encoder": MINILM, "painter": ATTRIBUTE_PAINTER}, embedded=True),
         Tier("clip", {**UNDERSTANDING, "encoder": CLIP, "word_encoder": MINILM, "painter": ATTRIBUTE_PAINTER}))


class TextAvatarPipeline(Pipeline):
    name = "text_avatar"

    # -- what this backend can do ------------------------------------------------
    def tiers(self) -> tuple[Tier, ...]:
        return TIERS

    def tier_of(self, params: dict[str, Any]) -> str | None:
        return params["encoder"]

    # -- params --------------------------------------------------------------------
    def normalise(self, params: dict[str, Any], config: BackendConfig) -> dict[str, Any]:
        check_param_names(params, PARAM_NAMES, "text_avatar")
        if "prompt" not in params:
            raise bad_field("prompt", "is required: describe the person, e.g. \"a tall woman in a red dress\"")
        out: dict[str, Any] = {"prompt": clean_prompt(params["prompt"])}
        out["seed"] = integer_param("seed", params.get("seed", DEFAULTS["seed"]), 0, SEED_MAX)
        out["texture_size"] = integer_param("texture_size", params.get("texture_size", DEFAULTS["texture_size"]),
                                       *TEXTURE_SIZE_RANGE)
        encoder = params.get("encoder", DEFAULTS["encoder"])
        if encoder not in ENCODER_NAMES:
            raise bad_field("encoder", f"must be one of {', '.join(ENCODER_NAMES)}, got {encoder!r}")
        status = self.tier(encoder).available(config)
        if not status.available:
            raise ProtocolError(ErrorCode.MODEL_MISSING, f"encoder: {encoder!r} cannot run here: {status.reason}",
                                field="encoder")
        out["encoder"] = encoder
        out["name"] = name_param(params.get("name", DEFAULTS["name"]))
        # Overrides: validated like the body job's, but only the names given are kept
        # (the rest come from the prompt).
        overrides = {k: params[k] for k in ("phenotypes", "local_changes") if k in params}
        shape = BodyPipeline.anny_shape_params(overrides)
        out["phenotypes"] = {k: shape["phenotypes"][k] for k in sorted(overrides.get("phenotypes", {}))}
        out["local_changes"] = {k: float(v) for k, v in sorted((overrides.get("local_changes") or {}).items())}
        return out

    # -- the job -------------------------------------------------------------------
    def run(self, params: dict[str, Any], ctx: JobContext) -> list[RiggedAvatar]:
        from ..models.anny_model import load_anny_model
        from ..text.appearance import parse_appearance
        from ..render.body_render import render_front
        from ..text.shape import estimate_shape
        from ..text.styles import DEFAULT_STYLE, style_preset

        started = time.monotonic()
        timings: dict[str, float] = {}

        def stage(name: str, t0: float) -> float:
            now = time.monotonic()
            timings[name] = round(now - t0, 4)
            return now

        ctx.progress(0.0, "loading the text encoder")
        t = time.monotonic()
        encoder = load_text_encoder(params["encoder"], ctx.config, ctx.device)
        model = load_anny_model()
        t = stage("load", t)
        ctx.progress(0.15, "understanding the body")
        shape = estimate_shape(params["prompt"], encoder, ctx.config, model="anny", render_body=render_front)
        t = stage("shape", t)
        ctx.progress(0.25, "understanding the appearance")
        # The appearance vocabularies' thresholds are calibrated on the sentence encoder
        # (CLIP's text tower ranks single words against each other poorly); the CLIP
        # tier changes how the shape is ranked (rendered bodies), not this parse.
        words = encoder if encoder.name == "minilm" else load_text_encoder("minilm", ctx.config, ctx.device)
        appearance = parse_appearance(params["prompt"], words)
        t = stage("appearance", t)
        ctx.progress(0.3, "shaping")
        phenotypes = {**shape.phenotypes, **params["phenotypes"]}
        local_changes = {k: v for k, v in {**shape.local_changes, **params["local_changes"]}.items() if v != 0.0}
        mesh = model.build({"phenotypes": phenotypes, "local_changes": local_changes})
        t = stage("body", t)

        painter = PAINTERS[self.tier(params["encoder"]).components["painter"].name]
        ctx.progress(0.4, "painting texture")
        png = painter.paint(PaintRequest(mesh, appearance, params["prompt"], params["texture_size"], params["seed"],
                                         encoder, ctx.config,
                                         progress=lambda f: ctx.progress(0.4 + 0.55 * f, "painting texture")))
        stage("texture", t)
        ctx.progress(0.97, "packing")

        style = appearance.style or DEFAULT_STYLE
        settings = style_preset(style)
        text = {"prompt": params["prompt"], "confidence": round(shape.confidence, 4), "shape": shape.details,
                "appearance": appearance.to_json(), "style": appearance.style,
                "neutral_body": _is_neutral(shape.phenotypes, shape.local_changes)}
        avatar_params = {**mesh.params, "text": text}
        provenance = avatar_provenance(self.name, params, mesh,
                                       f"painted by the '{painter.name}' painter from the parsed appearance", started)
        provenance["timings"] = timings
        avatar = rigged_avatar(params["name"], mesh, "anny",
                               Material(f"{params['name']}_base", "base_color", png, settings), provenance,
                               params=avatar_params)
        ctx.progress(1.0, "done")
        return [avatar]


def _is_neutral(phenotypes: dict[str, float], local_changes: dict[str, float]) -> bool:
    """Whether the prompt left the body as Anny's default (nothing said about it)."""
    from ..models.anny_model import default_phenotypes

    defaults = default_phenotypes()
    return all(abs(phenotypes[k] - v) < 1e-3 for k, v in defaults.items()) and not any(local_changes.values())
