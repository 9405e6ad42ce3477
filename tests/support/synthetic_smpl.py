"""Synthetic model files in the SMPL family's formats (DESIGN §8).

Licensed SMPL files are never shipped or downloaded; tests write a small
humanoid in the same format instead: the dictionary smplx's loaders read
(v_template, f, J_regressor, weights, kintree_table, shapedirs, posedirs, plus
the hand PCA of SMPL-H and the landmarks of SMPL-X), Y up, metres, facing +Z,
the left side at +X, joints in smplx's order at human positions. Each joint
gets a short 8-sided tube around its bone, skinned to it and blended with its
parent and child, so the model has multi-joint skin weights, a joint regressor
that recovers the joints exactly, and shape directions that do what their name
says (beta 0: taller, beta 1: broader; the rest are smooth wobbles).

    write_synthetic_model(tmp_path, "smpl")   # tmp_path/smpl/SMPL_NEUTRAL.pkl
    smplx.create(tmp_path, model_type="smpl", gender="neutral")
"""
from __future__ import annotations

import pickle
import sys
import types
from pathlib import Path

import numpy as np

# Body joints shared by the family (smplx.joint_names order), Y up, metres.
BODY = [
    ("pelvis", -1, (0.000, 0.000, 0.000)), ("left_hip", 0, (0.060, -0.085, -0.005)),
    ("right_hip", 0, (-0.060, -0.085, -0.005)), ("spine1", 0, (0.000, 0.110, -0.020)),
    ("left_knee", 1, (0.105, -0.460, 0.000)), ("right_knee", 2, (-0.105, -0.460, 0.000)),
    ("spine2", 3, (0.000, 0.245, 0.000)), ("left_ankle", 4, (0.090, -0.860, -0.040)),
    ("right_ankle", 5, (-0.090, -0.860, -0.040)), ("spine3", 6, (0.000, 0.300, 0.020)),
    ("left_foot", 7, (0.115, -0.915, 0.080)), ("right_foot", 8, (-0.115, -0.915, 0.080)),
    ("neck", 9, (0.000, 0.510, -0.010)), ("left_collar", 9, (0.075, 0.420, -0.005)),
    ("right_collar", 9, (-0.075, 0.420, -0.005)), ("head", 12, (0.000, 0.580, 0.040)),
    ("left_shoulder", 13, (0.175, 0.450, -0.015)), ("right_shoulder", 14, (-0.175, 0.450, -0.015)),
    ("left_elbow", 16, (0.435, 0.440, -0.030)), ("right_elbow", 17, (-0.435, 0.440, -0.030)),
    ("left_wrist", 18, (0.690, 0.445, -0.025)), ("right_wrist", 19, (-0.690, 0.445, -0.025)),
]
SMPL_HANDS = [("left_hand", 20, (0.775, 0.440, -0.030)), ("right_hand", 21, (-0.775, 0.440, -0.030))]
# Finger bases relative to the wrist (left hand; the right mirrors x), palm down, thumb forward (+Z).
FINGERS = [("index", (0.085, -0.005, 0.028)), ("middle", (0.090, -0.005, 0.008)),
           ("pinky", (0.075, -0.008, -0.032)), ("ring", (0.085, -0.007, -0.013)),
           ("thumb", (0.030, -0.015, 0.035))]
RADIUS = {"pelvis": 0.12, "hip": 0.08, "knee": 0.055, "ankle": 0.045, "foot": 0.04, "spine": 0.12, "neck": 0.05,
          "collar": 0.05, "head": 0.095, "shoulder": 0.05, "elbow": 0.04, "wrist": 0.03, "hand": 0.03,
          "jaw": 0.03, "eye": 0.012}
# How far an end joint's tube reaches, and which way (None: along its parent's bone).
ENDS = {"head": (0.20, (0.0, 1.0, 0.0)), "left_foot": (0.12, (0.0, 0.0, 1.0)),
        "right_foot": (0.12, (0.0, 0.0, 1.0)), "jaw": (0.07, (0.0, -0.4, 1.0)),
        "left_eye_smplhf": (0.02, (0.0, 0.0, 1.0)), "right_eye_smplhf": (0.02, (0.0, 0.0, 1.0))}
SIDES = 8


def skeleton(model_type: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Joint names, parents and rest positions (J, 3) of a synthetic model type."""
    joints = list(BODY)
    if model_type == "smpl":
        joints += SMPL_HANDS
    else:
        if model_type == "smplx":
            joints += [("jaw", 15, (0.000, 0.540, 0.070)), ("left_eye_smplhf", 15, (0.032, 0.640, 0.085)),
                       ("right_eye_smplhf", 15, (-0.032, 0.640, 0.085))]
        for side, wrist, mirror in (("left", 20, 1.0), ("right", 21, -1.0)):
            wrist_pos = np.array(BODY[wrist][2])
            for finger, base in FINGERS:
                direction = np.array([0.6 * mirror, 0.0, 0.8]) if finger == "thumb" else np.array([mirror, 0, 0])
                pos = wrist_pos + np.array(base) * [mirror, 1, 1]
                parent = wrist
                for k, length in enumerate((0.0, 0.035, 0.025), start=1):
                    pos = pos + direction * length
                    joints.append((f"{side}_{finger}{k}", parent, tuple(pos)))
                    parent = len(joints) - 1
    names = [j[0] for j in joints]
    parents = np.array([j[1] for j in joints], dtype=np.int64)
    positions = np.array([j[2] for j in joints], dtype=np.float64)
    return names, parents, positions


def _radius(name: str) -> float:
    for key, r in RADIUS.items():
        if key in name:
            return r
    return 0.009   # finger segments


def _bone_end(j: int, names: list[str], parents: np.ndarray, positions: np.ndarray) -> np.ndarray:
    children = np.flatnonzero(parents == j)
    # A tube towards the child along the chain (spine3 -> neck, not the collars; pelvis -> spine).
    chain = [c for c in children if not any(k in names[c] for k in ("collar", "hip", "eye", "jaw"))]
    if names[j] in ENDS:
        length, direction = ENDS[names[j]]
        direction = np.array(direction) / np.linalg.norm(direction)
        return positions[j] + length * direction
    if chain:
        return positions[chain].mean(axis=0)
    if children.size:
        return positions[children].mean(axis=0)
    along = positions[j] - positions[parents[j]]
    return positions[j] + 0.6 * along   # finger tips, SMPL hands


def build_mesh(model_type: str, rings: int = 3) -> dict[str, np.ndarray]:
    """Template vertices, faces, skin weights and joint regressor of the humanoid
    (each joint's tube has `rings` rings of SIDES vertices plus two cap centres)."""
    names, parents, positions = skeleton(model_type)
    n = len(names)
    verts, faces, weights, axis_points = [], [], [], []
    for j in range(n):
        start, end = positions[j], _bone_end(j, names, parents, positions)
        axis = end - start
        axis /= np.linalg.norm(axis)
        helper = np.array([0.0, 0.0, 1.0]) if abs(axis[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
        u = np.cross(axis, helper)
        u /= np.linalg.norm(u)
        w = np.cross(axis, u)
        r = _radius(names[j])
        base = len(verts)
        children = np.flatnonzero(parents == j)
        for ring, t in enumerate(np.linspace(0.0, 1.0, rings)):
            centre = start + t * (end - start)
            wt = np.zeros(n)
            if ring == 0 and parents[j] >= 0:
                wt[j], wt[parents[j]] = 0.5, 0.5
            elif ring == rings - 1 and children.size:
                wt[j], wt[children[0]] = 0.7, 0.3
            else:
                wt[j] = 1.0
            for s in range(SIDES):
                a = 2 * np.pi * s / SIDES
                verts.append(centre + r * (np.cos(a) * u + np.sin(a) * w))
                axis_points.append(centre)
                weights.append(wt)
        last = base + (rings - 1) * SIDES
        for centre, ring_start in ((start, base), (end, last)):   # cap centres
            verts.append(centre)
            axis_points.append(centre)
            weights.append(weights[ring_start])
        cap0, cap1 = base + rings * SIDES, base + rings * SIDES + 1
        for ring in range(rings - 1):
            for s in range(SIDES):
                a, b = base + ring * SIDES + s, base + ring * SIDES + (s + 1) % SIDES
                c, d = a + SIDES, b + SIDES
                faces += [[a, b, d], [a, d, c]]
        for s in range(SIDES):
            faces.append([cap0, base + (s + 1) % SIDES, base + s])
            faces.append([cap1, last + s, last + (s + 1) % SIDES])
    v = np.array(verts)
    regressor = np.zeros((n, len(v)))
    per_joint = rings * SIDES + 2
    for j in range(n):   # a joint is the centre of its tube's first ring
        regressor[j, j * per_joint:j * per_joint + SIDES] = 1.0 / SIDES
    return {"v_template": v, "f": np.array(faces, dtype=np.uint32), "weights": np.array(weights),
            "J_regressor": regressor, "axis_points": np.array(axis_points), "names": names, "parents": parents}


def rings_for_forward(model_type: str) -> int:
    """Rings per tube so the mesh has more vertices than the highest vertex id
    smplx's forward() reads (its extra keypoints: nose, ears, toes, finger tips)."""
    from smplx.vertex_ids import vertex_ids

    needed = max(vertex_ids["smplx" if model_type == "smplx" else "smplh"].values()) + 1
    n = len(skeleton(model_type)[0])
    return max(3, int(np.ceil((needed / n - 2) / SIDES)))


def shape_directions(v: np.ndarray, axis_points: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """(V, 3, count): 0 taller (Y scaled about the pelvis), 1 broader (away from
    each bone's axis), then smooth wobbles."""
    dirs = np.zeros(v.shape + (count,))
    dirs[:, 1, 0] = 0.06 * v[:, 1]
    if count > 1:
        dirs[:, :, 1] = 0.15 * (v - axis_points)
    rng = np.random.default_rng(seed)
    for k in range(2, count):
        freq, phase = rng.normal(size=(3, 3)) * 4.0, rng.uniform(0, 2 * np.pi, 3)
        dirs[:, :, k] = 0.004 * np.sin(v @ freq + phase)
    return dirs


def model_dict(model_type: str = "smpl", num_betas: int = 10, with_uvs: bool = False,
               forward_ready: bool = False) -> dict[str, np.ndarray]:
    """The arrays of a synthetic `model_type` file ("smpl", "smplh", "smplx").

    The default mesh has a few hundred vertices; forward_ready=True refines it
    until smplx's forward() (which reads fixed keypoint vertex ids) can run."""
    mesh = build_mesh(model_type, rings_for_forward(model_type) if forward_ready else 3)
    n = len(mesh["names"])
    v = mesh["v_template"]
    kintree = np.stack([mesh["parents"], np.arange(n)]).astype(np.int64)
    kintree[0, 0] = 4294967295   # what SMPL files store for the root's parent
    shape_count = num_betas + (10 if model_type == "smplx" else 0)   # SMPL-X: 10 expression directions after
    data = {"v_template": v, "f": mesh["f"], "J_regressor": mesh["J_regressor"], "weights": mesh["weights"],
            "kintree_table": kintree, "shapedirs": shape_directions(v, mesh["axis_points"], shape_count),
            "posedirs": np.zeros((len(v), 3, 9 * (n - 1)), dtype=np.float32)}
    if model_type in ("smplh", "smplx"):
        data.update(hands_componentsl=np.eye(45), hands_componentsr=np.eye(45),
                    hands_meanl=np.zeros(45), hands_meanr=np.zeros(45))
    if model_type == "smplx":
        data.update(lmk_faces_idx=np.arange(51, dtype=np.int64) % len(mesh["f"]),
                    lmk_bary_coords=np.full((51, 3), 1.0 / 3))
    if with_uvs:   # one planar UV per vertex (front view): enough to test that file UVs are used
        span = v.max(axis=0) - v.min(axis=0)
        vt = (v[:, :2] - v.min(axis=0)[:2]) / span[:2]
        data.update(vt=0.02 + 0.96 * vt, ft=mesh["f"].astype(np.int64))
    return data


class _FakeCh:
    """Pickled under the name chumpy.ch.Ch, as the original SMPL files are."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = x
        self._dirty_vars = set()


def _pickle_with_fake_chumpy(data: dict, path: Path) -> None:
    chumpy, ch = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")
    ch.Ch = _FakeCh
    chumpy.ch = ch
    saved = {k: sys.modules.get(k) for k in ("chumpy", "chumpy.ch")}
    old_module, old_name = _FakeCh.__module__, _FakeCh.__qualname__
    sys.modules.update({"chumpy": chumpy, "chumpy.ch": ch})
    _FakeCh.__module__, _FakeCh.__qualname__ = "chumpy.ch", "Ch"
    try:
        wrapped = {k: _FakeCh(v) if k in ("v_template", "shapedirs", "posedirs") else v for k, v in data.items()}
        with open(path, "wb") as f:
            pickle.dump(wrapped, f, protocol=2)
    finally:
        _FakeCh.__module__, _FakeCh.__qualname__ = old_module, old_name
        for k, mod in saved.items():
            if mod is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = mod


def write_synthetic_model(models_dir: Path, model_type: str = "smpl", gender: str = "neutral", ext: str = "",
                          num_betas: int = 10, with_uvs: bool = False, chumpy: bool = False,
                          forward_ready: bool = False) -> Path:
    """Write models_dir/<type>/<PREFIX>_<GENDER>.<ext> and return its path.

    ext defaults to what smplx reads from a folder: pkl for SMPL and SMPL-H, npz
    for SMPL-X. chumpy=True pickles some arrays as chumpy objects, like the
    original SMPL downloads (only for pkl). forward_ready: see model_dict."""
    prefix = {"smpl": "SMPL", "smplh": "SMPLH", "smplx": "SMPLX"}[model_type]
    ext = ext or ("npz" if model_type == "smplx" else "pkl")
    path = Path(models_dir) / model_type / f"{prefix}_{gender.upper()}.{ext}"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = model_dict(model_type, num_betas, with_uvs, forward_ready)
    if ext == "npz":
        np.savez(path, **data)
    elif chumpy:
        _pickle_with_fake_chumpy(data, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(data, f, protocol=2)
    return path
