"""The Motion importer and the Motion operators/API in real Blender.

First on motions built here with known answers (no backend): an SMPL-24
armature from rest_skeleton, keyed with tracks made here the way the backend
makes them, whose evaluated bone heads must follow forward kinematics written
independently below; retargeted tracks on a hand-made rig.
Then end to end against the backend's `text_motion` and `motion_import` jobs:
the evaluated heads against the backend's own FK (Motion.joints), and an
Anny avatar that raises its wrist above its shoulder for a wave.
"""
from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pytest

from .synthetic import tube_avatar

bpy = pytest.importorskip("bpy")
from mathutils import Quaternion  # noqa: E402

SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
# local joint frame -> Z-up world for every SMPL joint at rest: x stays, y -> +Z, z -> -Y
SMPL_FRAME = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])


# -- references written for the tests -------------------------------------------
def rodrigues(rotvec: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle -> (..., 3, 3)."""
    theta = np.linalg.norm(rotvec, axis=-1)[..., None, None]
    k = rotvec / np.maximum(np.linalg.norm(rotvec, axis=-1, keepdims=True), 1e-12)
    K = np.zeros(rotvec.shape[:-1] + (3, 3))
    K[..., 0, 1], K[..., 0, 2], K[..., 1, 2] = -k[..., 2], k[..., 1], -k[..., 0]
    K = K - np.swapaxes(K, -1, -2)
    return np.eye(3) + np.sin(theta) * K + (1 - np.cos(theta)) * K @ K


def smpl_fk(rotations: np.ndarray, trans: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """(T, 24, 3) joint positions: SMPL FK with every rest frame = SMPL_FRAME."""
    local = rodrigues(rotations.astype(np.float64))
    T = len(rotations)
    world_rot = np.zeros((T, 24, 3, 3))
    pos = np.zeros((T, 24, 3))
    world_rot[:, 0] = SMPL_FRAME @ local[:, 0]
    pos[:, 0] = trans
    for j in range(1, 24):
        p = SMPL_PARENTS[j]
        offset_local = SMPL_FRAME.T @ (rest[j] - rest[p])
        pos[:, j] = pos[:, p] + world_rot[:, p] @ offset_local
        world_rot[:, j] = world_rot[:, p] @ local[:, j]
    return pos


def quat_wxyz(rotvec: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle -> (..., 4) unit quaternions w, x, y, z."""
    angle = np.linalg.norm(rotvec, axis=-1, keepdims=True)
    axis = rotvec / np.maximum(angle, 1e-12)
    return np.concatenate([np.cos(angle / 2), axis * np.sin(angle / 2)], axis=-1)


def sign_continuous(q: np.ndarray) -> np.ndarray:
    """(T, ..., 4): each key's sign chosen to agree with the previous key's (the backend's promise)."""
    q = q.copy()
    for t in range(1, len(q)):
        flip = np.sum(q[t] * q[t - 1], axis=-1) < 0
        q[t][flip] *= -1
    return q


def reference_tracks(protocol: Any, rotations: np.ndarray, trans: np.ndarray, rest: np.ndarray) -> Any:
    """Tracks for the SMPL-24 armature of `rest` as the backend sends them: the
    SMPL rotations verbatim (bone frame = joint frame) and the pelvis bone's
    location = its displacement from rest, in its rest frame."""
    quats = sign_continuous(quat_wxyz(rotations.astype(np.float64)))
    location = (trans.astype(np.float64) - rest[0]) @ SMPL_FRAME          # SMPL_FRAMEᵀ (p - head), row-wise
    return protocol.RetargetedTracks("smpl24", list(protocol.SMPL24_JOINTS), quats.astype(np.float32), "pelvis",
                                     location.astype(np.float32), [])


def reference_skeleton(protocol: Any, rest: np.ndarray) -> Any:
    mats = np.tile(np.eye(4), (24, 1, 1))
    mats[:, :3, :3] = SMPL_FRAME
    mats[:, :3, 3] = rest
    return protocol.Skeleton(list(protocol.SMPL24_JOINTS), np.array(SMPL_PARENTS, np.int32),
                             mats.astype(np.float32))


def synthetic_rest() -> np.ndarray:
    """A plausible standing skeleton (Z up, metres), T-pose-ish."""
    rng = np.random.default_rng(0)
    rest = np.zeros((24, 3))
    rest[0] = (0.0, 0.0, 0.95)
    for j in range(1, 24):
        rest[j] = rest[SMPL_PARENTS[j]] + rng.uniform(-0.12, 0.12, 3)
    return rest.astype(np.float32)


def synthetic_motion(protocol: Any, frames: int = 30, fps: float = 29.97) -> Any:
    """Smooth rotations on every joint; joint 16's angle sweeps through pi (where
    the axis-angle flips, and the quaternion's sign) to test key continuity."""
    t = np.linspace(0.0, 1.0, frames)[:, None]
    rng = np.random.default_rng(1)
    axes = rng.normal(size=(24, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    amp = rng.uniform(0.2, 0.9, 24)
    rot = (np.sin(2 * np.pi * t * rng.uniform(0.5, 1.5, 24))[..., None] * amp[None, :, None] * axes[None])
    # Joint 16 turns from 2.6 to 3.6 rad, written with angles <= pi as rotation
    # libraries return them: past pi the axis flips (the same rotation), and so
    # does the quaternion's sign.
    angle = np.linspace(2.6, 3.6, frames)[:, None]
    rot[:, 16] = axes[16] * np.where(angle > np.pi, angle - 2 * np.pi, angle)
    trans = np.stack([0.3 * t[:, 0], -0.5 * t[:, 0], 0.95 + 0.1 * np.sin(4 * t[:, 0])], -1)
    rest = synthetic_rest()
    return protocol.Motion(name="wiggle", fps=fps, rotations=rot.astype(np.float32), trans=trans.astype(np.float32),
                           joints=smpl_fk(rot, trans, rest).astype(np.float32),
                           rest_skeleton=reference_skeleton(protocol, rest),
                           retargeted=reference_tracks(protocol, rot, trans, rest),
                           params={"prompt": "wiggle", "seconds": 1.0},
                           provenance={"job": "synthetic", "seed": 3})


def evaluated_heads(rig: Any, names: list[str], frame: int) -> np.ndarray:
    bpy.context.scene.frame_set(frame)
    return np.array([tuple(rig.matrix_world @ rig.pose.bones[n].head) for n in names])


def curves_of(action: Any) -> list[Any]:
    if hasattr(action, "layers") and action.layers:
        return [fc for layer in action.layers for strip in layer.strips for bag in strip.channelbags
                for fc in bag.fcurves]
    return list(action.fcurves)


# -- importer, no backend -------------------------------------------------------
@pytest.fixture()
def motion(addon: Any) -> Any:
    return synthetic_motion(addon.protocol)


def test_smpl_armature_follows_forward_kinematics(addon: Any, clean_scene: Any, motion: Any) -> None:
    built = addon.importers.motion.import_motion(motion, bpy.context, name="Wiggle", job_id="job-m")
    rig = built.rig
    names = list(addon.protocol.SMPL24_JOINTS)
    assert built.built_rig and sorted(b.name for b in rig.data.bones) == sorted(names)
    for j, name in enumerate(names):       # bone frame = SMPL joint frame, head at the rest position
        bone = rig.data.bones[name]
        m = np.array(bone.matrix_local)
        np.testing.assert_allclose(m[:3, :3], SMPL_FRAME, atol=1e-6)
        np.testing.assert_allclose(m[:3, 3], motion.rest_skeleton.rest_matrices[j, :3, 3], atol=1e-6)
        assert (bone.parent.name if bone.parent else None) == \
            (names[SMPL_PARENTS[j]] if j else None)
    for t in (0, 7, 16, 29):
        np.testing.assert_allclose(evaluated_heads(rig, names, 1 + t), motion.joints[t], atol=2e-4,
                                   err_msg=f"frame {1 + t}")


def test_one_action_bulk_keys_nla_and_scene_timing(addon: Any, clean_scene: Any, motion: Any) -> None:
    built = addon.importers.motion.import_motion(motion, bpy.context, name="Wiggle", job_id="job-m")
    rig, action, scene = built.rig, built.action, bpy.context.scene
    curves = curves_of(action)
    assert len(curves) == 24 * 4 + 3
    assert all(len(fc.keyframe_points) == motion.frames for fc in curves)
    assert {kp.interpolation for fc in curves for kp in fc.keyframe_points} == {"LINEAR"}
    assert [a for a in bpy.data.actions] == [action]
    anim = rig.animation_data
    assert anim.action is None                           # pushed down: the NLA strip plays it
    assert len(anim.nla_tracks) == 1 and not anim.nla_tracks[0].mute
    strip = anim.nla_tracks[0].strips[0]
    assert strip.action == action and strip.frame_start == 1 and strip.frame_end == motion.frames
    assert scene.render.fps == 30 and scene.render.fps / scene.render.fps_base == pytest.approx(29.97, abs=1e-4)
    assert (scene.frame_start, scene.frame_end) == (1, motion.frames)
    assert action["avatarforge_kind"] == "motion" and action["avatarforge_job_id"] == "job-m"
    assert action["avatarforge_source"] == "synthetic"
    assert json.loads(action["avatarforge_params"]) == {"prompt": "wiggle", "seconds": 1.0}
    assert json.loads(rig["avatarforge_motion_params"])["prompt"] == "wiggle"
    assert rig["avatarforge_body_model"] == "smpl24"
    # The backend's tracks are keyed as sent: joint 16 crosses pi, where the raw conversion flips sign,
    # and the keys keep the tracks' continuous signs.
    q = np.array([[fc.keyframe_points[t].co[1] for t in range(motion.frames)]
                  for fc in sorted((c for c in curves if 'left_shoulder' in c.data_path
                                    and c.data_path.endswith("rotation_quaternion")), key=lambda c: c.array_index)]).T
    raw = quat_wxyz(motion.rotations[:, 16].astype(np.float64))
    assert (np.einsum("ti,ti->t", raw[1:], raw[:-1]) < 0).any(), "the test motion must contain a sign flip"
    np.testing.assert_allclose(q, motion.retargeted.rotations[:, 16], atol=1e-7)
    assert (np.einsum("ti,ti->t", q[1:], q[:-1]) > 0).all()


def test_second_motion_gets_its_own_track_and_plays(addon: Any, clean_scene: Any, motion: Any) -> None:
    imp = addon.importers.motion
    first = imp.import_motion(motion, bpy.context, name="First")
    rest = motion.rest_skeleton.rest_matrices[:, :3, 3]
    rotations, trans = np.zeros((10, 24, 3), np.float32), np.repeat(rest[:1], 10, 0)
    still = addon.protocol.Motion(name="still", fps=24.0, rotations=rotations, trans=trans,
                                  retargeted=reference_tracks(addon.protocol, rotations, trans, rest),
                                  provenance={"job": "synthetic"})
    second = imp.import_motion(still, bpy.context, target=first.rig)
    assert second.rig == first.rig and not second.built_rig and second.action != first.action
    tracks = first.rig.animation_data.nla_tracks
    assert [t.mute for t in tracks] == [True, False]
    assert bpy.context.scene.render.fps == 24 and bpy.context.scene.frame_end == 10
    heads = evaluated_heads(first.rig, list(addon.protocol.SMPL24_JOINTS), 5)
    np.testing.assert_allclose(heads, rest, atol=1e-5)   # the still rest pose plays


def test_retargeted_tracks_on_a_rig(addon: Any, clean_scene: Any) -> None:
    protocol = addon.protocol
    avatar = addon.importers.rigged_avatar.import_rigged_avatar(tube_avatar(protocol), bpy.context, name="Tube")
    T = 12
    rng = np.random.default_rng(2)
    q = rng.normal(size=(T, 3, 4))
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    loc = rng.normal(size=(T, 3)).astype(np.float32) * 0.1
    tracks = protocol.RetargetedTracks("tube", ["root", "spine", "arm"], q.astype(np.float32), "root", loc, ["head"])
    motion = protocol.Motion(name="sway", fps=12.0, rotations=np.zeros((T, 24, 3), np.float32),
                             trans=np.zeros((T, 3), np.float32), retargeted=tracks, provenance={"job": "text_motion"})
    built = addon.importers.motion.import_motion(motion, bpy.context, target=avatar.rig)
    assert built.unmapped == ["head"] and "head" in built.notes
    assert len(curves_of(built.action)) == 3 * 4 + 3
    rig = avatar.rig
    for t in (0, 5, 11):
        bpy.context.scene.frame_set(1 + t)
        for b, name in enumerate(tracks.bone_names):
            got = Quaternion(rig.pose.bones[name].rotation_quaternion)
            assert abs(got.dot(Quaternion(q[t, b]))) == pytest.approx(1.0, abs=1e-5), (t, name)
        np.testing.assert_allclose(np.array(rig.pose.bones["root"].location), loc[t], atol=1e-6)
    # Wrong rig for these tracks: refused with the bones it lacks, nothing keyed.
    other = addon.importers.motion.import_motion(synthetic_motion(protocol), bpy.context)
    n_actions = len(bpy.data.actions)
    with pytest.raises(addon.importers.ImportFailed, match="spine"):
        addon.importers.motion.import_motion(motion, bpy.context, target=other.rig)
    assert len(bpy.data.actions) == n_actions
    # No target: only tracks made for the motion's own SMPL-24 armature will do; nothing is built otherwise.
    n_objects = len(bpy.data.objects)
    with pytest.raises(addon.importers.ImportFailed, match="'tube' rig"):
        addon.importers.motion.import_motion(motion, bpy.context)
    assert len(bpy.data.objects) == n_objects


# Anny's 68 bones SMPL-24 leaves at rest (the backend's `unmapped` for the default Anny rig).
ANNY_UNMAPPED = ([f"toe{t}-{k}.{s}" for s in "LR" for t in range(1, 6) for k in range(1, 3 + (t > 1))] +
                 [f"{b}.{s}" for s in "LR" for f in range(1, 6)
                  for b in (f"finger{f}-1", f"finger{f}-2", f"finger{f}-3") + ((f"metacarpal{f}",) if f < 5 else ())]
                 + ["eye.L", "eye.R"])


def test_unmapped_bones_summarised_by_kind(addon: Any, clean_scene: Any) -> None:
    """The note counts bones SMPL-24 cannot drive by kind and names only the
    "other" ones; the full list stays on the Action."""
    motion_mod = addon.importers.motion
    kinds = {  # Anny, Mixamo, Rigify, Unreal, 3ds Max names
        "finger": ["finger2-3.R", "metacarpal1.L", "mixamorig:LeftHandThumb1", "mixamorig1:RightHandPinky4",
                   "DEF-f_index.01.L", "DEF-thumb.02.R", "DEF-palm.01.L", "thumb_01_l", "index_metacarpal_r",
                   "Bip01 L Finger0Nub"],
        "toe": ["toe1-1.L", "mixamorig:LeftToeBase", "LeftToe_End", "DEF-toe.R", "ball_l", "littletoe_01_r"],
        "face": ["eye.L", "mixamorig:LeftEye", "DEF-jaw", "DEF-lip.T.L", "DEF-eye_master.R", "DEF-ear.L",
                 "FACIAL_C_FacialRoot", "DEF-forehead.L.001", "tongue_01"],
        "twist/helper": ["upperarm_twist_01_l", "calf_twist_01_r", "ik_hand_gun", "ik_foot_root", "root",
                         "mixamorig:HeadTop_End", "DEF-upper_arm.L.001", "DEF-thigh.R.001", "MCH-forearm_ik.L"],
        "other": ["DEF-breast.L", "DEF-pelvis.R", "spine05", "hair_01", "forearm.L", "Hips", "head"],
    }
    for kind, names in kinds.items():
        assert {n: motion_mod.bone_kind(n) for n in names} == {n: kind for n in names}

    assert len(ANNY_UNMAPPED) == 68
    note = motion_mod.unmapped_note(ANNY_UNMAPPED, "Demo_rig", "Demo_motion")
    assert note.startswith("68 bones of Demo_rig keep their rest pose: 38 finger, 28 toe, 2 face;")
    assert "other" not in note and "toe1-1" not in note and "avatarforge_unmapped of Action 'Demo_motion'" in note

    others = [f"extra{i}" for i in range(10)]
    note = motion_mod.unmapped_note(["finger1-1.L"] + others + ["upperarm_twist_01_l"], "R", "A")
    assert note.startswith("12 bones of R keep their rest pose: 1 finger, 1 twist/helper, 10 other "
                           "(other: extra0, extra1, extra2, extra3, extra4, extra5, extra6, extra7 and 2 more);")
    assert motion_mod.unmapped_note(["tail"], "R", "A").startswith("1 bone of R keeps its rest pose: 1 other "
                                                                   "(other: tail);")
    assert motion_mod.unmapped_note([], "R", "A") == ""

    # Imported: the note uses the real rig and Action, which hold the full list.
    avatar = addon.importers.rigged_avatar.import_rigged_avatar(tube_avatar(addon.protocol), bpy.context, name="Tube")
    T = 4
    q = np.tile(np.array([1.0, 0, 0, 0], np.float32), (T, 3, 1))
    tracks = addon.protocol.RetargetedTracks("tube", ["root", "spine", "arm"], q, "root",
                                             np.zeros((T, 3), np.float32), ANNY_UNMAPPED + ["tail"])
    motion = addon.protocol.Motion(name="still", fps=12.0, rotations=np.zeros((T, 24, 3), np.float32),
                                   trans=np.zeros((T, 3), np.float32), retargeted=tracks,
                                   provenance={"job": "text_motion"})
    built = motion_mod.import_motion(motion, bpy.context, target=avatar.rig)
    assert built.notes.startswith(f"69 bones of {avatar.rig.name} keep their rest pose: 38 finger, 28 toe, 2 face, "
                                  "1 other (other: tail);")
    assert f"Action '{built.action.name}'" in built.notes
    assert addon.importers.common.read_stamp(built.action, "unmapped") == ANNY_UNMAPPED + ["tail"]

def test_job_record_applies_motion_to_rig_chosen_at_submit(addon: Any, clean_scene: Any, motion: Any) -> None:
    """The async path: the result is imported onto the rig named in the record."""
    jobs = addon.jobs
    target = addon.importers.motion.import_motion(motion, bpy.context, name="Target").rig
    record = jobs.JobRecord("local-m", "text_motion", {}, "Wave", bpy.context.scene.name, job_id="jm",
                            state="running", target=target.name, artifacts=[motion])
    built = jobs.TABLE.import_record(record)
    assert record.state == "done" and built[0].rig == target and len(target.animation_data.nla_tracks) == 2
    record = jobs.JobRecord("local-n", "text_motion", {}, "Wave", bpy.context.scene.name, job_id="jn",
                            state="running", target="Deleted rig", artifacts=[motion])
    assert jobs.TABLE.import_record(record) == []
    assert record.state == "failed" and "Deleted rig" in record.message and record.artifacts


def test_rig_description(addon: Any, clean_scene: Any) -> None:
    avatar = addon.importers.rigged_avatar.import_rigged_avatar(tube_avatar(addon.protocol), bpy.context, name="T")
    desc = addon.rig_description.describe_rig(avatar.rig, "auto", {"spine": "spine1"})
    assert desc["bone_names"] == ["root", "spine", "head", "arm"] and desc["parents"] == [-1, 0, 1, 1]
    np.testing.assert_allclose(desc["rest_matrices"], tube_avatar(addon.protocol).skeleton.rest_matrices, atol=1e-5)
    assert desc["preset"] == "auto" and desc["map"] == {"spine": "spine1"}      # "synthetic" implies no preset
    avatar.rig["avatarforge_body_model"] = "anny"
    assert addon.rig_description.describe_rig(avatar.rig)["preset"] == "anny"
    assert addon.rig_description.describe_rig(avatar.rig, "mixamo")["preset"] == "mixamo"
    with pytest.raises(addon.importers.ImportFailed, match="wing"):
        addon.rig_description.describe_rig(avatar.rig, "auto", {"wing": "spine1"})
    text = bpy.data.texts.new("map.json")
    text.write('{"arm": "left_shoulder"}')
    assert addon.rig_description.parse_bone_map("map.json") == {"arm": "left_shoulder"}
    with pytest.raises(addon.importers.ImportFailed, match="not JSON"):
        addon.rig_description.parse_bone_map("{arm: 1")
    bpy.data.texts.remove(text)


# -- end to end: the backend's text_motion / motion_import jobs ---------------------
def require_jobs(af: Any, *jobs: str) -> None:
    pipelines = af.connect()["pipelines"]
    missing = [j for j in jobs if j not in pipelines]
    assert not missing, f"the backend lacks {missing} (it has {sorted(pipelines)})"


@pytest.fixture(scope="module")
def walk(af: Any, backend: Any) -> Any:
    """A text motion with no target rig, fetched once."""
    require_jobs(af, "text_motion")
    _job_id, (motion,) = af.run("text_motion", {"prompt": "walks forward", "seconds": 1.5, "fps": 20.0})
    return motion


def test_text_motion_on_smpl_armature_matches_backend_fk(addon: Any, af: Any, clean_scene: Any, walk: Any) -> None:
    assert walk.joints is not None and walk.rest_skeleton is not None and walk.retargeted.rig == "smpl24"
    (built,) = af.import_artifacts([walk], name="Walk", job_id="walk-job")
    assert built.built_rig and bpy.context.scene.frame_end == walk.frames
    names = list(addon.protocol.SMPL24_JOINTS)
    for t in sorted({0, walk.frames // 3, walk.frames // 2, walk.frames - 1}):
        np.testing.assert_allclose(evaluated_heads(built.rig, names, 1 + t), walk.joints[t], atol=1e-3,
                                   err_msg=f"frame {1 + t}")
    assert built.action["avatarforge_source"] == "text_motion"


def test_wave_on_anny_avatar_raises_the_wrist(addon: Any, af: Any, backend: Any, clean_scene: Any) -> None:
    require_jobs(af, "text_motion")
    rig, _mesh = af.generate_body(texture_size=256, name="Waver")
    s = bpy.context.scene.avatarforge
    s.motion_prompt, s.motion_seconds, s.motion_fps, s.motion_target = "raises both arms and waves", 2.0, 15.0, rig
    assert bpy.ops.avatarforge.animate(wait=True) == {"FINISHED"}
    anim = rig.animation_data
    assert anim.action is None and len(anim.nla_tracks) == 1
    action = anim.nla_tracks[0].strips[0].action
    params = json.loads(action["avatarforge_params"])
    assert params["prompt"] == "raises both arms and waves" and action["avatarforge_retarget_preset"] == "anny"
    scene = bpy.context.scene
    assert scene.render.fps / scene.render.fps_base == pytest.approx(15.0)
    rise = []
    for frame in range(scene.frame_start, scene.frame_end + 1, 3):
        scene.frame_set(frame)
        z = {n: (rig.matrix_world @ rig.pose.bones[n].head).z for n in ("wrist.L", "wrist.R", "shoulder01.L",
                                                                          "shoulder01.R")}
        rise.append(max(z["wrist.L"] - z["shoulder01.L"], z["wrist.R"] - z["shoulder01.R"]))
    assert max(rise) > 0.0, rise       # Anny rests in an A-pose: wrists well below the shoulders
    s.motion_target = None


def test_target_rig_choice(addon: Any, clean_scene: Any, motion: Any) -> None:
    """Target Rig field, else the active armature or the armature of the active skinned mesh, else none."""
    ops, s = addon.operators, bpy.context.scene.avatarforge
    avatar = addon.importers.rigged_avatar.import_rigged_avatar(tube_avatar(addon.protocol), bpy.context, name="T")
    view_layer = bpy.context.view_layer
    view_layer.objects.active = None
    assert ops.motion_rig(bpy.context) is None
    view_layer.objects.active = avatar.mesh
    assert ops.motion_rig(bpy.context) == avatar.rig
    smpl = addon.importers.motion.import_motion(motion, bpy.context).rig
    s.motion_target = smpl
    assert ops.motion_rig(bpy.context) == smpl
    lamp = bpy.data.objects.new("Lamp", bpy.data.lights.new("Lamp", "POINT"))
    bpy.context.scene.collection.objects.link(lamp)
    s.motion_target = lamp
    with pytest.raises(addon.importers.ImportFailed, match="Lamp"):
        ops.motion_rig(bpy.context)
    with pytest.raises(RuntimeError, match="Lamp"):      # the operator refuses before submitting anything
        bpy.ops.avatarforge.animate(wait=True)
    s.motion_target = None


def test_motion_file_params_send_the_bytes(af: Any, tmp_path: Any) -> None:
    clip = tmp_path / "clip.BVH"
    clip.write_bytes(b"HIERARCHY\nROOT Hips\n")
    params = af.motion_file_params(str(clip), fps=24)
    assert params == {"data": b"HIERARCHY\nROOT Hips\n", "filename": "clip.BVH", "fps": 24.0}
    with pytest.raises(af.ImportFailed, match=r"\.bvh or \.npz"):
        af.motion_file_params(str(tmp_path / "clip.fbx"))
    with pytest.raises(af.ImportFailed, match="cannot read"):
        af.motion_file_params(str(tmp_path / "missing.npz"))


def test_import_npz_through_the_backend(addon: Any, af: Any, backend: Any, clean_scene: Any, tmp_path: Any) -> None:
    """An AMASS-style .npz goes to the backend as bytes (Import Motion File) and
    comes back keyed on a new SMPL-24 armature: the body joints' rotations as
    the file has them, at the file's frame rate."""
    require_jobs(af, "motion_import")
    T = 24
    t = np.linspace(0.0, 1.0, T)[:, None]
    poses = np.zeros((T, 72), np.float32)
    poses[:, 3 * 16:3 * 17] = np.array([0.0, 0.0, -1.2]) * np.sin(np.pi * t)      # left shoulder raises the arm
    poses[:, 3 * 4:3 * 5] = np.array([0.8, 0.0, 0.0]) * t                          # left knee bends
    trans = np.stack([np.zeros(T), 0.4 * t[:, 0], np.zeros(T)], -1).astype(np.float32)
    buf = io.BytesIO()
    np.savez(buf, poses=poses, trans=trans, mocap_framerate=np.array(25.0), gender="neutral")
    path = tmp_path / "raise_arm.npz"
    path.write_bytes(buf.getvalue())
    bpy.context.view_layer.objects.active = None
    bpy.context.scene.avatarforge.motion_target = None
    bpy.context.scene.avatarforge.motion_file_fps = 0.0
    assert bpy.ops.avatarforge.import_motion(filepath=str(path), wait=True) == {"FINISHED"}
    (rig,) = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    scene = bpy.context.scene
    assert scene.render.fps / scene.render.fps_base == pytest.approx(25.0) and scene.frame_end == T
    action = rig.animation_data.nla_tracks[0].strips[0].action
    assert action["avatarforge_source"] == "motion_import: raise_arm.npz"
    quats = quat_wxyz(poses.reshape(T, 24, 3).astype(np.float64))
    for frame in (1, T // 2, T):
        scene.frame_set(frame)
        for j, name in ((16, "left_shoulder"), (4, "left_knee")):
            got = Quaternion(rig.pose.bones[name].rotation_quaternion)
            assert abs(got.dot(Quaternion(quats[frame - 1, j]))) == pytest.approx(1.0, abs=1e-4), (frame, name)
