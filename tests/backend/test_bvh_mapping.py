"""BVH skeletons onto SMPL-24 without a joint_map: the DAZ/Poser naming of the
CMU conversion, and unknown namings mapped from topology and rest geometry
(Y/Z up, T/A pose, twist bones, fingers, eyes, a pelvis bone), the mapping
reported and overridable, non-humanoids refused with what is missing."""
from __future__ import annotations

import numpy as np
import pytest

from avatarforge.backend.config import BackendConfig
from avatarforge.backend.core import rotations as R
from avatarforge.backend.core.axes import Y_UP_TO_Z_UP, z_up_to_y_up
from avatarforge.backend.motion.bvh import bvh_forward_kinematics, bvh_to_smpl, parse_bvh
from avatarforge.backend.motion.skeleton import J, REST_ROTATION, forward_kinematics, reference_rest_positions
from avatarforge.backend.motion.skeleton_map import NotHumanoid, map_humanoid, side_hint
from avatarforge.backend.pipelines import JobContext, load_pipelines
from avatarforge.protocol import ErrorCode, ProtocolError
from tests.support.synthetic_motion import a_pose_rotation, smpl_test_motion, write_bvh


# -- the CMU "Daz-friendly" conversion --------------------------------------------------------------
# Its hierarchy as distributed (Y up, facing +Z, T-pose, the file's own units): joint, parent, OFFSET,
# End Site OFFSET of a leaf. The root's channels are "Xposition Yposition Zposition Zrotation Yrotation
# Xrotation", every other joint's "Zrotation Xrotation Yrotation".
DAZ_BODY = [
    ("hip", None, (0, 0, 0), None),
    ("abdomen", "hip", (0, 20.6881, -0.73152), None),
    ("chest", "abdomen", (0, 11.7043, -0.48768), None),
    ("neck", "chest", (0, 22.1894, -2.19456), None),
    ("head", "neck", (-0.24384, 7.07133, 1.2192), None),
    ("leftEye", "head", (4.14528, 8.04674, 8.04672), (1, 0, 0)),
    ("rightEye", "head", (-3.6576, 8.04674, 8.04672), (1, 0, 0)),
]
DAZ_ARM = [   # left side; the right side mirrors x
    ("Collar", "chest", (2.68224, 19.2634, -4.8768), None),
    ("Shldr", "Collar", (8.77824, -1.95073, 1.46304), None),
    ("ForeArm", "Shldr", (28.1742, -1.7115, 0.48768), None),
    ("Hand", "ForeArm", (22.5879, 0.773209, 7.07136), None),
    ("Thumb1", "Hand", (1.2192, -0.487915, 3.41376), None),
    ("Thumb2", "Thumb1", (3.37035, -0.52449, 3.41376), (1.78271, -1.18214, 1.43049)),
    ("Index1", "Hand", (7.75947, 0.938293, 5.60832), None),
    ("Index2", "Index1", (2.54057, -0.884171, 1.56538), (1.62519, -0.234802, 1.16502)),
    ("Mid1", "Hand", (8.24714, 1.18213, 3.41376), None),
    ("Mid2", "Mid1", (3.10165, -0.590103, 1.0647), (2.48547, -0.328903, 0.83742)),
    ("Ring1", "Hand", (8.82822, 0.546677, 1.51678), None),
    ("Ring2", "Ring1", (2.60934, -0.819778, -0.0198488), (2.33842, -0.294052, 0.168128)),
    ("Pinky1", "Hand", (8.27202, -0.0477905, -0.4584), None),
    ("Pinky2", "Pinky1", (1.82734, -0.647385, -0.700984), (1.69225, -0.51767, -0.607171)),
]
DAZ_LEG = [
    ("Buttock", "hip", (8.77824, 4.35084, 1.2192), None),
    ("Thigh", "Buttock", (0, -1.70687, -2.19456), None),
    ("Shin", "Thigh", (0, -36.8199, 0.73152), None),
    ("Foot", "Shin", (-0.73152, -45.1104, -5.12064), (1.1221, -3.69964, 12.103)),
]
DAZ_EXPECTED = {"hip": "pelvis", "abdomen": "spine1", "chest": "spine3", "neck": "neck", "head": "head",
                **{f"{s}{part}": f"{side}_{joint}" for s, side in (("l", "left"), ("r", "right"))
                   for part, joint in (("Thigh", "hip"), ("Shin", "knee"), ("Foot", "ankle"), ("Collar", "collar"),
                                       ("Shldr", "shoulder"), ("ForeArm", "elbow"), ("Hand", "wrist"))}}


def daz_skeleton() -> list[tuple[str, str | None, np.ndarray, np.ndarray | None]]:
    """DAZ joints in file (depth-first) order: right arm, left arm under the chest, then the legs."""
    out = [(n, p, np.array(o, float), None if e is None else np.array(e, float)) for n, p, o, e in DAZ_BODY]

    def sided(rows, s, mirror):
        m = np.array([-1.0 if mirror else 1.0, 1.0, 1.0])
        top = {"chest", "hip"}
        return [(s + n, p if p in top else s + p, np.array(o, float) * m, None if e is None else np.array(e) * m)
                for n, p, o, e in rows]

    return out + sided(DAZ_ARM, "r", True) + sided(DAZ_ARM, "l", False) + sided(DAZ_LEG, "r", True) + \
        sided(DAZ_LEG, "l", False)


def daz_bvh(frames: int = 12, seed: int = 0, rename: dict[str, str] | None = None) -> str:
    """A DAZ-named BVH with the real conversion's channel orders and random (±35°) rotations on every joint."""
    rng = np.random.default_rng(seed)
    joints = daz_skeleton()
    rename = rename or {}
    children: dict[str | None, list[int]] = {}
    for i, (_, p, _, _) in enumerate(joints):
        children.setdefault(p, []).append(i)
    lines = ["HIERARCHY"]

    def emit(i: int, depth: int) -> None:
        name, parent, offset, end = joints[i]
        pad = "  " * depth
        lines.append(f"{pad}{'ROOT' if parent is None else 'JOINT'} {rename.get(name, name)}")
        lines.append(pad + "{")
        lines.append(f"{pad}  OFFSET {offset[0]:g} {offset[1]:g} {offset[2]:g}")
        lines.append(f"{pad}  CHANNELS " + ("6 Xposition Yposition Zposition Zrotation Yrotation Xrotation"
                                            if parent is None else "3 Zrotation Xrotation Yrotation"))
        for c in children.get(name, []):
            emit(c, depth + 1)
        if end is not None:
            lines.extend([f"{pad}  End Site", pad + "  {", f"{pad}    OFFSET {end[0]:g} {end[1]:g} {end[2]:g}",
                          pad + "  }"])
        lines.append(pad + "}")

    emit(0, 0)
    t = np.arange(frames) / 30.0
    lines += ["MOTION", f"Frames: {frames}", "Frame Time: 0.0333333"]
    for f in range(frames):
        values = [3.0 * t[f], 35.0 + 0.5 * np.sin(t[f]), 20.0 * t[f]] + list(rng.uniform(-35, 35, 3 * len(joints)))
        lines.append(" ".join(f"{v:.5f}" for v in values))
    return "\n".join(lines) + "\n"


def direction(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = b - a
    return d / np.linalg.norm(d, axis=-1, keepdims=True)


# SMPL bones whose posed direction must equal the file's exactly (rest-pose aware retargeting).
LIMB_BONES = [(f"{s}_{a}", f"{s}_{b}") for s in ("left", "right")
              for a, b in (("hip", "knee"), ("knee", "ankle"), ("collar", "shoulder"), ("shoulder", "elbow"),
                           ("elbow", "wrist"))]


def assert_limbs_follow_the_file(text: str, imp) -> None:
    clip = parse_bvh(text)
    _, pos = bvh_forward_kinematics(clip)
    file_z = pos @ (Y_UP_TO_Z_UP if imp.info["up_axis"] == "Y" else np.eye(3)).T
    index = {smpl: clip.names.index(name) for name, smpl in imp.info["joint_mapping"].items()}
    got = forward_kinematics(imp.rotations.astype(np.float64), imp.trans.astype(np.float64))
    for a, b in LIMB_BONES:
        want = direction(file_z[:, index[a]], file_z[:, index[b]])
        have = direction(got[:, J[a]], got[:, J[b]])
        angle = np.arccos(np.clip(np.sum(want * have, axis=-1), -1, 1))
        assert angle.max() < 1e-3, (a, b, angle.max())


def test_daz_naming_imports_and_follows_the_files_rotations():
    text = daz_bvh()
    imp = bvh_to_smpl(text)
    assert imp.info["skeleton"] == "daz" and imp.info["mapping_method"] == "names:daz"
    assert imp.info["joint_mapping"] == {n: DAZ_EXPECTED[n] for n in parse_bvh(text).names if n in DAZ_EXPECTED}
    assert {"lButtock", "rThumb1", "lPinky2", "leftEye"} <= set(imp.info["unmapped"])
    assert imp.info["up_axis"] == "Y" and 1.3 < imp.info["source_height_m"] < 2.0
    assert_limbs_follow_the_file(text, imp)
    # The pelvis turns as the file's hip does: SMPL's root frame R0·local against the hip's world delta.
    rot_w, _ = bvh_forward_kinematics(parse_bvh(text))
    hip = Y_UP_TO_Z_UP @ rot_w[:, 0] @ Y_UP_TO_Z_UP.T
    pelvis = REST_ROTATION @ R.axis_angle_to_matrix(imp.rotations[:, 0].astype(np.float64))
    turn_smpl = pelvis @ np.swapaxes(pelvis[:1], -1, -2)
    turn_file = hip @ np.swapaxes(hip[:1], -1, -2)
    assert R.angle_between_matrices(turn_smpl, turn_file).max() < 1e-4


def test_daz_known_rotation_lifts_the_left_arm():
    """One frame, all channels zero but lShldr's Zrotation = 90°: the left upper arm, a T-pose bone along +X
    (Y up), turns about the forward axis to point up, so SMPL's left elbow is right above its shoulder."""
    text = daz_bvh(frames=1)
    clip = parse_bvh(text)
    shldr = clip.joints[clip.names.index("lShldr")]
    row = np.zeros(clip.frames.shape[1])
    row[1] = 35.0                                                   # hip height, file units
    row[shldr.first_channel + shldr.channels.index("Zrotation")] = 90.0
    head, _ = text.split("MOTION")
    imp = bvh_to_smpl(head + "MOTION\nFrames: 1\nFrame Time: 0.0333333\n" + " ".join(f"{v:g}" for v in row) + "\n")
    got = forward_kinematics(imp.rotations.astype(np.float64), imp.trans.astype(np.float64))[0]
    forearm = clip.joints[clip.names.index("lForeArm")].offset                # the upper arm bone, Y up
    lifted = Y_UP_TO_Z_UP @ R.euler_to_matrix("Z", np.array([[90.0]]))[0] @ forearm
    upper = got[J["left_elbow"]] - got[J["left_shoulder"]]
    cos = upper @ lifted / np.linalg.norm(upper) / np.linalg.norm(lifted)
    assert np.degrees(np.arccos(min(cos, 1.0))) < 0.05
    assert upper[2] > 0.95 * np.linalg.norm(upper)                          # it points up
    right = got[J["right_elbow"]] - got[J["right_shoulder"]]
    assert abs(right[2]) < 0.1 * np.linalg.norm(right)                      # the right arm stays out to the side


def test_names_that_contradict_the_geometry_are_reported(clip):
    """A mirrored file (every Left joint on the body's right): names are kept, and a warning says so."""
    from tests.support.synthetic_motion import cmu_bvh_from_smpl

    rot, trans = clip
    text = cmu_bvh_from_smpl(rot[:4], trans[:4], 30.0)
    assert bvh_to_smpl(text).info["mapping_warnings"] == []
    swapped = text.replace("Left", "TMP").replace("Right", "Left").replace("TMP", "Right")
    imp = bvh_to_smpl(swapped)
    assert imp.info["mapping_method"] == "names:cmu"
    warnings = imp.info["mapping_warnings"]
    assert any("'LeftUpLeg' is named left but sits on the body's right side" in w for w in warnings), warnings
    assert len(warnings) == 16                  # hip, knee, ankle, foot, collar, shoulder, elbow, wrist x 2


def test_daz_skeleton_renamed_maps_by_shape_to_the_same_joints():
    """The real DAZ proportions (collar in line with the arm, bent elbows, no toes) under made-up names."""
    names = [n for n, *_ in daz_skeleton()]
    rename = {n: f"bone{(7 * i + 3) % len(names):02d}" for i, n in enumerate(names)}
    by_name = bvh_to_smpl(daz_bvh(seed=4))
    by_shape = bvh_to_smpl(daz_bvh(seed=4, rename=rename))
    assert by_shape.info["mapping_method"] == "topology"
    assert by_shape.info["joint_mapping"] == {rename[n]: j for n, j in by_name.info["joint_mapping"].items()}
    assert np.allclose(by_shape.rotations, by_name.rotations, atol=1e-6)
    assert np.allclose(by_shape.trans, by_name.trans, atol=1e-6)


# -- unknown namings of an SMPL/CMU-like skeleton -----------------------------------------------------
def _fingers(side: str) -> list[tuple]:
    sign = 1.0 if side == "L" else -1.0
    full = "left" if side == "L" else "right"
    out = []
    # Spread symmetrically across SMPL's wrist -> hand line, so their mean direction is SMPL's hand bone
    # (the wrist's rest correction is then none and the import exact); spread is [metres] across.
    for f, (spread, start) in enumerate([(0.03, 0.5), (0.015, 1.0), (0.0, 1.0), (-0.015, 1.0), (-0.03, 0.5)]):
        parent = f"wrist_{side}"
        for k in range(3):
            name = f"finger{f}{k}_{side}"
            where = (f"{full}_wrist", f"{full}_hand", start) if k == 0 else None
            extra = np.array([spread]) if k == 0 else np.array([sign * 0.03, 0.0, 0.0])
            out.append((name, parent, None, where, extra))
            parent = name
    return out


def humanoid_spec(pelvis_bone: bool = False, end_joints: bool = False) -> list[tuple]:
    """(key, parent key, SMPL joint or None, (a, b, fraction) placing an unmapped joint between SMPL
    joints a and b, extra Y-up offset in metres) for a CMU-like humanoid with a hip bone on each leg, a
    side twist bone on thighs and forearms, an in-chain twist in the upper arms, eyes, toes, 5x3 fingers;
    end_joints: Mixamo-style end joints (head top, toe ends) instead of eyes."""
    spec = [("root", None, "pelvis", None, None)]
    legs_parent = "root"
    if pelvis_bone:      # DAZ Genesis style: one pelvis bone carries both legs
        spec.append(("pelvisbone", "root", None, ("pelvis", "spine1", 0.0), np.array([0.0, -0.03, 0.0])))
        legs_parent = "pelvisbone"
    for s, side in (("L", "left"), ("R", "right")):
        spec += [(f"hipjoint_{s}", legs_parent, None, ("pelvis", f"{side}_hip", 0.5), None),
                 (f"thigh_{s}", f"hipjoint_{s}", f"{side}_hip", None, None),
                 (f"thightwist_{s}", f"thigh_{s}", None, (f"{side}_hip", f"{side}_knee", 0.5), None),
                 (f"knee_{s}", f"thigh_{s}", f"{side}_knee", None, None),
                 (f"ankle_{s}", f"knee_{s}", f"{side}_ankle", None, None),
                 (f"toe_{s}", f"ankle_{s}", f"{side}_foot", None, None)]
    spec += [("spine1", "root", "spine1", None, None), ("spine2", "spine1", "spine2", None, None),
             ("spine3", "spine2", "spine3", None, None), ("neck", "spine3", "neck", None, None),
             ("head", "neck", "head", None, None)]
    if end_joints:
        spec += [("headtop_end", "head", None, ("head", "head", 0.0), np.array([0.0, 0.2, 0.02]))]
        spec += [(f"toe_end_{s}", f"toe_{s}", None, (f"{side}_foot", f"{side}_foot", 0.0),
                  np.array([0.0, -0.01, 0.06])) for s, side in (("L", "left"), ("R", "right"))]
    else:
        spec += [("eye_L", "head", None, ("head", "head", 0.0), np.array([0.03, 0.04, 0.08])),
                 ("eye_R", "head", None, ("head", "head", 0.0), np.array([-0.03, 0.04, 0.08]))]
    for s, side in (("L", "left"), ("R", "right")):
        spec += [(f"collar_{s}", "spine3", f"{side}_collar", None, None),
                 (f"shoulder_{s}", f"collar_{s}", f"{side}_shoulder", None, None),
                 (f"uparmtwist_{s}", f"shoulder_{s}", None, (f"{side}_shoulder", f"{side}_elbow", 0.5), None),
                 (f"elbow_{s}", f"uparmtwist_{s}", f"{side}_elbow", None, None),
                 (f"forearmtwist_{s}", f"elbow_{s}", None, (f"{side}_elbow", f"{side}_wrist", 0.5), None),
                 (f"wrist_{s}", f"elbow_{s}", f"{side}_wrist", None, None)] + _fingers(s)
    return spec


FRENCH = {"root": "Bassin", "pelvisbone": "Pelvis2", "spine1": "Dos1", "spine2": "Dos2", "spine3": "Poitrine",
          "neck": "Cou", "head": "Tete", "eye_L": "OeilG", "eye_R": "OeilD", "headtop_end": "Sommet",
          "toe_end_L": "BoutG", "toe_end_R": "BoutD"}
for _s, _fr in (("L", "G"), ("R", "D")):
    FRENCH.update({f"{k}_{_s}": f"{v}{_fr}" for k, v in (
        ("hipjoint", "Hanche"), ("thigh", "Cuisse"), ("thightwist", "CuisseRot"), ("knee", "Genou"),
        ("ankle", "Cheville"), ("toe", "Orteil"), ("collar", "Clavicule"), ("shoulder", "Epaule"),
        ("uparmtwist", "BrasRot"), ("elbow", "Coude"), ("forearmtwist", "AvantBrasRot"), ("wrist", "Poignet"))})
    FRENCH.update({f"finger{f}{k}_{_s}": f"Doigt{f}{k}{_fr}" for f in range(5) for k in range(3)})


# DAZ Genesis names for the same skeleton (read by name: "names:daz").
GENESIS = {"root": "hip", "pelvisbone": "pelvis", "spine1": "abdomenLower", "spine2": "chestLower",
           "spine3": "chestUpper", "neck": "neckLower", "head": "head", "eye_L": "lEye", "eye_R": "rEye",
           "headtop_end": "head_end", "toe_end_L": "lToe_end", "toe_end_R": "rToe_end"}
for _s, _g in (("L", "l"), ("R", "r")):
    GENESIS.update({f"{k}_{_s}": f"{_g}{v}" for k, v in (
        ("hipjoint", "Buttock"), ("thigh", "ThighBend"), ("thightwist", "ThighTwist"), ("knee", "Shin"),
        ("ankle", "Foot"), ("toe", "Toe"), ("collar", "Collar"), ("shoulder", "ShldrBend"),
        ("uparmtwist", "ShldrTwist"), ("elbow", "ForearmBend"), ("forearmtwist", "ForearmTwist"),
        ("wrist", "Hand"))})
    GENESIS.update({f"finger{f}{k}_{_s}": f"{_g}{('Thumb', 'Index', 'Mid', 'Ring', 'Pinky')[f]}{k + 1}"
                    for f in range(5) for k in range(3)})


def humanoid_bvh(rot: np.ndarray, trans: np.ndarray, *, a_pose: float = 0.0, up: str = "Y", yaw: float = 0.0,
                 names: str = "j", seed: int = 0, pelvis_bone: bool = False, end_joints: bool = False,
                 unit_m: float = 0.01) -> tuple[str, dict[str, str]]:
    """The SMPL motion (rot (T, 24, 3), trans pelvis (T, 3), Z up) played exactly by a humanoid BVH with
    extra bones (humanoid_spec), siblings in a shuffled order, named "j<random>" or in French; unmapped
    in-chain bones keep identity, leaf extras turn randomly. Returns the text and {key: file name}."""
    rng = np.random.default_rng(seed)
    spec = humanoid_spec(pelvis_bone, end_joints)
    ref = z_up_to_y_up(reference_rest_positions() - reference_rest_positions()[0])
    pos = {}
    for key, parent, smpl, where, extra in spec:
        if smpl is not None:
            p = ref[J[smpl]].copy()
        elif where is not None:
            a, b, f = where
            p = ref[J[a]] + f * (ref[J[b]] - ref[J[a]])
        else:
            p = pos[parent].copy()
        if extra is not None and len(extra) == 1:        # a finger base: spread across the hand, forward-back
            hand = ref[J[where[1]]] - ref[J[where[0]]]
            across = np.array([0.0, 0.0, 1.0]) - hand * hand[2] / hand.dot(hand)
            extra = extra[0] * across / np.linalg.norm(across)
        pos[key] = p + (extra if extra is not None else 0.0)
    kids: dict[str | None, list[str]] = {}
    for key, parent, *_ in spec:
        kids.setdefault(parent, []).append(key)
    for k in kids:
        rng.shuffle(kids[k])
    order: list[str] = []
    stack = ["root"]
    while stack:
        k = stack.pop()
        order.append(k)
        stack.extend(reversed(kids.get(k, [])))
    info = {key: (parent, smpl) for key, parent, smpl, *_ in spec}
    arm_root = {"L": "shoulder_L", "R": "shoulder_R"}

    def in_arm(key: str, s: str) -> bool:
        while key is not None:
            if key == arm_root[s]:
                return True
            key = info[key][0]
        return False

    if a_pose:        # lower each arm about its shoulder; the rotations below compensate (same world pose)
        for s, side in (("L", "left"), ("R", "right")):
            a = a_pose_rotation(side, a_pose)
            for key in order:
                if in_arm(key, s):
                    pos[key] = pos[arm_root[s]] + a @ (pos[key] - pos[arm_root[s]])
    local = R.axis_angle_to_matrix(np.asarray(rot, np.float64))
    n = len(local)
    mats = np.empty((n, len(order), 3, 3))
    for i, key in enumerate(order):
        smpl = info[key][1]
        if smpl is not None:
            mats[:, i] = local[:, J[smpl]]
        elif not kids.get(key):
            mats[:, i] = R.axis_angle_to_matrix(rng.uniform(-0.6, 0.6, (n, 3)))     # leaves: anything
        else:
            mats[:, i] = np.eye(3)                                                  # in-chain: identity
        for s, side in (("L", "left"), ("R", "right")):
            if a_pose and in_arm(key, s):
                a = a_pose_rotation(side, a_pose)
                mats[:, i] = mats[:, i] @ a.T if key == arm_root[s] else a @ mats[:, i] @ a.T
    parents = [-1 if info[k][0] is None else order.index(info[k][0]) for k in order]
    offsets = np.array([pos[k] - (pos[info[k][0]] if info[k][0] is not None else 0.0) for k in order])
    root = z_up_to_y_up(np.asarray(trans, np.float64))
    if up == "Z":
        world = R.axis_angle_to_matrix(np.array([0.0, 0.0, np.radians(yaw)])) @ Y_UP_TO_Z_UP
        mats = world @ mats @ world.T
        offsets = offsets @ world.T
        root = np.asarray(trans, np.float64) @ (world @ Y_UP_TO_Z_UP.T).T
    perm = rng.permutation(len(order))
    table = {"fr": FRENCH, "genesis": GENESIS}
    label = {k: (f"j{perm[i]}" if names == "j" else table[names][k]) for i, k in enumerate(order)}
    stubs = {i: offsets[i] * 0.1 / unit_m for i, k in enumerate(order) if k.endswith("_end") or "_end_" in k}
    text = write_bvh([label[k] for k in order], parents, offsets / unit_m, R.matrix_to_euler("ZXY", mats),
                     root / unit_m, 1 / 30.0, "ZXY", end_sites=stubs)
    return text, label


def same_up_to_height(a: np.ndarray, b: np.ndarray) -> float:
    d = a - b
    d[..., 2] -= np.median(d[..., 2])
    return float(np.abs(d).max())


@pytest.fixture(scope="module")
def clip():
    return smpl_test_motion(36, 30.0, seed=7)


@pytest.mark.parametrize("a_pose, up, yaw, names, pelvis_bone, end_joints, seed", [
    (0.0, "Y", 0.0, "j", False, False, 1), (45.0, "Y", 0.0, "j", False, True, 2),
    (30.0, "Z", 0.0, "fr", False, False, 3), (0.0, "Z", 90.0, "j", True, True, 4),
    (20.0, "Z", -140.0, "fr", True, False, 5), (40.0, "Y", 0.0, "j", True, False, 6)])
def test_unknown_naming_maps_by_topology_and_geometry(clip, a_pose, up, yaw, names, pelvis_bone, end_joints,
                                                      seed):
    rot, trans = clip
    text, label = humanoid_bvh(rot, trans, a_pose=a_pose, up=up, yaw=yaw, names=names, seed=seed,
                               pelvis_bone=pelvis_bone, end_joints=end_joints)
    imp = bvh_to_smpl(text)
    expected = {label[k]: smpl for k, _, smpl, *_ in humanoid_spec(pelvis_bone, end_joints) if smpl is not None}
    assert imp.info["mapping_method"] == "topology" and imp.info["skeleton"] == "topology"
    assert imp.info["joint_mapping"] == expected
    assert imp.info["up_axis"] == up
    ev = imp.info["mapping_evidence"]
    assert {"pelvis", "spine", "head", "facing", "sides", "left_leg", "right_leg", "left_arm", "right_arm"} <= set(ev)
    assert "feet point forward" in ev["facing"] and label["wrist_L"] in ev["left_arm"]
    got = forward_kinematics(imp.rotations.astype(np.float64), imp.trans.astype(np.float64))
    want = forward_kinematics(rot, trans)
    if up == "Z" and yaw:
        want = want @ R.axis_angle_to_matrix(np.array([0.0, 0.0, np.radians(yaw)])).T
    assert same_up_to_height(got, want) < 1e-4


@pytest.mark.parametrize("pelvis_bone", [False, True])
def test_daz_genesis_names_are_read_by_name(clip, pelvis_bone):
    rot, trans = clip
    text, label = humanoid_bvh(rot, trans, a_pose=45.0, names="genesis", seed=8, pelvis_bone=pelvis_bone)
    imp = bvh_to_smpl(text)
    assert imp.info["mapping_method"] == "names:daz" and imp.info["mapping_evidence"] == {}
    assert imp.info["joint_mapping"] == {label[k]: smpl for k, _, smpl, *_ in humanoid_spec(pelvis_bone)
                                         if smpl is not None}
    got = forward_kinematics(imp.rotations.astype(np.float64), imp.trans.astype(np.float64))
    assert same_up_to_height(got, forward_kinematics(rot, trans)) < 1e-4


def test_joint_map_overrides_part_of_the_topology_mapping(clip):
    rot, trans = clip
    text, label = humanoid_bvh(rot, trans, names="j", seed=11)
    auto = bvh_to_smpl(text)
    over = bvh_to_smpl(text, joint_map={label["wrist_L"]: "left_elbow", label["elbow_L"]: None})
    assert over.info["mapping_method"] == "topology+joint_map" and over.info["skeleton"] == "topology+joint_map"
    mapping = over.info["joint_mapping"]
    assert mapping[label["wrist_L"]] == "left_elbow" and label["elbow_L"] not in mapping
    assert "left_wrist" not in mapping.values()
    assert {k: v for k, v in mapping.items() if k not in (label["wrist_L"], label["elbow_L"])} == \
        {k: v for k, v in auto.info["joint_mapping"].items() if k not in (label["wrist_L"], label["elbow_L"])}
    got = forward_kinematics(over.rotations.astype(np.float64), over.trans.astype(np.float64))
    want = forward_kinematics(rot, trans)
    assert same_up_to_height(got[:, :J["left_elbow"]], want[:, :J["left_elbow"]]) < 1e-4
    assert same_up_to_height(got, want) > 1e-2
    with pytest.raises(ProtocolError) as err:
        bvh_to_smpl(text, joint_map={"LeftPaw": "left_wrist"})
    assert err.value.field == "joint_map" and "LeftPaw" in err.value.message


# -- not humanoid ----------------------------------------------------------------------------------------
def chain_bvh() -> str:
    offsets = np.array([[0, 0, 0], [0, 0.5, 0], [0, 0.5, 0], [0, 0.5, 0]])
    return write_bvh(["A", "B", "C", "D"], [-1, 0, 1, 2], offsets, np.zeros((2, 4, 3)), np.zeros((2, 3)), 1 / 30)


def quadruped_bvh() -> str:
    """A dog-like tree, Z up, body along +Y: hips with two hind legs and a tail, a chest with two front
    legs and a neck; names no scheme knows."""
    rows = [("hips", -1, (0, 0, 0.6)), ("hindL", 0, (0.12, -0.05, -0.05)), ("hindL2", 1, (0, 0.02, -0.25)),
            ("hindL3", 2, (0, -0.02, -0.25)), ("hindR", 0, (-0.12, -0.05, -0.05)), ("hindR2", 4, (0, 0.02, -0.25)),
            ("hindR3", 5, (0, -0.02, -0.25)), ("tail1", 0, (0, -0.1, 0.05)), ("tail2", 7, (0, -0.2, 0.05)),
            ("back", 0, (0, 0.3, 0.02)), ("chest", 9, (0, 0.3, 0.02)), ("frontL", 10, (0.1, 0.05, -0.08)),
            ("frontL2", 11, (0, 0, -0.25)), ("frontL3", 12, (0, 0.02, -0.22)), ("frontR", 10, (-0.1, 0.05, -0.08)),
            ("frontR2", 14, (0, 0, -0.25)), ("frontR3", 15, (0, 0.02, -0.22)), ("neck", 10, (0, 0.1, 0.15)),
            ("skull", 17, (0, 0.1, 0.1))]
    names = [r[0] for r in rows]
    parents = [r[1] for r in rows]
    offsets = np.array([r[2] for r in rows], float)
    return write_bvh(names, parents, offsets, np.zeros((2, len(rows), 3)), np.tile([0, 0, 0.6], (2, 1)), 1 / 30)


@pytest.mark.parametrize("make, part", [(chain_bvh, "legs"), (quadruped_bvh, "legs")])
def test_non_humanoid_is_bad_request_saying_what_is_missing(make, part):
    with pytest.raises(ProtocolError) as err:
        bvh_to_smpl(make())
    e = err.value
    assert e.code == ErrorCode.BAD_REQUEST and e.field == "data"
    assert "cannot map this skeleton's joints" in e.message and part in e.message, e.message
    assert "joint_map" in e.message and "--joint-map" in e.message, e.message
    assert part in e.details["not_found"] and "pelvis" in e.details["missing_joints"]


def test_map_humanoid_reports_what_it_cannot_find():
    with pytest.raises(NotHumanoid) as err:
        map_humanoid(["a", "b"], [-1, 0], np.array([[0, 0, 0], [0, 1, 0.0]]))
    assert err.value.missing == ["legs", "arms"]


@pytest.mark.parametrize("name, side", [("lCollar", "left"), ("rShldr", "right"), ("LeftUpLeg", "left"),
                                        ("thigh_r", "right"), ("upperarm.L", "left"), ("Bip01 R Thigh", "right"),
                                        ("左腕", "left"), ("CuisseD", None), ("leg", None), ("Root", None)])
def test_side_hints_from_names(name, side):
    assert side_hint(name) == side


def test_names_decide_sides_when_the_feet_do_not_point_anywhere(clip):
    """No toes, feet end straight down: left/right come from the side words, and the evidence says so."""
    rot, trans = clip
    text, label = humanoid_bvh(rot, trans, names="j", seed=3)
    clip_ = parse_bvh(text)
    rest = np.zeros((len(clip_.joints), 3))
    for i, j in enumerate(clip_.joints):
        rest[i] = j.offset if j.parent < 0 else rest[j.parent] + j.offset
    names = clip_.names
    parents = [j.parent for j in clip_.joints]
    toes = {label["toe_L"], label["toe_R"]}
    keep = [i for i, n in enumerate(names) if n not in toes]
    sided = {label[k]: ("Left" if k.endswith("_L") else "Right") + k for k in label}
    new_names = [sided.get(names[i], names[i]) for i in keep]
    new_parents = [keep.index(parents[i]) if parents[i] >= 0 else -1 for i in keep]
    found = map_humanoid(new_names, new_parents, rest[keep], [[] for _ in keep])
    assert "names" in found.evidence["facing"] and "side words" in found.evidence["sides"]
    by = found.by_name(new_names)
    assert by[sided[label["thigh_L"]]] == "left_hip" and by[sided[label["wrist_R"]]] == "right_wrist"
    assert np.allclose(found.forward, [0, 0, 1], atol=0.05)       # Y-up file facing +Z


# -- the pipeline reports the mapping ---------------------------------------------------------------------
def test_motion_import_puts_the_mapping_in_the_motion_params(clip):
    rot, trans = clip
    text, label = humanoid_bvh(rot[:10], trans[:10], names="fr", seed=9)
    pipe = load_pipelines()["motion_import"]
    config = BackendConfig()
    params = pipe.normalise({"data": text.encode(), "filename": "fr.bvh",
                             "joint_map": {label["elbow_R"]: None}}, config)
    (motion,) = pipe.run(params, JobContext(config=config))
    assert motion.params["mapping_method"] == "topology+joint_map"
    assert motion.params["joint_mapping"][label["thigh_L"]] == "left_hip"
    assert label["elbow_R"] not in motion.params["joint_mapping"]
    assert "left_leg" in motion.params["mapping_evidence"]
    (daz,) = pipe.run(pipe.normalise({"data": daz_bvh(4).encode(), "filename": "01_01.bvh"}, config),
                      JobContext(config=config))
    assert daz.params["mapping_method"] == "names:daz" and daz.params["joint_mapping"]["lShin"] == "left_knee"
    assert daz.params["mapping_evidence"] == {}


# -- the same mapper on a target rig (armature heads and bone axes) ---------------------------------------
@pytest.mark.parametrize("drop, seed", [(0.0, 1), (40.0, 2)])
def test_map_rig_finds_a_renamed_blender_rig(drop, seed):
    from avatarforge.backend.motion import rigs
    from avatarforge.backend.motion.skeleton_map import map_rig
    from tests.backend.test_retarget import blender_like_rig

    names, parents, mats, _ = blender_like_rig(arm_drop_degrees=drop, seed=seed, prefix="")
    expected = {n: j for n, j in rigs.preset_map("mixamo", names).items() if not j.endswith("_hand")}
    renamed = [f"bone_{(5 * i + 2) % len(names)}" for i in range(len(names))]
    found = map_rig(renamed, parents, mats)
    assert found.by_name(renamed) == {renamed[names.index(n)]: j for n, j in expected.items()}
    assert np.allclose(found.forward, [0, -1, 0], atol=0.1) and np.allclose(found.up, [0, 0, 1], atol=0.1)


def test_damaged_humanoids_map_or_get_not_humanoid(clip):
    """Joints dropped, positions jittered or collapsed, End Sites moved: the mapper answers with a
    mapping or NotHumanoid, never another exception (a BVH import must fail as BAD_REQUEST)."""
    rot, trans = clip
    base = parse_bvh(humanoid_bvh(rot[:2], trans[:2], names="j", seed=2, a_pose=40.0, end_joints=True)[0])
    names, parents = base.names, [j.parent for j in base.joints]
    rest = np.zeros((len(names), 3))
    for i, j in enumerate(base.joints):
        rest[i] = j.offset if j.parent < 0 else rest[j.parent] + j.offset
    rng = np.random.default_rng(5)
    outcomes = {"mapped": 0, "refused": 0}
    for _ in range(200):
        keep = [i for i in range(len(names)) if i == 0 or rng.random() > 0.15]
        index = {i: k for k, i in enumerate(keep)}

        def kept_parent(i: int) -> int:
            p = parents[i]
            while p >= 0 and p not in index:
                p = parents[p]
            return index[p] if p >= 0 else -1

        pos = rest[keep] + rng.normal(0, rng.choice([0.0, 1.0, 5.0, 50.0]), (len(keep), 3))
        if rng.random() < 0.3:
            pos[rng.integers(0, len(keep))] = pos[0]
        ends = [[pos[k] + rng.normal(0, 5.0, 3)] if rng.random() < 0.3 else [] for k in range(len(keep))]
        try:
            map_humanoid([names[i] for i in keep], [kept_parent(i) for i in keep], pos, ends)
            outcomes["mapped"] += 1
        except NotHumanoid as exc:
            assert exc.missing and str(exc)
            outcomes["refused"] += 1
    assert outcomes["mapped"] > 0 and outcomes["refused"] > 0, outcomes
