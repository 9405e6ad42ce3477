"""What a video says about the person in it, as plain data (DESIGN §1, video ->
motion): the decoded clip's facts, the landmarks tracked over it, and the camera
they are seen through. backend/video/ fills these from a file; backend/motion/capture/
solves a motion from them; the pipeline passes them between the two.

Conventions: images and cameras in OpenCV's convention (x right, y down, z
forward, pixels with the origin at the top-left corner of the top-left pixel);
times in seconds from the first decoded frame; frame indices count decoded frames.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# MediaPipe Pose's 33 landmarks, in its order ("left" is the person's left).
POSE_LANDMARKS: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index")
NUM_POSE_LANDMARKS = len(POSE_LANDMARKS)


@dataclass(frozen=True)
class VideoInfo:
    """A video stream's facts as read from its container (before any frame is decoded
    in full). `width`/`height` are the displayed size: after the rotation metadata."""
    width: int
    height: int
    fps: float                      # average frame rate (frames / duration)
    frames: int                     # frame count (from the container, or estimated from the duration)
    duration: float                 # seconds
    rotation: int                   # degrees clockwise the stored frames are turned for display: 0/90/180/270
    variable_fps: bool              # timestamps are not evenly spaced
    codec: str
    focal_mm_35: float | None = None   # 35 mm-equivalent focal length when the file says it

    def to_json(self) -> dict[str, Any]:
        return {"width": self.width, "height": self.height, "fps": round(self.fps, 6), "frames": self.frames,
                "duration": round(self.duration, 6), "rotation": self.rotation, "variable_fps": self.variable_fps,
                "codec": self.codec, "focal_mm_35": self.focal_mm_35}


@dataclass(frozen=True)
class PinholeCamera:
    """Intrinsics of a static camera in pixels of the displayed (full-resolution) image."""
    focal_px: float
    cx: float
    cy: float
    width: int
    height: int

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.focal_px, 0.0, self.cx], [0.0, self.focal_px, self.cy], [0.0, 0.0, 1.0]])

    @staticmethod
    def from_focal_mm(focal_mm_35: float, width: int, height: int) -> "PinholeCamera":
        """A camera whose focal length is given 35 mm-equivalent: the 36 mm film width
        maps onto the image's longer side (how phones and EXIF state it)."""
        focal_px = focal_mm_35 / 36.0 * max(width, height)
        return PinholeCamera(focal_px, width / 2.0, height / 2.0, width, height)


@dataclass
class LandmarkTrack:
    """Pose landmarks of one person over a clip (T decoded frames).

    image       (T, 33, 2) float32 pixels in the displayed full-resolution image; NaN where absent
    depth       (T, 33) float32 MediaPipe's relative depth of each image landmark (same scale as
                x in pixels, hips ~0, smaller = nearer); NaN where absent
    visibility  (T, 33) float32 in [0, 1]: how likely the landmark is visible; 0 where absent
    world       (T, 33, 3) float32 metres, hip-centred, camera-aligned axes (OpenCV: x right,
                y down, z away from the camera); NaN where absent
    present     (T,) bool: a person was found in the frame
    times       (T,) float64 seconds: presentation time of each frame
    mask_area   (T,) float32: fraction of the image the person's segmentation mask covers (NaN: not computed)
    people      (T,) int16: person-sized regions seen in the frame (-1: not counted)
    """
    image: np.ndarray
    depth: np.ndarray
    visibility: np.ndarray
    world: np.ndarray
    present: np.ndarray
    times: np.ndarray
    mask_area: np.ndarray
    people: np.ndarray
    width: int
    height: int
    detector: dict[str, Any] = field(default_factory=dict)   # what made it (name, version, settings)

    @property
    def frames(self) -> int:
        return int(len(self.times))

    def gaps(self, min_frames: int = 1) -> list[tuple[int, int]]:
        """Runs of frames without a person, as inclusive (first, last) frame ranges."""
        out: list[tuple[int, int]] = []
        start = None
        for i, p in enumerate(np.asarray(self.present, bool).tolist() + [True]):
            if not p and start is None:
                start = i
            elif p and start is not None:
                if i - start >= min_frames:
                    out.append((start, i - 1))
                start = None
        return out
