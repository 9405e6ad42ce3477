"""The reference SMPL-24 skeleton and forward kinematics.

Motions carry rotations only (and the pelvis position); joint positions come
from forward kinematics on a reference skeleton: SMPL's neutral mean-shape
joints (rounded), which is what AvatarCLIP's evaluation and previews use. The
joint frames are SMPL's (world-aligned in SMPL's Y-up rest pose), so in our
Z-up world each joint's rest frame is the Y-up -> Z-up rotation (axes.py).

Forward kinematics is written here with torch (differentiable: text -> motion
optimises through it) and accepts numpy too.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from avatarforge.protocol import SMPL24_JOINTS, SMPL24_PARENTS, Skeleton

from ..core.axes import Y_UP_TO_Z_UP, y_up_to_z_up

JOINT_NAMES = SMPL24_JOINTS
PARENTS = np.asarray(SMPL24_PARENTS, dtype=np.int64)
NUM_JOINTS = 24
J = {name: i for i, name in enumerate(JOINT_NAMES)}
FOOT_JOINTS = ("left_ankle", "right_ankle", "left_foot", "right_foot")     # the joints a sole lies under

# SMPL neutral template joints (T-pose), Y up, metres, facing +Z, left at +X,
# rounded to millimetres; the sole of the feet is at y = -1.155.
_SMPL_NEUTRAL_JOINTS_Y_UP = np.array([
    [-0.002, -0.223, 0.028], [0.070, -0.315, 0.021], [-0.068, -0.314, 0.024], [-0.003, -0.109, 0.002],
    [0.104, -0.690, 0.017], [-0.106, -0.694, 0.015], [0.005, 0.024, 0.003], [0.089, -1.084, -0.027],
    [-0.092, -1.089, -0.023], [0.002, 0.074, 0.029], [0.120, -1.138, 0.097], [-0.119, -1.141, 0.100],
    [-0.002, 0.294, -0.007], [0.077, 0.207, -0.002], [-0.082, 0.206, -0.006], [0.005, 0.363, 0.048],
    [0.171, 0.245, -0.014], [-0.171, 0.245, -0.019], [0.415, 0.235, -0.033], [-0.416, 0.234, -0.036],
    [0.673, 0.234, -0.028], [-0.673, 0.233, -0.033], [0.759, 0.225, -0.040], [-0.756, 0.223, -0.042]])
_SOLE_Y = -1.155
# The rest orientation of every SMPL joint frame in our world (local -> Z-up world).
REST_ROTATION = Y_UP_TO_Z_UP.copy()


@lru_cache(maxsize=1)
def reference_rest_positions() -> np.ndarray:
    """(24, 3) rest (T-pose) joint positions, Z up, soles on z = 0."""
    pts = _SMPL_NEUTRAL_JOINTS_Y_UP.copy()
    pts[:, 1] -= _SOLE_Y
    out = y_up_to_z_up(pts)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=1)
def reference_rest_matrices() -> np.ndarray:
    """(24, 4, 4) armature-space rest frames of the reference skeleton (Blender
    `bone.matrix_local`): every rotation is the SMPL joint frame (REST_ROTATION),
    every translation the T-pose joint position. An armature with these frames
    takes SMPL's local rotations as pose-bone rotations verbatim."""
    rest = np.repeat(np.eye(4)[None], NUM_JOINTS, axis=0)
    rest[:, :3, :3] = REST_ROTATION
    rest[:, :3, 3] = reference_rest_positions()
    rest.setflags(write=False)
    return rest


def reference_skeleton() -> Skeleton:
    """The reference skeleton as a protocol Skeleton (Motion.rest_skeleton)."""
    return Skeleton(list(JOINT_NAMES), PARENTS.astype(np.int32),
                    reference_rest_matrices().astype(np.float32))


def reference_offsets(rest_positions: np.ndarray | None = None) -> np.ndarray:
    """(24, 3) each joint's rest offset from its parent (the root's is its position), Z up."""
    rest = reference_rest_positions() if rest_positions is None else np.asarray(rest_positions, np.float64)
    offsets = rest.copy()
    offsets[1:] -= rest[PARENTS[1:]]
    return offsets


def pelvis_height() -> float:
    """Rest height of the pelvis above the ground on the reference skeleton (m)."""
    return float(reference_rest_positions()[0, 2])


def forward_kinematics(rotations: Any, trans: Any, rest_positions: Any = None,
                       return_frames: bool = False) -> Any:
    """Joint positions (..., 24, 3) for local axis-angle `rotations` (..., 24, 3)
    and pelvis positions `trans` (..., 3), Z up.

    Torch in, torch out (differentiable); numpy in, numpy out. With
    `return_frames`, also the joints' world rotation matrices (..., 24, 3, 3)
    (joint frame -> Z-up world)."""
    import roma
    import torch

    is_numpy = not isinstance(rotations, torch.Tensor)
    rot = torch.as_tensor(np.asarray(rotations) if is_numpy else rotations)
    dtype = rot.dtype if rot.dtype in (torch.float32, torch.float64) else torch.float32
    rot = rot.to(dtype)
    tr = torch.as_tensor(np.array(trans) if is_numpy else trans, dtype=dtype, device=rot.device)
    rest = reference_rest_positions() if rest_positions is None else np.asarray(rest_positions)
    # Offsets are expressed in the parent's rest frame, which is REST_ROTATION for every SMPL joint.
    offsets_world = torch.as_tensor(reference_offsets(rest), dtype=dtype, device=rot.device)
    rest_rot = torch.as_tensor(REST_ROTATION, dtype=dtype, device=rot.device)
    offsets_local = offsets_world @ rest_rot            # R^T · o for each row
    local = roma.rotvec_to_rotmat(rot)                  # (..., 24, 3, 3)
    # Posed level by level of the tree (9 batched products, not 23): the capture solver
    # evaluates this hundreds of times per chunk. Slots hold joints in the order posed.
    frames_so_far = (rest_rot @ local[..., 0, :, :]).unsqueeze(-3)
    positions_so_far = tr.unsqueeze(-2)
    slot = {0: 0}
    for joints, parents in _TREE_LEVELS:
        index = torch.as_tensor([slot[int(q)] for q in parents], device=rot.device)
        parent_frames = frames_so_far[..., index, :, :]
        posed = positions_so_far[..., index, :] + (parent_frames @ offsets_local[joints].unsqueeze(-1)).squeeze(-1)
        for j in joints.tolist():
            slot[j] = len(slot)
        frames_so_far = torch.cat([frames_so_far, parent_frames @ local[..., joints, :, :]], dim=-3)
        positions_so_far = torch.cat([positions_so_far, posed], dim=-2)
    order = torch.as_tensor([slot[j] for j in range(NUM_JOINTS)], device=rot.device)
    positions, frames = positions_so_far[..., order, :], frames_so_far[..., order, :, :]
    if is_numpy:
        positions, frames = positions.detach().cpu().numpy(), frames.detach().cpu().numpy()
    return (positions, frames) if return_frames else positions


def _tree_levels() -> list[tuple[np.ndarray, np.ndarray]]:
    """Joints grouped by depth in the tree, with their parents (root excluded)."""
    depth = np.zeros(NUM_JOINTS, np.int64)
    for j in range(1, NUM_JOINTS):
        depth[j] = depth[PARENTS[j]] + 1
    return [(np.flatnonzero(depth == d), PARENTS[depth == d]) for d in range(1, int(depth.max()) + 1)]


_TREE_LEVELS = _tree_levels()


def model_space_pelvis() -> np.ndarray:
    """SMPL's neutral pelvis joint (3,) in SMPL's model space (Y up, as the model
    file has it): SMPL adds `transl` to this point, which rotations leave in place."""
    return _SMPL_NEUTRAL_JOINTS_Y_UP[0].copy()


def height_above_soles(joint: str) -> float:
    """How high `joint` stands above the soles in the reference rest pose (m). For an
    ankle or a ball ("foot") joint this is how far its sole lies below it in any pose
    (the foot is rigid below them): each foot's own value, read off the skeleton,
    whose soles are on z = 0 (the ankles are 0.071 and 0.066 m up, not one rounded figure)."""
    return float(reference_rest_positions()[J[joint], 2])


def rest_trans() -> np.ndarray:
    """The pelvis position (3,) of the reference skeleton standing at the origin."""
    return reference_rest_positions()[0].copy()
