"""How far each SMPL-24 joint bends: the one table of joint limits, for every
motion made here (text -> motion synthesis, the video capture solve)."""
from __future__ import annotations

import numpy as np

from .skeleton import J, NUM_JOINTS

# Per-joint bounds on the axis-angle components (degrees), a box around the
# anatomical range: knees and elbows bend one way only, little twist at either.
_BOUNDS_DEG: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "pelvis": ((-100, 100), (-180, 180), (-100, 100)),
    "left_hip": ((-135, 50), (-50, 50), (-35, 80)),
    "left_knee": ((-5, 160), (-15, 15), (-15, 15)),
    "left_ankle": ((-45, 55), (-30, 30), (-30, 30)),
    "left_foot": ((-40, 40), (-20, 20), (-20, 20)),
    "spine1": ((-40, 70), (-45, 45), (-40, 40)),
    "spine2": ((-30, 45), (-40, 40), (-30, 30)),
    "spine3": ((-30, 45), (-40, 40), (-30, 30)),
    "neck": ((-45, 50), (-60, 60), (-35, 35)),
    "head": ((-40, 40), (-50, 50), (-30, 30)),
    "left_collar": ((-30, 30), (-30, 30), (-20, 35)),
    "left_shoulder": ((-120, 120), (-130, 90), (-100, 100)),
    "left_elbow": ((-40, 40), (-160, 10), (-40, 40)),
    "left_wrist": ((-80, 80), (-60, 60), (-80, 80)),
    "left_hand": ((-40, 40), (-40, 40), (-40, 40)),
}


def joint_limits() -> tuple[np.ndarray, np.ndarray]:
    """(24, 3) lower and upper bounds (radians) on each joint's axis-angle
    components; right joints mirror the left ones (y and z negate)."""
    lo = np.full((NUM_JOINTS, 3), -np.pi)
    hi = np.full((NUM_JOINTS, 3), np.pi)
    for name, bounds in _BOUNDS_DEG.items():
        b = np.radians(np.asarray(bounds, dtype=np.float64))
        lo[J[name]], hi[J[name]] = b[:, 0], b[:, 1]
        if name.startswith("left_"):
            r = J["right_" + name[5:]]
            lo[r], hi[r] = b[:, 0].copy(), b[:, 1].copy()
            lo[r, 1:], hi[r, 1:] = -b[1:, 1], -b[1:, 0]
    return lo, hi
