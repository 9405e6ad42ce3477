"""Motion core: rotation conversions, resampling, trim/loop/concatenate, mirroring,
foot contacts, and the Motion built by make_motion."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from avatarforge.backend.motion import ops
from avatarforge.backend.core import rotations as R
from avatarforge.backend.motion.build import make_motion
from avatarforge.backend.motion.skeleton import J, forward_kinematics, reference_rest_positions, rest_trans
from avatarforge.protocol import SMPL24_JOINTS, Motion

RNG = np.random.default_rng(7)


def random_rotvecs(*shape: int) -> np.ndarray:
    return Rotation.random(int(np.prod(shape)), random_state=3).as_rotvec().reshape(*shape, 3)


# -- rotations -------------------------------------------------------------------------
def test_quaternions_are_wxyz_and_round_trip():
    rv = random_rotvecs(50)
    q = R.axis_angle_to_quat(rv)
    scipy_wxyz = R.xyzw_to_wxyz(Rotation.from_rotvec(rv).as_quat())
    assert np.allclose(np.abs(np.sum(q * scipy_wxyz, axis=-1)), 1.0)      # same rotation, w first
    assert np.allclose(R.quat_to_axis_angle(q), rv, atol=1e-9)
    m = R.axis_angle_to_matrix(rv)
    assert np.allclose(m, Rotation.from_rotvec(rv).as_matrix())
    assert np.allclose(R.matrix_to_axis_angle(m), rv, atol=1e-9)
    assert np.allclose(R.quat_to_matrix(R.matrix_to_quat(m)), m)
    assert np.allclose(R.wxyz_to_xyzw(R.xyzw_to_wxyz(q)), q)
    # Products compose like matrices (apply b, then a).
    assert np.allclose(R.quat_to_matrix(R.quat_multiply(q[:1], q)), m[:1] @ m)


@pytest.mark.parametrize("order", ["ZXY", "ZYX", "XYZ", "YXZ"])
def test_euler_orders_match_intrinsic_convention(order):
    angles = RNG.uniform(-80, 80, size=(20, 3))
    m = R.euler_to_matrix(order, angles)
    assert np.allclose(m, Rotation.from_euler(order, angles, degrees=True).as_matrix())
    assert np.allclose(R.euler_to_matrix(order, R.matrix_to_euler(order, m)), m, atol=1e-9)
    # Intrinsic: first channel is the outermost factor.
    a = {ax: Rotation.from_euler(ax, angles[0, k], degrees=True).as_matrix() for k, ax in enumerate(order)}
    assert np.allclose(m[0], a[order[0]] @ a[order[1]] @ a[order[2]])


def test_slerp_and_swing():
    q0 = R.axis_angle_to_quat(np.zeros(3))
    q1 = R.axis_angle_to_quat(np.array([0.0, 0.0, 2.0]))
    assert np.allclose(R.quat_to_axis_angle(R.slerp_quat(q0, q1, 0.25)), [0, 0, 0.5])
    assert np.allclose(R.quat_to_axis_angle(R.slerp_quat(q0, -q1, 0.5)), [0, 0, 1.0])   # sign-agnostic
    for a, b in [([1, 0, 0], [0, 0, 1]), ([0, 1, 0], [0, -1, 0]), ([1, 2, 3], [-3, 1, 0.5])]:
        s = R.swing_between(a, b)
        assert np.allclose(s @ (np.array(a) / np.linalg.norm(a)), np.array(b) / np.linalg.norm(b))
        assert np.isclose(np.linalg.det(s), 1.0)


def test_quat_continuity_removes_sign_flips():
    q = R.axis_angle_to_quat(np.linspace([0, 0, 0], [0, 0, 6.0], 40))   # passes angle pi: sign flips
    c = R.quat_continuous(q * np.where(np.arange(40) % 3 == 0, -1.0, 1.0)[:, None])
    assert np.all(np.sum(c[1:] * c[:-1], axis=-1) > 0)
    assert np.allclose(R.quat_to_matrix(c), R.quat_to_matrix(q))


# -- resampling and editing --------------------------------------------------------------
def spinning_walk(frames: int, fps: float, omega: float = 1.3, speed: float = 1.1) -> tuple[np.ndarray, np.ndarray]:
    """The pelvis turns at `omega` rad/s about its up axis and walks forward at `speed` m/s;
    the left elbow bends with sin(t). Every value is a known function of time."""
    t = np.arange(frames) / fps
    rot = np.zeros((frames, 24, 3))
    rot[:, J["pelvis"], 1] = omega * t                 # SMPL frame y = up
    rot[:, J["left_elbow"], 1] = 0.8 * np.sin(t)
    trans = np.tile(rest_trans(), (frames, 1))
    trans[:, 1] -= speed * t                           # facing -Y
    return rot, trans


def test_resample_120_to_30_keeps_timing():
    rot, trans = spinning_walk(241, 120.0)                        # 2 s
    r30, t30 = ops.resample(rot, trans, 120.0, 30.0)
    assert len(r30) == 61 == ops.resampled_frame_count(241, 120, 30)
    t = np.arange(61) / 30.0
    assert np.allclose(r30[:, J["pelvis"], 1], 1.3 * t, atol=1e-5)
    assert np.allclose(r30[:, J["left_elbow"], 1], 0.8 * np.sin(t), atol=1e-5)
    assert np.allclose(t30[:, 1], rest_trans()[1] - 1.1 * t, atol=1e-5)


def test_resample_non_integer_ratio_interpolates():
    rot, trans = spinning_walk(101, 50.0)                         # 2 s at 50 fps -> 29.97
    r, tr = ops.resample(rot, trans, 50.0, 29.97)
    n = ops.resampled_frame_count(101, 50.0, 29.97)
    assert len(r) == n == 61
    t = np.minimum(np.arange(n) / 29.97, 2.0)    # frame k is at k / fps_out; the last one clamps to the end
    # Slerp of a rotation about one axis is exact; sin(t) under linear-in-angle interpolation is close.
    assert np.allclose(r[:, J["pelvis"], 1], 1.3 * t, atol=1e-5)
    assert np.allclose(r[:, J["left_elbow"], 1], 0.8 * np.sin(t), atol=2e-4)
    assert np.allclose(tr[:, 1], rest_trans()[1] - 1.1 * t, atol=1e-5)


def test_trim_loop_concatenate():
    rot, trans = spinning_walk(61, 30.0)
    r, t = ops.trim(rot, trans, 30.0, 0.5, 1.5)
    assert len(r) == 31 and np.allclose(r[0], rot[15])
    with pytest.raises(ValueError):
        ops.trim(rot, trans, 30.0, 1.5, 0.5)
    r, t = ops.loop(rot, trans, 3)
    assert len(r) == 183
    # Root travel accumulates: each copy starts where the previous ended.
    assert np.isclose(t[61, 1], trans[-1, 1]) and t[-1, 1] < trans[-1, 1] - 2 * 1.1 * 1.9
    r, t = ops.concatenate([(rot, trans), (rot, trans)], blend_frames=10)
    assert len(r) == 61 + 61 - 10
    # The blend is continuous: no frame-to-frame step larger than the clips' own steps.
    steps = np.linalg.norm(np.diff(t, axis=0), axis=1)
    assert steps.max() < 1.5 * 1.1 / 30.0
    jumps = np.abs(np.diff(r[:, J["left_elbow"], 1]))
    assert jumps.max() < 0.1


def test_mirror_reflects_joint_positions():
    rot = random_rotvecs(5, 24) * 0.5
    trans = rest_trans() + RNG.normal(scale=0.2, size=(5, 3))
    mr, mt = ops.mirror(rot, trans)
    # The reference skeleton is a few mm asymmetric: check the reflection on its symmetrised copy.
    flip = np.array([-1.0, 1.0, 1.0])
    rest = reference_rest_positions()
    sym = (rest + rest[ops.MIRROR_INDEX] * flip) / 2
    joints = forward_kinematics(rot, trans, rest_positions=sym)
    mirrored = forward_kinematics(mr.astype(np.float64), mt.astype(np.float64), rest_positions=sym)
    assert np.abs(mirrored - joints[:, ops.MIRROR_INDEX] * flip).max() < 1e-5
    back = ops.mirror(mr, mt)
    assert np.allclose(back[0], rot, atol=1e-6) and np.allclose(back[1], trans, atol=1e-6)


def test_foot_contacts_follow_the_lifted_foot():
    frames, fps = 60, 30.0
    rot = np.zeros((frames, 24, 3))
    # Left hip flexes (knee up) in the middle second; right leg stays planted.
    lift = np.clip(np.sin(np.linspace(0, np.pi, frames)) * 2 - 0.6, 0, None)
    rot[:, J["left_hip"], 0] = -lift
    rot[:, J["left_knee"], 0] = 2 * lift
    joints = forward_kinematics(rot, np.tile(rest_trans(), (frames, 1)))
    c = ops.foot_contacts(joints, fps)
    assert c.shape == (frames, 2) and c.dtype == bool
    assert c[:, 1].all()
    assert c[0, 0] and c[-1, 0] and not c[frames // 2, 0]


def test_make_motion_is_complete_and_wire_safe():
    rot, trans = spinning_walk(31, 30.0)
    m = make_motion("walk", 30.0, rot, trans, {"a": 1}, {"source": "test"})
    assert m.joints.shape == (31, 24, 3) and m.contacts.shape == (31, 2)
    assert m.rest_skeleton.joint_names == list(SMPL24_JOINTS) and m.rest_skeleton.rest_matrices.shape == (24, 4, 4)
    assert np.allclose(m.joints[:, 0], trans, atol=1e-6)
    back = Motion.from_wire(m.to_wire())
    assert np.allclose(back.rotations, m.rotations)
    assert np.array_equal(back.rest_skeleton.rest_matrices, m.rest_skeleton.rest_matrices)
    assert back.retargeted.rig == "smpl24" and back.retargeted.bone_names == list(SMPL24_JOINTS)
    data = json.loads(json.dumps(ops.motion_json(m)))
    assert data["fps"] == 30.0 and len(data["joint_names"]) == 24
    assert np.array(data["joints"]).shape == (31, 24, 3) and np.array(data["poses"]).shape == (31, 24, 3)
    with pytest.raises(ValueError):
        make_motion("bad", 30.0, rot[:, :23], trans, {}, {})
