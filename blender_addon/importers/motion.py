"""Builds a Motion (protocol/artifacts.py) in the scene: one Action, keyed in bulk.

Where the keys go:
- a target rig (the armature chosen when the job was submitted): the
  motion's `retargeted` tracks, per-bone `rotation_quaternion` (relative to the
  bone's rest frame, in that frame) plus the root bone's `location`;
  a rig whose bones are SMPL's 24 joints (built here earlier) also takes
  the SMPL rotations directly;
- no target: a new SMPL-24 armature built from `Motion.rest_positions`, each
  bone's frame the SMPL joint frame (Y-up -> Z-up: local x = world x, local y
  = world +Z, local z = world -Y; head at the rest position), so the SMPL
  rotations go into `rotation_quaternion` verbatim (DESIGN §6) and the pelvis
  position into the pelvis bone's `location`.

Each F-curve is filled with keyframe_points.add(T) + foreach_set (no per-key
inserts); quaternion keys are made sign-continuous so interpolation never
takes the long way round. The Action is pushed to its own NLA track (earlier
AvatarForge tracks on the rig are muted), the scene's fps (fps + fps_base
for fractional rates) and frame range become the motion's, and the rig and
Action record the source and parameters as custom properties.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import bpy
import numpy as np

from .. import compat
from ..protocol import SMPL24_JOINTS, SMPL24_PARENTS, Motion, RetargetedTracks
from . import common

KIND = Motion.KIND
START_FRAME = 1
TRACK_PREFIX = "AvatarForge"
# The rest frame of every SMPL joint in our Z-up world: SMPL's Y-up world
# rotated by +90° about X (the same matrix as backend/models/axes.py
# Y_UP_TO_Z_UP; the add-on cannot import the backend). Columns: where the
# joint's local x, y, z point: x -> +X, y -> +Z, z -> -Y.
SMPL_JOINT_FRAME = np.array([[1.0, 0.0, 0.0],
                             [0.0, 0.0, -1.0],
                             [0.0, 1.0, 0.0]])
SMPL_ROOT = SMPL24_JOINTS[0]


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
        if not self.unmapped:
            return ""
        shown = ", ".join(self.unmapped[:12]) + (f" and {len(self.unmapped) - 12} more" if len(self.unmapped) > 12
                                                 else "")
        return f"{len(self.unmapped)} bones of {self.rig.name} are not driven by the motion: {shown}"


# -- rotations ----------------------------------------------------------------
def quaternions_from_axis_angle(rotvec: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle -> (..., 4) unit quaternions w, x, y, z.
    Written here because the add-on may not import the backend's rotation
    module (backend/motion/rotations.py) and mathutils works one value at a time."""
    rotvec = np.asarray(rotvec, np.float64)
    angle = np.linalg.norm(rotvec, axis=-1, keepdims=True)
    half = 0.5 * angle
    # sin(a/2)/a -> 1/2 as a -> 0 (second-order Taylor term keeps small angles exact)
    small = angle < 1e-6
    scale = np.where(small, 0.5 - angle * angle / 48.0, np.sin(half) / np.where(small, 1.0, angle))
    return np.concatenate([np.cos(half), rotvec * scale], axis=-1)


def continuous_quaternions(q: np.ndarray) -> np.ndarray:
    """(T, ..., 4) quaternions with signs flipped so each key has a
    non-negative dot product with the previous one (q and -q are the same
    rotation; linear interpolation between opposite signs would spin)."""
    q = np.asarray(q, np.float64)
    if len(q) < 2:
        return q.copy()
    dots = np.einsum("t...i,t...i->t...", q[1:], q[:-1])
    flips = np.concatenate([np.ones_like(dots[:1]), np.where(dots < 0.0, -1.0, 1.0)], axis=0)
    return q * np.cumprod(flips, axis=0)[..., None]


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
    quats = continuous_quaternions(tracks.rotations)
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
def smpl_rest_matrices(rest_positions: np.ndarray) -> np.ndarray:
    """(24, 4, 4) bone frames: the SMPL joint frame, head at the rest position."""
    rest = np.tile(np.eye(4), (len(SMPL24_JOINTS), 1, 1))
    rest[:, :3, :3] = SMPL_JOINT_FRAME
    rest[:, :3, 3] = rest_positions
    return rest


def is_smpl24_rig(rig: bpy.types.Object) -> bool:
    return all(name in rig.data.bones for name in SMPL24_JOINTS)


def smpl_tracks(motion: Motion, rig: bpy.types.Object) -> RetargetedTracks:
    """The SMPL rotations verbatim, and the pelvis position as the pelvis
    bone's `location`: the head offset from rest, in the bone's rest frame."""
    rest = np.array(rig.data.bones[SMPL_ROOT].matrix_local, np.float64)
    root_locations = (motion.trans.astype(np.float64) - rest[:3, 3]) @ rest[:3, :3]   # R^T (p - head)
    return RetargetedTracks("smpl24", list(SMPL24_JOINTS), quaternions_from_axis_angle(motion.rotations),
                            SMPL_ROOT, root_locations, [])


def build_smpl_rig(motion: Motion, name: str, context: Any) -> tuple[bpy.types.Object, bpy.types.Collection]:
    if motion.rest_positions is None:
        raise common.ImportFailed(f"motion '{motion.name}' has no rest_positions to build an SMPL-24 armature "
                                  "from; select the rig to animate and submit again")
    collection = common.new_collection(name, context.scene.collection)
    rig = common.build_armature(f"{name}_rig", SMPL24_JOINTS, np.asarray(SMPL24_PARENTS),
                                smpl_rest_matrices(motion.rest_positions), collection, context.view_layer)
    return rig, collection


# -- the importer ---------------------------------------------------------------
def tracks_for(motion: Motion, rig: bpy.types.Object) -> RetargetedTracks:
    """The keys for an existing rig: the backend's retargeted tracks, or the
    SMPL rotations when the rig is SMPL-24 and nothing was retargeted."""
    tracks = motion.retargeted
    if tracks is None:
        if is_smpl24_rig(rig):
            return smpl_tracks(motion, rig)
        raise common.ImportFailed(f"motion '{motion.name}' was not retargeted to '{rig.name}' (the request had no "
                                  "target rig); submit it again with the rig selected")
    missing = [b for b in tracks.bone_names if b not in rig.data.bones]
    if missing:
        raise common.ImportFailed(f"motion '{motion.name}' was retargeted to a rig with bones '{rig.name}' lacks "
                                  f"({', '.join(missing[:10])}); submit it again with this rig selected")
    return tracks


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
        rig, collection = build_smpl_rig(motion, name, context)
        built = True
        tracks = smpl_tracks(motion, rig)
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
