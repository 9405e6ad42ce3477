"""MediaPipe Pose, the legacy solution of the 0.10.x wheels (DESIGN §7: the embedded
landmarks tier; its models ship inside the wheel, nothing is downloaded).

One `PoseLandmarker` follows one person through one clip (video mode: the
detector runs once, then each frame's landmarks seed the next frame's crop).
Settings, and why:

- static_image_mode=False: video mode. Tracking from the previous frame keeps
  the same person and skips the person detector while the track holds.
- model_complexity=1 ("full"): the only landmark model the wheel bundles
  (pose_landmark_full.tflite; lite/heavy would be downloaded at first use).
- smooth_landmarks=False: MediaPipe's filter (one-euro style) lags fast moves;
  the motion solver smooths over the whole clip with foot contacts and
  acceleration terms, so it wants each frame's raw measurement, and the
  filter's lag would blunt a punch before the solver sees it. Measured on the
  rendered walk (tests/data/video/walk_small, 12 body joints, 320x240): with
  the filter, mean error 2.22 px, velocity error 0.98 px/frame, acceleration
  1.29 px/frame^2 against the truth's 1.78 (motion flattened); without, 2.08 px,
  0.76 px/frame, 2.15 px/frame^2 (the solver removes that excess). (The legacy
  solution also feeds its filters a made-up 30 fps clock whatever the clip's
  real rate, so their tuning would be wrong for 60 fps or variable-rate clips.)
- enable_segmentation=True, smooth_segmentation=False: the tracked person's
  mask gives the area they cover (a cue for scale and for occlusion); raw
  masks for the same reason as the landmarks.

MediaPipe's Pose follows one person only, and its mask covers only that person
(measured: with two people side by side the mask has one region). To count the
people in view, `people_mask()` runs MediaPipe's selfie segmentation (landscape
model, the whole frame, ~4 ms at 640 px) whose mask covers every person.

Axes (measured on a Cycles render of Anny walking, with its joints known in
the camera's frame; tests/backend/test_video.py checks it): image landmarks
are normalised x right, y down, z depth in units of the image width (smaller =
nearer the camera); world landmarks are metres from the hips' midpoint with x
towards the image's right, y down, z away from the camera. That is already
OpenCV's camera convention (the best rotation from MediaPipe's world points to
the true camera-frame joints is 2.8 degrees from the identity), so they are
passed through unchanged.

Cost (2-core machine, shared): ~21 ms a frame at 640x480 when the machine is
quiet, ~30 ms of CPU under load; TFLite runs on one thread (MediaPipe's
XNNPACK default on desktop Linux; the legacy API has no setting for it).
"""
from __future__ import annotations

import functools
import logging
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..core.capture import NUM_POSE_LANDMARKS

log = logging.getLogger(__name__)

PINNED = "0.10.21"      # the last wheel with `mediapipe.solutions` and its bundled models (pyproject.toml)
INSTALL = f'pip install "mediapipe=={PINNED}"'
# The bundled models this wrapper runs (paths inside the mediapipe package).
BUNDLED_MODELS = ("modules/pose_detection/pose_detection.tflite",
               "modules/pose_landmark/pose_landmark_full.tflite",
               "modules/selfie_segmentation/selfie_segmentation_landscape.tflite")
# Longer side of the person's mask kept per frame, and of the people mask whose
# regions are counted (a person of 0.5% of a 16:9 frame is then ~40 mask pixels).
MASK_SIDE = 64
PEOPLE_MASK_SIDE = 128
MASK_THRESHOLD = 0.5

# MediaPipe's C++ logging (glog/absl) and TFLite read these when first loaded.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@dataclass(frozen=True)
class PoseObservation:
    """One frame's pose, in pixels of the image given to `detect`.

    image       (33, 2) float32 pixels (x right, y down; origin at the top-left pixel's corner)
    depth       (33,) float32 MediaPipe's relative depth in the same pixel scale (hips ~0, smaller = nearer)
    visibility  (33,) float32 in [0, 1]
    world       (33, 3) float32 metres, hip-centred, OpenCV camera axes (x right, y down, z away)
    mask        (h, w) float32 in [0, 1], at most MASK_SIDE px on the longer side: the person's
                segmentation (None when segmentation is off)
    mask_area   fraction of the image the mask covers (> 0.5), NaN when no mask
    """
    image: np.ndarray
    depth: np.ndarray
    visibility: np.ndarray
    world: np.ndarray
    mask: np.ndarray | None
    mask_area: float


def _mediapipe_dir(mp: Any) -> Path:
    return Path(mp.__file__).parent


@functools.lru_cache(maxsize=1)
def availability() -> dict[str, Any]:
    """{"available", "reason", "version"} for `welcome`: MediaPipe importable, a 0.10.x
    wheel with the legacy `solutions.pose` and its bundled models."""
    try:
        with _quiet_native_logs():
            import mediapipe as mp
    except Exception as exc:     # ImportError, or a wheel whose native part fails to load
        return {"available": False, "version": "",
                "reason": f"MediaPipe cannot be imported ({type(exc).__name__}: {exc}); install it with: {INSTALL}"}
    version = str(getattr(mp, "__version__", ""))
    if not version.startswith("0.10."):
        return {"available": False, "version": version,
                "reason": f"MediaPipe {version} is installed; pose landmarks need the 0.10.x legacy solutions: "
                          f"{INSTALL}"}
    if getattr(getattr(getattr(mp, "solutions", None), "pose", None), "Pose", None) is None:
        return {"available": False, "version": version,
                "reason": f"MediaPipe {version} has no legacy mediapipe.solutions.pose (dropped after "
                          f"{PINNED}): {INSTALL}"}
    missing = [f for f in BUNDLED_MODELS if not (_mediapipe_dir(mp) / f).is_file()]
    if missing:
        return {"available": False, "version": version,
                "reason": f"MediaPipe {version} lacks its bundled model(s) {', '.join(missing)}; reinstall: {INSTALL}"}
    return {"available": True, "version": version, "reason": ""}


def model_files() -> list[Path]:
    """The bundled model files this wrapper runs (for a component's identity); none
    when MediaPipe is missing (the component is then unavailable, and says why)."""
    try:
        with _quiet_native_logs():
            import mediapipe as mp
    except Exception:
        return []
    return [_mediapipe_dir(mp) / f for f in BUNDLED_MODELS]


@contextmanager
def _quiet_native_logs() -> Iterator[None]:
    """Keep MediaPipe's native start-up chatter (TFLite's "Created TensorFlow Lite
    XNNPACK delegate", absl's "All log messages before absl::InitializeLog()", glog
    W/I lines) off the process's stderr: C++ writes to file descriptor 2 directly, so
    it is pointed at a temporary file while graphs start. What was caught goes to this
    module's debug log; any line that is not MediaPipe's (another thread's) goes back
    to stderr."""
    try:
        saved = os.dup(2)
    except OSError:          # no stderr to redirect (detached process)
        yield
        return
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            _replay(caught.read().decode("utf-8", "replace"))


_NATIVE_PREFIXES = ("INFO: ", "WARNING: All log messages before absl", "W0000", "I0000", "E0000")


def _replay(text: str) -> None:
    for line in text.splitlines():
        if line.startswith(_NATIVE_PREFIXES) or not line.strip():
            log.debug("mediapipe: %s", line)
        else:
            os.write(2, (line + "\n").encode())


def _small(mask: np.ndarray, side: int = MASK_SIDE) -> np.ndarray:
    """`mask` resized (area averaging) to at most `side` px on its longer side."""
    import cv2

    h, w = mask.shape[:2]
    f = min(1.0, side / max(h, w))
    if f >= 1.0:
        return mask.astype(np.float32, copy=True)
    return cv2.resize(mask.astype(np.float32), (max(1, round(w * f)), max(1, round(h * f))),
                      interpolation=cv2.INTER_AREA)


class PoseLandmarker:
    """MediaPipe legacy Pose in video mode (see the module's notes for the settings).
    Frames must be given in time order, one clip per instance. Use as a context
    manager: closing releases the graph, so several may be made one after another."""

    def __init__(self, *, segmentation: bool = True, count_people: bool = True,
                 min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5) -> None:
        info = availability()
        if not info["available"]:
            from avatarforge.protocol import ErrorCode, ProtocolError

            raise ProtocolError(ErrorCode.MODEL_MISSING, info["reason"], field="landmarks")
        with _quiet_native_logs():
            import mediapipe as mp

            self.settings = {"name": "mediapipe-pose-legacy", "version": info["version"], "static_image_mode": False,
                             "model_complexity": 1, "smooth_landmarks": False,
                             "enable_segmentation": segmentation, "smooth_segmentation": False,
                             "min_detection_confidence": min_detection_confidence,
                             "min_tracking_confidence": min_tracking_confidence}
            self._pose = mp.solutions.pose.Pose(
                static_image_mode=False, model_complexity=1, smooth_landmarks=False,
                enable_segmentation=segmentation, smooth_segmentation=False,
                min_detection_confidence=min_detection_confidence, min_tracking_confidence=min_tracking_confidence)
            self._people = (mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=1)
                            if count_people else None)
            # Graphs open their calculators (and TFLite prints its banners) on their own
            # threads after start; one run on a blank frame waits for all of that here.
            # Nobody is found in it, so the tracker starts the clip with a detection.
            blank = np.zeros((64, 64, 3), np.uint8)
            for graph in (self._pose, self._people):
                if graph is not None:
                    graph.process(blank)
        # MediaPipe logs once more (a warning about ROI projection) at the first person it
        # finds: runs stay quiet until then.
        self._found_once = False

    def __enter__(self) -> "PoseLandmarker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the graphs (idempotent)."""
        for name in ("_pose", "_people"):
            graph = getattr(self, name, None)
            if graph is not None:
                graph.close()
                setattr(self, name, None)

    def _run(self, graph: Any, image_rgb: np.ndarray) -> Any:
        if graph is None:
            raise RuntimeError("PoseLandmarker is closed (or made without count_people)")
        image = np.ascontiguousarray(image_rgb, dtype=np.uint8)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an RGB image (h, w, 3), got shape {image.shape}")
        if self._found_once:
            return graph.process(image)
        with _quiet_native_logs():
            return graph.process(image)

    def detect(self, image_rgb: np.ndarray) -> PoseObservation | None:
        """The person's pose in this frame (the next frame of the clip), or None when
        MediaPipe finds nobody."""
        result = self._run(self._pose, image_rgb)
        if result.pose_landmarks is None:
            return None
        self._found_once = True
        h, w = image_rgb.shape[:2]
        lm = np.array([(p.x, p.y, p.z, p.visibility) for p in result.pose_landmarks.landmark], np.float32)
        assert lm.shape[0] == NUM_POSE_LANDMARKS
        # Normalised [0, 1] coordinates are fractions of the image's edges: pixels with
        # the origin at the top-left pixel's corner, as core.capture states.
        image_px = lm[:, :2] * np.array([w, h], np.float32)
        depth = lm[:, 2] * w          # MediaPipe scales z like x
        world = np.array([(p.x, p.y, p.z) for p in result.pose_world_landmarks.landmark], np.float32) \
            if result.pose_world_landmarks is not None else np.full((NUM_POSE_LANDMARKS, 3), np.nan, np.float32)
        mask, area = None, float("nan")
        if result.segmentation_mask is not None:
            full = np.asarray(result.segmentation_mask, np.float32)
            area = float(np.mean(full > MASK_THRESHOLD))
            mask = _small(full)
        return PoseObservation(image=image_px, depth=depth.astype(np.float32),
                               visibility=np.clip(lm[:, 3], 0.0, 1.0), world=world, mask=mask, mask_area=area)

    def people_mask(self, image_rgb: np.ndarray) -> np.ndarray:
        """Where any person is in this frame: (h, w) float32 in [0, 1], at most
        PEOPLE_MASK_SIDE px on the longer side (MediaPipe selfie segmentation, landscape model)."""
        result = self._run(self._people, image_rgb)
        return _small(np.asarray(result.segmentation_mask, np.float32), PEOPLE_MASK_SIDE)
