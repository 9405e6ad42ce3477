"""Every component the built-in pipelines compose, declared once (DESIGN §7).

A component's modules are named, not imported, so declaring costs nothing; a
test checks that each name is a real module, so a moved module fails there,
loudly. Weights are the user's files, found where the model modules look.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..config import BackendConfig
from ..core.components import Availability, Component, UserFiles, register
from ..core.sources import distribution_files
from ..models.clip_model import clip_availability, clip_checkpoint_dir
from ..models.smpl_model import MODEL_TYPES as SMPL_TYPES, availability as smpl_availability, candidate_paths
from ..models.text_encoder import MINILM_PACKAGE
from ..motion.target_rigs import builds_on_anny


def _availability(info: dict[str, Any]) -> Availability:
    """A model module's tier info ({"available", "reason"}) as an Availability."""
    return Availability(bool(info.get("available")), info.get("reason", ""))


# -- the pipelines' own compositions ------------------------------------------------
def _pipeline(name: str, *helpers: str) -> Component:
    """A pipeline module as a component (plus pipeline modules it builds on)."""
    return register(Component("pipeline", name, (f"backend.pipelines.{name}", *helpers)))


BODY_JOB = _pipeline("body")
TEXT_AVATAR_JOB = _pipeline("text_avatar", "backend.pipelines.body")
TEXT_MOTION_JOB = _pipeline("text_motion")
MOTION_IMPORT_JOB = _pipeline("motion_import")
VIDEO_MOTION_JOB = _pipeline("video_motion")


# -- body models ----------------------------------------------------------------------
ANNY = register(Component("body_model", "anny", ("backend.models.anny_model",),
                          data=lambda: distribution_files("anny"), packages=("anny",)))


def _smpl_folder(model_type: str) -> UserFiles:
    """The user's model folder of one SMPL type (every gender's file and UV file in it)."""
    def files(config: BackendConfig) -> list[Path]:
        if config.models_dir is None:
            return []
        folder = candidate_paths(config.models_dir, model_type, "neutral")[0].parent
        return [folder] if folder.is_dir() else []
    return files


def _smpl_availability(model_type: str) -> Callable[[BackendConfig], Availability]:
    def check(config: BackendConfig) -> Availability:
        return _availability(smpl_availability(config, model_type))
    return check


SMPL_BODIES = {t: register(Component("body_model", t, ("backend.models.smpl_model",), weights=_smpl_folder(t),
                                     packages=("smplx",), availability=_smpl_availability(t)))
               for t in SMPL_TYPES}


# -- text encoders ----------------------------------------------------------------------
def _clip_folder(config: BackendConfig) -> list[Path]:
    folder = clip_checkpoint_dir(config)
    return [folder] if folder.is_dir() else []


def _clip_availability(config: BackendConfig) -> Availability:
    return _availability(clip_availability(config))


MINILM = register(Component("encoder", "minilm", ("backend.models.text_encoder",),
                            data=lambda: distribution_files(MINILM_PACKAGE),
                            packages=(MINILM_PACKAGE, "sentence-transformers", "transformers")))
# clip_model builds on text_encoder's interface: a CLIP job runs that module too.
CLIP = register(Component("encoder", "clip", ("backend.models.clip_model", "backend.models.text_encoder"),
                          weights=_clip_folder, packages=("open_clip_torch",), availability=_clip_availability))


# -- understanding prompts ----------------------------------------------------------------
SHAPE_ESTIMATOR = register(Component("shape_estimator", "codebook", ("backend.text.shape",), packages=("wn",)))
APPEARANCE_READER = register(Component("appearance_reader", "attributes",
                                       ("backend.text.appearance", "backend.text.styles")))


# -- painting -------------------------------------------------------------------------------
SKIN_PAINTER = register(Component("painter", "skin", ("backend.render.skin_texture",)))
# Garments over the skin: the clothing painter runs the skin painter's module too.
ATTRIBUTE_PAINTER = register(Component("painter", "attributes",
                                       ("backend.render.clothing_texture", "backend.render.skin_texture")))


# -- motion -----------------------------------------------------------------------------------
# Reading the prompt, then composing key poses, synthesis and gaits (and library clips).
MOTION_GENERATOR = register(Component("motion_generator", "keyposes",
                                      ("backend.text.motion_prompt", "backend.motion.from_text")))
POSE_RANKER = register(Component("pose_ranker", "rendered_poses", ("backend.motion.pose_render",)))
MOTION_IMPORTER = register(Component("motion_importer", "bvh_amass", ("backend.motion.bvh", "backend.motion.amass")))
RETARGETER = register(Component("retargeter", "smpl24", ("backend.motion.retarget",)))


def _library_folder(config: BackendConfig) -> list[Path]:
    folder = config.motion_library
    return [Path(folder)] if folder is not None and Path(folder).is_dir() else []


MOTION_LIBRARY = register(Component("motion_library", "folder", ("backend.motion.library",),
                                    weights=_library_folder))


def target_body(target: dict[str, Any] | None) -> dict[str, Component]:
    """The body model retargeting onto a normalised `target` loads: Anny, for its
    built-in rig (a rig sent with its bones loads nothing)."""
    return {"target_body": ANNY} if builds_on_anny(target) else {}


# -- seeing: video -> motion -------------------------------------------------------------------
VIDEO_DECODER = register(Component("video_decoder", "pyav", ("backend.video.decode",), packages=("av",)))


def _pose_availability(config: BackendConfig) -> Availability:
    from ..models.pose_landmarks import availability      # imports nothing of MediaPipe's until asked

    return _availability(availability())


def _pose_model_files() -> list[Path]:
    from ..models.pose_landmarks import model_files

    return model_files()


# MediaPipe Pose (legacy solution, model_complexity 1): its identity covers the model
# files inside the wheel (not the whole distribution, ~thousands of files).
LANDMARK_DETECTOR = register(Component("landmark_detector", "mediapipe_pose",
                                       ("backend.models.pose_landmarks", "backend.video.track"),
                                       data=_pose_model_files, packages=("mediapipe",),
                                       availability=_pose_availability))
CAPTURE_SOLVER = register(Component("motion_solver", "capture", ("backend.motion.capture",)))
