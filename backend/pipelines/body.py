"""The `body` job: body-model parameters in, a rigged, textured avatar out.

Params (all optional; `normalise` validates every field and fills defaults):

    model           "anny" (default, embedded tier) | "smpl" | "smplh" | "smplx"
    phenotypes      Anny only: {name: value in [0, 1]}; names: gender (0 male,
                    1 female), age (Anny's scale: baby 0, child 1/3, young adult
                    2/3, old 1; default 2/3), muscle, weight, height, proportions,
                    cupsize, firmness, african, asian, caucasian (default 0.5)
    local_changes   Anny only: {MakeHuman modifier name: value in [-1, 1]}
    betas           SMPL family only: up to the file's number of shape
                    coefficients, each in [-5, 5] (default: none, the mean shape)
    gender          SMPL family only: "neutral" (default) | "male" | "female"
    texture_size    base-colour texture edge in pixels, 256..4096 (default 1024)
    skin_weights_k  joints per vertex, 1..8 (default 4)
    seed            0..2**32-1 (default 0): skin tone jitter, eye and brow colour
    name            the avatar's name, up to 63 characters (default "<model>_avatar")

Tiers: "anny" (always there) and "smpl"/"smplh"/"smplx" (when the user's model
files are in the models folder). The tier follows the `model` param.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from avatarforge.protocol import Material, RiggedAvatar, Skeleton

from .. import __version__
from ..config import BackendConfig
from ..core.components import Tier
from ..models.bodies import BODY_MODEL_NAMES, load_body_model
from ..models.body_model import MAX_SKIN_WEIGHTS_K, BodyMesh
from .base import JobContext, Pipeline
from .catalogue import ANNY, BODY_JOB, SKIN_PAINTER, SMPL_BODIES
from .params import SEED_MAX, bad_field, integer_param, named_values_param, number_param, check_param_names, name_param

PARAM_NAMES = ("model", "phenotypes", "local_changes", "betas", "gender", "texture_size", "skin_weights_k",
               "seed", "name")
ANNY_ONLY = ("phenotypes", "local_changes")
SMPL_ONLY = ("betas", "gender")
DEFAULTS = {"model": "anny", "texture_size": 1024, "skin_weights_k": 4, "seed": 0}
SKIN_ROUGHNESS = 0.55
# Each body model is its own tier.
TIERS = (Tier("anny", {"pipeline": BODY_JOB, "body_model": ANNY, "painter": SKIN_PAINTER}, embedded=True),
         *(Tier(name, {"pipeline": BODY_JOB, "body_model": model, "painter": SKIN_PAINTER})
           for name, model in SMPL_BODIES.items()))


class BodyPipeline(Pipeline):
    name = "body"

    # -- what this backend can do ------------------------------------------------
    def describe(self, config: BackendConfig) -> dict[str, Any]:
        """Tiers, plus Anny's phenotypes and their defaults so a UI can build its sliders."""
        out = super().describe(config)
        if out["tiers"]["anny"]["available"]:
            from ..models.anny_model import PHENOTYPE_RANGE, default_phenotypes

            out["phenotypes"] = default_phenotypes()
            out["phenotype_range"] = list(PHENOTYPE_RANGE)
        return out

    def tiers(self) -> tuple[Tier, ...]:
        return TIERS

    def tier_of(self, params: dict[str, Any]) -> str | None:
        return params["model"]

    # -- params --------------------------------------------------------------------
    def normalise(self, params: dict[str, Any], config: BackendConfig) -> dict[str, Any]:
        check_param_names(params, PARAM_NAMES, "body")
        model = params.get("model", DEFAULTS["model"])
        if model not in BODY_MODEL_NAMES:
            raise bad_field("model", f"must be one of {', '.join(BODY_MODEL_NAMES)}, got {model!r}")
        out: dict[str, Any] = {"model": model}
        if model == "anny":
            out.update(self.anny_shape_params(params))
        else:
            out.update(self._smpl_shape(model, params, config))
        out["texture_size"] = integer_param("texture_size", params.get("texture_size", DEFAULTS["texture_size"]),
                                       256, 4096)
        out["skin_weights_k"] = integer_param(
            "skin_weights_k", params.get("skin_weights_k", DEFAULTS["skin_weights_k"]), 1, MAX_SKIN_WEIGHTS_K)
        out["seed"] = integer_param("seed", params.get("seed", DEFAULTS["seed"]), 0, SEED_MAX)
        out["name"] = name_param(params.get("name", f"{model}_avatar"))
        return out

    @staticmethod
    def anny_shape_params(params: dict[str, Any]) -> dict[str, Any]:
        from ..models.anny_model import LOCAL_CHANGE_RANGE, PHENOTYPE_RANGE, default_phenotypes, \
            local_change_names, phenotype_names

        for key in SMPL_ONLY:
            if key in params:
                raise bad_field(key, "only for SMPL-family models (model = smpl, smplh or smplx); "
                           "shape Anny with phenotypes and local_changes")
        phenotypes = named_values_param("phenotypes", params.get("phenotypes", {}), phenotype_names(),
                                   *PHENOTYPE_RANGE, what="phenotype", list_all=True)
        local = named_values_param("local_changes", params.get("local_changes", {}), local_change_names(),
                              *LOCAL_CHANGE_RANGE, what="local change", list_all=False)
        # Canonical: every phenotype present, no zero local change, sorted keys.
        return {"phenotypes": dict(sorted({**default_phenotypes(), **phenotypes}.items())),
                "local_changes": {k: v for k, v in sorted(local.items()) if v != 0.0}}

    @staticmethod
    def _smpl_shape(model: str, params: dict[str, Any], config: BackendConfig) -> dict[str, Any]:
        from ..models.smpl_model import BETA_LIMIT, GENDERS, MAX_BETAS

        for key in ANNY_ONLY:
            if key in params:
                raise bad_field(key, f"only for model 'anny'; shape {model} with betas and gender")
        gender = params.get("gender", "neutral")
        if gender not in GENDERS:
            raise bad_field("gender", f"must be one of {', '.join(GENDERS)}, got {gender!r}")
        betas = params.get("betas", [])
        if not isinstance(betas, (list, tuple)):
            raise bad_field("betas", f"must be a list of at most {MAX_BETAS} numbers in "
                            f"[-{BETA_LIMIT:g}, {BETA_LIMIT:g}]")
        if len(betas) > MAX_BETAS:
            raise bad_field("betas", f"at most {MAX_BETAS} coefficients, got {len(betas)}")
        values = [number_param(f"betas[{i}]", b, -BETA_LIMIT, BETA_LIMIT) for i, b in enumerate(betas)]
        # The file decides how many coefficients exist (10, 16, 300...); this also
        # raises MODEL_MISSING, with instructions, when the user's file is absent.
        body = load_body_model(model, config, gender=gender)
        if len(values) > body.num_betas:
            raise bad_field("betas", f"{body.path.name} has {body.num_betas} shape coefficients; "
                       f"give at most {body.num_betas}, got {len(values)}")
        while values and values[-1] == 0.0:   # canonical: trailing zeros are the default
            values.pop()
        return {"betas": values, "gender": gender}

    # -- the job -------------------------------------------------------------------
    def run(self, params: dict[str, Any], ctx: JobContext) -> list[Any]:
        from ..render.skin_texture import paint_anny_skin, paint_flat_skin

        started = time.monotonic()
        model_name = params["model"]
        ctx.progress(0.0, "loading body model")
        shape = {k: params[k] for k in (ANNY_ONLY if model_name == "anny" else SMPL_ONLY)}
        options = {} if model_name == "anny" else {"gender": params["gender"]}
        model = load_body_model(model_name, ctx.config, **options)
        ctx.progress(0.3, "shaping")
        mesh = model.build(shape, skin_weights_k=params["skin_weights_k"])
        ctx.progress(0.45, "skinning")
        ctx.progress(0.5, "painting texture")

        def painting(fraction: float) -> None:
            ctx.progress(0.5 + 0.45 * fraction, "painting texture")

        if model_name == "anny":
            png = paint_anny_skin(mesh, params["texture_size"], params["seed"], progress=painting)
            texture = "painted from Anny's UV masks (skin tone from its ethnic phenotypes)"
        else:
            png = paint_flat_skin(mesh, params["texture_size"], params["seed"])
            texture = "flat skin colour with gentle variation"
        ctx.progress(0.97, "packing")
        avatar = rigged_avatar(params["name"], mesh, model_name,
                               Material(f"{params['name']}_skin", "base_color", png,
                                        {"roughness": SKIN_ROUGHNESS, "colorspace": "sRGB"}),
                               avatar_provenance(self.name, params, mesh, texture, started))
        ctx.progress(1.0, "done")
        return [avatar]


def rigged_avatar(name: str, mesh: BodyMesh, body_model: str, material: Material,
                  provenance: dict[str, Any], params: dict[str, Any] | None = None) -> RiggedAvatar:
    """A RiggedAvatar of `mesh` with one base-colour material (shared by the avatar jobs);
    `params` defaults to the body-model parameters that made the mesh."""
    return RiggedAvatar(
        name=name, vertices=mesh.vertices, faces=mesh.faces, uvs=mesh.uvs,
        skeleton=Skeleton(mesh.joint_names, mesh.parents, mesh.rest_matrices),
        skin_indices=mesh.skin_indices, skin_weights=mesh.skin_weights, materials=[material],
        body_model=body_model, params=mesh.params if params is None else params, provenance=provenance)


def avatar_provenance(job: str, params: dict[str, Any], mesh: BodyMesh, texture: str,
                      started: float) -> dict[str, Any]:
    """The provenance record of an avatar job (request, seed, timing; the components
    that made it are added where the job runs: base.record_components)."""
    return {"job": job, "request": dict(params), "seed": params["seed"], "avatarforge": __version__,
            "uv_source": mesh.uv_source, "texture": texture,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "seconds": round(time.monotonic() - started, 3)}
