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
    world_rot: list[Any] = [None] * NUM_JOINTS
    world_pos: list[Any] = [None] * NUM_JOINTS
    world_rot[0] = rest_rot @ local[..., 0, :, :]
    world_pos[0] = tr
    for j in range(1, NUM_JOINTS):
        p = int(PARENTS[j])
        world_pos[j] = world_pos[p] + (world_rot[p] @ offsets_local[j].unsqueeze(-1)).squeeze(-1)
        world_rot[j] = world_rot[p] @ local[..., j, :, :]
    positions = torch.stack(world_pos, dim=-2)
    frames = torch.stack(world_rot, dim=-3)
    if is_numpy:
        positions, frames = positions.detach().cpu().numpy(), frames.detach().cpu().numpy()
    return (positions, frames) if return_frames else positions


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
