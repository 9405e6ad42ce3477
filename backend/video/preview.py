"""A small picture of a frame with the tracked skeleton drawn on it, for a job's
progress messages (cheap: OpenCV lines on a thumbnail, a few KB of PNG)."""
from __future__ import annotations

import cv2
import numpy as np

from ..core.capture import POSE_LANDMARKS

# Bones drawn between MediaPipe Pose landmarks (body only: the face and hand points
# would be a blur at thumbnail size).
_BONES_BY_NAME = (
    ("left_shoulder", "right_shoulder"), ("left_hip", "right_hip"),
    ("left_shoulder", "left_hip"), ("right_shoulder", "right_hip"),
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
    ("left_hip", "left_knee"), ("left_knee", "left_ankle"), ("left_ankle", "left_heel"),
    ("left_heel", "left_foot_index"), ("left_ankle", "left_foot_index"),
    ("right_hip", "right_knee"), ("right_knee", "right_ankle"), ("right_ankle", "right_heel"),
    ("right_heel", "right_foot_index"), ("right_ankle", "right_foot_index"),
    ("nose", "left_eye"), ("nose", "right_eye"), ("left_eye", "left_ear"), ("right_eye", "right_ear"),
)
BONES = tuple((POSE_LANDMARKS.index(a), POSE_LANDMARKS.index(b)) for a, b in _BONES_BY_NAME)
VISIBLE = 0.5
# Colours (RGB): the person's left in orange, right in blue, the middle in white (the usual reading).
_LEFT, _RIGHT, _MIDDLE = (255, 140, 0), (0, 160, 255), (255, 255, 255)


def _colour(a: int, b: int) -> tuple[int, int, int]:
    names = POSE_LANDMARKS[a] + POSE_LANDMARKS[b]
    left, right = names.count("left"), names.count("right")
    return _LEFT if left > right else _RIGHT if right > left else _MIDDLE


def preview_png(image_rgb: np.ndarray, landmarks_px: np.ndarray | None, visibility: np.ndarray | None,
                max_side: int = 192) -> bytes:
    """PNG bytes of `image_rgb` shrunk to at most `max_side` px on its longer side, with
    the skeleton of `landmarks_px` ((33, 2) pixels of image_rgb) drawn where both ends
    are visible (visibility >= 0.5; all when visibility is None). No landmarks: the
    frame alone (nobody found)."""
    h, w = image_rgb.shape[:2]
    f = min(1.0, max_side / max(h, w))
    size = (max(1, round(w * f)), max(1, round(h * f)))
    thumb = cv2.resize(np.ascontiguousarray(image_rgb), size, interpolation=cv2.INTER_AREA) if f < 1 \
        else np.ascontiguousarray(image_rgb).copy()
    if landmarks_px is not None:
        pts = np.asarray(landmarks_px, np.float64) * f
        seen = np.isfinite(pts).all(axis=1)
        if visibility is not None:
            seen &= np.nan_to_num(np.asarray(visibility, np.float64)) >= VISIBLE
        thickness = max(1, round(max(size) / 120))
        for a, b in BONES:
            if seen[a] and seen[b]:
                cv2.line(thumb, tuple(int(round(v)) for v in pts[a]), tuple(int(round(v)) for v in pts[b]),
                         _colour(a, b), thickness, cv2.LINE_AA)
        for i in np.flatnonzero(seen):
            cv2.circle(thumb, tuple(int(round(v)) for v in pts[i]), thickness, _MIDDLE, -1, cv2.LINE_AA)
    ok, png = cv2.imencode(".png", thumb[:, :, ::-1])      # OpenCV writes BGR
    if not ok:
        raise RuntimeError("OpenCV could not encode the preview PNG")
    return png.tobytes()
