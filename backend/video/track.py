"""Pose landmarks tracked over a video: decode (streamed, downscaled) -> MediaPipe
Pose per frame -> a core.capture.LandmarkTrack in full-resolution displayed
pixels, with the frames where nobody was found, the person's mask area and how
many people were in view."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from avatarforge.protocol import ErrorCode, ProtocolError

from ..core.capture import NUM_POSE_LANDMARKS, LandmarkTrack, VideoInfo
from ..core.limits import LANDMARK_MAX_SIDE, MIN_PERSON_HEIGHT_FRACTION, PERSON_MIN_AREA_FRACTION
from ..models.pose_landmarks import MASK_THRESHOLD, PoseLandmarker, PoseObservation
from .decode import FIELD, DecodedFrame, VideoReader, bad_data

# People are counted in every PEOPLE_EVERY-th frame (and the first): how many are in
# view changes slowly, and the selfie segmentation costs ~15% of a frame's tracking.
PEOPLE_EVERY = 5

OnFrame = Callable[[int, int, DecodedFrame, "PoseObservation | None"], None]


@dataclass
class TrackResult:
    info: VideoInfo
    track: LandmarkTrack
    stopped: str | None      # where a damaged stream ended early (None: it ended where it should)
    people_max: int          # most people seen in one frame (of those counted: every PEOPLE_EVERY-th)
    frames_decoded: int


def count_people(mask: np.ndarray) -> int:
    """Person-sized connected regions of a people mask (each at least
    PERSON_MIN_AREA_FRACTION of the image; specks are noise)."""
    n, _, stats, _ = cv2.connectedComponentsWithStats((mask > MASK_THRESHOLD).astype(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA] / float(mask.size)
    return int(np.count_nonzero(areas >= PERSON_MIN_AREA_FRACTION))


def _frames_expected(info: VideoInfo, start: float | None, end: float | None) -> int:
    """Frames the range should hold (for progress), from the average rate: up to the
    clip's end its remaining duration's worth, up to an earlier `end` both ends included."""
    if start is None and end is None:
        return info.frames
    first = max(0.0, start or 0.0)
    if end is not None and end < info.duration:
        return max(1, math.floor((end - first) * info.fps + 1e-6) + 1)
    return max(1, round((info.duration - first) * info.fps))


class _Rows:
    """The track's rows, appended one frame at a time (the frames themselves are not kept)."""

    def __init__(self) -> None:
        self.image: list[np.ndarray] = []
        self.depth: list[np.ndarray] = []
        self.visibility: list[np.ndarray] = []
        self.world: list[np.ndarray] = []
        self.present: list[bool] = []
        self.times: list[float] = []
        self.mask_area: list[float] = []
        self.people: list[int] = []

    def add(self, frame: DecodedFrame, obs: PoseObservation | None, people: int | None) -> None:
        self.times.append(frame.time)
        # The tracked person is in view even where the people mask missed them; -1: not counted.
        self.people.append(-1 if people is None else max(people, 1) if obs is not None else people)
        self.present.append(obs is not None)
        if obs is None:
            self.image.append(np.full((NUM_POSE_LANDMARKS, 2), np.nan, np.float32))
            self.depth.append(np.full(NUM_POSE_LANDMARKS, np.nan, np.float32))
            self.visibility.append(np.zeros(NUM_POSE_LANDMARKS, np.float32))
            self.world.append(np.full((NUM_POSE_LANDMARKS, 3), np.nan, np.float32))
            self.mask_area.append(float("nan"))
            return
        # Back to full-resolution displayed pixels: image px = full px * scale.
        self.image.append((obs.image / frame.scale).astype(np.float32))
        self.depth.append((obs.depth / frame.scale).astype(np.float32))
        self.visibility.append(obs.visibility.astype(np.float32))
        self.world.append(obs.world.astype(np.float32))
        self.mask_area.append(obs.mask_area)

    def track(self, info: VideoInfo, detector: dict) -> LandmarkTrack:
        n = NUM_POSE_LANDMARKS
        return LandmarkTrack(
            image=np.array(self.image, np.float32).reshape(-1, n, 2),
            depth=np.array(self.depth, np.float32).reshape(-1, n),
            visibility=np.array(self.visibility, np.float32).reshape(-1, n),
            world=np.array(self.world, np.float32).reshape(-1, n, 3),
            present=np.array(self.present, bool), times=np.array(self.times, np.float64),
            mask_area=np.array(self.mask_area, np.float32), people=np.array(self.people, np.int16),
            width=info.width, height=info.height, detector=detector)


def person_height_fraction(track: LandmarkTrack) -> float:
    """Median over the frames with a person of their landmarks' vertical extent, as a
    fraction of the image height (nose/eyes to heels: ~85-90% of a standing person)."""
    ys = track.image[track.present, :, 1]
    if len(ys) == 0:
        return 0.0
    return float(np.median(np.nanmax(ys, axis=1) - np.nanmin(ys, axis=1)) / track.height)


def person_problem(track: LandmarkTrack) -> str | None:
    """Why this track cannot drive a motion (nobody found, or too small to trust), as a
    sentence for the user; None when it can."""
    if not track.present.any():
        return (f"no person found in any of {track.frames} frames (MediaPipe Pose needs one person with most "
                f"of the body in view and at least about a fifth of the frame's height: crop a video of a "
                f"distant person around them)")
    fraction = person_height_fraction(track)
    if fraction < MIN_PERSON_HEIGHT_FRACTION:
        return (f"the person is only {100 * fraction:.0f}% of the frame height; at least "
                f"{100 * MIN_PERSON_HEIGHT_FRACTION:.0f}% is needed to track them: film closer, or crop the "
                f"video around the person")
    return None


def track_landmarks(path: str | Path, *, start: float | None = None, end: float | None = None,
                    max_side: int = LANDMARK_MAX_SIDE, on_frame: OnFrame | None = None) -> TrackResult:
    """Track one person's MediaPipe Pose landmarks over the frames of `path` between
    `start` and `end` seconds (the whole clip when None), decoded at most `max_side` px.

    `on_frame(position, expected, frame, observation)` runs after each frame: position
    counts frames of the range from 0, expected is the range's estimated frame count
    (progress), observation None when nobody was found; raising from it stops the
    work (cancel). Typed errors (BAD_REQUEST, field "data"): the decoder's, and no
    person in any frame or a person too small to track."""
    path = Path(path)
    with VideoReader(path) as reader:
        info = reader.info
        expected = _frames_expected(info, start, end)
        rows = _Rows()
        with PoseLandmarker(segmentation=True, count_people=True) as landmarker:
            detector = {**landmarker.settings, "people": "mediapipe-selfie-segmentation-landscape",
                        "people_every": PEOPLE_EVERY, "max_side": max_side}
            for position, frame in enumerate(reader.frames(max_side, start, end)):
                obs = landmarker.detect(frame.image)
                people = count_people(landmarker.people_mask(frame.image)) \
                    if position % PEOPLE_EVERY == 0 else None
                rows.add(frame, obs, people)
                if on_frame is not None:
                    on_frame(position, expected, frame, obs)
        stopped = reader.stopped
    track = rows.track(info, detector)
    if track.frames == 0:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"video {path.name!r}: no frame between {start or 0:g} s and "
                            f"{'the end' if end is None else f'{end:g} s'} (the video is {info.duration:.3f} s "
                            f"long)", field="start" if start else FIELD)
    problem = person_problem(track)
    if problem:
        raise bad_data(path, problem)
    return TrackResult(info=info, track=track, stopped=stopped, people_max=max(1, int(track.people.max())),
                       frames_decoded=track.frames)
