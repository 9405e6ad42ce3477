"""Retargeting SMPL-24 motion onto Anny, an SMPL armature and users' rigs
(bone frames of any roll, A-pose rests), checked by evaluating the pose the
way Blender does (rig_forward_kinematics)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from avatarforge.backend.core import rotations as R
from avatarforge.backend.motion import rigs
from avatarforge.backend.motion.build import make_motion
from avatarforge.backend.motion.retarget import retarget, tracks_heads
from avatarforge.backend.motion.target_rigs import default_rig, resolve_target, smpl_armature
from avatarforge.backend.motion.targets import normalise_target
from avatarforge.backend.motion.skeleton import J, JOINT_NAMES, PARENTS, forward_kinematics, \
    reference_rest_positions, rest_trans
from avatarforge.protocol import ErrorCode, Motion, ProtocolError
from tests.support.synthetic_motion import smpl_test_motion

# Primary child of each SMPL joint (bone direction); leaves point like their parent.
CHILD = {"pelvis": "spine1", "spine3": "neck", "left_hip": "left_knee", "right_hip": "right_knee",
         **{JOINT_NAMES[PARENTS[j]]: JOINT_NAMES[j] for j in range(1, 24)
            if JOINT_NAMES[PARENTS[j]] not in ("pelvis", "spine3", "left_hip", "right_hip")}}
MIXAMO = {"pelvis": "Hips", "spine1": "Spine", "spine2": "Spine1", "spine3": "Spine2", "neck": "Neck",
          "head": "Head", **{f"{s}_{j}": f"{S}{m}" for s, S in (("left", "Left"), ("right", "Right")) for j, m in (
              ("hip", "UpLeg"), ("knee", "Leg"), ("ankle", "Foot"), ("foot", "ToeBase"), ("collar", "Shoulder"),
              ("shoulder", "Arm"), ("elbow", "ForeArm"), ("wrist", "Hand"), ("hand", "HandMiddle1"))}}


def blender_like_rig(arm_drop_degrees: float = 40.0, seed: int = 0, prefix: str = "mixamorig:"):
    """A Mixamo-named rig on SMPL's geometry, arms lowered into an A-pose, every bone's
    Y axis along the bone (Blender) with a random roll; plus an unmapped in-between bone."""
    rng = np.random.default_rng(seed)
    pos = reference_rest_positions().copy()
    for side, sign in (("left", -1.0), ("right", 1.0)):
        a = R.axis_angle_to_matrix(np.array([0.0, sign * np.radians(arm_drop_degrees), 0.0]))   # about -Y/+Y
        pivot = pos[J[f"{side}_shoulder"]].copy()
        for n in ("elbow", "wrist", "hand"):
            pos[J[f"{side}_{n}"]] = pivot + a @ (pos[J[f"{side}_{n}"]] - pivot)
    names, parents, mats = [], [], []
    index = {}
    for j, joint in enumerate(JOINT_NAMES):
        child = CHILD.get(joint)
        y = pos[J[child]] - pos[j] if child else pos[j] - pos[PARENTS[j]]
        y /= np.linalg.norm(y)
        x = np.cross(y, rng.normal(size=3))
        x /= np.linalg.norm(x)
        m = np.eye(4)
        m[:3, :3] = np.stack([x, y, np.cross(x, y)], axis=1)
        m[:3, 3] = pos[j]
        parent = -1 if j == 0 else index[JOINT_NAMES[PARENTS[j]]]
        if joint == "left_elbow":       # an unmapped twist bone between the upper arm and the forearm
            twist = m.copy()
            twist[:3, :3] = mats[index["left_shoulder"]][:3, :3]
            twist[:3, 3] = (pos[j] + pos[J["left_shoulder"]]) / 2
            names.append(prefix + "LeftArmTwist")
            parents.append(parent)
            mats.append(twist)
            parent = len(names) - 1
        index[joint] = len(names)
        names.append(prefix + MIXAMO[joint])
        parents.append(parent)
        mats.append(m)
    return names, parents, np.array(mats), index


# -- the wire param -------------------------------------------------------------------------------
def test_normalise_target_accepts_presets_and_rigs():
    assert normalise_target(None) is None
    assert normalise_target("anny")["preset"] == "anny"
    names, parents, mats, _ = blender_like_rig()
    t = normalise_target({"bone_names": names, "parents": parents, "rest_matrices": mats.tolist()})
    assert t["preset"] == "auto" and t["rest_matrices"].shape == (len(names), 4, 4)
    t = normalise_target({"bone_names": names, "parents": parents, "rest_matrices": mats,
                          "map": {names[0]: "pelvis"}})
    assert t["preset"] == "map"


@pytest.mark.parametrize("change, field", [
    (lambda t: t.update(preset="maya"), "target.preset"),
    (lambda t: t.update(colour=1), "target.colour"),
    (lambda t: t.update(bone_names=["a", "a"] + t["bone_names"][2:]), "target.bone_names"),
    (lambda t: t.update(parents=[0] + t["parents"][1:]), "target.parents[0]"),
    (lambda t: t.update(parents=t["parents"][:-1]), "target.parents"),
    (lambda t: t["rest_matrices"].__setitem__((3, 0, 0), np.nan), "target.rest_matrices"),
    (lambda t: t["rest_matrices"].__setitem__((5, slice(0, 3), slice(0, 3)), 2 * np.eye(3)),
     "target.rest_matrices[5]"),
    (lambda t: t.update(rest_matrices=t["rest_matrices"][:4]), "target.rest_matrices"),
    (lambda t: t.update(map={"nope": "pelvis"}), "target.map.nope"),
    (lambda t: t.update(map={t["bone_names"][0]: "hips"}), f"target.map.{'mixamorig:Hips'}"),
])
def test_normalise_target_rejects(change, field):
    names, parents, mats, _ = blender_like_rig()
    t = {"bone_names": list(names), "parents": list(parents), "rest_matrices": mats.copy()}
    change(t)
    with pytest.raises(ProtocolError) as err:
        normalise_target(t)
    assert err.value.code == ErrorCode.BAD_REQUEST and err.value.field == field, str(err.value)


def test_scene_presets_need_the_rig():
    with pytest.raises(ProtocolError) as err:
        normalise_target({"preset": "mixamo"})
    assert err.value.field == "target.bone_names"


def test_unmappable_rig_lists_its_bones():
    names = ["Bone", "Bone.001", "Bone.002"]
    mats = np.repeat(np.eye(4)[None], 3, axis=0)
    mats[:, 2, 3] = [0.0, 0.5, 1.0]
    target = normalise_target({"bone_names": names, "parents": [-1, 0, 1], "rest_matrices": mats})
    with pytest.raises(ProtocolError) as err:
        resolve_target(target)
    e = err.value
    assert e.code == ErrorCode.BAD_REQUEST and e.details["unmapped"] == names
    assert "pelvis" in e.details["missing_joints"] and "Bone.001" in e.message


def test_auto_picks_the_preset_by_names():
    assert rigs.best_preset(["DEF-spine", "DEF-spine.001", "DEF-thigh.L", "DEF-upper_arm.L"])[0] == "rigify"
    assert rigs.best_preset(["root", "pelvis", "spine_01", "thigh_l", "upperarm_l", "hand_r"])[0] == "unreal"
    assert rigs.best_preset(["mixamorig1:Hips", "mixamorig1:LeftArm", "mixamorig1:Spine"])[0] == "mixamo"
    assert rigs.best_preset(list(JOINT_NAMES))[0] == "smpl"


def test_every_preset_the_add_on_offers_has_a_bone_map():
    """The presets are one list (protocol/limits.py, which the add-on carries); each needs a map here."""
    from avatarforge.protocol.limits import RIG_PRESETS

    assert set(rigs.PRESET_MAPS) == set(RIG_PRESETS)


# -- onto rigs ----------------------------------------------------------------------------------------
def test_smpl_armature_is_driven_verbatim():
    rot, trans = smpl_test_motion(20)
    tracks = retarget(rot, trans, normalise_target("smpl"))
    assert tracks.rig == "smpl" and tracks.bone_names == list(JOINT_NAMES) and tracks.unmapped == []
    assert np.allclose(np.abs(np.sum(tracks.rotations * R.axis_angle_to_quat(rot), axis=-1)), 1.0, atol=1e-5)
    names, parents, rest = smpl_armature()
    assert np.abs(tracks_heads(tracks, names, parents, rest) - forward_kinematics(rot, trans)).max() < 1e-5


def test_motion_without_target_carries_tracks_for_its_reference_armature():
    """No target rig: the tracks drive the rest_skeleton armature (what the add-on
    builds) verbatim, sign-continuous, with the pelvis displacement as location."""
    rot, trans = smpl_test_motion(30, seed=2)
    angle = np.linspace(2.6, 3.6, 30)                     # crosses pi: the axis-angle (and quaternion) flips
    axis = np.array([0.6, -0.48, 0.64])
    rot[:, J["left_shoulder"]] = axis[None] * np.where(angle > np.pi, angle - 2 * np.pi, angle)[:, None]
    motion = make_motion("wiggle", 30.0, rot, trans, {}, {})
    tracks, skel = motion.retargeted, motion.rest_skeleton
    assert tracks.rig == "smpl24" and tracks.bone_names == list(JOINT_NAMES) and tracks.root_bone == "pelvis"
    assert skel.joint_names == list(JOINT_NAMES) and skel.parents.tolist() == PARENTS.tolist()
    y_up_to_z_up = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])   # the SMPL joint frame in our world
    assert np.allclose(skel.rest_matrices[:, :3, :3], y_up_to_z_up, atol=1e-7)
    assert np.allclose(skel.rest_matrices[:, :3, 3], reference_rest_positions(), atol=1e-6)
    raw = Rotation.from_rotvec(motion.rotations.reshape(-1, 3).astype(np.float64)).as_quat()[:, [3, 0, 1, 2]]
    raw = raw.reshape(30, 24, 4)
    assert (np.sum(raw[1:, J["left_shoulder"]] * raw[:-1, J["left_shoulder"]], axis=-1) < 0).any()
    assert np.allclose(np.abs(np.sum(tracks.rotations * raw, axis=-1)), 1.0, atol=1e-5)      # same rotations
    assert (np.sum(tracks.rotations[1:] * tracks.rotations[:-1], axis=-1) > 0).all()       # sign-continuous
    expected_loc = (trans - reference_rest_positions()[0]) @ y_up_to_z_up                  # R_restᵀ (p - head)
    assert np.allclose(tracks.root_locations, expected_loc, atol=1e-5)
    heads = tracks_heads(tracks, skel.joint_names, skel.parents, skel.rest_matrices)
    assert np.abs(heads - motion.joints).max() < 1e-4
    back = Motion.from_wire(motion.to_wire())
    assert back.retargeted.rig == "smpl24" and np.array_equal(back.rest_skeleton.parents, skel.parents)


def test_motion_rest_skeleton_must_be_smpl24():
    wire = make_motion("still", 30.0, np.zeros((2, 24, 3)), np.tile(rest_trans(), (2, 1)), {}, {}).to_wire()
    for change, field in [(lambda s: s.update(joint_names=s["joint_names"][::-1]), "joint_names"),
                          (lambda s: s["parents"].__setitem__(5, 0), "parents"),
                          (lambda s: s.update(rest_matrices=s["rest_matrices"][:23]), "rest_matrices")]:
        bad = {**wire, "rest_skeleton": {k: (v.copy() if isinstance(v, np.ndarray) else list(v))
                                         for k, v in wire["rest_skeleton"].items()}}
        change(bad["rest_skeleton"])
        with pytest.raises(ProtocolError) as err:
            Motion.from_wire(bad)
        assert err.value.field == f"motion.rest_skeleton.{field}"
    with pytest.raises(ProtocolError, match="rest_skeleton"):
        Motion.from_wire({**wire, "rest_skeleton": [1, 2]})


@pytest.mark.parametrize("preset", ["auto", "mixamo"])
def test_a_pose_rig_with_any_bone_rolls_reproduces_the_motion(preset):
    names, parents, mats, index = blender_like_rig()
    rot, trans = smpl_test_motion(25, seed=4)
    target = normalise_target({"preset": preset, "bone_names": names, "parents": parents, "rest_matrices": mats})
    tracks = retarget(rot, trans, target)
    assert tracks.rig == "mixamo" and tracks.root_bone == "mixamorig:Hips"
    assert "mixamorig:LeftArmTwist" in tracks.bone_names                 # in between: driven with identity
    k = tracks.bone_names.index("mixamorig:LeftArmTwist")
    assert np.allclose(np.abs(tracks.rotations[:, k, 0]), 1.0, atol=1e-6)
    heads = tracks_heads(tracks, names, parents, mats)
    joints = forward_kinematics(rot, trans)
    for joint, i in index.items():
        if joint in ("left_hand", "right_hand"):
            continue            # SMPL's hand bones' heads follow the wrists anyway
        assert np.abs(heads[:, i] - joints[:, J[joint]]).max() < 1e-4, joint


@pytest.fixture(scope="module")
def anny_rig(anny_model):
    names, parents, rest = default_rig("anny")
    return names, parents, rest


def pose(**joints: list[float]) -> tuple[np.ndarray, np.ndarray]:
    rot = np.zeros((1, 24, 3))
    for name, rv in joints.items():
        rot[0, J[name]] = rv
    return rot, rest_trans()[None]


def test_t_pose_puts_annys_a_pose_arms_horizontal(anny_rig):
    names, parents, rest = anny_rig
    i = {n: names.index(n) for n in ("wrist.L", "wrist.R", "upperarm01.L", "upperarm01.R", "head")}
    # Anny's own rest is an A-pose: wrists well below the shoulders.
    assert rest[i["wrist.L"], 2, 3] < rest[i["upperarm01.L"], 2, 3] - 0.25
    tracks = retarget(*pose(), normalise_target("anny"))
    heads = tracks_heads(tracks, names, parents, rest)[0]
    for side in "LR":
        wrist, shoulder = heads[i[f"wrist.{side}"]], heads[i[f"upperarm01.{side}"]]
        arm = wrist - shoulder
        assert abs(arm[2]) < 0.03, side                                      # at shoulder height
        assert abs(arm[0]) > 0.5 and np.sign(arm[0]) == (1 if side == "L" else -1)   # outwards, horizontal
        assert abs(arm[1]) < 0.05
    assert np.allclose(tracks.root_locations, 0.0, atol=1e-6)


def test_arms_up_puts_annys_wrists_above_the_head(anny_rig):
    names, parents, rest = anny_rig
    rot, trans = pose(left_shoulder=[0, 0, np.pi / 2], right_shoulder=[0, 0, -np.pi / 2])
    ref = forward_kinematics(rot, trans)[0]
    assert ref[J["left_wrist"], 2] > ref[J["head"], 2]                      # the SMPL pose is arms up
    tracks = retarget(rot, trans, normalise_target("anny"))
    heads = tracks_heads(tracks, names, parents, rest)[0]
    head_top = heads[names.index("head")][2]
    for side in "LR":
        wrist = heads[names.index(f"wrist.{side}")]
        shoulder = heads[names.index(f"upperarm01.{side}")]
        assert wrist[2] > head_top + 0.2 and abs(wrist[0] - shoulder[0]) < 0.05


def test_anny_root_motion_follows_scaled_pelvis(anny_rig):
    names, parents, rest = anny_rig
    rot, trans = smpl_test_motion(30, seed=1)
    # No foot contacts: the root follows the scaled pelvis exactly (planted feet shift it: below).
    motion = make_motion("walk", 30.0, rot, trans, {}, {}, target=normalise_target("anny"),
                         contacts=np.zeros((len(rot), 2), bool))
    tracks = motion.retargeted
    assert tracks.root_bone == "root" and "finger2-1.L" in tracks.unmapped and "spine05" in tracks.bone_names
    heads = tracks_heads(tracks, names, parents, rest)
    root = names.index("root")
    anny_leg = rest[root, 2, 3] - (rest[names.index("foot.L"), 2, 3] + rest[names.index("foot.R"), 2, 3]) / 2
    ref = reference_rest_positions()
    scale = anny_leg / (ref[0, 2] - (ref[J["left_ankle"], 2] + ref[J["right_ankle"], 2]) / 2)
    assert np.allclose(heads[:, root] - rest[root, :3, 3], scale * (trans - ref[0]), atol=2e-3)
    # Every limb segment points where SMPL's does, frame by frame (proportions differ, directions not).
    joints = forward_kinematics(rot, trans)
    for a, b, ja, jb in [("upperleg01.L", "lowerleg01.L", "left_hip", "left_knee"),
                         ("lowerleg01.R", "foot.R", "right_knee", "right_ankle"),
                         ("upperarm01.L", "lowerarm01.L", "left_shoulder", "left_elbow"),
                         ("lowerarm01.R", "wrist.R", "right_elbow", "right_wrist")]:
        seg = heads[:, names.index(b)] - heads[:, names.index(a)]
        ref_seg = joints[:, J[jb]] - joints[:, J[ja]]
        cos = np.sum(seg * ref_seg, axis=1) / np.linalg.norm(seg, axis=1) / np.linalg.norm(ref_seg, axis=1)
        assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 2.0, a
    back = Motion.from_wire(motion.to_wire())                               # wire-valid
    assert back.retargeted.bone_names == tracks.bone_names


def planted_ankle_speed_mm(heads: np.ndarray, ankles: list[int], contacts: np.ndarray) -> float:
    """Mean horizontal speed (mm/frame) of each ankle while its foot stays planted."""
    speeds = []
    for k, a in enumerate(ankles):
        both = contacts[1:, k] & contacts[:-1, k]
        step = np.linalg.norm(np.diff(heads[:, a, :2], axis=0), axis=-1)
        speeds.extend(step[both].tolist())
    return 1000.0 * float(np.mean(speeds))


def test_planted_feet_stay_put_on_anny(anny_rig):
    """Scaling the root by leg length alone lets Anny's planted feet slide (her legs are
    not SMPL's, proportion by proportion); with the walk's contacts they stay put."""
    from avatarforge.backend.motion.locomotion import locomotion

    names, parents, rest = anny_rig
    clip = locomotion("walk", 3.0, 30.0)
    ankles = [names.index(b) for b, j in rigs.preset_map("anny", names).items() if j in ("left_ankle",
                                                                                         "right_ankle")]
    joints = forward_kinematics(clip.rotations, clip.trans)
    from avatarforge.backend.motion.ops import foot_contacts
    contacts = foot_contacts(joints, 30.0)
    assert contacts.mean() > 0.3
    free = tracks_heads(retarget(clip.rotations, clip.trans, normalise_target("anny")), names, parents, rest)
    locked = tracks_heads(retarget(clip.rotations, clip.trans, normalise_target("anny"), contacts),
                          names, parents, rest)
    assert planted_ankle_speed_mm(free, ankles, contacts) > 1.0          # the slide this fixes
    assert planted_ankle_speed_mm(locked, ankles, contacts) < 0.5
    # Still a walk: the body travels most of the way, and nothing jumps from frame to frame.
    root = names.index("root")
    travel = np.linalg.norm(locked[-1, root, :2] - locked[0, root, :2])
    assert travel > 0.6 * np.linalg.norm(free[-1, root, :2] - free[0, root, :2])
    steps = [np.linalg.norm(np.diff(h[:, root, :2], axis=0), axis=-1) for h in (free, locked)]
    assert np.abs(steps[1] - steps[0]).max() < 0.01
