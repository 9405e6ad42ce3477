"""A source skeleton's motion (BVH, ...) onto SMPL-24: the other direction of
retargeting (retarget.py drives a target rig from SMPL-24), with the same
rest-pose corrections, and the clip put on the floor."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avatarforge.protocol import SMPL24_JOINTS

from ..core import rotations as rot
from .retarget import SWING_CHILD, SWING_INHERIT, rest_correction
from .skeleton import FOOT_JOINTS, PARENTS, REST_ROTATION, J, forward_kinematics, height_above_soles, \
    reference_rest_positions


@dataclass
class SourceSkeleton:
    """A posed source skeleton in our world (Z up): per joint world rotations
    (T, K, 3, 3) and positions (T, K, 3); its rest pose (all local rotations
    identity) positions (K, 3) and world rotations (K, 3, 3); parents; and the
    map {source joint index: SMPL joint}."""
    names: list[str]
    parents: np.ndarray
    rest_positions: np.ndarray
    rest_rotations: np.ndarray
    world_rotations: np.ndarray
    world_positions: np.ndarray
    mapping: dict[int, str]
    bone_directions: np.ndarray      # (K, 3) rest direction of each joint's bone (towards its children)


def _body_frame(left: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Columns: left, back (= up x left), up, orthonormalised with up kept."""
    up = up / np.linalg.norm(up)
    left = left - up * np.dot(left, up)
    left = left / np.linalg.norm(left)
    return np.stack([left, np.cross(up, left), up], axis=1)


def source_to_smpl(src: SourceSkeleton) -> tuple[np.ndarray, np.ndarray]:
    """SMPL-24 local axis-angle rotations (T, 24, 3) and pelvis positions (T, 3)
    (leg-length normalised, not yet grounded) reproducing the source's motion.

    Rest-pose aware, mirroring `retarget`: an SMPL joint j mapped to source joint
    k gets G_j = E_k · C_j · R0 with E_k = B_k · B_k,restᵀ the source joint's world
    delta and C_j the rest-pose correction: the whole-body frame F (source rest
    facing and up vs SMPL's) for the torso, and for limbs the swing taking F·(SMPL
    T-pose bone direction) onto the source rest bone direction, after F. SMPL
    joints without a source joint keep identity (they follow their parent)."""
    by_joint = {j: k for k, j in sorted(src.mapping.items(), reverse=True)}   # first source joint wins
    ref = reference_rest_positions()
    need = ("pelvis", "left_hip", "right_hip")
    if any(n not in by_joint for n in need):
        raise ValueError(f"source skeleton lacks {[n for n in need if n not in by_joint]}")
    rp = src.rest_positions
    top = next((n for n in ("head", "neck", "spine3", "spine2", "spine1") if n in by_joint), None)
    if top is None:
        raise ValueError("source skeleton has no spine, neck or head joint to tell which way is up")
    # Whole-body rest frames (left = hips' axis, up = pelvis -> top), measured alike on both skeletons.
    f_src = _body_frame(rp[by_joint["left_hip"]] - rp[by_joint["right_hip"]],
                        rp[by_joint[top]] - rp[by_joint["pelvis"]])
    f_smpl = _body_frame(ref[J["left_hip"]] - ref[J["right_hip"]], ref[J[top]] - ref[J["pelvis"]])
    body = f_src @ f_smpl.T
    corr: dict[str, np.ndarray] = {}
    for j, name in enumerate(SMPL24_JOINTS):
        if name not in by_joint:
            continue
        k = by_joint[name]
        if name in SWING_CHILD:
            child = SWING_CHILD[name]
            d_smpl = body @ (ref[J[child]] - ref[j])
            d_src = rp[by_joint[child]] - rp[k] if child in by_joint else src.bone_directions[k]
            corr[name] = rest_correction(d_smpl, d_src, body @ np.array([0.0, -1.0, 0.0])) @ body \
                if np.linalg.norm(d_src) > 1e-9 else body
        elif name in SWING_INHERIT:
            corr[name] = corr.get(SMPL24_JOINTS[PARENTS[j]], body)
        else:
            corr[name] = body
    n = len(src.world_rotations)
    world = np.empty((n, 24, 3, 3))
    for j, name in enumerate(SMPL24_JOINTS):
        if name in by_joint:
            k = by_joint[name]
            delta = src.world_rotations[:, k] @ src.rest_rotations[k].T
            world[:, j] = delta @ (corr[name] @ REST_ROTATION)
        else:
            world[:, j] = world[:, PARENTS[j]] if j else REST_ROTATION
    local = np.empty_like(world)
    local[:, 0] = REST_ROTATION.T @ world[:, 0]
    local[:, 1:] = np.swapaxes(world[:, PARENTS[1:]], -1, -2) @ world[:, 1:]
    ankles = [by_joint[a] for a in ("left_ankle", "right_ankle") if a in by_joint]
    pelvis = by_joint["pelvis"]
    if ankles:
        src_leg = rp[pelvis, 2] - np.mean(rp[ankles, 2])
        ref_leg = ref[0, 2] - np.mean(ref[[J["left_ankle"], J["right_ankle"]], 2])
    else:
        src_leg, ref_leg = rp[pelvis, 2] - rp[:, 2].min(), ref[0, 2]
    if not src_leg > 0:
        raise ValueError("source skeleton's pelvis is not above its feet in the rest pose")
    trans = src.world_positions[:, pelvis] * (ref_leg / src_leg)
    return rot.matrix_to_axis_angle(local).astype(np.float32), trans.astype(np.float32)


def grounded(rotations: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """trans moved vertically so the clip's lowest foot point (sole under the
    ankle or ball, on the reference skeleton) touches z = 0."""
    joints = forward_kinematics(np.asarray(rotations, np.float64), np.asarray(trans, np.float64))
    floor = min(float(np.min(joints[:, J[j], 2])) - height_above_soles(j) for j in FOOT_JOINTS)
    out = np.array(trans, dtype=np.float32, copy=True)
    out[:, 2] -= floor
    return out
