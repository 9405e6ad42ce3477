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
6. With foot contacts, a horizontal shift of that path keeps planted ankles in
   place on the target (lock_planted_feet).

The rig comes resolved from target_rigs.py (a <target rig> param, validated by
targets.py); to_smpl.py does the other direction with the same corrections.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from avatarforge.protocol import RetargetedTracks

from ..core import rotations as rot
from .skeleton import PARENTS, REST_ROTATION, J, forward_kinematics, reference_rest_positions
from .target_rigs import TargetRig, bad_target, resolve_target

# SMPL joints whose bone direction (towards the child joint) is swing-corrected.
SWING_CHILD = {f"{side}_{j}": f"{side}_{c}" for side in ("left", "right") for j, c in (
    ("hip", "knee"), ("knee", "ankle"), ("ankle", "foot"), ("collar", "shoulder"), ("shoulder", "elbow"),
    ("elbow", "wrist"), ("wrist", "hand"))}
# SMPL end joints that reuse their parent's correction.
SWING_INHERIT = ("left_foot", "right_foot", "left_hand", "right_hand")


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
        raise bad_target("target.rest_matrices", f"the pelvis bone is {rig_leg:.3f} m above the ankles; rest "
                   "matrices must be Z up, in metres, with the rig standing")
    return float(rig_leg / ref_leg)


def retarget(rotations: Any, trans: Any, target: dict[str, Any] | TargetRig,
             contacts: Any = None) -> RetargetedTracks:
    """SMPL-24 motion (rotations (T, 24, 3) local axis-angle, trans (T, 3) pelvis
    positions, Z up) as pose-bone tracks of the target rig (see module doc). With
    `contacts` (T, 2: left, right foot planted) the root is shifted so that planted
    feet stay where they landed on the target too (lock_planted_feet)."""
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
    wanted = rig.rest[root, :3, 3] + leg_scale(rig) * (t - reference_rest_positions()[J["pelvis"]])
    if contacts is not None and not rig.verbatim:
        wanted = wanted + lock_planted_feet(rig, root, world, wanted, np.asarray(contacts, bool))
    locations = _root_locations(rig, root, world, wanted)
    return RetargetedTracks(rig=rig.rig, bone_names=[rig.bone_names[i] for i in driven],
                            rotations=quats.astype(np.float32), root_bone=rig.bone_names[root],
                            root_locations=locations.astype(np.float32),
                            unmapped=[n for k, n in enumerate(rig.bone_names) if k not in set(driven)])


def lock_planted_feet(rig: TargetRig, root: int, world: dict[int, np.ndarray], root_heads: np.ndarray,
                      contacts: np.ndarray) -> np.ndarray:
    """A horizontal shift (T, 3) of the root that keeps each planted ankle where it
    landed. Scaling the root's path by leg length alone lets a target's feet slide
    (its legs are not the reference's, proportion by proportion); this is step 6 of
    the method: while a foot is planted the shift holds it at its landing point
    (both planted: the mean of what each asks; when one lifts, the other is held
    from where it is), and between contacts it holds still, so the target covers
    ground at its own stride."""
    ankles = [next((i for i, n in enumerate(rig.bone_names) if rig.mapping.get(n) == joint), None)
              for joint in ("left_ankle", "right_ankle")]
    if any(a is None for a in ankles) or contacts.shape != (len(root_heads), 2):
        return np.zeros_like(root_heads)
    n = len(root_heads)
    root_chain = _posed_heads_of_chain(rig, root, world, n)
    feet = np.stack([root_heads + _posed_heads_of_chain(rig, a, world, n) - root_chain for a in ankles], axis=1)
    shift = np.zeros((n, 3))
    current = np.zeros(2)
    anchors: list[np.ndarray | None] = [None, None]
    for f in range(n):
        lifted = any(anchors[k] is not None and not contacts[f, k] for k in range(2))
        for k in range(2):
            if not contacts[f, k]:
                anchors[k] = None
            elif anchors[k] is None or lifted:
                # Where it lands (or, when the other foot lifts, where it is now) as shifted so
                # far: the shift never jumps; what both feet disagreed on stays with this one.
                anchors[k] = feet[f, k, :2] + current
        planted = [anchors[k] - feet[f, k, :2] for k in range(2) if anchors[k] is not None]
        if planted:
            current = np.mean(planted, axis=0)
        shift[f, :2] = current
    return shift


def _root_locations(rig: TargetRig, root: int, world: dict[int, np.ndarray], wanted: np.ndarray) -> np.ndarray:
    """The root bone's pose `location` (T, 3) that puts its head at `wanted` (T, 3)."""
    p = int(rig.parents[root])
    if p < 0:
        # Blender: head = rest head + P_root · location.
        return (wanted - rig.rest[root, :3, 3]) @ rig.rest[root, :3, :3]
    # With posed ancestors: head = M_p · P_p⁻¹ P_root · location (homogeneous); solve for location.
    heads = _posed_heads_of_chain(rig, p, world, len(wanted))
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


def target_rest_positions(target: dict[str, Any] | None) -> np.ndarray | None:
    """(24, 3) rest joint positions with the TARGET rig's bone lengths laid along the
    reference skeleton's T-pose directions (Z up, soles on z = 0): the skeleton a
    capture solve keeps constant when the avatar is known, so that the solved local
    rotations keep SMPL's meaning. A bone whose two ends do not both map onto the rig
    keeps the reference length times the rig's leg scale. None without a target."""
    if target is None:
        return None
    rig = resolve_target(target)
    ref = reference_rest_positions()
    scale = leg_scale(rig)
    heads: dict[int, np.ndarray] = {}
    for bone, joint in rig.mapping.items():
        heads.setdefault(J[joint], rig.rest[rig.bone_names.index(bone), :3, 3])
    out = np.zeros_like(ref)
    out[0] = ref[0] * scale
    for j in range(1, len(ref)):
        p = int(PARENTS[j])
        direction = ref[j] - ref[p]
        length = np.linalg.norm(direction)
        if j in heads and p in heads and np.linalg.norm(heads[j] - heads[p]) > 1e-4:
            target_length = float(np.linalg.norm(heads[j] - heads[p]))
        else:
            target_length = float(length * scale)
        out[j] = out[p] + direction / max(length, 1e-9) * target_length
    return out


def camera_on_target(world_to_camera: Any, actor_scale: float, target: dict[str, Any] | None) -> np.ndarray:
    """A camera solved in the actor's world (metres of the actor) moved into the world
    of the motion as keyed on `target` (or on the reference skeleton without one):
    root motion is scaled actor -> reference (1 / actor_scale) -> target (leg_scale),
    so the camera's centre scales the same way about the world origin."""
    pose = np.array(world_to_camera, np.float64)
    s = (1.0 if target is None else leg_scale(resolve_target(target))) / float(actor_scale)
    pose[:3, 3] *= s          # C' = s C  <=>  t' = -R C' = s t
    return pose
