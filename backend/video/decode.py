"""Reading any common video with PyAV (FFmpeg), streamed: one frame at a time,
downscaled for the landmark detector, in its displayed orientation, with its
own timestamps.

- Orientation: phones store frames sideways and say how to turn them in the
  stream's display matrix (FFmpeg's DISPLAYMATRIX side data, e.g. -90 for an
  upright iPhone clip); frames come out turned as a player shows them.
- Time: each frame's presentation time (pts * time_base) from the stream's
  first frame, so a variable frame rate is kept, never assumed constant.
- Memory: frames are decoded, scaled (swscale, in FFmpeg) and handed on one by
  one; nothing holds the clip.
- Damage: a file that cannot be opened or has no good frame is a BAD_REQUEST
  on field "data"; a stream that breaks after good frames ends early and says
  where in `VideoReader.stopped`, so a partly processed clip can report it.
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

import av
import numpy as np

from avatarforge.protocol import ErrorCode, ProtocolError
from avatarforge.protocol.limits import VIDEO_FOCAL_MM

from ..core.capture import VideoInfo
from ..core.limits import VIDEO_MAX_BYTES, VIDEO_MAX_FPS, VIDEO_MAX_SIDE, VIDEO_MIN_SIDE

log = logging.getLogger(__name__)

FIELD = "data"
# Packets read (no decoding) to see whether timestamps are evenly spaced, and to
# count frames exactly when the container does not say (Matroska/WebM, AVI).
TIMESTAMP_SCAN_PACKETS = 600
# Demuxers that read one picture, not a video (FFmpeg names them <codec>_pipe or image2).
_IMAGE_FORMAT = re.compile(r"(^|,)(image2|[a-z0-9]+_pipe)(,|$)")


@dataclass(frozen=True)
class DecodedFrame:
    """One displayed frame: `image` (h, w, 3) uint8 RGB, turned as displayed, scaled
    so that image pixels = full-resolution displayed pixels * `scale`."""
    index: int      # frame number in the clip (0 = its first frame)
    time: float     # seconds from the clip's first frame (presentation time)
    image: np.ndarray
    scale: float


def bad_data(path: Path, what: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_REQUEST, f"video {path.name!r}: {what}", field=FIELD)


def _open(path: Path) -> Any:
    """The opened container, or a typed error saying why not."""
    if not path.is_file():
        raise bad_data(path, "no such file" if not path.exists() else "is not a file")
    size = path.stat().st_size
    if size == 0:
        raise bad_data(path, "the file is empty")
    if size > VIDEO_MAX_BYTES:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"video {path.name!r} is {size / 1024 ** 3:.1f} GiB; at most "
                            f"{VIDEO_MAX_BYTES / 1024 ** 3:.0f} GiB are read (cut or re-encode it)", field=FIELD)
    try:
        return av.open(str(path), "r")
    except av.FFmpegError as exc:
        raise bad_data(path, f"not a readable video file: damaged, cut short (a copy or download that "
                             f"stopped) or not a video at all (FFmpeg: {_ffmpeg_reason(exc)})") from exc


def _ffmpeg_reason(exc: Exception) -> str:
    """FFmpeg's words without the errno and the path it repeats."""
    return getattr(exc, "strerror", None) or str(exc)


def _video_stream(path: Path, container: Any) -> Any:
    """The first video stream; typed errors for pictures and sound-only files."""
    fmt = container.format.name
    if _IMAGE_FORMAT.search(fmt):
        kind = fmt.split("_pipe")[0].upper() if "_pipe" in fmt else "still"
        raise bad_data(path, f"is a {kind} image, not a video")
    if not container.streams.video:
        audio = [s.codec_context.name for s in container.streams.audio if s.codec_context]
        if audio:
            raise bad_data(path, f"has only sound ({', '.join(audio)}), no video stream")
        kinds = sorted({s.type for s in container.streams})
        raise bad_data(path, "has no video stream" + (f" (only {', '.join(kinds)})" if kinds else ""))
    return container.streams.video[0]


def _clockwise_rotation(frame: Any) -> int:
    """Degrees clockwise a player turns this frame (0/90/180/270). PyAV reports
    FFmpeg's display-matrix angle, counter-clockwise in [-180, 180]."""
    return int(-round(float(frame.rotation) / 90.0) * 90) % 360


def _focal_mm_35(*tag_sets: dict[str, str]) -> float | None:
    """The 35 mm-equivalent focal length a camera wrote into the file's tags
    (iPhones: com.apple.quicktime.camera.focal_length.35mm_equivalent; EXIF-style
    FocalLengthIn35mmFilm), when it is within the range a request may give
    (protocol.limits.VIDEO_FOCAL_MM); outside it the tag is taken for damaged."""
    for tags in tag_sets:
        for key, value in tags.items():
            k = key.lower().replace("_", "").replace(".", "")
            if "focal" in k and "35" in k:
                try:
                    mm = float(str(value).strip().split()[0])
                except (ValueError, IndexError):
                    continue
                if VIDEO_FOCAL_MM[0] <= mm <= VIDEO_FOCAL_MM[1]:
                    return mm
                log.info("ignoring focal length %r in %s: outside %s mm", value, key, VIDEO_FOCAL_MM)
    return None


@dataclass(frozen=True)
class _Timestamps:
    """What the first packets' timestamps say: whether they are evenly spaced, and,
    when the scan reached the end, the exact frame count and span."""
    variable: bool
    complete: bool
    count: int
    span: float        # seconds from the first to the last timestamp plus one typical interval


def _scan_timestamps(container: Any, stream: Any) -> _Timestamps:
    pts: list[int] = []
    try:
        for packet in container.demux(stream):
            if packet.pts is not None:
                pts.append(packet.pts)
            if len(pts) >= TIMESTAMP_SCAN_PACKETS:
                break
    except av.FFmpegError:
        pass        # damage is the decoder's to report, with the frame it breaks at
    complete = len(pts) < TIMESTAMP_SCAN_PACKETS
    ts = np.unique(np.asarray(pts, np.int64))       # presentation order (B-frames arrive out of order)
    if len(ts) < 3:
        return _Timestamps(False, complete, len(ts), 0.0)
    steps = np.diff(ts).astype(np.float64)
    typical = float(np.median(steps))
    # More than a tick of rounding (a 1 ms time base cannot say 33.37 ms) and 2% off.
    variable = bool(np.any(np.abs(steps - typical) > max(1.5, 0.02 * typical)))
    span = float((ts[-1] - ts[0] + typical) * stream.time_base)
    return _Timestamps(variable, complete, len(ts), span)


class VideoReader:
    """A video file, probed on opening (a bad file fails here, before any work),
    decoded on demand by `frames()`. Use as a context manager."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.stopped: str | None = None
        self._first_pts: int = 0
        self._time_base: Fraction = Fraction(1, 1)
        self._stored_size: tuple[int, int] = (0, 0)     # before rotation, square pixels
        self._container_frames = 0
        self.info = self._probe()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Nothing stays open between calls; frames() closes its own container."""

    # -- probing -------------------------------------------------------------------------

    def _probe(self) -> VideoInfo:
        with _open(self.path) as container:
            stream = _video_stream(self.path, container)
            codec = stream.codec_context.name if stream.codec_context else "unknown"
            first = self._first_frame(container, stream)
            rotation = _clockwise_rotation(first)
            self._time_base = stream.time_base or Fraction(1, 1000000)
            self._first_pts = first.pts if first.pts is not None else (stream.start_time or 0)
            # Non-square pixels (anamorphic DV, some MPEG-2): a player stretches the width.
            sar = stream.sample_aspect_ratio or (stream.codec_context.sample_aspect_ratio
                                                 if stream.codec_context else None)
            upright_w = max(1, round(first.width * float(sar))) if sar and sar > 0 else first.width
            self._stored_size = (upright_w, first.height)
            width, height = (first.height, upright_w) if rotation in (90, 270) else (upright_w, first.height)
            self._check_size(width, height)
            focal = _focal_mm_35(dict(container.metadata), dict(stream.metadata))
        with _open(self.path) as container:     # again, from the start: only packets this time
            stream = container.streams.video[0]
            stamps = _scan_timestamps(container, stream)
            frames, duration, fps = self._count_and_rate(container, stream, stamps)
        return VideoInfo(width=width, height=height, fps=fps, frames=frames, duration=duration, rotation=rotation,
                         variable_fps=stamps.variable, codec=codec, focal_mm_35=focal)

    def _first_frame(self, container: Any, stream: Any) -> Any:
        try:
            for frame in container.decode(stream):
                return frame
        except av.FFmpegError as exc:
            raise bad_data(self.path, f"its {stream.codec_context.name if stream.codec_context else ''} video "
                                      f"stream cannot be decoded (FFmpeg: {_ffmpeg_reason(exc)}); the file is "
                                      f"damaged or uses a codec FFmpeg cannot read") from exc
        raise bad_data(self.path, "its video stream has no frames")

    def _check_size(self, width: int, height: int) -> None:
        if min(width, height) < VIDEO_MIN_SIDE or max(width, height) > VIDEO_MAX_SIDE:
            raise bad_data(self.path, f"frames of {width}x{height} pixels; a video to track must be "
                                      f"{VIDEO_MIN_SIDE} to {VIDEO_MAX_SIDE} pixels on each side")

    def _count_and_rate(self, container: Any, stream: Any, stamps: _Timestamps) -> tuple[int, float, float]:
        """(frames, duration s, average fps): the container's frame count and duration
        when it states them (MP4/MOV do), the scanned timestamps when they reached the
        end, else the duration times the stated average rate."""
        self._container_frames = int(stream.frames or 0)
        if stream.duration:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / av.time_base
        else:
            duration = 0.0
        if self._container_frames > 0:
            frames = self._container_frames
        elif stamps.complete and stamps.count > 0:
            frames, duration = stamps.count, (stamps.span or duration)
        else:
            rate = float(stream.average_rate or stream.guessed_rate or 0)
            frames = max(1, round(duration * rate))
        if duration <= 0:
            rate = float(stream.average_rate or stream.guessed_rate or 0)
            duration = frames / rate if rate > 0 else 0.0
        fps = frames / duration if duration > 0 else float(stream.average_rate or stream.guessed_rate or 0)
        if not (0 < fps <= VIDEO_MAX_FPS) or not math.isfinite(fps):
            raise bad_data(self.path, f"an average frame rate of {fps:g} frames/s from its timestamps; "
                                      f"at most {VIDEO_MAX_FPS:g} is believable (the file's timing is damaged)")
        return frames, duration, fps

    # -- decoding ------------------------------------------------------------------------

    def scale_for(self, max_side: int) -> float:
        """The factor frames(max_side) scales by: the longer side to at most max_side."""
        return min(1.0, max_side / max(self.info.width, self.info.height))

    def frames(self, max_side: int, start: float | None = None, end: float | None = None) -> Iterator[DecodedFrame]:
        """The displayed frames with start <= time <= end (seconds from the first frame),
        scaled to at most `max_side` pixels on the longer side, one at a time.

        `index` counts frames from the clip's first; after a seek (start given) it is
        the time times the average rate, exact for a constant frame rate. A stream that
        breaks after good frames ends here, with `self.stopped` saying where."""
        if max_side < 1:
            raise ValueError("max_side must be positive")
        self.stopped = None
        scale = self.scale_for(max_side)
        sw, sh = self._stored_size
        out_w, out_h = max(1, round(sw * scale)), max(1, round(sh * scale))
        turns = self.info.rotation // 90          # np.rot90 turns counter-clockwise
        slack = 0.01 / self.info.fps        # timestamps are rounded to the stream's time base
        with _open(self.path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"           # FFmpeg's frame/slice threads; memory stays a few frames
            seeking = self._seek(container, stream, start)
            index = -1
            last_time = None
            for frame in self._decoded(container, stream, lambda: (index, last_time)):
                t = self._time(frame, last_time)
                if start is not None and t < start - slack:
                    continue
                if end is not None and t > end + slack:
                    return
                index = round(t * self.info.fps) if seeking and index < 0 else index + 1
                last_time = t
                image = frame.to_ndarray(width=out_w, height=out_h, format="rgb24", interpolation="AREA")
                if turns:
                    image = np.ascontiguousarray(np.rot90(image, k=-turns))
                yield DecodedFrame(index=index, time=t, image=image, scale=scale)
            self._check_complete(index, last_time, start, end)

    def _seek(self, container: Any, stream: Any, start: float | None) -> bool:
        """Seek to the key frame at or before `start`; False when not seeking (no start,
        or a stream that cannot seek: then it is decoded from its first frame)."""
        if not start or start <= 0:
            return False
        try:
            container.seek(self._first_pts + int(start / self._time_base), stream=stream, backward=True)
        except av.FFmpegError as exc:
            log.info("%s: cannot seek (%s); decoding from the start", self.path.name, _ffmpeg_reason(exc))
            return False
        return True

    def _time(self, frame: Any, previous: float | None) -> float:
        if frame.pts is None:      # no timestamp (some raw streams): one average interval on
            return 0.0 if previous is None else previous + 1.0 / self.info.fps
        return float((frame.pts - self._first_pts) * self._time_base)

    def _decoded(self, container: Any, stream: Any, where: Any) -> Iterator[Any]:
        """The decoder's frames; damage after a good frame ends the stream with
        `stopped` set, damage before any is an error."""
        try:
            yield from container.decode(stream)
        except av.FFmpegError as exc:
            index, last_time = where()
            if index < 0:
                raise bad_data(self.path, f"no frame could be decoded (FFmpeg: {_ffmpeg_reason(exc)})") from exc
            self.stopped = (f"the video data is damaged after frame {index} ({last_time:.3f} s): "
                            f"FFmpeg: {_ffmpeg_reason(exc)}")

    def _check_complete(self, index: int, last_time: float | None, start: float | None,
                        end: float | None) -> None:
        """A stream that ended before the frames its container promised is truncated."""
        if self.stopped is not None:
            return
        if index < 0:
            if start is not None or end is not None:
                return       # an empty range is the caller's to judge
            self.stopped = "no frame could be decoded"
            return
        wanted_end = self.info.duration if end is None else min(end, self.info.duration)
        missing = (self._container_frames > 0 and not start and end is None
                   and index + 1 < self._container_frames)
        # Without an exact count: ending more than 3 frame intervals (and 0.1 s) early.
        missing = missing or (last_time is not None
                              and last_time < wanted_end - max(3.0 / self.info.fps, 0.1))
        if missing:
            expected = f"{self.info.frames} frames, {self.info.duration:.3f} s"
            self.stopped = (f"the video data ends after frame {index} ({last_time:.3f} s) although the file "
                            f"announces {expected}: it is probably truncated")
