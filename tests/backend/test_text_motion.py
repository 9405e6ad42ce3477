"""Text -> motion (AvatarCLIP M1 + M2): key poses, the optimiser, locomotion,
prompt understanding, the user's motion library, the `text_motion` pipeline,
its CLI and the CLIP tier. Generated motions are judged by kinematic checks on
their joint positions (backend/motion/checks.py), as bench/text_to_motion.py does."""
from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import numpy as np
import pytest

from avatarforge.backend.config import BackendConfig
from avatarforge.backend.motion.checks import run_check
from avatarforge.backend.motion.keyposes import authored_keyposes, grounded_trans, keypose
from avatarforge.backend.motion.locomotion import GAIT_NAMES, locomotion
from avatarforge.backend.motion.skeleton import J, forward_kinematics, height_above_soles
from avatarforge.backend.motion.synthesis import KeyTarget, joint_limits, synthesise
from avatarforge.backend.pipelines import JobContext, load_pipelines
from avatarforge.backend.text.motion_prompt import split_phrases
from avatarforge.protocol import ErrorCode, Motion, ProtocolError
from tests.support.synthetic_motion import amass_npz, cmu_bvh_from_smpl


def fk(kp_name: str) -> np.ndarray:
    rot = keypose(kp_name).rotations
    return forward_kinematics(rot, grounded_trans(rot))


# -- key poses --------------------------------------------------------------------------------
def test_key_poses_mean_what_they_say():
    up = fk("arms_up")
    assert up[J["left_wrist"], 2] > up[J["head"], 2] + 0.2 and up[J["right_wrist"], 2] > up[J["head"], 2] + 0.2
    for side in ("left", "right"):
        wave = fk(f"wave_{side}_a")
        assert wave[J[f"{side}_wrist"], 2] > wave[J[f"{side}_shoulder"], 2] + 0.2
        other = "right" if side == "left" else "left"
        assert wave[J[f"{other}_wrist"], 2] < wave[J[f"{other}_shoulder"], 2]
    stand, squat, sit = fk("stand"), fk("squat"), fk("sit")
    assert stand[0, 2] - squat[0, 2] > 0.4
    assert 0.38 < sit[J["left_hip"], 2] < 0.55                       # hips at chair height
    kick = fk("kick_right")
    assert kick[J["right_ankle"], 2] > 0.5 and kick[J["right_ankle"], 1] < -0.5   # forward is -Y
    punch = fk("punch_right")
    assert punch[J["right_wrist"], 1] < punch[0, 1] - 0.4
    # Every pose stands on the floor (its lowest surface point at z = 0) and within the joint limits.
    lo, hi = joint_limits()
    for kp in authored_keyposes():
        assert np.all(kp.rotations >= lo - 1e-6) and np.all(kp.rotations <= hi + 1e-6), kp.name
    names = {kp.name for kp in authored_keyposes()}
    assert {"kick_left", "kick_right", "lunge_left", "lunge_right", "wave_left_a", "wave_right_b"} <= names
    assert len(names) == len(authored_keyposes()) >= 50


def test_every_action_uses_known_poses_and_gaits():
    from avatarforge.backend.motion.locomotion import GAITS
    from avatarforge.backend.motion.vocabulary import ACTIONS, action_by_name, mirrored_name

    names = {kp.name for kp in authored_keyposes()}
    for action in ACTIONS:
        assert action.descriptions
        if action.kind == "gait":
            assert action.gait in GAITS, action.name
        else:
            assert action.keys and set(action.keys) <= names, action.name
        if action.side is not None:                    # sided actions come in mirrored pairs
            mirror = action_by_name(mirrored_name(action.name))
            assert mirror.side != action.side and mirror.turn == -action.turn
            assert all(keypose(k).side in (None, action.side) for k in action.keys), action.name
    for kp in authored_keyposes():
        if kp.side is not None:
            assert keypose(kp.mirror).side != kp.side and keypose(kp.mirror).mirror == kp.name


# -- the optimiser (M2) -----------------------------------------------------------------------
def _jump_keys() -> list[KeyTarget]:
    names = ["jump_crouch", "takeoff", "airborne_stretch", "takeoff", "jump_crouch", "stand"]
    return [KeyTarget(0.2 * (i + 1), keypose(n).rotations, keypose(n).planted, keypose(n).airborne, name=n)
            for i, n in enumerate(names)]


def test_synthesis_passes_through_keys_with_a_ballistic_jump_and_is_deterministic():
    stand = keypose("stand").rotations
    start = (stand, grounded_trans(stand))
    a = synthesise(_jump_keys(), 1.6, 30, start=start, seed=3)
    b = synthesise(_jump_keys(), 1.6, 30, start=start, seed=3)
    c = synthesise(_jump_keys(), 1.6, 30, start=start, seed=4)
    assert a.rotations.shape == (49, 24, 3) and a.trans.shape == (49, 3)
    np.testing.assert_array_equal(a.rotations, b.rotations)
    assert np.abs(a.rotations - c.rotations).max() > 1e-4
    joints = forward_kinematics(a.rotations, a.trans)
    pelvis = joints[:, 0, 2]
    assert pelvis.max() - pelvis[0] > 0.2                              # airborne
    assert pelvis.min() < pelvis[0] - 0.15                             # crouched before and after
    low = np.min(joints[..., 2], axis=1)
    assert low.min() > -0.01                                            # never under the floor
    air = np.nonzero(low > 0.1)[0]
    assert len(air) >= 5
    # The flight is a parabola under gravity: constant second difference of the pelvis height.
    z = a.trans[air[1]:air[-1], 2].astype(np.float64)
    acc = np.diff(z, 2) * 30 ** 2
    assert np.allclose(acc, -9.81, atol=1.5)
    assert a.losses["limits"] < 1e-3


def test_synthesis_keeps_planted_feet_still():
    stand = keypose("stand").rotations
    keys = [KeyTarget(0.6, keypose("squat").rotations), KeyTarget(1.2, keypose("squat").rotations),
            KeyTarget(2.0, stand)]
    s = synthesise(keys, 2.0, 30, start=(stand, grounded_trans(stand)))
    joints = forward_kinematics(s.rotations, s.trans)
    feet = joints[:, [J["left_ankle"], J["right_ankle"]], :2]
    # Feet stay put over a whole squat (the squat's wider stance moves each ankle out by a few cm).
    assert np.abs(feet[..., 1] - feet[0, :, 1]).max() < 0.02 and np.abs(feet - feet[0]).max() < 0.05
    assert (np.linalg.norm(np.diff(feet, axis=0), axis=-1) * 30).mean() < 0.05     # m/s
    assert np.min(joints[:, [J["left_foot"], J["right_foot"]], 2]) > 0.0


@pytest.mark.parametrize("gait", GAIT_NAMES)
def test_locomotion_plants_feet_without_sliding(gait):
    clip = locomotion(gait, 2.0, 30)
    joints = forward_kinematics(clip.rotations, clip.trans)
    for k, side in enumerate(("left", "right")):
        ankle = joints[:, J[f"{side}_ankle"]]
        still = clip.contacts[1:, k] & clip.contacts[:-1, k]
        speed = np.linalg.norm(np.diff(ankle, axis=0), axis=-1) * 30
        assert still.any() and speed[still].max() < 1e-3, (gait, side)
        planted = ankle[clip.contacts[:, k], 2]
        assert np.abs(planted - height_above_soles(f"{side}_ankle")).max() < 1e-3   # the sole on the floor
    travel = -(clip.trans[-1, 1] - clip.trans[0, 1])
    assert np.sign(travel) == np.sign(clip.speed) and abs(travel) == pytest.approx(abs(clip.speed) * 2.0, rel=0.02)


def test_locomotion_speed_scales():
    slow, fast = locomotion("walk", 3.0, 30, 0.65), locomotion("walk", 3.0, 30, 1.45)
    assert fast.speed > 2 * slow.speed


# -- prompt splitting ---------------------------------------------------------------------------
@pytest.mark.parametrize("prompt, phrases", [
    ("waves hello, then jumps", ["waves hello", "jumps"]),
    ("A person jumps and then squats.", ["jumps", "squats"]),
    ("walks forward; after that he sits down", ["walks forward", "sits down"]),
    ("first claps, then bows", ["claps", "bows"]),
    ("runs", ["runs"]),
    ("using her left hand, she waves", ["using her left hand, waves"]),      # a side alone is no action
])
def test_split_phrases(prompt, phrases):
    assert split_phrases(prompt) == phrases


# -- the pipeline ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pipeline():
    return load_pipelines()["text_motion"]


def generate(pipeline, config=None, **params) -> Motion:
    config = config or BackendConfig(motion_library=None)
    (motion,) = pipeline.run(pipeline.normalise(params, config), JobContext(config=config))
    return motion


@pytest.mark.parametrize("prompt, seconds, checks", [
    ("a person jumps", 3.0, [{"kind": "pelvis_rise", "min": 0.15}]),
    ("waves with the right hand", 3.0, [{"kind": "above", "joint": "right_wrist", "over": "right_shoulder",
                                         "fraction": 0.3}]),
    ("walks forward", 3.0, [{"kind": "travel", "direction": "forward", "min": 1.0}]),
    ("squats", 3.0, [{"kind": "pelvis_drop", "min": 0.25}]),
    ("waves hello, then jumps", 4.0, [
        {"kind": "above", "joint": "right_wrist", "over": "right_shoulder", "fraction": 0.3, "window": [0, 0.5]},
        {"kind": "pelvis_rise", "min": 0.15, "window": [0.5, 1.0]}]),
])
def test_text_motion_passes_kinematic_checks(pipeline, prompt, seconds, checks):
    motion = generate(pipeline, prompt=prompt, seconds=seconds, fps=30)
    assert motion.frames == int(round(seconds * 30)) + 1 and motion.fps == 30
    assert motion.joints.shape == (motion.frames, 24, 3) and motion.contacts.shape == (motion.frames, 2)
    for check in checks:
        ok, value = run_check(check, motion.joints)
        assert ok, (prompt, check, value)
    assert np.min(motion.joints[..., 2]) > -0.02
    text = motion.params["text"]
    assert text["prompt"] == prompt and text["segments"]


def test_sequence_records_actions_and_scores(pipeline):
    motion = generate(pipeline, prompt="waves hello, then jumps", seconds=2.0, fps=12, seed=5)
    segments = motion.params["text"]["segments"]
    assert [s["action"] for s in segments] == ["wave_right", "jump"]
    assert all(s["kind"] == "action" and s["key_poses"] and s["candidates"] for s in segments)
    assert motion.provenance["encoder"] == "minilm" and motion.provenance["seed"] == 5
    assert motion.frames == 25


def test_turning_changes_where_later_actions_go(pipeline):
    motion = generate(pipeline, prompt="turns around, then walks", seconds=4.0, fps=20)
    assert [s["action"] for s in motion.params["text"]["segments"]] == ["turn_around", "walk"]
    joints = motion.joints
    facing = np.cross(joints[:, J["left_hip"]] - joints[:, J["right_hip"]], [0.0, 0.0, 1.0])[:, :2]
    assert facing[0, 1] < 0 < facing[-1, 1]                              # faced -Y, now faces +Y
    assert run_check({"kind": "travel", "direction": "backward", "min": 1.0}, joints)[0]   # walked back
    # Planted feet of the walk still do not slide after the turn.
    contacts = motion.contacts
    for k, side in enumerate(("left", "right")):
        ankle = joints[:, J[f"{side}_ankle"]]
        still = contacts[1:, k] & contacts[:-1, k]
        steps = np.linalg.norm(np.diff(ankle, axis=0), axis=-1)[still] * 20
        assert np.median(steps) < 0.05


def test_unmatched_prompt_stands_idle_and_says_so(pipeline):
    motion = generate(pipeline, prompt="qwxz vbnm", seconds=1.0, fps=15)
    (segment,) = motion.params["text"]["segments"]
    assert segment["matched"] is False and segment["action"] == "stand"
    assert run_check({"kind": "pelvis_drop", "max": 0.02}, motion.joints)[0]
    assert run_check({"kind": "travel", "max": 0.05}, motion.joints)[0]


def test_normalise_fills_defaults_and_rejects_bad_input(pipeline):
    config = BackendConfig(motion_library=None)
    params = pipeline.normalise({"prompt": "  waves   hello "}, config)
    assert params == {"prompt": "waves hello", "seconds": 4.0, "fps": 30.0, "seed": 0, "encoder": "minilm",
                      "target": None, "name": "text_motion"}
    assert pipeline.normalise({"prompt": "jumps", "target": "smpl"}, config)["target"]["preset"] == "smpl"
    for bad, field in [({"prompt": ""}, "prompt"), ({"prompt": "x" * 501}, "prompt"), ({}, "prompt"),
                       ({"prompt": "jumps", "seconds": 0.1}, "seconds"), ({"prompt": "jumps", "seconds": 61}, "seconds"),
                       ({"prompt": "jumps", "fps": 0}, "fps"), ({"prompt": "jumps", "fps": 241}, "fps"),
                       ({"prompt": "jumps", "encoder": "gpt"}, "encoder"), ({"prompt": "jumps", "speed": 2}, "speed"),
                       ({"prompt": "jumps", "seed": -1}, "seed"), ({"prompt": "jumps", "target": 3}, "target")]:
        with pytest.raises(ProtocolError) as exc:
            pipeline.normalise(bad, config)
        assert exc.value.code == ErrorCode.BAD_REQUEST and exc.value.field.startswith(field), (bad, exc.value)


def test_retargeted_onto_the_smpl_rig(pipeline):
    motion = generate(pipeline, prompt="raises both arms", seconds=1.0, fps=10, target="smpl")
    assert motion.retargeted is not None and motion.retargeted.rotations.shape[0] == motion.frames
    assert motion.params["target"]["preset"] == "smpl"


def test_cli_prints_json_motion():
    from avatarforge.backend.cli import main

    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["text2motion", "jumps", "--seconds", "1", "--fps", "10", "--format", "json"]) == 0
    data = json.loads(out.getvalue())
    assert data["fps"] == 10 and len(data["joint_names"]) == 24
    assert np.asarray(data["joints"]).shape == (11, 24, 3) and np.asarray(data["poses"]).shape == (11, 24, 3)
    assert np.asarray(data["trans"]).shape == (11, 3)


def test_cli_rejects_absurd_duration(capsys):
    from avatarforge.backend.cli import main

    assert main(["text2motion", "jumps", "--seconds", "1000"]) == 2
    assert "seconds" in capsys.readouterr().err


# -- the user's motion library -------------------------------------------------------------------------
def test_motion_library_clip_is_retrieved_and_sampled(pipeline, tmp_path):
    hop = locomotion("hop", 1.0, 30)
    (tmp_path / "moves").mkdir()
    (tmp_path / "moves" / "bunny.npz").write_bytes(amass_npz(hop.rotations, hop.trans, 30.0, layout="smpl"))
    march = locomotion("march", 1.0, 30)
    (tmp_path / "moves" / "parade.bvh").write_text(cmu_bvh_from_smpl(march.rotations, march.trans, 30.0))
    (tmp_path / "labels.json").write_text(json.dumps({
        "moves/bunny.npz": "a person does a cartwheel across the gym floor",
        "moves/parade.bvh": ["a soldier on parade"]}))
    config = BackendConfig(motion_library=tmp_path)
    motion = generate(pipeline, config, prompt="does a cartwheel across the gym floor", seconds=1.0, fps=30)
    (segment,) = motion.params["text"]["segments"]
    assert segment["kind"] == "clip" and segment["action"] == "moves/bunny.npz"
    expected = forward_kinematics(hop.rotations, hop.trans)
    got = motion.joints - motion.joints[:1, :1] + expected[:1, :1]
    assert np.abs(got - expected).max() < 0.03
    assert motion.provenance["motion_library"].startswith("2-")
    from avatarforge.backend.motion.library import open_library

    poses = open_library(config).keyposes()
    assert len(poses) == 6 and all(p.source.startswith("library:") for p in poses)
    # Unrelated prompts still generate.
    other = generate(pipeline, config, prompt="squats", seconds=2.0, fps=15)
    assert other.params["text"]["segments"][0]["kind"] != "clip"


def test_motion_library_errors_say_what_to_fix(pipeline, tmp_path):
    config = BackendConfig(motion_library=tmp_path)
    with pytest.raises(ProtocolError, match="labels.json"):
        generate(pipeline, config, prompt="jumps", seconds=1.0)
    (tmp_path / "labels.txt").write_text("missing.bvh\ta person walks\n")
    with pytest.raises(ProtocolError, match="missing"):
        generate(pipeline, config, prompt="jumps", seconds=1.0)


# -- the CLIP tier ---------------------------------------------------------------------------------
def test_clip_tier_ranks_rendered_key_poses(pipeline, tiny_clip_dir):
    from avatarforge.backend.motion.pose_render import render_pose

    image = render_pose(keypose("wave_right_a").rotations)
    assert image.shape == (224, 224, 3) and image.dtype == np.uint8 and image.min() < 200
    config = BackendConfig(motion_library=None, clip_dir=tiny_clip_dir)
    assert pipeline.tier("clip").available(config).available
    motion = generate(pipeline, config, prompt="raises both arms", seconds=1.0, fps=10, encoder="clip")
    assert motion.provenance["encoder"] == "clip" and motion.frames == 11
    missing = BackendConfig(motion_library=None, clip_dir=tiny_clip_dir / "nowhere")
    with pytest.raises(ProtocolError) as exc:
        generate(pipeline, missing, prompt="jumps", seconds=1.0, encoder="clip")
    assert exc.value.code == ErrorCode.MODEL_MISSING


# -- through a real backend ------------------------------------------------------------------------
def test_text_motion_through_a_real_backend(tmp_path):
    """The add-on's path: a prompt over ZeroMQ to `avatarforge serve`, a Motion back; a bad one is BAD_REQUEST."""
    from avatarforge.protocol.client import Client
    from tests.support.server import BackendProcess

    with BackendProcess(tmp_path / "store", plugins=False) as proc, Client(proc.address, timeout_s=120) as client:
        client.connect()
        job = client.submit("text_motion", {"prompt": "waves hello, then jumps", "seconds": 2.0, "fps": 15.0,
                                            "target": "smpl"})
        (motion,) = client.wait(job["job_id"])
        assert isinstance(motion, Motion) and motion.frames == 31 and motion.retargeted is not None
        assert [s["action"] for s in motion.params["text"]["segments"]] == ["wave_right", "jump"]
        with pytest.raises(ProtocolError) as err:
            client.wait(client.submit("text_motion", {"prompt": "jumps", "seconds": 100})["job_id"])
        assert err.value.code == ErrorCode.BAD_REQUEST and err.value.field == "seconds"


# -- simultaneous actions and repetition counts ----------------------------------------------------------
@pytest.mark.parametrize("phrase, clean, count", [
    ("jumps three times", "jumps", 3), ("waves twice", "waves", 2), ("does 5 squats", "does squats", 5),
    ("claps 4 times", "claps", 4), ("stands on one leg", "stands on one leg", None),
    ("raises both arms", "raises both arms", None), ("jumps 40 times in a row", "jumps", 40),
])
def test_repetition_counts_are_read(phrase, clean, count):
    from avatarforge.backend.text.motion_prompt import extract_count

    assert extract_count(phrase) == (clean, count)


def test_peak_and_episode_checks_count_what_they_say():
    from avatarforge.backend.motion.checks import count_episodes, count_peaks

    t = np.linspace(0, 3, 91)
    z = 0.9 + 0.3 * np.clip(np.sin(2 * np.pi * t), 0, None)                 # three bumps, flat in between
    z[10:13] = z[10:13].max()                                                 # a flat top counts once
    assert count_peaks(z, 0.07) == 3 and count_peaks(-z, 0.07) == 2 and count_peaks(z, 0.5) == 0
    assert count_episodes(np.array([0, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 1], bool), gap=1) == 3
    assert count_episodes(np.array([0, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 1], bool), gap=2) == 2


def test_walks_and_waves_layers_the_wave_on_the_walk(pipeline):
    motion = generate(pipeline, prompt="walks and waves", seconds=3.0, fps=20)
    (segment,) = motion.params["text"]["segments"]
    assert segment["action"] == "walk" and segment["overlay"]["action"] == "wave_right"
    joints = motion.joints
    assert run_check({"kind": "travel", "direction": "forward", "min": 1.0}, joints)[0]
    ok, frac = run_check({"kind": "above", "joint": "right_wrist", "over": "right_shoulder", "fraction": 0.3}, joints)
    assert ok, frac
    # The legs are the walk's own: planted feet do not slide.
    assert run_check({"kind": "foot_slide", "max": 0.05}, joints, 20.0)[0]
    for k, side in enumerate(("left", "right")):
        still = motion.contacts[1:, k] & motion.contacts[:-1, k]
        steps = np.linalg.norm(np.diff(joints[:, J[f"{side}_ankle"], :2], axis=0), axis=-1)[still] * 20
        assert still.any() and np.median(steps) < 0.02
    # Not simultaneous: a sequence of a walk and a sit stays a sequence.
    seq = generate(pipeline, prompt="walks forward and sits down", seconds=3.0, fps=10)
    assert [s["action"] for s in seq.params["text"]["segments"]] == ["walk", "sit_down"]


def test_jumps_three_times_gives_three_jumps_and_caps_absurd_counts(pipeline):
    motion = generate(pipeline, prompt="jumps three times", seconds=4.0, fps=20)
    (segment,) = motion.params["text"]["segments"]
    assert segment["repetitions"] == {"requested": 3, "played": 3, "capped": False}
    ok, peaks = run_check({"kind": "pelvis_peaks", "min": 3, "max": 3}, motion.joints)
    assert ok, peaks
    many = generate(pipeline, prompt="jumps 40 times", seconds=1.5, fps=10)
    reps = many.params["text"]["segments"][0]["repetitions"]
    assert reps["requested"] == 40 and reps["capped"] and 1 <= reps["played"] <= 10
    assert many.frames == 16


def test_store_key_names_the_encoder_weights(tiny_clip_dir):
    """Results made with other weights (another CLIP checkpoint) must never come back from the
    store: the encoder's identity is in the key (test_components.py changes the weights)."""
    from avatarforge.backend.core.components import used_components

    pipeline = load_pipelines()["text_motion"]
    config = BackendConfig(models_dir=None, clip_dir=tiny_clip_dir)
    identities = set()
    for encoder in ("minilm", "clip"):
        params = pipeline.normalise({"prompt": "jumps", "encoder": encoder}, config)
        used = used_components(pipeline.components(pipeline.tier(encoder), params, config), config)
        assert used["encoder"]["name"] == encoder
        identities.add(used["encoder"]["identity"])
    assert len(identities) == 2


# -- sides ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("phrase, limb, direction", [
    ("lifts her right leg", "right", None), ("raises the left leg", "left", None),
    ("the right leg lunges forward", "right", None), ("kicks a ball using the right foot", "right", None),
    ("stands on the right leg", "left", None), ("balancing on her left foot", "right", None),
    ("standing on his left leg only", "right", None), ("stands on the right foot", "left", None),
    ("stands on his left leg and raises the right knee", "right", None),
    ("waves with the left hand", "left", None), ("waves using her right hand", "right", None),
    ("her left hand waves goodbye", "left", None), ("waves left-handed", "left", None),
    ("punches with the left", "left", None), ("raises his right arm", "right", None),
    ("the arm on the right side goes up", "right", None), ("raises both arms", "both", None),
    ("turns left", None, "left"), ("turns to his right", None, "right"), ("a left turn", None, "left"),
    ("spins clockwise", None, "right"), ("turns around to the right", None, "right"),
    ("jumps", None, None), ("right away he jumps", None, None), ("left the room", None, None),
])
def test_sides_are_read_from_the_words(phrase, limb, direction):
    from avatarforge.backend.core.phrases import Clause
    from avatarforge.backend.text.motion_prompt import read_sides

    clause = Clause(phrase, phrase, sides=read_sides(phrase))
    assert (clause.limb_side(), clause.direction()) == (limb, direction)


@pytest.mark.parametrize("prompt, side", [
    ("waves with the left hand", "left"), ("waves hello using her right hand", "right"),
    ("his left hand waves", "left"), ("waves right-handed", "right"),
    ("punches with the left fist", "left"), ("throws a jab with his right hand", "right"),
    ("kicks with the left foot", "left"), ("kicks using his right leg", "right"),
    ("lifts her right leg", "right"), ("raises the left knee", "left"),
    ("stands on the right leg", "left"), ("balancing on her left foot", "right"),
    ("turns left", "left"), ("turns to her right", "right"),
    ("waves at a friend with his left", "left"), ("using her left hand, she waves", "left"),
])
def test_mirrored_choices_follow_the_named_side(prompt, side):
    """Of an action or pose and its mirror image the one on the named side is chosen,
    whatever the encoder would rank (the acting limb; the other of a supporting one)."""
    from avatarforge.backend.models.encoders import load_text_encoder
    from avatarforge.backend.motion.from_text import motion_vocabulary
    from avatarforge.backend.motion.vocabulary import understand
    from avatarforge.backend.text.motion_prompt import read_motion_prompt
    from avatarforge.backend.text.prompt import NEUTRAL_PROMPT

    encoder = load_text_encoder("minilm")
    vocab = motion_vocabulary(encoder, NEUTRAL_PROMPT)
    (segment,) = understand(read_motion_prompt(prompt, encoder), vocab)
    assert segment.side == side, (prompt, segment.choice.name)
    assert all(vocab.side_of(c.name) in (None, side) for c in segment.ranked), segment.ranked


def test_lifting_the_right_leg_lifts_the_right_leg(pipeline):
    """The issue: "lifts her right leg" raised the left knee."""
    joints = generate(pipeline, prompt="lifts her right leg", seconds=3.0, fps=20).joints
    assert run_check({"kind": "height_above", "joint": "right_ankle", "min": 0.3, "fraction": 0.3}, joints)[0]
    assert run_check({"kind": "height_above", "joint": "left_ankle", "min": 0.15, "max_fraction": 0.0}, joints)[0]


def test_standing_on_the_right_leg_lifts_the_left(pipeline):
    """The issue: "stands on the right leg" lifted the right foot; it stands on it."""
    joints = generate(pipeline, prompt="stands on the right leg", seconds=3.0, fps=20).joints
    assert run_check({"kind": "height_above", "joint": "left_ankle", "min": 0.3, "fraction": 0.3}, joints)[0]
    assert run_check({"kind": "height_above", "joint": "right_ankle", "min": 0.15, "max_fraction": 0.0}, joints)[0]


@pytest.mark.parametrize("prompt, low, high", [
    ("turns to his right", -120, -60), ("turns left", 60, 120), ("turns around to the right", -200, -160),
    ("spins clockwise", -400, -320),
])
def test_turns_go_the_way_named(pipeline, prompt, low, high):
    joints = generate(pipeline, prompt=prompt, seconds=2.0, fps=15).joints
    ok, turned = run_check({"kind": "turn", "min": low, "max": high}, joints)
    assert ok, (prompt, turned)


def test_turn_check_measures_signed_heading_change():
    from avatarforge.backend.motion.checks import turned_degrees
    from avatarforge.backend.motion.keyposes import with_heading

    stand = keypose("stand").rotations
    yaw = np.radians(np.linspace(0.0, -270.0, 40))             # three quarters of a turn to the right
    rot = np.stack([with_heading(stand, y) for y in yaw])
    joints = forward_kinematics(rot, np.repeat(grounded_trans(stand)[None], len(yaw), 0))
    assert turned_degrees(joints) == pytest.approx(-270.0, abs=0.5)
