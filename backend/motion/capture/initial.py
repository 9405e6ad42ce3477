"""A first pose per frame, in closed form, from MediaPipe's world landmarks: the
pelvis frame from the torso (hips and shoulders), each limb's upper bone turned
onto its observed direction with its bend plane matching (so knees and elbows
bend the way they can), the lower bone swung onto its direction; the
feet, hands and head left at rest. The optimiser
starts from here; it is a start, not an answer (no limits, no smoothing)."""
from __future__ import annotations

import numpy as np

from ...core import rotations as R
from ..skeleton import J, NUM_JOINTS, REST_ROTATION
from .landmark_map import L

# (upper, middle, end joint; the landmarks at them; the middle joint's bend axis in its
# frame, signed so that a positive rotation about it bends the limb the way it can).
_LIMBS = (
    ("left_hip", "left_knee", "left_ankle", ("left_hip", "left_knee", "left_ankle"), (1.0, 0.0, 0.0)),
    ("right_hip", "right_knee", "right_ankle", ("right_hip", "right_knee", "right_ankle"), (1.0, 0.0, 0.0)),
    ("left_shoulder", "left_elbow", "left_wrist", ("left_shoulder", "left_elbow", "left_wrist"), (0.0, -1.0, 0.0)),
    ("right_shoulder", "right_elbow", "right_wrist", ("right_shoulder", "right_elbow", "right_wrist"),
     (0.0, 1.0, 0.0)),
)


# How strongly the usual bend direction steadies a limb's bend plane (as a sine: the
# observed bend outweighs it beyond about 20 degrees).
BEND_PRIOR = 0.35


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def torso_frame(w: np.ndarray) -> np.ndarray:
    """(T, 3, 3) the torso's frame (columns: left, up, forward) from landmarks (T, 33, 3)."""
    lh, rh, ls, rs = (w[:, L[n]] for n in ("left_hip", "right_hip", "left_shoulder", "right_shoulder"))
    left = _unit((lh - rh) + 0.5 * (ls - rs))
    up = 0.5 * (ls + rs) - 0.5 * (lh + rh)
    up = _unit(up - (up * left).sum(-1, keepdims=True) * left)
    return np.stack([left, up, np.cross(left, up)], -1)


def _frame_from(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(…, 3, 3) orthonormal frame with first axis a and second axis b made perpendicular to it."""
    a = _unit(a)
    b = _unit(b - (b * a).sum(-1, keepdims=True) * a)
    return np.stack([a, b, np.cross(a, b)], -1)


def initial_rotations(w: np.ndarray, offsets_local: np.ndarray, landmark_offset: np.ndarray) -> np.ndarray:
    """(T, 24, 3) local rotations from world landmarks (T, 33, 3) in the working (Z-up)
    frame; `offsets_local` (24, 3) the skeleton's joint offsets in their parents' frames."""
    n = len(w)
    rot = np.zeros((n, NUM_JOINTS, 3))
    g0 = torso_frame(w)                                         # pelvis frame (joint frame -> world)
    rot[:, 0] = R.matrix_to_axis_angle(REST_ROTATION.T @ g0)
    frames = {"pelvis": g0}
    # Spine, collars stay at rest: their frames are the pelvis frame.
    for name in ("spine1", "spine2", "spine3", "neck", "left_collar", "right_collar"):
        frames[name] = g0
    for upper, mid, end, (lu, lm, le), axis in _LIMBS:
        parent = frames["pelvis"] if "hip" in upper else frames[upper.replace("shoulder", "collar")]
        gp_t = np.swapaxes(parent, -1, -2)
        d1 = w[:, L[lm]] - w[:, L[lu]]
        d2 = w[:, L[le]] - w[:, L[lm]]
        # The bend plane's normal, steadied by the way the limb bends (the forearm comes
        # forward, the shin goes back): a nearly straight limb's noisy bend would
        # otherwise spin the upper bone's twist half a turn from frame to frame.
        bend_dir = parent[..., 2] * (1.0 if "shoulder" in upper else -1.0)      # the parent's forward
        prior = np.cross(d1, bend_dir) * np.linalg.norm(d2, axis=-1, keepdims=True) / np.maximum(
            np.linalg.norm(d1, axis=-1, keepdims=True), 1e-9)
        bend = np.cross(d1, d2) + BEND_PRIOR * prior
        weak = np.linalg.norm(bend, axis=-1) < 1e-6
        bend = np.where(weak[:, None], parent @ np.asarray(axis), bend)
        src = _frame_from(offsets_local[J[mid]], np.asarray(axis))     # in the upper joint's rest frame
        dst = _frame_from(np.einsum("tij,tj->ti", gp_t, d1), np.einsum("tij,tj->ti", gp_t, bend))
        local_u = dst @ np.swapaxes(src, -1, -2)[None]
        g_u = parent @ local_u
        rot[:, J[upper]] = R.matrix_to_axis_angle(local_u)
        target = np.einsum("tji,tj->ti", g_u, d2)                # d2 in the upper joint's frame
        local_m = R.swing_between(np.broadcast_to(offsets_local[J[end]], target.shape), target)
        rot[:, J[mid]] = R.matrix_to_axis_angle(local_m)
        frames[upper], frames[mid] = g_u, g_u @ local_m
    # Feet, hands and the head stay at rest: MediaPipe's heel, toe, hand and face points
    # are a few centimetres apart, as close as its world landmarks' noise, so a per-frame
    # reading of them spins; the solve sets them from the image landmarks, over time.
    return rot
