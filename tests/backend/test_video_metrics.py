"""bench/video_metrics.py (what bench/video_to_motion.py scores), the camera
conversion of bench/render_clips.py, and the committed rendered clips in
tests/data/video/ (their truth must match their pixels)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import render_clips as rc  # noqa: E402  (bench/ is a folder of scripts; no bpy needed for these)
import video_metrics as vm  # noqa: E402

CLIPS = REPO / "tests" / "data" / "video"
VIDEOS = sorted(CLIPS.glob("*/*.mp4"))


def _skeleton(frames: int = 20, seed: int = 0) -> np.ndarray:
    """A smooth, moving (T, 15, 3) point set in metres."""
    rng = np.random.default_rng(seed)
    base = rng.normal(scale=0.4, size=(1, 15, 3)) + [0.0, 0.0, 1.0]
    t = np.linspace(0, 1, frames)[:, None, None]
    wave = 0.1 * np.sin(2 * np.pi * t + rng.uniform(0, 6, size=(1, 15, 3)))
    return base + wave + t * [0.5, 0.2, 0.0]


def _rot_z(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


def _rot_x(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


# -- errors -------------------------------------------------------------------------

def test_mpjpe_ignores_one_yaw_and_the_pelvis_path_but_not_a_tilt():
    truth = _skeleton()
    shift = np.cumsum(np.full((len(truth), 1, 3), 0.03), axis=0)      # a drifting root
    turned = truth @ _rot_z(73).T + shift
    assert vm.mpjpe(turned, truth) == pytest.approx(0.0, abs=1e-6)
    tilted = truth @ _rot_x(20).T
    assert vm.mpjpe(tilted, truth) > 50.0


def test_mpjpe_is_the_mean_joint_distance_in_mm():
    truth = _skeleton()
    pred = truth.copy()
    pred[:, 3] += [0.0, 0.0, 0.03]       # one joint of 15, 30 mm off in every frame
    assert vm.mpjpe(pred, truth) == pytest.approx(30.0 / 15, rel=0.05)


def test_yaw_alignment_recovers_the_angle():
    truth = _skeleton()
    R = vm.yaw_alignment(truth @ _rot_z(-40).T, truth)
    assert R == pytest.approx(_rot_z(40), abs=1e-9)


def test_pa_mpjpe_ignores_a_similarity_per_frame_but_not_a_mirror_image():
    truth = _skeleton()
    pred = np.stack([2.0 * (f @ (_rot_x(10 * i) @ _rot_z(30)).T) + [1, 2, 3] for i, f in enumerate(truth)])
    assert vm.pa_mpjpe(pred, truth) == pytest.approx(0.0, abs=1e-6)
    mirrored = truth * [-1.0, 1.0, 1.0]
    assert vm.pa_mpjpe(mirrored, truth) > 10.0


def test_pa_mpjpe_skips_frames_with_missing_joints_and_refuses_empty_input():
    truth = _skeleton(frames=5)
    pred = truth.copy()
    pred[2, 4] = np.nan
    pred[3] += np.random.default_rng(1).normal(scale=0.02, size=(15, 3))
    with_gap = vm.pa_mpjpe(pred, truth)
    assert with_gap == pytest.approx(vm.pa_mpjpe(np.delete(pred, 2, 0), np.delete(truth, 2, 0)))
    with pytest.raises(ValueError):
        vm.pa_mpjpe(np.full_like(truth, np.nan), truth)
    with pytest.raises(ValueError, match=r"\(T, J, 3\)"):
        vm.mpjpe(truth[:, :, :2], truth[:, :, :2])


# -- skate, jitter ---------------------------------------------------------------------

def test_foot_skate_counts_horizontal_speed_while_in_contact_only():
    frames = 10
    feet = np.zeros((frames, 2, 3))
    feet[:, 0, 0] = 0.002 * np.arange(frames)             # the left foot slides 2 mm/frame
    feet[:, 0, 2] = 0.05 * np.sin(np.arange(frames))     # vertical motion does not count
    feet[:, 1, 1] = 0.1 * np.arange(frames)              # the right foot swings fast, in the air
    contacts = np.zeros((frames, 2), bool)
    contacts[:, 0] = True
    assert vm.foot_skate(feet, contacts) == pytest.approx(2.0)
    assert np.isnan(vm.foot_skate(feet, np.zeros_like(contacts)))
    with pytest.raises(ValueError):
        vm.foot_skate(feet, contacts[:, :1])


def test_detect_contacts_finds_a_planted_foot():
    frames = 12
    feet = np.zeros((frames, 2, 3))
    feet[:, 1, 2] = 0.2                                   # the right foot stays up
    feet[6:, 0, 0] = 0.05 * np.arange(6)                  # the left foot starts moving
    contacts = vm.detect_contacts(feet)
    assert contacts[:6, 0].all() and not contacts[7:, 0].any() and not contacts[:, 1].any()


def test_jitter_ratio_is_one_for_the_truth_and_grows_with_noise():
    truth = _skeleton(frames=60)
    assert vm.jitter_ratio(truth, truth) == pytest.approx(1.0)
    noisy = truth + np.random.default_rng(2).normal(scale=0.01, size=truth.shape)
    assert vm.jitter_ratio(noisy, truth) > 3.0
    line = np.linspace(0, 1, 10)[:, None, None] * np.ones((1, 4, 3))
    assert vm.mean_acceleration(line) == pytest.approx(0.0, abs=1e-9)


def test_mediapipe_landmarks_map_to_the_15_joints_z_up():
    lm = np.zeros((1, 33, 3))
    lm[0, 23], lm[0, 24] = [0.1, 0.0, 0.0], [-0.1, 0.0, 0.0]      # hips: the pelvis is their middle
    lm[0, 11], lm[0, 12] = [0.2, -0.5, 0.0], [-0.2, -0.5, 0.0]    # shoulders, above (MediaPipe's y is down)
    lm[0, 27] = [0.1, 0.9, 0.3]                                  # left ankle, below, further from the camera
    joints = vm.mediapipe_to_eval(lm)
    names = list(vm.EVAL_NAMES)
    assert joints.shape == (1, 15, 3)
    assert joints[0, names.index("pelvis")] == pytest.approx([0, 0, 0])
    assert joints[0, names.index("neck")] == pytest.approx([0, 0, 0.5])
    assert joints[0, names.index("left_ankle")] == pytest.approx([0.1, 0.3, -0.9])


def test_score_clip_uses_the_15_joints():
    truth = np.repeat(_skeleton(frames=8, seed=3)[:, :1], 24, axis=1) + np.random.default_rng(4).normal(
        scale=0.3, size=(8, 24, 3))
    pred = truth.copy()
    pred[:, vm.SMPL24.index("left_hand")] += 1.0        # not one of the 15: no effect
    scores = vm.score_clip(pred, truth)
    assert scores.mpjpe == pytest.approx(0.0, abs=1e-6) and scores.pa_mpjpe == pytest.approx(0.0, abs=1e-6)


# -- the renderer's camera conversion ----------------------------------------------------

def test_opencv_camera_puts_the_target_at_the_centre_and_up_at_the_top():
    target = np.array([0.3, -0.2, 0.9])
    position, rotation = rc.camera_pose(target, 4.0, 1.2, 0.0)
    assert position == pytest.approx([0.3, -4.2, 1.2])             # azimuth 0: in front (the avatar faces -Y)
    to_world = np.eye(4)
    to_world[:3, :3], to_world[:3, 3] = rotation, position
    K, w2c = rc.opencv_camera(35.0, 36.0, 320, 240, to_world)
    assert K[0, 0] == pytest.approx(35.0 / 36.0 * 320)
    assert rc.project(target, K, w2c) == pytest.approx([160.0, 120.0])
    above, left_of_avatar = rc.project(np.array([[0.3, -0.2, 1.5], [0.8, -0.2, 0.9]]), K, w2c)
    assert above[1] < 120.0                                        # image y goes down
    assert left_of_avatar[0] > 160.0                               # the avatar's left (+X) is image right, facing us
    assert (w2c[:3, :3] @ (target - position))[2] > 0              # z forward


# -- the committed clips -----------------------------------------------------------------

def test_committed_clips_are_present_and_small():
    assert VIDEOS, f"no rendered clips in {CLIPS} (bench/render_clips.py --spec bench/data/video/test_clips.json)"
    total = sum(p.stat().st_size for p in CLIPS.rglob("*") if p.is_file())
    assert total < 1_500_000, f"tests/data/video holds {total} bytes"


@pytest.mark.parametrize("video", VIDEOS, ids=[f"{v.parent.name}/{v.stem}" for v in VIDEOS])
def test_committed_clip_truth_matches_its_pixels(video: Path):
    """The projected true joints lie on the rendered person: the saturated clothes
    and skin stand out from the grey floor and blue-grey sky (render_clips colours)."""
    av = pytest.importorskip("av")
    truth = np.load(video.with_suffix(".npz"))
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        fps = float(stream.average_rate)
    assert len(frames) == int(truth["frames"]) and fps == pytest.approx(float(truth["fps"]))
    assert frames[0].shape[1::-1] == tuple(truth["image_size"])
    assert truth["joints_world"].shape == truth["smpl_joints"].shape == (len(frames), 24, 3)
    assert json.loads(str(truth["camera"]))["focal_mm"] > 0
    px = rc.project(truth["joints_world"].astype(np.float64), truth["K"], truth["world_to_camera"])
    assert px == pytest.approx(truth["joints_px"], abs=0.01)
    for t in range(0, len(frames), max(1, len(frames) // 6)):
        rgb = frames[t].astype(np.float64) / 255.0
        saturation = (rgb.max(-1) - rgb.min(-1)) / np.maximum(rgb.max(-1), 1e-6)
        ys, xs = np.nonzero(saturation > 0.35)
        assert len(xs) > 200, f"frame {t}: no person in the picture"
        joints = px[t, vm.EVAL_JOINTS]
        margin = 6.0
        assert xs.min() - margin <= joints[:, 0].min() and joints[:, 0].max() <= xs.max() + margin, t
        assert ys.min() - margin <= joints[:, 1].min() and joints[:, 1].max() <= ys.max() + margin, t
        centre = np.array([np.median(xs), np.median(ys)])
        height = ys.max() - ys.min()
        assert np.linalg.norm(centre - np.median(joints, axis=0)) < 0.3 * height, t


# -- the clip specs and the runner's bookkeeping ------------------------------------------

import video_to_motion as v2m  # noqa: E402

SPEC_FILES = [REPO / "bench" / "data" / "video" / "dev.json", REPO / "bench" / "data" / "video" / "test_clips.json",
              v2m.SETS["holdout"]]


@pytest.mark.parametrize("path", SPEC_FILES, ids=[p.name for p in SPEC_FILES])
def test_clip_specs_are_readable_by_the_renderer(path: Path):
    clips = rc.load_specs(path)
    assert clips and len({c["name"] for c in clips}) == len(clips)
    for clip in clips:
        assert "prompt" in clip["motion"] or Path(clip["motion"]["file"]).is_file()
        for cam in clip["cameras"]:
            assert {"name", "distance", "height", "focal_mm", "resolution"} <= set(cam)
            assert 10 <= cam["focal_mm"] <= 200 and min(cam["resolution"]) >= 64


def test_dev_and_holdout_video_sets_share_no_prompt():
    dev = set(v2m.set_prompts(v2m.SETS["dev"]))
    assert dev and not dev & set(v2m.set_prompts(v2m.SETS["holdout"]))


def test_spec_hash_follows_what_changes_the_pixels(tmp_path: Path):
    clip = rc.load_specs(REPO / "bench" / "data" / "video" / "test_clips.json")[0]
    other = json.loads(json.dumps(clip))
    other["motion"]["seed"] += 1
    assert rc.spec_hash(clip) == rc.spec_hash(json.loads(json.dumps(clip)))
    assert rc.spec_hash(other) != rc.spec_hash(clip)
    assert not rc.is_rendered(tmp_path / clip["name"], clip)


def test_runner_lists_rendered_and_missing_videos(tmp_path: Path):
    spec = REPO / "bench" / "data" / "video" / "test_clips.json"
    videos, missing = v2m.set_videos(spec, CLIPS)
    assert {f"{v.parent.name}/{v.stem}" for v in videos} == {f"{v.parent.name}/{v.stem}" for v in VIDEOS}
    assert not missing
    videos, missing = v2m.set_videos(spec, tmp_path)
    assert not videos and len(missing) == sum(len(c["cameras"]) for c in rc.load_specs(spec))


def test_holdout_ledger_records_figures_not_words(tmp_path: Path):
    spec = tmp_path / "video.json"
    spec.write_text(json.dumps({"clips": [{"name": "a", "motion": {"prompt": "zq7 zq8"}, "avatar": {"prompt": "zq9"},
                                           "cameras": []}]}), encoding="utf-8")
    ledger = tmp_path / "runs.jsonl"
    assert v2m.record_holdout_run(spec, {"pa_mpjpe": 50.0}, ledger) == 1
    assert v2m.record_holdout_run(spec, {"pa_mpjpe": 40.0}, ledger) == 2
    text = ledger.read_text(encoding="utf-8")
    assert "zq" not in text
    first = json.loads(text.splitlines()[0])
    assert first["set"] == "video.json" and first["figures"] == {"pa_mpjpe": 50.0}
