"""The actor's skeleton: constant bone lengths over the clip.

Given a target avatar's rest joints, those. Otherwise the reference SMPL skeleton
with one global scale and a few per-segment factors (thigh, shin, upper arm,
forearm, shoulder width, hip width, torso), fitted to the medians of MediaPipe's
metric world-landmark segment lengths over the clip and regularised towards the
global scale (a segment seen end-on in most frames, or a noisy one, stays close to
the body's proportions)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from ..skeleton import J, NUM_JOINTS, PARENTS, forward_kinematics, height_above_soles, reference_offsets
from ..skeleton import reference_rest_positions
from .landmark_map import LANDMARK_MAP, L

# segment -> (landmark pairs measuring it, SMPL joints whose parent offsets it scales)
SEGMENTS: dict[str, tuple[tuple[tuple[str, str], ...], tuple[str, ...]]] = {
    "thigh": ((("left_hip", "left_knee"), ("right_hip", "right_knee")), ("left_knee", "right_knee")),
    "shin": ((("left_knee", "left_ankle"), ("right_knee", "right_ankle")), ("left_ankle", "right_ankle")),
    "upper_arm": ((("left_shoulder", "left_elbow"), ("right_shoulder", "right_elbow")),
                  ("left_elbow", "right_elbow")),
    "forearm": ((("left_elbow", "left_wrist"), ("right_elbow", "right_wrist")),
                ("left_wrist", "right_wrist", "left_hand", "right_hand")),
    "shoulders": ((("left_shoulder", "right_shoulder"),), ("left_shoulder", "right_shoulder")),
    "hips": ((("left_hip", "right_hip"),), ("left_hip", "right_hip")),
    "torso": ((("left_hip", "left_shoulder"), ("right_hip", "right_shoulder")),
              ("spine1", "spine2", "spine3", "neck", "left_collar", "right_collar", "head")),
}
SEGMENT_NAMES = tuple(SEGMENTS)
# How far (log units) a segment may stray from the global scale before the prior outweighs it.
PROPORTION_SIGMA = 0.08
MIN_VISIBILITY = 0.5
LEG = ("left_knee", "left_ankle", "right_knee", "right_ankle")


@dataclass(frozen=True)
class ActorSkeleton:
    """rest (24,3) Z-up rest joints, soles on z = 0; landmark_offset (33,3) the landmark
    offsets at this body's size; scale: leg length / the reference skeleton's;
    segments: measured and fitted lengths (m) for the report."""
    rest: np.ndarray
    landmark_offset: np.ndarray
    scale: float
    segments: dict[str, dict[str, float]]


def leg_length(rest: np.ndarray) -> float:
    """Mean hip -> knee -> ankle length of a rest skeleton (m)."""
    off = reference_offsets(rest)
    return float(np.mean([np.linalg.norm(off[J[n]]) for n in LEG]) * 2.0)


def _grounded(offsets: np.ndarray, sole_scale: float) -> np.ndarray:
    """Rest joints from parent offsets, pelvis above the origin and the soles on z = 0."""
    rest = np.zeros((NUM_JOINTS, 3))
    rest[0] = offsets[0]
    for j in range(1, NUM_JOINTS):
        rest[j] = rest[PARENTS[j]] + offsets[j]
    sole = min(rest[J[n], 2] - sole_scale * height_above_soles(n) for n in ("left_ankle", "right_ankle"))
    rest[:, 2] -= sole
    return rest


def _scaled_rest(log_global: float, log_factors: np.ndarray) -> np.ndarray:
    offsets = reference_offsets().copy()
    s = np.exp(log_global)
    offsets[1:] *= s
    for (name, (_, joints)), lf in zip(SEGMENTS.items(), log_factors):
        for j in joints:
            offsets[J[j]] *= np.exp(lf)
    return _grounded(offsets, s)


def _rest_landmarks(rest: np.ndarray, scale: float) -> np.ndarray:
    """(33, 3) landmark positions on a rest skeleton."""
    _, frames = forward_kinematics(np.zeros((1, NUM_JOINTS, 3)), rest[None, 0], rest, return_frames=True)
    joints = rest[LANDMARK_MAP.joint]
    return joints + np.einsum("lij,lj->li", frames[0][LANDMARK_MAP.joint], LANDMARK_MAP.offset * scale)


def _segment_lengths(points: np.ndarray) -> np.ndarray:
    """Mean length of each segment's landmark pairs on one set of points (33, 3)."""
    return np.array([np.mean([np.linalg.norm(points[L[a]] - points[L[b]]) for a, b in pairs])
                     for pairs, _ in SEGMENTS.values()])


def measured_segments(world: np.ndarray, visibility: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """(7,) median length of each segment over the frames where both its ends are
    visible (NaN where never)."""
    out = np.full(len(SEGMENTS), np.nan)
    for k, (pairs, _) in enumerate(SEGMENTS.values()):
        lengths = []
        for a, b in pairs:
            ok = observed & (visibility[:, L[a]] >= MIN_VISIBILITY) & (visibility[:, L[b]] >= MIN_VISIBILITY)
            d = np.linalg.norm(world[ok, L[a]] - world[ok, L[b]], axis=-1)
            lengths.append(d[np.isfinite(d)])
        allv = np.concatenate(lengths)
        if len(allv):
            out[k] = float(np.median(allv))
    return out


def actor_skeleton(world: np.ndarray, visibility: np.ndarray, observed: np.ndarray) -> ActorSkeleton:
    """The actor's skeleton fitted to the world landmarks' segment lengths."""
    measured = measured_segments(world, visibility, observed)
    ok = np.isfinite(measured)
    ref = _segment_lengths(_rest_landmarks(np.asarray(reference_rest_positions()), 1.0))
    if not ok.any():
        log_g, log_f = 0.0, np.zeros(len(SEGMENTS))
    else:
        def residuals(x: np.ndarray) -> np.ndarray:
            g, f = x[0], x[1:]
            model = _segment_lengths(_rest_landmarks(_scaled_rest(g, f), np.exp(g)))
            data = np.log(model[ok]) - np.log(measured[ok])
            # data in log units (a median's spread ~5 %), proportions pulled to the global scale
            return np.concatenate([data / 0.05, f / PROPORTION_SIGMA])

        x0 = np.zeros(1 + len(SEGMENTS))
        x0[0] = float(np.median(np.log(measured[ok] / ref[ok])))
        x0[0] = float(np.clip(x0[0], np.log(0.5), np.log(1.5)))
        sol = least_squares(residuals, x0, bounds=([np.log(0.5)] + [-0.4] * len(SEGMENTS),
                                                   [np.log(1.5)] + [0.4] * len(SEGMENTS)))
        log_g, log_f = float(sol.x[0]), sol.x[1:]
    rest = _scaled_rest(log_g, log_f)
    fitted = _segment_lengths(_rest_landmarks(rest, np.exp(log_g)))
    segments = {n: {"measured": float(m) if np.isfinite(m) else None, "fitted": float(f)}
                for n, m, f in zip(SEGMENTS, measured, fitted)}
    return skeleton_from_rest(rest, segments)


def skeleton_from_rest(rest: np.ndarray, segments: dict[str, dict[str, float]] | None = None) -> ActorSkeleton:
    """An ActorSkeleton for given rest joints (a target avatar's): landmark offsets scale
    with its leg length."""
    rest = np.asarray(rest, np.float64)
    scale = leg_length(rest) / leg_length(np.asarray(reference_rest_positions()))
    return ActorSkeleton(rest, LANDMARK_MAP.offset * scale, scale, segments or {})


def model_segments(skeleton: ActorSkeleton) -> np.ndarray:
    """(7,) the skeleton's own segment lengths (for scaling the world landmarks onto it)."""
    return _segment_lengths(_rest_landmarks(skeleton.rest, skeleton.scale))
