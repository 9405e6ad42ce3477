"""Motion files with known content, for tests: a BVH writer, a CMU-style
31-joint skeleton built on SMPL's reference geometry (so an SMPL motion has an
exact BVH twin), optional A-pose rest, and AMASS-style npz files."""
from __future__ import annotations

import io

import numpy as np

from avatarforge.backend.core.axes import Y_UP_TO_Z_UP, z_up_to_y_up
from avatarforge.backend.core import rotations as R
from avatarforge.backend.motion.skeleton import J, reference_rest_positions, rest_trans

# CMU's 31 joints: (name, parent name, SMPL joint it stands for or None, where an
# unmapped joint sits: fraction of the way from its parent to the SMPL joint named last).
CMU_JOINTS = [
    ("Hips", None, "pelvis", None),
    ("LHipJoint", "Hips", None, ("pelvis", "left_hip", 0.5)),
    ("LeftUpLeg", "LHipJoint", "left_hip", None),
    ("LeftLeg", "LeftUpLeg", "left_knee", None),
    ("LeftFoot", "LeftLeg", "left_ankle", None),
    ("LeftToeBase", "LeftFoot", "left_foot", None),
    ("RHipJoint", "Hips", None, ("pelvis", "right_hip", 0.5)),
    ("RightUpLeg", "RHipJoint", "right_hip", None),
    ("RightLeg", "RightUpLeg", "right_knee", None),
    ("RightFoot", "RightLeg", "right_ankle", None),
    ("RightToeBase", "RightFoot", "right_foot", None),
    ("LowerBack", "Hips", "spine1", None),
    ("Spine", "LowerBack", "spine2", None),
    ("Spine1", "Spine", "spine3", None),
    ("Neck", "Spine1", "neck", None),
    ("Neck1", "Neck", None, ("neck", "head", 0.5)),
    ("Head", "Neck1", "head", None),
    ("LeftShoulder", "Spine1", "left_collar", None),
    ("LeftArm", "LeftShoulder", "left_shoulder", None),
    ("LeftForeArm", "LeftArm", "left_elbow", None),
    ("LeftHand", "LeftForeArm", "left_wrist", None),
    ("LeftFingerBase", "LeftHand", None, ("left_wrist", "left_hand", 0.6)),
    ("LFingers", "LeftFingerBase", None, ("left_wrist", "left_hand", 1.0)),
    ("LThumb", "LeftHand", None, ("left_wrist", "left_hand", 0.4)),
    ("RightShoulder", "Spine1", "right_collar", None),
    ("RightArm", "RightShoulder", "right_shoulder", None),
    ("RightForeArm", "RightArm", "right_elbow", None),
    ("RightHand", "RightForeArm", "right_wrist", None),
    ("RightFingerBase", "RightHand", None, ("right_wrist", "right_hand", 0.6)),
    ("RFingers", "RightFingerBase", None, ("right_wrist", "right_hand", 1.0)),
    ("RThumb", "RightHand", None, ("right_wrist", "right_hand", 0.4)),
]
ARM_CHAINS = {"left": ("left_shoulder", "left_elbow", "left_wrist", "left_hand"),
              "right": ("right_shoulder", "right_elbow", "right_wrist", "right_hand")}


def a_pose_rotation(side: str, degrees: float = 45.0) -> np.ndarray:
    """Y-up rotation that lowers a T-pose arm of `side` by `degrees` (about the forward axis +Z)."""
    sign = -1.0 if side == "left" else 1.0
    return R.axis_angle_to_matrix(np.array([0.0, 0.0, sign * np.radians(degrees)]))


def _rest_y_up(a_pose_degrees: float) -> dict[str, np.ndarray]:
    """SMPL reference joint positions in Y-up (pelvis at the origin), arms lowered when asked."""
    pts = z_up_to_y_up(reference_rest_positions() - reference_rest_positions()[0])
    out = {n: pts[J[n]].copy() for n in J}
    if a_pose_degrees:
        for side, chain in ARM_CHAINS.items():
            a = a_pose_rotation(side, a_pose_degrees)
            pivot = pts[J[chain[0]]]
            for n in chain[1:]:
                out[n] = pivot + a @ (pts[J[n]] - pivot)
    return out


def write_bvh(names: list[str], parents: list[int], offsets: np.ndarray, euler_degrees: np.ndarray,
              root_positions: np.ndarray, frame_time: float, order: str = "ZXY",
              end_sites: dict[int, np.ndarray] | None = None) -> str:
    """BVH text: the root has 6 channels (position then rotation in `order`),
    every other joint 3 rotation channels; euler_degrees is (T, K, 3) in `order`."""
    end_sites = end_sites or {}
    children: dict[int, list[int]] = {i: [] for i in range(len(names))}
    for i, p in enumerate(parents):
        if p >= 0:
            children[p].append(i)
    rot_channels = " ".join(f"{a}rotation" for a in order)
    out = ["HIERARCHY"]

    def emit(i: int, depth: int) -> None:
        pad = "\t" * depth
        kind = "ROOT" if parents[i] < 0 else "JOINT"
        out.append(f"{pad}{kind} {names[i]}")
        out.append(f"{pad}{{")
        out.append(f"{pad}\tOFFSET {offsets[i][0]:.6f} {offsets[i][1]:.6f} {offsets[i][2]:.6f}")
        if parents[i] < 0:
            out.append(f"{pad}\tCHANNELS 6 Xposition Yposition Zposition {rot_channels}")
        else:
            out.append(f"{pad}\tCHANNELS 3 {rot_channels}")
        for c in children[i]:
            emit(c, depth + 1)
        if not children[i]:
            e = end_sites.get(i, offsets[i] * 0.5 if np.linalg.norm(offsets[i]) > 0 else np.array([0, 0.05, 0]))
            out.extend([f"{pad}\tEnd Site", f"{pad}\t{{", f"{pad}\t\tOFFSET {e[0]:.6f} {e[1]:.6f} {e[2]:.6f}",
                        f"{pad}\t}}"])
        out.append(f"{pad}}}")

    emit(0, 0)
    out += ["MOTION", f"Frames: {len(euler_degrees)}", f"Frame Time: {frame_time:.8f}"]
    for t in range(len(euler_degrees)):
        vals = list(root_positions[t]) + list(euler_degrees[t, 0])
        for i in range(1, len(names)):
            vals += list(euler_degrees[t, i])
        out.append(" ".join(f"{v:.6f}" for v in vals))
    return "\n".join(out) + "\n"


def cmu_bvh_from_smpl(rotations: np.ndarray, trans: np.ndarray, fps: float, unit_m: float = 0.0254 / 0.45,
                      a_pose_degrees: float = 0.0, order: str = "ZXY",
                      names: dict[str, str] | None = None, up: str = "Y", yaw_degrees: float = 0.0) -> str:
    """A CMU-style 31-joint BVH (Y up, in `unit_m` metres per unit) playing the
    SMPL motion (rotations (T, 24, 3), trans (T, 3) pelvis, Z up) exactly: its
    rest geometry is the reference skeleton's, with the arms lowered by
    `a_pose_degrees` when asked (the rotations are then compensated, so the
    world pose is unchanged). SMPL's hand joints must be identity (CMU's
    finger joints are not mapped). `names` renames joints (e.g. to Mixamo's);
    up="Z" writes a Z-up file (offsets, positions and rotations in our frame),
    turned by `yaw_degrees` about Z (the rest pose then faces elsewhere than -Y)."""
    rest = _rest_y_up(a_pose_degrees)
    index = {n: i for i, (n, *_rest) in enumerate(CMU_JOINTS)}
    parents = [-1 if p is None else index[p] for _, p, _, _ in CMU_JOINTS]
    pos = np.zeros((len(CMU_JOINTS), 3))
    for i, (name, _, smpl, where) in enumerate(CMU_JOINTS):
        if smpl is not None:
            pos[i] = rest[smpl]
        else:
            a, b, f = where
            pos[i] = rest[a] + f * (rest[b] - rest[a])
    offsets = np.array([pos[i] - (pos[parents[i]] if parents[i] >= 0 else 0) for i in range(len(pos))])
    local = R.axis_angle_to_matrix(np.asarray(rotations, np.float64))      # (T, 24, 3, 3) = BVH locals (Y up)
    n = len(local)
    mats = np.broadcast_to(np.eye(3), (n, len(CMU_JOINTS), 3, 3)).copy()
    for i, (_, _, smpl, _) in enumerate(CMU_JOINTS):
        if smpl is not None:
            mats[:, i] = local[:, J[smpl]]
    if a_pose_degrees:
        # World pose unchanged: the shoulder's world rotation becomes R·A⁻¹ and below it A·L·A⁻¹.
        for side, chain in ARM_CHAINS.items():
            a = a_pose_rotation(side, a_pose_degrees)
            for k, smpl in enumerate(chain[:3]):
                i = next(i for i, c in enumerate(CMU_JOINTS) if c[2] == smpl)
                mats[:, i] = mats[:, i] @ a.T if k == 0 else a @ mats[:, i] @ a.T
    root = z_up_to_y_up(np.asarray(trans, np.float64)) / unit_m
    if up == "Z":      # the same motion expressed in a Z-up world: conjugate rotations, rotate vectors
        world = R.axis_angle_to_matrix(np.array([0.0, 0.0, np.radians(yaw_degrees)])) @ Y_UP_TO_Z_UP
        mats = world @ mats @ world.T
        offsets = offsets @ world.T
        root = np.asarray(trans, np.float64) @ (world @ Y_UP_TO_Z_UP.T).T / unit_m
    euler = R.matrix_to_euler(order, mats)
    joint_names = [n for n, *_ in CMU_JOINTS]
    if names:
        joint_names = [names.get(n, n) for n in joint_names]
    return write_bvh(joint_names, parents, offsets / unit_m, euler, root, 1.0 / fps, order)


def smpl_test_motion(frames: int = 40, fps: float = 30.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth, varied SMPL motion (hands identity) standing on the floor, walking forward."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / fps
    amp = rng.uniform(0.1, 0.5, size=(24, 3)) * rng.choice([-1, 1], size=(24, 3))
    freq = rng.uniform(0.5, 2.0, size=(24, 3))
    rot = amp[None] * np.sin(2 * np.pi * freq[None] * t[:, None, None] + rng.uniform(0, 6, (24, 3)))
    rot[:, [J["left_hand"], J["right_hand"]]] = 0.0
    rot[:, J["pelvis"]] = [0.0, 0.4, 0.0] + 0.1 * np.sin(t)[:, None]
    trans = np.tile(rest_trans(), (frames, 1))
    trans[:, 1] -= 0.9 * t
    trans[:, 2] += 0.02 * np.sin(4 * t)
    return rot, trans


def amass_npz(rotations: np.ndarray, trans_pelvis: np.ndarray, fps: float, layout: str = "smplh",
              rate_key: str = "mocap_framerate", hand_middle: np.ndarray | None = None) -> bytes:
    """An AMASS-style npz of an SMPL-24 motion in the given pose layout (72 / 156 / 165
    values per frame), root orientation in AMASS's Z-up world, trans = pelvis - J_pelvis."""
    from avatarforge.backend.motion.skeleton import REST_ROTATION, model_space_pelvis

    r = np.asarray(rotations, np.float64).copy()
    n = len(r)
    r[:, 0] = R.matrix_to_axis_angle(REST_ROTATION @ R.axis_angle_to_matrix(r[:, 0]))
    if layout == "smpl":
        poses = r.reshape(n, 72)
    else:
        extra = 0 if layout == "smplh" else 3
        full = np.zeros((n, 22 + extra + 30, 3))
        full[:, :22] = r[:, :22]
        if hand_middle is not None:
            full[:, 22 + extra + 3] = hand_middle
            full[:, 22 + extra + 15 + 3] = hand_middle
        poses = full.reshape(n, -1)
    buf = io.BytesIO()
    np.savez(buf, poses=poses.astype(np.float32), trans=(np.asarray(trans_pelvis) - model_space_pelvis()).astype(
        np.float32), betas=np.zeros(16, np.float32), gender=np.array("female"), **{rate_key: np.float64(fps)})
    return buf.getvalue()


__all__ = ["CMU_JOINTS", "a_pose_rotation", "amass_npz", "cmu_bvh_from_smpl", "smpl_test_motion",
           "write_bvh"]
