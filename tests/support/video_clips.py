"""Small real video files for tests, written with PyAV (the library the backend
reads them with, but through its encoders and muxers: what a camera or an
editor writes, not what our reader expects).

Frames carry a known pattern so a test can check orientation and identity:
the top-left quadrant is red, top-right green, bottom-left blue, bottom-right
white, and a horizontal band through the middle is grey at `band_value(i)`
for frame i (coarse steps, so lossy coding keeps it recognisable).
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Callable, Sequence

import av
import numpy as np

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def band_value(index: int) -> int:
    """Grey level of frame `index`'s middle band (steps of 12, wrapping below 240)."""
    return 12 * (index % 20)


def pattern_frame(index: int, width: int, height: int) -> np.ndarray:
    """(height, width, 3) uint8 RGB: four coloured quadrants and frame `index`'s grey band."""
    img = np.empty((height, width, 3), np.uint8)
    h2, w2 = height // 2, width // 2
    img[:h2, :w2], img[:h2, w2:], img[h2:, :w2], img[h2:, w2:] = RED, GREEN, BLUE, WHITE
    band = max(2, height // 8)
    img[h2 - band // 2: h2 + band // 2] = band_value(index)
    return img


def yuv_frame(index: int, width: int, height: int) -> np.ndarray:
    """A frame straight in the encoder's yuv420p layout ((h * 3 / 2, w) planes): a flat
    grey that changes every frame, for large clips where making RGB frames and
    converting them would cost more than the test itself. Its grey: `band_value(index)`."""
    img = np.full((height * 3 // 2, width), 128, np.uint8)
    img[:height] = band_value(index)
    return img


def write_video(path: Path, *, frames: int = 10, width: int = 64, height: int = 48, fps: int = 25,
                rotation: int = 0, codec: str = "libx264", pts_ms: Sequence[int] | None = None,
                metadata: dict[str, str] | None = None, faststart: bool = True,
                image: Callable[[int, int, int], np.ndarray] = pattern_frame,
                encoder_options: dict[str, str] | None = None, pixel_aspect: Fraction | None = None) -> Path:
    """Encode `frames` frames of `image(i, width, height)` (stored orientation) to `path`
    (container from the suffix: .mp4, .mov, .mkv, .webm, .avi).

    rotation: degrees CLOCKWISE a player turns the stored frames for display (as a phone
        filming upright writes -90 in FFmpeg's counter-clockwise display matrix), written
        as the stream's display matrix side data.
    pts_ms: presentation times in milliseconds (variable frame rate); default i/fps.
    metadata: container tags (a .mov writes them as QuickTime 'mdta' keys, as iPhones do).
    faststart: the index (moov) before the data, so a truncated copy still opens.
    image: (i, width, height) -> stored frame i: (h, w, 3) RGB, or yuv420p planes (`yuv_frame`).
    pixel_aspect: the sample aspect ratio (width of a pixel / its height; anamorphic video).
    """
    path = Path(path)
    mov = path.suffix.lower() in (".mp4", ".mov", ".m4v")
    flags = (["faststart"] if faststart and mov else []) + (["use_metadata_tags"] if metadata and mov else [])
    container = av.open(str(path), "w", options={"movflags": "+".join(flags)} if flags else {})
    try:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p" if codec not in ("mjpeg",) else "yuvj420p"
        quick = {"libx264": {"preset": "ultrafast"}, "h264": {"preset": "ultrafast"},
                 "libx265": {"preset": "ultrafast", "x265-params": "log-level=error"}}.get(codec, {})
        stream.options = {**quick, **(encoder_options or {})}
        if pts_ms is not None:
            assert len(pts_ms) == frames
            stream.codec_context.time_base = Fraction(1, 1000)
            stream.time_base = Fraction(1, 1000)
        if pixel_aspect is not None:
            stream.codec_context.sample_aspect_ratio = pixel_aspect
        if rotation:
            stream.set_display_rotation(-rotation)     # PyAV takes FFmpeg's counter-clockwise angle
        if metadata:
            container.metadata.update(metadata)
        for i in range(frames):
            pixels = image(i, width, height)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24" if pixels.ndim == 3 else "yuv420p")
            if pts_ms is not None:
                frame.pts, frame.time_base = int(pts_ms[i]), Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    finally:
        container.close()
    return path


def write_truncated(path: Path, source: Path, keep: float) -> Path:
    """A copy of `source` cut after the first `keep` fraction of its bytes (a download
    or copy that stopped)."""
    data = Path(source).read_bytes()
    Path(path).write_bytes(data[: int(len(data) * keep)])
    return Path(path)


def write_random_bytes(path: Path, size: int = 50_000, seed: int = 0) -> Path:
    """Noise with a video's name."""
    Path(path).write_bytes(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    return Path(path)


def write_image_as_video(path: Path, width: int = 64, height: int = 48) -> Path:
    """A PNG picture saved under a video's name (e.g. clip.mp4)."""
    import cv2

    ok, png = cv2.imencode(".png", pattern_frame(0, width, height)[:, :, ::-1])
    assert ok
    Path(path).write_bytes(png.tobytes())
    return Path(path)


def write_audio_only(path: Path, seconds: float = 1.0, rate: int = 44100) -> Path:
    """An AAC sound track (a tone) in an .mp4 with no video stream."""
    container = av.open(str(path), "w")
    try:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        t = np.arange(int(seconds * rate)) / rate
        samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        step = 1024
        for i in range(0, len(samples), step):
            frame = av.AudioFrame.from_ndarray(samples[None, i:i + step], format="fltp", layout="mono")
            frame.sample_rate = rate
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    finally:
        container.close()
    return Path(path)


def write_video_without_frames(path: Path, width: int = 64, height: int = 48) -> Path:
    """A file whose video track holds no frame (a recording that failed at once) next to
    a second of silence. Give it a .mkv name: Matroska keeps the empty video track,
    MP4's muxer drops it (leaving a sound-only file)."""
    container = av.open(str(path), "w")
    try:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = container.add_stream("aac", rate=44100)
        audio.layout = "mono"
        for i in range(0, 44100, 1024):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate = 44100
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
        container.mux(video.encode(None))
    finally:
        container.close()
    return Path(path)
