"""Builds a Motion (protocol/artifacts.py) in the scene: one Action, keyed in bulk.

The backend does all rotation math: every Motion carries `retargeted`, the
pose-bone tracks to key (per-bone `rotation_quaternion`, relative to the bone's
rest frame, in that frame, already sign-continuous, plus the root bone's
`location`). Where they go:
- a target rig (the armature chosen when the job was submitted, sent to the
  backend as the job's target; an SMPL-24 armature built here earlier goes as
  preset "smpl"): the tracks made for it;
- no target: a new SMPL-24 armature built from `Motion.rest_skeleton` exactly
  as an avatar's armature is built from its Skeleton, keyed with the tracks
  the backend made for that armature (rig Motion.REFERENCE_RIG).

Each F-curve is filled with keyframe_points.add(T) + foreach_set (no per-key
inserts). The Action is pushed to its own NLA track (earlier AvatarForge
tracks on the rig are muted), the scene's fps (fps + fps_base for fractional
rates) and frame range become the motion's, and the rig and Action record the
source and parameters as custom properties.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import bpy
import numpy as np

from .. import compat
from ..protocol import Motion, RetargetedTracks
from . import common

KIND = Motion.KIND
START_FRAME = 1
TRACK_PREFIX = "AvatarForge"


@dataclass
class ImportedMotion:
    rig: bpy.types.Object
    action: bpy.types.Action
    track: bpy.types.NlaTrack
    strip: bpy.types.NlaStrip
    frame_start: int
    frame_end: int
    built_rig: bool                                   # True: a new SMPL-24 armature was made for it
    collection: bpy.types.Collection | None = None
    unmapped: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def objects(self) -> tuple[bpy.types.Object, ...]:
        return (self.rig,)

    @property
    def notes(self) -> str:
        """What the user should know about this import (shown with the job)."""
        return unmapped_note(self.unmapped, self.rig.name, self.action.name)


# -- bones the motion leaves at rest ----------------------------------------------
# SMPL-24 has no fingers, toes or face, so those bones always keep their rest
# pose; the note counts them by kind and names only the rest ("other"), which
# are the ones worth a look. Kinds come from name words, case-insensitive, after
# splitting "mixamorig:LeftHandThumb1", "DEF-f_index.01.L", "thumb_01_l",
# "finger1-2.L" into words (camelCase, separators and digits all split).
BONE_KINDS = ("finger", "toe", "face", "twist/helper", "other")
OTHER_NAMES_SHOWN = 8
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_FINGER_WORDS = frozenset("finger fingers thumb index middle ring pinky pinkie little metacarpal palm knuckle"
                          .split())
_FACE_WORDS = frozenset("eye eyes eyeball eyelid lid lids eyebrow brow brows jaw tongue teeth tooth lip lips "
                        "mouth cheek cheeks nose nostril ear ears chin forehead temple face facial".split())
_HELPER_WORDS = frozenset("twist roll helper end tip nub null dummy ik fk mch org wgt vis ctrl control pole "
                          "target socket attach weapon prop corrective root offset driver".split())
_RIGIFY_TWIST_LIMBS = frozenset("upper arm forearm thigh shin".split())


def bone_words(name: str) -> list[str]:
    """Lower-case words of a bone name (namespace dropped: "mixamorig:Hips" -> ["hips"])."""
    return [w.lower() for w in _WORD.findall(name.rsplit(":", 1)[-1])]


def bone_kind(name: str) -> str:
    """Which BONE_KINDS group a bone belongs to, from its name alone (Anny,
    Mixamo, Rigify, Unreal and similar naming)."""
    words = bone_words(name)
    found = set(words)
    if any("toe" in w for w in words) or "ball" in found or ("foot" in found and found & _FINGER_WORDS):
        return "toe"
    if found & _FINGER_WORDS or any("finger" in w for w in words):
        return "finger"
    if found & _FACE_WORDS or any(w.startswith(("eye", "facial")) for w in words):
        return "face"
    if found & _HELPER_WORDS or _is_rigify_twist_half(words):
        return "twist/helper"
    return "other"


def _is_rigify_twist_half(words: list[str]) -> bool:
    """Rigify's "DEF-upper_arm.L.001": the second (twist) segment of a limb."""
    return len(words) > 2 and words[0] == "def" and words[-1].isdigit() and bool(set(words) & _RIGIFY_TWIST_LIMBS)


def unmapped_note(unmapped: list[str], rig_name: str, action_name: str) -> str:
    """"68 bones of Demo_rig keep their rest pose: 40 finger, 28 toe, 2 face; ..."
    with the "other" bones named (up to OTHER_NAMES_SHOWN); "" when every bone is driven."""
    if not unmapped:
        return ""
    groups: dict[str, list[str]] = {k: [] for k in BONE_KINDS}
    for name in unmapped:
        groups[bone_kind(name)].append(name)
    counts = ", ".join(f"{len(v)} {k}" for k, v in groups.items() if v)
    bones = f"{len(unmapped)} bones of {rig_name} keep" if len(unmapped) > 1 else f"1 bone of {rig_name} keeps"
    note = f"{bones} their rest pose: {counts}" if len(unmapped) > 1 else f"{bones} its rest pose: {counts}"
    other = groups["other"]
    if other:
        more = len(other) - OTHER_NAMES_SHOWN
        note += f" (other: {', '.join(other[:OTHER_NAMES_SHOWN])}" + (f" and {more} more)" if more > 0 else ")")
    return note + f"; the full list is the custom property {common.PROP_PREFIX}unmapped of Action '{action_name}'"


# -- F-curves -----------------------------------------------------------------
_LINEAR = bpy.types.Keyframe.bl_rna.properties["interpolation"].enum_items["LINEAR"].value


def fill_fcurve(fcurve: bpy.types.FCurve, frames: np.ndarray, values: np.ndarray) -> None:
    """Every key of one curve at once: one sample per frame, linear between
    samples (the motion is sampled at the scene rate, so frames hit samples)."""
    n = len(frames)
    co = np.empty(2 * n, np.float32)
    co[0::2] = frames
    co[1::2] = values
    points = fcurve.keyframe_points
    points.add(n)
    points.foreach_set("co", co)
    points.foreach_set("interpolation", np.full(n, _LINEAR, np.int32))
    fcurve.update()


def _bone_path(bone: str, prop: str) -> str:
    return f'pose.bones["{bpy.utils.escape_identifier(bone)}"].{prop}'


def write_action(rig: bpy.types.Object, tracks: RetargetedTracks, name: str, start: int) -> bpy.types.Action:
    """A new Action on `rig` holding every track (assigned as its active action)."""
    action = bpy.data.actions.new(name)
    fcurves = compat.action_fcurves(rig, action)
    frames = start + np.arange(len(tracks.rotations), dtype=np.float64)
    quats = tracks.rotations          # sign-continuous from the backend: keyed as they are
    for b, bone in enumerate(tracks.bone_names):
        rig.pose.bones[bone].rotation_mode = "QUATERNION"
        path = _bone_path(bone, "rotation_quaternion")
        for i in range(4):
            fill_fcurve(compat.new_fcurve(fcurves, path, i, bone), frames, quats[:, b, i])
    path = _bone_path(tracks.root_bone, "location")
    for i in range(3):
        fill_fcurve(compat.new_fcurve(fcurves, path, i, tracks.root_bone), frames, tracks.root_locations[:, i])
    return action


# -- SMPL-24 ------------------------------------------------------------------
def build_reference_rig(motion: Motion, name: str, context: Any) -> tuple[bpy.types.Object, bpy.types.Collection]:
    """A new SMPL-24 armature from `motion.rest_skeleton` (bone frames = its rest matrices)."""
    skel = motion.rest_skeleton
    if skel is None:
        raise common.ImportFailed(f"motion '{motion.name}' has no rest_skeleton to build an SMPL-24 armature "
                                  "from; select the rig to animate and submit again")
    collection = common.new_collection(name, context.scene.collection)
    rig = common.build_armature(f"{name}_rig", skel.joint_names, skel.parents, skel.rest_matrices,
                                collection, context.view_layer)
    return rig, collection


# -- the importer ---------------------------------------------------------------
def tracks_for(motion: Motion, rig: bpy.types.Object) -> RetargetedTracks:
    """The backend's tracks for `rig`, refused when they drive bones it lacks."""
    tracks = motion.retargeted
    if tracks is None:
        raise common.ImportFailed(f"motion '{motion.name}' carries no tracks to key on '{rig.name}' (made by an "
                                  "older backend?); submit it again with the rig selected")
    missing = [b for b in tracks.bone_names if b not in rig.data.bones]
    if missing:
        raise common.ImportFailed(f"motion '{motion.name}' was retargeted to a rig with bones '{rig.name}' lacks "
                                  f"({', '.join(missing[:10])}); submit it again with this rig selected")
    return tracks


def check_reference_tracks(motion: Motion) -> None:
    """With no target rig, the tracks must be the ones made for the rest_skeleton armature."""
    tracks = motion.retargeted
    if tracks is None:
        raise common.ImportFailed(f"motion '{motion.name}' carries no tracks to key (made by an older backend?); "
                                  "update the backend and submit again")
    if tracks.rig != Motion.REFERENCE_RIG:
        raise common.ImportFailed(f"motion '{motion.name}' was retargeted to a '{tracks.rig}' rig; select that rig "
                                  "to animate it, or submit again with no rig selected")


def set_scene_timing(scene: bpy.types.Scene, fps: float, start: int, frames: int) -> None:
    """Scene rate = the motion's (fps / fps_base; e.g. 29.97 = 30 / 1.001)
    and its frame range."""
    whole = max(1, int(round(fps)))
    scene.render.fps = whole
    scene.render.fps_base = whole / float(fps)
    scene.frame_start = start
    scene.frame_end = start + max(frames, 1) - 1


def mute_earlier_tracks(rig: bpy.types.Object) -> None:
    """Only the newest AvatarForge motion plays; earlier ones stay for the user to switch."""
    anim = rig.animation_data
    for track in (anim.nla_tracks if anim else ()):
        if track.name.startswith(TRACK_PREFIX):
            track.mute = True


def source_of(motion: Motion) -> str:
    """Where the motion came from: the job that made it (and the file it read)."""
    job = motion.provenance.get("job") or motion.provenance.get("pipeline") or "motion"
    request = motion.provenance.get("request")
    filename = motion.params.get("filename") or (request.get("filename") if isinstance(request, dict) else None)
    return f"{job}: {filename}" if filename else str(job)


def import_motion(motion: Motion, context: Any = None, name: str | None = None, job_id: str | None = None,
                  target: bpy.types.Object | None = None, start_frame: int = START_FRAME) -> ImportedMotion:
    """Key `motion` onto `target` (an armature), or onto a new SMPL-24 armature."""
    context = context or bpy.context
    name = name or motion.name or "Motion"
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    common.check_object_mode(context.view_layer)
    collection = None
    if target is not None:
        if target.type != "ARMATURE":
            raise common.ImportFailed(f"'{target.name}' is not an armature; select the rig to animate")
        rig, built = target, False
        tracks = tracks_for(motion, rig)
    else:
        check_reference_tracks(motion)            # before building anything
        rig, collection = build_reference_rig(motion, name, context)
        built = True
        tracks = tracks_for(motion, rig)
        common.stamp(rig, KIND, {"body_model": "smpl24", "skeleton": "smpl24"})
    timings["rig"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    action = write_action(rig, tracks, f"{name}_motion", start_frame)
    mute_earlier_tracks(rig)
    track, strip = compat.push_to_nla(rig, action, f"{TRACK_PREFIX} {motion.name or name}", start_frame)
    timings["keys"] = time.perf_counter() - t0
    set_scene_timing(context.scene, motion.fps, start_frame, motion.frames)

    record = {"source": source_of(motion),
              "params": motion.params, "provenance": motion.provenance, "artifact": motion.name,
              "fps": float(motion.fps), "frames": motion.frames, "retarget_preset": tracks.rig,
              "unmapped": list(tracks.unmapped)}
    if job_id:
        record["job_id"] = job_id
    common.stamp(action, KIND, record)
    rig[common.PROP_PREFIX + "motion"] = action.name
    rig[common.PROP_PREFIX + "motion_params"] = action[common.PROP_PREFIX + "params"]
    return ImportedMotion(rig, action, track, strip, start_frame, start_frame + motion.frames - 1, built,
                          collection, list(tracks.unmapped), timings)


def import_artifact(artifact: Any, context: Any = None, target: bpy.types.Object | None = None,
                    **kwargs: Any) -> ImportedMotion:
    """The importer registry's entry point (see importers/__init__.py)."""
    if not isinstance(artifact, Motion):
        raise common.ImportFailed(f"expected a Motion, got {type(artifact).__name__}")
    return import_motion(artifact, context, target=target, **kwargs)
