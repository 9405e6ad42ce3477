"""Where MediaPipe Pose's 33 landmarks sit on the SMPL-24 skeleton.

Each landmark is a point rigidly attached to one SMPL joint: the joint's
position plus a fixed offset in that joint's frame (x = the body's left, y = up,
z = forward in the rest pose, metres on the reference skeleton; skeleton.py).
Shoulders, elbows, wrists, knees and ankles are at their joints; the face points,
hands, heels and toes are offsets from the head, wrists and feet; MediaPipe's hip
points (trained on COCO-style hip annotations) lie a little wider and higher
than SMPL's hip joint centres.

The offsets are anatomical estimates for the SMPL neutral body; they scale with
the actor's size. They are the one place to change if renders with known joints
(not a hold-out) show a landmark consistently off its joint.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core.capture import NUM_POSE_LANDMARKS, POSE_LANDMARKS
from ..skeleton import J

# (landmark, SMPL joint it rides on, offset in that joint's frame for the LEFT side
# (x = outward for left landmarks; mirrored for right ones), metres).
_LEFT_SIDED: tuple[tuple[str, str, tuple[float, float, float]], ...] = (
    ("eye_inner", "head", (0.016, 0.075, 0.095)),
    ("eye", "head", (0.033, 0.077, 0.090)),
    ("eye_outer", "head", (0.050, 0.075, 0.080)),
    ("ear", "head", (0.075, 0.050, 0.000)),
    ("shoulder", "shoulder", (0.0, 0.0, 0.0)),
    ("elbow", "elbow", (0.0, 0.0, 0.0)),
    ("wrist", "wrist", (0.0, 0.0, 0.0)),
    ("pinky", "wrist", (0.080, -0.005, -0.025)),
    ("index", "wrist", (0.090, -0.005, 0.025)),
    ("thumb", "wrist", (0.050, -0.015, 0.050)),
    ("hip", "hip", (0.025, 0.030, 0.0)),
    ("knee", "knee", (0.0, 0.0, 0.0)),
    ("ankle", "ankle", (0.0, 0.0, 0.0)),
    ("heel", "ankle", (0.0, -0.068, -0.055)),        # the back of the sole, under the ankle
    ("foot_index", "foot", (0.0, -0.012, 0.060)),    # the tip of the big toe, on the sole
)
_NOSE = ("nose", "head", (0.0, 0.040, 0.110))


@dataclass(frozen=True)
class LandmarkMap:
    """joint (33,) the SMPL joint each landmark rides on; offset (33, 3) its
    position in that joint's frame on the reference skeleton (metres)."""
    joint: np.ndarray
    offset: np.ndarray


def _build() -> LandmarkMap:
    joint = np.full(NUM_POSE_LANDMARKS, -1, dtype=np.int64)
    offset = np.zeros((NUM_POSE_LANDMARKS, 3))
    index = {name: i for i, name in enumerate(POSE_LANDMARKS)}
    joint[index[_NOSE[0]]], offset[index[_NOSE[0]]] = J[_NOSE[1]], _NOSE[2]
    for part, smpl, off in _LEFT_SIDED:
        for side, sign in (("left", 1.0), ("right", -1.0)):
            name = f"{side}_{part}"
            smpl_name = smpl if smpl in ("head",) else f"{side}_{smpl}"
            joint[index[name]] = J[smpl_name]
            offset[index[name]] = (sign * off[0], off[1], off[2])
    # "mouth_left"/"mouth_right" are MediaPipe's names for the mouth corners.
    for side, sign in (("left", 1.0), ("right", -1.0)):
        joint[index[f"mouth_{side}"]] = J["head"]
        offset[index[f"mouth_{side}"]] = (sign * 0.025, 0.005, 0.095)
    assert (joint >= 0).all(), "every MediaPipe landmark needs an SMPL joint"
    joint.setflags(write=False)
    offset.setflags(write=False)
    return LandmarkMap(joint, offset)


LANDMARK_MAP = _build()
L = {name: i for i, name in enumerate(POSE_LANDMARKS)}


def landmark_index(name: str) -> int:
    """MediaPipe's index of a landmark name (POSE_LANDMARKS)."""
    return L[name]
