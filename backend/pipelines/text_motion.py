"""The `text_motion` job: a prompt in, a Motion out (AvatarCLIP M1 + M2).

Params (normalise validates every field and fills defaults):

    prompt    required text (backend/text/prompt.py rules)
    seconds   duration, within core.limits.MOTION_SECONDS (default 4)
    fps       frame rate, within core.limits.MOTION_FPS (default 30)
    seed      0..2**32-1 (default 0): small variations of the key poses
    encoder   "minilm" (default, tier "minilm") | "clip" (tier "clip": key poses
              are also ranked by CLIP on stick-figure renders, as AvatarCLIP does)
    target    <target rig> (optional): also retarget onto it (motion/targets.py)

The prompt is read into phrases and clauses (text/motion_prompt.py: counts,
pace, sides), matched to actions, gaits and key poses (motion/vocabulary.py)
and played as one motion (motion/from_text.py).
"""
from __future__ import annotations

from typing import Any

from avatarforge.protocol import Motion

from ..config import BackendConfig
from ..core.components import Component, Tier
from ..core.limits import MOTION_FPS, MOTION_SECONDS
from ..models.encoders import ENCODER_NAMES, load_text_encoder
from ..motion.build import make_motion
from ..motion.from_text import motion_from_phrases, motion_vocabulary
from ..motion.targets import normalise_target, target_summary
from ..text.motion_prompt import read_motion_prompt
from ..text.prompt import NEUTRAL_PROMPT, clean_prompt
from .base import JobContext, Pipeline
from .catalogue import (CLIP, MINILM, MOTION_GENERATOR, MOTION_IMPORTER, MOTION_LIBRARY, POSE_RANKER,
                        RETARGETER, TEXT_MOTION_JOB, target_body)
from .params import SEED_MAX, bad_field, check_param_names, integer_param, number_param, name_param

PARAM_NAMES = ("prompt", "seconds", "fps", "seed", "encoder", "target", "name")
DEFAULTS = {"seconds": 4.0, "fps": 30.0, "seed": 0, "encoder": "minilm"}


# Each encoder is a tier; CLIP also ranks key poses on their renders (AvatarCLIP).
TIERS = (Tier("minilm", {"pipeline": TEXT_MOTION_JOB, "encoder": MINILM, "motion_generator": MOTION_GENERATOR,
                         "retargeter": RETARGETER}, embedded=True),
         Tier("clip", {"pipeline": TEXT_MOTION_JOB, "encoder": CLIP, "motion_generator": MOTION_GENERATOR,
                       "pose_ranker": POSE_RANKER, "retargeter": RETARGETER}))


class TextMotionPipeline(Pipeline):
    name = "text_motion"

    def tiers(self) -> tuple[Tier, ...]:
        return TIERS

    def tier_of(self, params: dict[str, Any]) -> str | None:
        return params["encoder"]

    def components(self, tier: Tier, params: dict[str, Any], config: BackendConfig) -> dict[str, Component]:
        """The tier's, the user's motion library when one is configured (its clips
        are read with the motion importer), and the body model retargeting onto
        the target rig loads."""
        library = {"motion_library": MOTION_LIBRARY, "motion_importer": MOTION_IMPORTER} \
            if config.motion_library is not None else {}
        return {**tier.components, **library, **target_body(params["target"])}

    def normalise(self, params: dict[str, Any], config: BackendConfig) -> dict[str, Any]:
        check_param_names(params, PARAM_NAMES, "text_motion")
        if "prompt" not in params:
            raise bad_field("prompt", "is required: describe the motion, e.g. \"waves hello, then jumps\"")
        out: dict[str, Any] = {"prompt": clean_prompt(params["prompt"])}
        out["seconds"] = number_param("seconds", params.get("seconds", DEFAULTS["seconds"]), *MOTION_SECONDS)
        out["fps"] = number_param("fps", params.get("fps", DEFAULTS["fps"]), *MOTION_FPS)
        out["seed"] = integer_param("seed", params.get("seed", DEFAULTS["seed"]), 0, SEED_MAX)
        encoder = params.get("encoder", DEFAULTS["encoder"])
        if encoder not in ENCODER_NAMES:
            raise bad_field("encoder", f"must be one of {', '.join(ENCODER_NAMES)}, got {encoder!r}")
        out["encoder"] = encoder
        out["target"] = normalise_target(params.get("target"))
        out["name"] = name_param(params.get("name", "text_motion"))
        return out

    def run(self, params: dict[str, Any], ctx: JobContext) -> list[Motion]:
        from ..motion.library import open_library

        ctx.progress(0.02, "loading the text encoder")
        encoder = load_text_encoder(params["encoder"], ctx.config, ctx.device)
        library = open_library(ctx.config)
        vocab = motion_vocabulary(encoder, NEUTRAL_PROMPT, library)
        ctx.progress(0.1, "understanding the prompt")
        phrases = read_motion_prompt(params["prompt"], encoder)
        plan = motion_from_phrases(phrases, params["seconds"], params["fps"], params["seed"], vocab, library,
                                   progress=lambda f, stage: ctx.progress(0.1 + 0.8 * f, stage))
        ctx.progress(0.92, "building the motion")
        motion_params = {k: v for k, v in params.items() if k != "target"}
        motion_params["target"] = target_summary(params["target"])
        motion_params["text"] = {"prompt": params["prompt"], "segments": plan.segments}
        provenance = {"pipeline": self.name, "encoder": encoder.name,
                      "encoder_version": encoder.version, "seed": params["seed"], "timings": plan.timings,
                      "motion_library": None if library is None else library.signature}
        motion = make_motion(params["name"], params["fps"], plan.rotations, plan.trans, motion_params, provenance,
                             target=params["target"])
        ctx.progress(1.0, "done")
        return [motion]

