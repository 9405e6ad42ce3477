"""Text -> body shape (AvatarCLIP stage S1): rank a codebook of bodies against a prompt.

    estimate_shape(prompt, encoder) -> ShapeEstimate

One pass: the prompt is cleaned; the text tier (text_tier: chunks, glosses, evidence, ages in
numbers, roles) or, for CLIP, the image tier (clip_tier: rendered bodies) reads Anny phenotypes
and local changes from it; for SMPL (smpl_tier), betas are then ranked from measured
descriptions or renders of the user's model. Modules, in the order the text tier uses them:
codebook (the sentences ranked), index (their embeddings, cached), chunks and glosses (what is
embedded of the prompt), evidence (scores -> levels), ages, roles (world knowledge of roles).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from avatarforge.protocol import ErrorCode, ProtocolError

from ...config import BackendConfig
from ...models.anny_model import default_phenotypes, phenotype_names
from ...models.text_encoder import TextEncoder
from ..prompt import clean_prompt
from .ages import numeric_age, years_to_anny_age
from .cache import encoder_identity, shape_cache_dir
from .chunks import carrier, prompt_chunks
from .clip_tier import RenderBody, image_codebook_entries, rank_anny_images
from .codebook import Codebook, build_codebook
from .glosses import gloss_phrases
from .smpl_tier import body_measurements, rank_smpl
from .text_tier import rank_text

MODELS = ("anny", "smpl")

__all__ = ["MODELS", "Codebook", "RenderBody", "ShapeEstimate", "body_measurements", "build_codebook", "carrier",
           "estimate_shape", "gloss_phrases", "image_codebook_entries", "numeric_age", "prompt_chunks",
           "shape_cache_dir", "years_to_anny_age"]


@dataclass
class ShapeEstimate:
    model: str
    phenotypes: dict[str, float]
    local_changes: dict[str, float]
    betas: list[float]
    confidence: float
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "phenotypes": dict(self.phenotypes),
                               "local_changes": dict(self.local_changes), "confidence": self.confidence}
        if self.model == "smpl":
            out["betas"] = list(self.betas)
        return out


def estimate_shape(prompt: str, encoder: TextEncoder, config: BackendConfig | None = None, model: str = "anny",
                   render_body: RenderBody | None = None) -> ShapeEstimate:
    """The body shape a prompt describes (AvatarCLIP S1), on Anny or on the user's SMPL.

    CLIP encoders rank bodies rendered by `render_body` (the image tier; required then); the others
    rank the codebook's sentences."""
    prompt = clean_prompt(prompt)
    if model not in MODELS:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"model: one of {', '.join(MODELS)}, got {model!r}", field="model")
    image_tier = encoder.name == "clip"
    if image_tier and render_body is None:
        raise ValueError("the CLIP tier ranks rendered bodies: pass render_body")
    if image_tier and model == "anny":
        phenotypes, changes, confidence, details = rank_anny_images(prompt, encoder, render_body)
    else:
        text = rank_text(prompt, encoder)
        phenotypes, changes, confidence, details = text.phenotypes, text.local_changes, text.confidence, text.details
    betas: list[float] = []
    if model == "smpl":
        smpl = rank_smpl(prompt, encoder, config or BackendConfig(), phenotypes["gender"], render_body)
        betas, confidence, details["smpl"] = smpl.betas, smpl.confidence, smpl.details
    details.update(encoder={"name": encoder.name, "version": encoder.version, "identity": encoder_identity(encoder)},
                   tier="image" if image_tier else "text")
    complete = {**default_phenotypes(), **phenotypes}
    return ShapeEstimate(model=model, phenotypes={k: float(complete[k]) for k in phenotype_names()},
                         local_changes=changes, betas=betas, confidence=float(np.clip(confidence, 0.0, 1.0)),
                         details=details)
