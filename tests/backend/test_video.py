"""Video in: decoding real files written by PyAV's encoders and muxers
(tests/support/video_clips.py), MediaPipe Pose tracked over a Cycles render of
Anny with known joints (tests/data/video, made by bench/render_clips.py), and
the typed errors for files that are not usable videos."""
from __future__ import annotations

import dataclasses
import math
import os
import tracemalloc
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from avatarforge.backend.core.capture import POSE_LANDMARKS
from avatarforge.backend.models import pose_landmarks
from avatarforge.backend.video import decode
from avatarforge.backend.video.decode import VideoReader
from avatarforge.backend.video.preview import preview_png
from avatarforge.backend.video.track import PEOPLE_EVERY, count_people, person_problem, track_landmarks
from avatarforge.protocol import ErrorCode, ProtocolError
from tests.support import video_clips as vc

REPO = Path(__file__).resolve().parents[2]
WALK = REPO / "tests" / "data" / "video" / "walk_small" / "three_quarter"
NEEDS_WALK = pytest.mark.skipif(
    not (WALK.with_suffix(".mp4").is_file() and WALK.with_suffix(".npz").is_file()),
    reason=f"the rendered clip {WALK}.mp4/.npz is absent (made by bench/render_clips.py)")

# SMPL-24 joints of the ground truth and the MediaPipe landmarks that stand for them.
JOINT_LANDMARKS = {j: POSE_LANDMARKS.index(j) for j in (
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")}


def bad_request(exc_info: pytest.ExceptionInfo, *words: str) -> None:
    err = exc_info.value
    assert err.code == ErrorCode.BAD_REQUEST and err.field == "data", err
    for w in words:
        assert w in err.message, (w, err.message)


def colour_near(pixel: np.ndarray, rgb: tuple[int, int, int], tol: int = 40) -> bool:
    return bool(np.all(np.abs(pixel.astype(int) - np.array(rgb)) <= tol))


# -- probing -----------------------------------------------------------------------------

def test_probe_states_the_files_facts(tmp_path):
    path = vc.write_video(tmp_path / "clip.mp4", frames=10, width=64, height=48, fps=25)
    with VideoReader(path) as reader:
        info = reader.info
    assert (info.width, info.height, info.frames, info.rotation, info.codec) == (64, 48, 10, 0, "h264")
    assert info.fps == pytest.approx(25.0) and info.duration == pytest.approx(0.4)
    assert info.variable_fps is False and info.focal_mm_35 is None


@pytest.mark.parametrize("suffix,codec,name", [
    (".webm", "libvpx-vp9", "vp9"), (".webm", "libvpx", "vp8"), (".avi", "mpeg4", "mpeg4"),
    (".avi", "mjpeg", "mjpeg"), (".mov", "libx265", "hevc"), (".mkv", "ffv1", "ffv1")])
def test_common_containers_and_codecs(tmp_path, suffix, codec, name):
    path = vc.write_video(tmp_path / f"clip{suffix}", frames=12, codec=codec)
    with VideoReader(path) as reader:
        info = reader.info
        frames = list(reader.frames(64))
    assert (info.codec, info.frames, info.width, info.height) == (name, 12, 64, 48)
    assert info.fps == pytest.approx(25.0) and info.duration == pytest.approx(0.48)
    assert [f.time for f in frames] == pytest.approx([i / 25 for i in range(12)]) and reader.stopped is None
    assert colour_near(frames[0].image[2, 2], vc.RED) and colour_near(frames[0].image[-3, -3], vc.WHITE)


def test_probe_counts_frames_when_the_container_does_not(tmp_path):
    # Matroska states no frame count: the timestamps are read (packets, no decoding).
    path = vc.write_video(tmp_path / "clip.mkv", frames=12, width=64, height=48, fps=30)
    with VideoReader(path) as reader:
        assert reader.info.frames == 12 and reader.info.fps == pytest.approx(30.0)
        assert reader.info.duration == pytest.approx(0.4)
        assert len(list(reader.frames(64))) == 12 and reader.stopped is None


def test_focal_length_from_quicktime_metadata(tmp_path):
    tag = "com.apple.quicktime.camera.focal_length.35mm_equivalent"     # what iPhones write
    path = vc.write_video(tmp_path / "phone.mov", metadata={tag: "26"})
    assert VideoReader(path).info.focal_mm_35 == 26.0
    nonsense = vc.write_video(tmp_path / "bad.mov", metadata={tag: "0.01"})
    assert VideoReader(nonsense).info.focal_mm_35 is None


# Stored frames: red top-left, green top-right, blue bottom-left, white bottom-right.
# Turned clockwise for display, the displayed top-left corner shows:
@pytest.mark.parametrize("rotation,top_left,top_right", [
    (90, vc.BLUE, vc.RED), (180, vc.WHITE, vc.BLUE), (270, vc.GREEN, vc.WHITE)])
def test_rotation_metadata_turns_frames_for_display(tmp_path, rotation, top_left, top_right):
    path = vc.write_video(tmp_path / "turned.mp4", frames=3, width=64, height=48, rotation=rotation)
    with VideoReader(path) as reader:
        info = reader.info
        assert info.rotation == rotation
        assert (info.width, info.height) == ((48, 64) if rotation in (90, 270) else (64, 48))
        frame = next(reader.frames(max_side=64))
    assert frame.image.shape == (info.height, info.width, 3) and frame.scale == 1.0
    assert colour_near(frame.image[2, 2], top_left), frame.image[2, 2]
    assert colour_near(frame.image[2, -3], top_right), frame.image[2, -3]


def test_non_square_pixels_are_shown_stretched(tmp_path):
    path = vc.write_video(tmp_path / "anamorphic.mp4", frames=3, width=64, height=48, pixel_aspect=Fraction(2, 1))
    with VideoReader(path) as reader:
        assert (reader.info.width, reader.info.height) == (128, 48)
        image = next(reader.frames(max_side=128)).image
    assert image.shape == (48, 128, 3)
    assert colour_near(image[2, 60], vc.RED) and colour_near(image[2, 68], vc.GREEN)


def test_variable_frame_rate_keeps_the_timestamps(tmp_path):
    pts_ms = [0, 40, 80, 100, 120, 200, 210, 220, 300, 400]
    for suffix in (".mp4", ".mkv"):
        path = vc.write_video(tmp_path / f"vfr{suffix}", frames=len(pts_ms), pts_ms=pts_ms)
        with VideoReader(path) as reader:
            assert reader.info.variable_fps is True and reader.info.frames == 10
            times = [f.time for f in reader.frames(64)]
        assert times == pytest.approx([p / 1000 for p in pts_ms], abs=1e-6), suffix
    steady = vc.write_video(tmp_path / "cfr.mkv", frames=10, fps=30)
    assert VideoReader(steady).info.variable_fps is False


def test_frames_between_start_and_end(tmp_path):
    path = vc.write_video(tmp_path / "clip.mp4", frames=60, width=64, height=48, fps=25)
    with VideoReader(path) as reader:
        frames = list(reader.frames(32, start=1.0, end=1.5))
        tail = list(reader.frames(32, start=2.0))
        head = list(reader.frames(32, end=0.2))
    assert [f.index for f in frames] == list(range(25, 38))
    assert [f.time for f in frames] == pytest.approx([i / 25 for i in range(25, 38)])
    for f in frames:   # the right pictures, not only the right numbers: each frame's grey band
        assert abs(int(f.image[f.image.shape[0] // 2, 2, 0]) - vc.band_value(f.index)) <= 6, f.index
    assert [f.index for f in tail] == list(range(50, 60)) and [f.index for f in head] == list(range(6))
    assert frames[0].image.shape == (24, 32, 3) and frames[0].scale == pytest.approx(0.5)


# -- streaming -------------------------------------------------------------------------------

def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture(scope="module")
def full_hd_clip(tmp_path_factory) -> Path:
    """200 frames of 1920x1080 (flat frames straight in yuv420p: ~5 s to encode)."""
    return vc.write_video(tmp_path_factory.mktemp("hd") / "hd.mp4", frames=200, width=1920, height=1080,
                          fps=30, image=vc.yuv_frame)


def test_a_long_full_hd_clip_is_streamed_in_bounded_memory(full_hd_clip):
    # The clip whole: 200 x 6.2 MB of RGB at full size, 200 x 0.7 MB at 640 px.
    with VideoReader(full_hd_clip) as reader:
        assert (reader.info.width, reader.info.height, reader.info.frames) == (1920, 1080, 200)
        rss_before = _rss_bytes()
        rss_peak = rss_before
        tracemalloc.start()
        count = 0
        for frame in reader.frames(max_side=640):
            assert frame.image.shape == (360, 640, 3) and frame.index == count
            count += 1
            if count % 20 == 0:
                rss_peak = max(rss_peak, _rss_bytes())
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert count == 200 and reader.stopped is None
    assert traced_peak < 20 * 2 ** 20, f"python-side peak {traced_peak / 2 ** 20:.1f} MiB"
    assert rss_peak - rss_before < 200 * 2 ** 20, f"RSS grew {(rss_peak - rss_before) / 2 ** 20:.0f} MiB"
    # The last frame's grey (its luma, in video's limited 16-235 range, shown full range).
    assert abs(int(frame.image[5, 5, 0]) - (vc.band_value(199) - 16) * 255 / 219) <= 6


# -- damaged and wrong files ------------------------------------------------------------------

def test_a_truncated_file_gives_its_frames_up_to_the_damage_and_says_where(tmp_path):
    whole = vc.write_video(tmp_path / "whole.mp4", frames=60, width=320, height=240)
    cut = vc.write_truncated(tmp_path / "cut.mp4", whole, keep=0.5)
    with VideoReader(cut) as reader:
        assert reader.info.frames == 60          # the index (written first) still promises them all
        frames = list(reader.frames(64))
        stopped = reader.stopped
    assert 5 <= len(frames) < 60 and [f.index for f in frames] == list(range(len(frames)))
    assert stopped and f"frame {len(frames) - 1}" in stopped and "truncated" in stopped, stopped
    # Cut before its index (moov written last): nothing is readable.
    late = vc.write_video(tmp_path / "late.mp4", frames=30, faststart=False)
    with pytest.raises(ProtocolError) as exc:
        VideoReader(vc.write_truncated(tmp_path / "late_cut.mp4", late, keep=0.5))
    bad_request(exc, "late_cut.mp4", "not a readable video")


def _empty_file(path: Path) -> Path:
    path.write_bytes(b"")
    return path


@pytest.mark.parametrize("make,words", [
    (lambda p: vc.write_random_bytes(p / "noise.mp4"), ("noise.mp4", "not a readable video")),
    (lambda p: vc.write_image_as_video(p / "photo.mp4"), ("photo.mp4", "PNG image, not a video")),
    (lambda p: vc.write_audio_only(p / "song.mp4"), ("song.mp4", "only sound (aac)")),
    (lambda p: vc.write_video_without_frames(p / "empty.mkv"), ("empty.mkv", "no frames")),
    (lambda p: vc.write_video(p / "tiny.mp4", width=8, height=8), ("tiny.mp4", "8x8 pixels")),
    (lambda p: _empty_file(p / "zero.mp4"), ("zero.mp4", "empty")),
    (lambda p: p / "missing.mp4", ("missing.mp4", "no such file")),
], ids=["random-bytes", "image", "audio-only", "zero-frames", "absurd-size", "empty-file", "missing"])
def test_unusable_files_are_bad_requests_naming_the_file(tmp_path, make, words):
    path = make(tmp_path)
    with pytest.raises(ProtocolError) as exc:
        VideoReader(path)
    bad_request(exc, *words)


def test_a_file_over_the_byte_limit_is_too_large(tmp_path, monkeypatch):
    path = vc.write_video(tmp_path / "clip.mp4")
    monkeypatch.setattr(decode, "VIDEO_MAX_BYTES", path.stat().st_size - 1)
    with pytest.raises(ProtocolError) as exc:
        VideoReader(path)
    assert exc.value.code == ErrorCode.TOO_LARGE and exc.value.field == "data"


# -- MediaPipe ----------------------------------------------------------------------------------

def test_mediapipe_pose_is_available_with_its_bundled_models():
    info = pose_landmarks.availability()
    assert info["available"] is True, info["reason"]
    assert info["version"].startswith("0.10.")
    assert all(p.is_file() for p in pose_landmarks.model_files())


def test_landmarkers_open_and_close_one_after_another():
    blank = np.zeros((120, 160, 3), np.uint8)
    for _ in range(2):
        with pose_landmarks.PoseLandmarker() as lm:
            assert lm.detect(blank) is None
            assert lm.people_mask(blank).max() < 0.5
        with pytest.raises(RuntimeError):
            lm.detect(blank)


@pytest.fixture(scope="module")
def walk_truth() -> dict[str, np.ndarray]:
    with np.load(WALK.with_suffix(".npz")) as d:
        return {k: d[k] for k in ("joints_px", "joints_world", "world_to_camera", "joint_names", "image_size")}


@pytest.fixture(scope="module")
def walk_track():
    return track_landmarks(WALK.with_suffix(".mp4"))


def _pixel_errors(track_image: np.ndarray, truth: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    names = list(truth["joint_names"])
    return {j: np.linalg.norm(track_image[:, k] - truth["joints_px"][: len(track_image), names.index(j)], axis=1)
            for j, k in JOINT_LANDMARKS.items()}


@NEEDS_WALK
def test_landmarks_lie_on_the_rendered_persons_joints(walk_track, walk_truth):
    r = walk_track
    n = int(walk_truth["joints_px"].shape[0])
    assert r.frames_decoded == n and r.stopped is None and r.people_max == 1
    t = r.track
    assert t.present.all() and t.frames == n and (t.width, t.height) == tuple(walk_truth["image_size"])
    assert t.times == pytest.approx(np.arange(n) / r.info.fps)
    errors = _pixel_errors(t.image, walk_truth)
    # Measured on the 320x240 clip: per-joint medians 1.2-3.9 px, 0.5-1.6% of the image
    # height (MediaPipe's hip points sit a little off SMPL's hip joints); a landmark on
    # the wrong limb is 15+ px off. Bounds in image heights, for any rendering size.
    for joint, e in errors.items():
        assert np.median(e) < 0.03 * t.height, (joint, np.median(e))
    assert np.median(np.concatenate(list(errors.values()))) < 0.017 * t.height
    assert np.all(t.visibility[:, list(JOINT_LANDMARKS.values())].mean(axis=0) > 0.5)
    assert np.all((t.mask_area > 0.005) & (t.mask_area < 0.5))     # a person, not the frame
    assert np.isfinite(t.depth).all() and np.isfinite(t.world).all()


@NEEDS_WALK
def test_world_landmarks_are_in_opencv_camera_axes(walk_track, walk_truth):
    # The truth in the camera's frame (OpenCV), hip-centred, against MediaPipe's world
    # landmarks: the rotation that best maps one onto the other is (nearly) the identity.
    names = list(walk_truth["joint_names"])
    W = walk_truth["world_to_camera"]
    cam = walk_truth["joints_world"] @ W[:3, :3].T + W[:3, 3]
    joints = [names.index(j) for j in JOINT_LANDMARKS]
    hips = [names.index("left_hip"), names.index("right_hip")]
    truth = (cam[:, joints] - cam[:, hips].mean(axis=1, keepdims=True)).reshape(-1, 3)
    world = walk_track.track.world
    mp = (world[:, list(JOINT_LANDMARKS.values())] - world[:, [23, 24]].mean(axis=1, keepdims=True)).reshape(-1, 3)
    u, _, vt = np.linalg.svd(mp.T @ truth)
    rot = (u @ vt).T
    angle = math.degrees(math.acos(np.clip((np.trace(rot) - 1) / 2, -1, 1)))
    assert np.linalg.det(rot) > 0 and angle < 10, (angle, rot.round(2))   # measured: 2.8 degrees
    for axis in range(3):
        assert np.corrcoef(mp[:, axis], truth[:, axis])[0, 1] > 0.7, axis


def _reencode(src: Path, dst: Path, *, rotation: int = 0, frames: int = 12, canvas=None) -> Path:
    """The first `frames` displayed frames of `src`, re-encoded (stored turned against
    `rotation`, or drawn by `canvas(image)`)."""
    with VideoReader(src) as reader:
        images = [f.image for f in reader.frames(4096, end=(frames - 0.5) / reader.info.fps)]
    if canvas is not None:
        images = [canvas(im) for im in images]
    stored = [np.ascontiguousarray(np.rot90(im, k=rotation // 90)) for im in images]   # undone by the player
    h, w = stored[0].shape[:2]
    return vc.write_video(dst, frames=len(stored), width=w, height=h, fps=30, rotation=rotation,
                          image=lambda i, _w, _h: stored[i])


@NEEDS_WALK
def test_landmarks_come_back_in_full_resolution_displayed_pixels(tmp_path, walk_truth):
    # A phone-style clip: frames stored sideways with a display rotation, and decoded
    # at half size for the detector; the landmarks still land on the displayed joints.
    turned = _reencode(WALK.with_suffix(".mp4"), tmp_path / "turned.mp4", rotation=90)
    seen = []
    size = tuple(int(v) for v in walk_truth["image_size"])
    result = track_landmarks(turned, max_side=max(size) // 2,
                             on_frame=lambda i, n, f, o: seen.append((i, n, f.scale)))
    assert result.info.rotation == 90 and (result.info.width, result.info.height) == size
    assert [s[0] for s in seen] == list(range(12)) and all(s[1] == 12 and s[2] == 0.5 for s in seen)
    errors = _pixel_errors(result.track.image, walk_truth)
    assert np.median(np.concatenate(list(errors.values()))) < 0.025 * size[1]


@NEEDS_WALK
def test_two_people_in_view_are_counted(tmp_path):
    side_by_side = _reencode(WALK.with_suffix(".mp4"), tmp_path / "two.mp4", frames=6,
                             canvas=lambda im: np.concatenate([im, im[:, ::-1]], axis=1))
    result = track_landmarks(side_by_side)
    people = result.track.people
    assert result.people_max == 2 and np.all(people[::PEOPLE_EVERY] == 2)
    assert np.all(np.delete(people, np.s_[::PEOPLE_EVERY]) == -1)      # not counted in between
    assert result.track.present.all()


@NEEDS_WALK
def test_cancelling_from_on_frame_stops_the_work():
    class Cancelled(Exception):
        pass

    def cancel_at_3(i, n, frame, obs):
        if i == 3:
            raise Cancelled

    with pytest.raises(Cancelled):
        track_landmarks(WALK.with_suffix(".mp4"), on_frame=cancel_at_3)


@NEEDS_WALK
def test_a_truncated_clip_reports_where_tracking_stopped(tmp_path, walk_truth):
    # Re-encoded with its index first (as phones and editors write for streaming), then cut.
    n = int(walk_truth["joints_px"].shape[0])
    whole = _reencode(WALK.with_suffix(".mp4"), tmp_path / "whole.mp4", frames=n)
    cut = vc.write_truncated(tmp_path / "cut.mp4", whole, keep=0.6)
    result = track_landmarks(cut)
    assert result.info.frames == n and 0 < result.frames_decoded < n and result.track.frames == result.frames_decoded
    assert result.stopped and f"frame {result.frames_decoded - 1}" in result.stopped


def test_a_clip_without_a_person_is_a_typed_error(tmp_path):
    path = vc.write_video(tmp_path / "empty_room.mp4", frames=8, width=160, height=120)
    with pytest.raises(ProtocolError) as exc:
        track_landmarks(path)
    bad_request(exc, "empty_room.mp4", "no person found in any of 8 frames")


@NEEDS_WALK
def test_a_person_too_small_is_refused(walk_track):
    # The real track, its landmarks shrunk about the image centre to a fifth: 10% tall.
    t = walk_track.track
    assert person_problem(t) is None
    centre = np.array([t.width / 2, t.height / 2], np.float32)
    small = dataclasses.replace(t, image=(t.image - centre) * 0.2 + centre)
    problem = person_problem(small)
    assert problem and "% of the frame height" in problem
    nobody = dataclasses.replace(t, present=np.zeros_like(t.present))
    assert f"no person found in any of {t.frames} frames" in person_problem(nobody)


def test_people_are_counted_as_person_sized_regions():
    mask = np.zeros((72, 128), np.float32)
    mask[10:60, 10:25] = 1.0       # a person
    mask[20:70, 90:100] = 0.9      # another
    mask[0:2, 60:62] = 1.0         # a speck (0.04% of the image)
    assert count_people(mask) == 2


def test_preview_is_a_small_png_with_the_skeleton(tmp_path):
    image = np.full((480, 640, 3), 40, np.uint8)
    points = np.full((33, 2), np.nan, np.float32)
    points[POSE_LANDMARKS.index("left_shoulder")] = (400, 100)
    points[POSE_LANDMARKS.index("left_hip")] = (400, 300)
    points[POSE_LANDMARKS.index("right_shoulder")] = (300, 100)
    vis = np.ones(33, np.float32)
    plain = cv2.imdecode(np.frombuffer(preview_png(image, None, None), np.uint8), cv2.IMREAD_COLOR)
    drawn = cv2.imdecode(np.frombuffer(preview_png(image, points, vis), np.uint8), cv2.IMREAD_COLOR)
    assert plain.shape == drawn.shape == (144, 192, 3)
    assert np.all(plain == 40)
    column = drawn[40:90, 120]          # the left side's bone, x = 400 * 0.3
    assert (np.abs(column.astype(int) - 40).sum(axis=1) > 100).sum() >= 40
    vis[POSE_LANDMARKS.index("left_hip")] = 0.1      # hidden: that bone is not drawn
    hidden = cv2.imdecode(np.frombuffer(preview_png(image, points, vis), np.uint8), cv2.IMREAD_COLOR)
    assert (np.abs(hidden[40:90, 120].astype(int) - 40).sum(axis=1) > 100).sum() < 5


@NEEDS_WALK
def test_tracking_a_range_of_the_clip(walk_truth):
    fps = float(np.load(WALK.with_suffix(".npz"))["fps"])
    seen = []
    result = track_landmarks(WALK.with_suffix(".mp4"), start=0.5, end=0.8,
                             on_frame=lambda i, n, f, o: seen.append((i, n, f.index)))
    first, last = round(0.5 * fps), round(0.8 * fps)
    assert [s[2] for s in seen] == list(range(first, last + 1)) and [s[0] for s in seen] == list(range(len(seen)))
    assert all(s[1] == len(seen) for s in seen)          # the range's expected frame count, for progress
    assert result.track.times == pytest.approx(np.arange(first, last + 1) / fps)
    errors = _pixel_errors(result.track.image, {**walk_truth, "joints_px": walk_truth["joints_px"][first:]})
    assert np.median(np.concatenate(list(errors.values()))) < 0.02 * result.track.height
    with pytest.raises(ProtocolError) as exc:
        track_landmarks(WALK.with_suffix(".mp4"), start=50.0)
    assert exc.value.code == ErrorCode.BAD_REQUEST and exc.value.field == "start"
    assert "no frame between 50 s and the end" in exc.value.message
