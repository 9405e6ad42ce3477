"""Operations on SMPL-24 motions, one implementation each: resample, trim,
loop, concatenate with blending, mirror, foot contacts, and the JSON form the
CLIs print.

They work on plain arrays, `rotations` (T, 24, 3) local axis-angle in SMPL's
joint frames and `trans` (T, 3) pelvis positions (Z up, metres), and return new
arrays (float32); a Motion is built from the result with build.make_motion.
Rotations interpolate by slerp, translations linearly (DESIGN §6: frame rates
are resampled, never decimated).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..core import rotations as rot
from .skeleton import JOINT_NAMES, NUM_JOINTS, J, height_above_soles

# Contact thresholds: a foot is planted when it is within CONTACT_HEIGHT of the
# clip's floor and moves slower than CONTACT_SPEED (m/s) horizontally and vertically.
CONTACT_HEIGHT = 0.05
CONTACT_SPEED = 0.35

# Left <-> right joint permutation (SMPL order), built from the names.
MIRROR_INDEX = np.array([J[n.replace("left_", "@").replace("right_", "left_").replace("@", "right_")]
                         for n in JOINT_NAMES])


def _arrays(rotations: Any, trans: Any) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(rotations, dtype=np.float64)
    t = np.asarray(trans, dtype=np.float64)
    if r.ndim != 3 or r.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"rotations must be (T, 24, 3), got {r.shape}")
    if t.shape != (len(r), 3):
        raise ValueError(f"trans must be ({len(r)}, 3), got {t.shape}")
    if len(r) == 0:
        raise ValueError("a motion needs at least one frame")
    return r, t


def _f32(r: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return r.astype(np.float32), t.astype(np.float32)


def resampled_frame_count(frames: int, fps_in: float, fps_out: float) -> int:
    """Frames after resampling, keeping the duration: round((T-1)·fps_out/fps_in) + 1."""
    return int(round((frames - 1) * fps_out / fps_in)) + 1


def sample(rotations: Any, trans: Any, positions: Any) -> tuple[np.ndarray, np.ndarray]:
    """The motion at fractional frame positions (N,) (clamped to the clip):
    slerp for rotations, linear for translation."""
    r, t = _arrays(rotations, trans)
    u = np.clip(np.asarray(positions, dtype=np.float64), 0.0, len(r) - 1)
    i0 = np.floor(u).astype(np.int64)
    i1 = np.minimum(i0 + 1, len(r) - 1)
    w = u - i0
    out_r = rot.slerp_axis_angle(r[i0], r[i1], np.broadcast_to(w[:, None], (len(u), NUM_JOINTS)))
    out_t = t[i0] * (1.0 - w[:, None]) + t[i1] * w[:, None]
    return _f32(out_r, out_t)


def resample(rotations: Any, trans: Any, fps_in: float, fps_out: float) -> tuple[np.ndarray, np.ndarray]:
    """The motion at `fps_out`, same duration (frame k is at time k / fps_out)."""
    if not (fps_in > 0 and fps_out > 0):
        raise ValueError(f"frame rates must be positive, got {fps_in} -> {fps_out}")
    r, t = _arrays(rotations, trans)
    n = resampled_frame_count(len(r), fps_in, fps_out)
    return sample(r, t, np.arange(n) * (fps_in / fps_out))


def trim(rotations: Any, trans: Any, fps: float, start: float = 0.0,
         end: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Frames from `start` to `end` seconds (inclusive, nearest frames; end None = the last)."""
    r, t = _arrays(rotations, trans)
    first = int(round(max(start, 0.0) * fps))
    last = len(r) - 1 if end is None else min(int(round(end * fps)), len(r) - 1)
    if first > last:
        raise ValueError(f"trim: start {start:g} s is after end {end if end is not None else (len(r) - 1) / fps:g} s")
    return _f32(r[first:last + 1], t[first:last + 1])


def concatenate(clips: list[tuple[Any, Any]], blend_frames: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Clips one after another. Each next clip is moved horizontally so that it
    starts where the previous one is at the start of the blend (so a walk
    carries on rather than jumping back); over `blend_frames` frames the two
    overlap and cross-fade (slerp / lerp), which shortens the result by that
    many frames per join. Headings are not aligned."""
    if not clips:
        raise ValueError("concatenate needs at least one clip")
    out_r, out_t = _arrays(*clips[0])
    for nxt in clips[1:]:
        r, t = _arrays(*nxt)
        b = int(max(0, min(blend_frames, len(out_r) - 1, len(r) - 1)))
        anchor = out_t[len(out_t) - max(b, 1)]
        t = t.copy()
        t[:, :2] += anchor[:2] - t[0, :2]
        if b:
            w = np.arange(1, b + 1) / (b + 1)
            mid_r = rot.slerp_axis_angle(out_r[-b:], r[:b], np.broadcast_to(w[:, None], (b, NUM_JOINTS)))
            mid_t = out_t[-b:] * (1 - w[:, None]) + t[:b] * w[:, None]
            out_r = np.concatenate([out_r[:-b], mid_r, r[b:]])
            out_t = np.concatenate([out_t[:-b], mid_t, t[b:]])
        else:
            out_r, out_t = np.concatenate([out_r, r]), np.concatenate([out_t, t])
    return _f32(out_r, out_t)


def loop(rotations: Any, trans: Any, count: int, blend_frames: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The clip played `count` times in a row (root travel accumulates), joined as by concatenate."""
    if count < 1:
        raise ValueError(f"loop count must be >= 1, got {count}")
    return concatenate([(rotations, trans)] * count, blend_frames)


def mirror(rotations: Any, trans: Any) -> tuple[np.ndarray, np.ndarray]:
    """Left and right swapped: joints exchange with their mirror partner and
    every rotation and the translation reflect across the body's sagittal plane.
    SMPL's joint frames are world-aligned with x = the body's left, so the
    reflection is x -> -x in every frame: axis-angle (x, y, z) -> (x, -y, -z)."""
    r, t = _arrays(rotations, trans)
    r = r[:, MIRROR_INDEX] * np.array([1.0, -1.0, -1.0])
    t = t * np.array([-1.0, 1.0, 1.0])     # world X is the body's left at rest (facing -Y)
    return _f32(r, t)


def foot_contacts(joints: Any, fps: float) -> np.ndarray:
    """(T, 2) bool [left, right]: the foot is planted when its lower point
    (ankle or ball, less its height above the sole on the reference skeleton)
    is within CONTACT_HEIGHT of the clip's floor (its lowest foot point) and
    the faster of ankle and ball moves under CONTACT_SPEED."""
    p = np.asarray(joints, dtype=np.float64)
    if p.ndim != 3 or p.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"joints must be (T, 24, 3), got {p.shape}")
    out = np.zeros((len(p), 2), dtype=bool)
    heights = []
    for side in ("left", "right"):
        heights.append(np.minimum(*(p[:, J[f"{side}_{j}"], 2] - height_above_soles(f"{side}_{j}")
                                    for j in ("ankle", "foot"))))
    floor = min(h.min() for h in heights)
    for k, side in enumerate(("left", "right")):
        speeds = []
        for name in (f"{side}_ankle", f"{side}_foot"):
            x = p[:, J[name]]
            v = np.zeros(len(x))
            if len(x) > 1:
                step = np.linalg.norm(np.diff(x, axis=0), axis=-1) * fps
                # central-ish: a frame's speed is the larger of its incoming and outgoing steps
                v[1:] = step
                v[:-1] = np.maximum(v[:-1], step)
            speeds.append(v)
        out[:, k] = (heights[k] - floor < CONTACT_HEIGHT) & (np.maximum(*speeds) < CONTACT_SPEED)
    return out


def motion_json(motion: Any) -> dict[str, Any]:
    """A Motion as plain JSON-able data for the CLIs: fps, joint_names, joints
    (T, 24, 3, metres, Z up), poses (T, 24, 3 axis-angle), trans (T, 3), contacts (T, 2) or None."""
    def lists(a: Any, digits: int) -> Any:
        return None if a is None else np.round(np.asarray(a, dtype=np.float64), digits).tolist()

    out = {"name": motion.name, "fps": float(motion.fps), "frames": motion.frames, "seconds": motion.seconds,
           "joint_names": list(JOINT_NAMES), "joints": lists(motion.joints, 5),
           "poses": lists(motion.rotations, 6), "trans": lists(motion.trans, 5),
           "contacts": None if motion.contacts is None else np.asarray(motion.contacts, bool).tolist()}
    if motion.retargeted is not None:
        out["retargeted"] = {"rig": motion.retargeted.rig, "bone_names": list(motion.retargeted.bone_names),
                             "root_bone": motion.retargeted.root_bone,
                             "unmapped": list(motion.retargeted.unmapped)}
    return out
