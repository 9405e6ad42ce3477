"""Foot contacts: which feet are planted, found on a first solve from their sole
points (heel, toe: either near the ground and slow, as ops.foot_contacts judges a
motion), and where each planted stretch locks both points (their mean positions,
put on the ground when near it), for the second solve's contact term."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ops import CONTACT_HEIGHT, CONTACT_SPEED
from .ground import Ground, fit_ground

# Sole points the contact term locks, per foot: MediaPipe's heel and toe landmarks.
SOLE_LANDMARKS = (("left_heel", "left_foot_index"), ("right_heel", "right_foot_index"))
MIN_CONTACT_SECONDS = 0.1        # shorter planted stretches are noise
MAX_HOLE_SECONDS = 0.07          # shorter breaks inside a planted stretch are noise
GROUND_PERCENTILE = 15.0
DETECTION_SMOOTHING_SECONDS = 0.05   # Gaussian sigma applied to the sole paths before judging speeds         # the lowest sole point of a frame is on the ground this often at least


@dataclass
class Contacts:
    """planted (N, 2, 2) bool per foot (left, right) and sole point (heel, toe);
    anchor (N, 2, 2, 3) where each planted point is held (working frame, valid where planted);
    ground the plane fitted to them."""
    planted: np.ndarray
    anchor: np.ndarray
    ground: Ground

    @property
    def feet(self) -> np.ndarray:
        """(N, 2) bool: a foot is in contact when its heel or its toe is."""
        return self.planted.any(axis=2)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open [start, end) runs of True."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def _clean(mask: np.ndarray, min_len: int, max_hole: int) -> np.ndarray:
    out = mask.copy()
    for s, e in _runs(~out):
        if 0 < s and e < len(out) and e - s <= max_hole:
            out[s:e] = True
    for s, e in _runs(out):
        if e - s < min_len:
            out[s:e] = False
    return out


def _speeds(p: np.ndarray, fps: float, normal: np.ndarray) -> np.ndarray:
    """(N, ...) speed along the ground (m/s) of positions (N, ..., 3), central differences."""
    if len(p) < 2:
        return np.zeros(p.shape[:-1])
    v = np.gradient(p, axis=0) * fps
    v = v - (v @ normal)[..., None] * normal
    return np.linalg.norm(v, axis=-1)


def _level_ground(sole: np.ndarray) -> Ground:
    lowest = sole[..., 2].reshape(len(sole), -1).min(axis=1)
    h = float(np.percentile(lowest, GROUND_PERCENTILE))
    return Ground(np.array([0.0, 0.0, 1.0]), np.array([0.0, 0.0, h]))


def detect_contacts(sole: np.ndarray, fps: float, scale: float = 1.0) -> Contacts:
    """Contacts of sole points (N, 2, 2, 3) (working frame, from a first solve) and
    the ground fitted to them. `scale` (actor / reference size) scales the height
    threshold; speeds are absolute."""
    from scipy.ndimage import gaussian_filter1d

    # Judge contacts on the first solve's sole paths lightly smoothed: its residual
    # jitter alone (a centimetre a frame) would read as 0.3 m/s of speed.
    sole = gaussian_filter1d(np.asarray(sole, np.float64), DETECTION_SMOOTHING_SECONDS * fps, axis=0,
                             mode="nearest") if len(sole) > 3 else np.asarray(sole, np.float64)
    min_len = max(2, int(round(MIN_CONTACT_SECONDS * fps)))
    max_hole = max(1, int(round(MAX_HOLE_SECONDS * fps)))
    ground = _level_ground(sole)
    planted = np.zeros(sole.shape[:3], bool)
    for _ in range(3):           # contacts and the plane under them, refined together
        h = ground.height(sole)
        speed = _speeds(sole, fps, ground.normal)
        raw = (h < CONTACT_HEIGHT * scale) & (speed < CONTACT_SPEED)
        planted = np.stack([np.stack([_clean(raw[:, f, k], min_len, max_hole) for k in range(2)], -1)
                            for f in range(2)], 1)
        if planted.sum() < 3:
            break
        ground = fit_ground(sole[planted])
    # A planted foot is held whole: both its sole points stay where they are over the
    # stretch (a heel or toe alone held would let the foot pivot and its joints slide).
    planted = np.repeat(planted.any(axis=2, keepdims=True), 2, axis=2)
    anchor = np.zeros_like(sole)
    for f in range(2):
        for s, e in _runs(planted[:, f, 0]):
            for k in range(2):
                a = sole[s:e, f, k].mean(axis=0)
                h = ground.height(a)
                # on the ground when it is near it (the sole's low point), else where it was
                anchor[s:e, f, k] = a - h * ground.normal if h < CONTACT_HEIGHT * scale else a
    return Contacts(planted, anchor, ground)
