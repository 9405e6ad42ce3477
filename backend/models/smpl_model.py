"""SMPL, SMPL-H and SMPL-X through the `smplx` package, from the user's own
licensed model files (the neural tier of `body`: DESIGN §7). Nothing is shipped.

Where the files go (smplx's layout), under the models folder given by
`--models-dir` or AVATARFORGE_MODELS_DIR:

    <models_dir>/smpl/SMPL_NEUTRAL.pkl    (or SMPL_MALE / SMPL_FEMALE; .pkl or .npz)
    <models_dir>/smplh/SMPLH_MALE.pkl     (or _FEMALE / _NEUTRAL; .pkl or .npz)
    <models_dir>/smplx/SMPLX_NEUTRAL.npz  (or _MALE / _FEMALE; .npz or .pkl)

The SMPL download names its files e.g. basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl:
rename them as above. Original SMPL pickles hold `chumpy` arrays; they are
read without chumpy (its values are plain arrays inside).

Optional UVs: if the model file has `vt`/`ft` arrays, or a `<type>_uv.obj` with
the same faces sits next to it (e.g. smpl/smpl_uv.obj from the SMPL site), its
UVs are used. Otherwise UVs are made by a cylindrical projection per body part
(documented in `cylindrical_part_uvs`) and the avatar's provenance says so.

Frames: SMPL is Y up, facing +Z, in metres, and its joints have identity
orientation at rest. Converted by `axes.frames_y_up_to_z_up`, each rest matrix
rotation becomes the axis conversion itself, so SMPL's local joint rotations
(axis-angle in SMPL's frame) apply verbatim to these bones.
"""
from __future__ import annotations

import contextlib
import io
import logging
import pickle
import threading
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np

from avatarforge.protocol import ErrorCode, ProtocolError

from ..config import BackendConfig
from ..core.axes import frames_y_up_to_z_up, y_up_to_z_up
from .body_model import BodyMesh, BodyModel, ground_translation, top_k_skin_weights, translate_frames, \
    triangles_with_corner_uvs

log = logging.getLogger(__name__)

MODEL_TYPES = ("smpl", "smplh", "smplx")
GENDERS = ("neutral", "male", "female")
FILE_PREFIX = {"smpl": "SMPL", "smplh": "SMPLH", "smplx": "SMPLX"}
EXTENSIONS = {"smpl": (".pkl", ".npz"), "smplh": (".pkl", ".npz"), "smplx": (".npz", ".pkl")}
DISPLAY_NAME = {"smpl": "SMPL", "smplh": "SMPL-H", "smplx": "SMPL-X"}
DOWNLOAD_SITE = {"smpl": "https://smpl.is.tue.mpg.de", "smplh": "https://mano.is.tue.mpg.de",
                 "smplx": "https://smpl-x.is.tue.mpg.de"}
MAX_BETAS = 300            # the largest shape space of the family (smplx.SMPL.SHAPE_SPACE_DIM)
BETA_LIMIT = 5.0           # |beta| beyond ~3-5 standard deviations makes non-human shapes


def smplx_version() -> str:
    return package_version("smplx")


def joint_names_for(model_type: str) -> list[str]:
    """Joint names in the model's order, from smplx (SMPL's last two are its hands)."""
    from smplx.joint_names import JOINT_NAMES, SMPLH_JOINT_NAMES

    if model_type == "smpl":
        return JOINT_NAMES[:22] + ["left_hand", "right_hand"]
    if model_type == "smplh":
        return SMPLH_JOINT_NAMES[:52]
    return JOINT_NAMES[:55]


# -- finding the user's files ----------------------------------------------------

def candidate_paths(models_dir: Path, model_type: str, gender: str) -> list[Path]:
    stem = f"{FILE_PREFIX[model_type]}_{gender.upper()}"
    return [Path(models_dir) / model_type / (stem + ext) for ext in EXTENSIONS[model_type]]


def find_model_file(config: BackendConfig, model_type: str, gender: str) -> Path | None:
    """The user's model file for this type and gender, or None."""
    if config.models_dir is None:
        return None
    return next((p for p in candidate_paths(config.models_dir, model_type, gender) if p.is_file()), None)


def missing_model_error(config: BackendConfig, model_type: str, gender: str) -> ProtocolError:
    """MODEL_MISSING saying exactly which file to put where."""
    name, prefix = DISPLAY_NAME[model_type], FILE_PREFIX[model_type]
    files = " or ".join(f"{prefix}_{gender.upper()}{ext}" for ext in EXTENSIONS[model_type])
    get = (f"{name} is licensed and not shipped: download it from {DOWNLOAD_SITE[model_type]} "
           f"(free registration), rename the {gender} model to {files}")
    if config.models_dir is None:
        where = ("no models folder is configured: put the file in <folder>/" + model_type +
                 "/ and start the backend with --models-dir <folder> or AVATARFORGE_MODELS_DIR=<folder>")
    else:
        where = f"put it in {Path(config.models_dir) / model_type}/ (the configured models folder)"
    return ProtocolError(ErrorCode.MODEL_MISSING, f"{name} model file not found: {get}, and {where}.",
                         field="model", model=model_type, gender=gender,
                         expected=[str(p) for p in candidate_paths(config.models_dir or Path("<models_dir>"),
                                                                   model_type, gender)])


def availability(config: BackendConfig, model_type: str) -> dict[str, Any]:
    """Tier info for `welcome`: available when any gender's file is present."""
    genders = [g for g in GENDERS if find_model_file(config, model_type, g) is not None]
    if genders:
        return {"available": True, "genders": genders}
    return {"available": False, "reason": missing_model_error(config, model_type, "neutral").message}


# -- reading model files ---------------------------------------------------------

class _ChumpyValue:
    """Stands in for a chumpy object while unpickling; keeps its pickled state."""

    def __new__(cls, *_args: Any, **_kwargs: Any) -> "_ChumpyValue":   # unpickling passes its arguments
        return super().__new__(cls)

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _ModelUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "chumpy" or module.startswith("chumpy."):
            return _ChumpyValue
        return super().find_class(module, name)


def _unchumpy(key: str, value: Any, path: Path) -> Any:
    if not isinstance(value, _ChumpyValue):
        return value
    state = getattr(value, "state", None)
    if isinstance(state, dict) and "x" in state:
        return np.asarray(state["x"])
    raise ProtocolError(ErrorCode.MODEL_MISSING,
                        f"{path}: '{key}' is a computed chumpy expression, not an array, so it cannot be read "
                        "without chumpy; convert the file to plain numpy arrays (.npz) with an environment "
                        "that has chumpy, e.g. np.savez(out, **{k: np.asarray(v) for k, v in model.items()})",
                        field="model")


def read_model_file(path: Path) -> dict[str, Any]:
    """The arrays of an SMPL-family file (.npz, or .pkl with or without chumpy)."""
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=True) as data:
                return {k: data[k] for k in data.files}
        with open(path, "rb") as f:
            raw = _ModelUnpickler(f, encoding="latin1").load()
    except (OSError, ValueError, pickle.UnpicklingError, EOFError, ImportError) as exc:
        raise ProtocolError(ErrorCode.MODEL_MISSING, f"{path} cannot be read as an SMPL-family model "
                            f"({type(exc).__name__}: {exc}); replace it with the file from the model's site",
                            field="model") from None
    if not isinstance(raw, dict):
        raise ProtocolError(ErrorCode.MODEL_MISSING, f"{path} holds a {type(raw).__name__}, not an SMPL-family "
                            "model dictionary", field="model")
    return {k: _unchumpy(k, v, path) for k, v in raw.items()}


def _read_obj_uvs(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """faces (F, n), face UV indices (F, n) and UV coordinates from an OBJ file."""
    vt, faces, face_uvs = [], [], []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "vt":
            vt.append([float(parts[1]), float(parts[2])])
        elif parts[0] == "f":
            corners = [c.split("/") for c in parts[1:]]
            if len(corners) not in (3, 4) or any(len(c) < 2 or not c[1] for c in corners):
                raise ValueError(f"{path}: faces must be triangles or quads with UV indices (f v/vt ...)")
            faces.append([int(c[0]) - 1 for c in corners] + [-1] * (4 - len(corners)))
            face_uvs.append([int(c[1]) - 1 for c in corners] + [-1] * (4 - len(corners)))
    f, fu = np.array(faces), np.array(face_uvs)
    if f.shape[1] == 4 and np.all(f[:, 3] < 0):
        f, fu = f[:, :3], fu[:, :3]
    return f, fu, np.array(vt, dtype=np.float32)


# -- the model -------------------------------------------------------------------

class SmplBodyModel(BodyModel):
    """One SMPL-family model file (type + gender), loaded through smplx."""

    def __init__(self, model_type: str, gender: str, path: Path) -> None:
        import smplx
        import torch
        from smplx.utils import Struct

        if model_type not in MODEL_TYPES:
            raise ValueError(f"model type must be one of {MODEL_TYPES}, got {model_type!r}")
        self.name = model_type
        self.gender = gender
        self.path = Path(path)
        self._torch = torch
        data = read_model_file(self.path)
        # smplx prints a warning to stdout for 10-beta files; keep stdout clean (it may be a protocol pipe).
        with contextlib.redirect_stdout(io.StringIO()) as said:
            common = dict(model_path=str(self.path), gender=gender, num_betas=MAX_BETAS, dtype=torch.float64,
                          create_global_orient=False, create_body_pose=False, create_transl=False)
            try:
                if model_type == "smpl":
                    module = smplx.SMPL(data_struct=Struct(**data), **common)
                elif model_type == "smplh":
                    module = smplx.SMPLH(data_struct=Struct(**data), use_pca=False, **common)
                else:
                    module = smplx.SMPLX(ext=self.path.suffix[1:], use_pca=False, **common)
            except (KeyError, AttributeError, ValueError, IndexError, AssertionError) as exc:
                raise ProtocolError(ErrorCode.MODEL_MISSING,
                                    f"{self.path} is not a usable {DISPLAY_NAME[model_type]} model file "
                                    f"({type(exc).__name__}: {exc})", field="model") from None
        if said.getvalue().strip():
            log.info("smplx: %s", said.getvalue().strip())
        self._module = module.eval()
        self._joint_names = joint_names_for(model_type)
        parents = module.parents.cpu().numpy().astype(np.int32)
        parents[0] = -1
        if len(parents) != len(self._joint_names) or np.any(parents[1:] >= np.arange(1, len(parents))):
            raise ProtocolError(ErrorCode.MODEL_MISSING,
                                f"{self.path} has {len(parents)} joints in an unexpected order; a "
                                f"{DISPLAY_NAME[model_type]} model has {len(self._joint_names)}", field="model")
        self._parents = parents
        self._faces = np.asarray(module.faces, dtype=np.int64)
        self._uv_source, self._corner_uvs = self._model_uvs(data)

    @property
    def version(self) -> str:
        return f"{smplx_version()}+avatarforge.{self.adapter_identity}"

    @property
    def joint_names(self) -> list[str]:
        return list(self._joint_names)

    @property
    def parents(self) -> np.ndarray:
        return self._parents.copy()

    @property
    def num_betas(self) -> int:
        return int(self._module.num_betas)

    @property
    def torch_model(self) -> Any:
        """The smplx module (for later pipelines: posing, fitting)."""
        return self._module

    def build(self, params: dict[str, Any], skin_weights_k: int = 4) -> BodyMesh:
        """params: {"betas": [floats], "gender": str} (gender must match this file)."""
        from smplx.lbs import blend_shapes, vertices2joints

        torch = self._torch
        betas = [float(b) for b in params.get("betas") or []]
        if len(betas) > self.num_betas:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"betas: this {DISPLAY_NAME[self.name]} file has "
                                f"{self.num_betas} shape coefficients, got {len(betas)}", field="betas")
        with torch.no_grad():
            b = torch.zeros((1, self.num_betas), dtype=torch.float64)
            b[0, :len(betas)] = torch.tensor(betas, dtype=torch.float64)
            # The rest pose is the shaped template: pose is identity, so pose blend shapes are zero.
            shaped = self._module.v_template[None] + blend_shapes(b, self._module.shapedirs)
            joints = vertices2joints(self._module.J_regressor, shaped)
        verts_yup, joints_yup = shaped[0].cpu().numpy(), joints[0].cpu().numpy()
        frames_yup = np.repeat(np.eye(4)[None], len(joints_yup), axis=0)
        frames_yup[:, :3, 3] = joints_yup
        vertices = y_up_to_z_up(verts_yup)
        offset = ground_translation(vertices)
        indices, weights = top_k_skin_weights(None, self._module.lbs_weights.cpu().numpy(), skin_weights_k)
        uvs = self._corner_uvs if self._corner_uvs is not None else \
            cylindrical_part_uvs(verts_yup, self._faces, self._module.lbs_weights.cpu().numpy(), joints_yup,
                                 self._parents)
        return BodyMesh(
            vertices=(vertices + offset).astype(np.float32), faces=self._faces.astype(np.int32),
            uvs=uvs.astype(np.float32), joint_names=self.joint_names, parents=self.parents,
            rest_matrices=translate_frames(frames_y_up_to_z_up(frames_yup), offset).astype(np.float32),
            skin_indices=indices, skin_weights=weights,
            params={"betas": betas, "gender": self.gender, "num_betas": self.num_betas,
                    "ground_offset": [float(x) for x in offset], "model_file": self.path.name},
            uv_source=self._uv_source)

    def _model_uvs(self, data: dict[str, Any]) -> tuple[str, np.ndarray | None]:
        """Per-corner UVs from the file (vt/ft) or a <type>_uv.obj beside it; else None (fallback)."""
        if "vt" in data and "ft" in data:
            vt, ft = np.asarray(data["vt"], dtype=np.float32), np.asarray(data["ft"], dtype=np.int64)
            if ft.shape != self._faces.shape or ft.min() < 0 or ft.max() >= len(vt):
                raise ProtocolError(ErrorCode.MODEL_MISSING, f"{self.path}: its UVs (vt {vt.shape}, ft {ft.shape}) "
                                    f"do not fit its {len(self._faces)} faces", field="model")
            return "model file (vt/ft)", triangles_with_corner_uvs(self._faces, ft, vt)[1]
        obj = self.path.parent / f"{self.name}_uv.obj"
        if obj.is_file():
            try:
                f, fu, vt = _read_obj_uvs(obj)
                faces, uvs = triangles_with_corner_uvs(f, fu, vt)
            except (ValueError, IndexError) as exc:
                raise ProtocolError(ErrorCode.MODEL_MISSING, f"{obj} cannot be read: {exc}", field="model") from None
            if faces.shape != self._faces.shape or not np.array_equal(faces, self._faces):
                raise ProtocolError(ErrorCode.MODEL_MISSING, f"{obj} does not have the faces of {self.path.name}; "
                                    "remove it or use the UV file made for this model", field="model")
            return f"{obj.name}", uvs
        return "cylindrical per body part (the model file has no UVs)", None


def cylindrical_part_uvs(vertices: np.ndarray, faces: np.ndarray, weights: np.ndarray, joints: np.ndarray,
                         parents: np.ndarray) -> np.ndarray:
    """Fallback UVs (F, 3, 2) for a skinned mesh without any.

    Each triangle belongs to the joint that most of its corners are most
    weighted to. Each joint's part gets a tile of a square atlas, and its
    triangles are projected onto a cylinder around the bone (the joint to the
    mean of its children, or from its parent for end joints): u is the angle,
    v the position along the bone. A triangle that straddles the cylinder's
    cut is kept whole by unwrapping its corners past u = 1 (tiles leave room).
    """
    n_joints = len(joints)
    vertex_part = np.argmax(weights, axis=1)
    corner_parts = vertex_part[faces]
    face_part = np.where(corner_parts[:, 1] == corner_parts[:, 2], corner_parts[:, 1], corner_parts[:, 0])
    cols = int(np.ceil(np.sqrt(n_joints)))
    rows = int(np.ceil(n_joints / cols))
    wrap = 1.25                                 # tile width in turns: room for straddling triangles
    margin = 0.04                               # of a tile, on each side (texture bleed at mip levels)
    uvs = np.zeros(faces.shape + (2,), dtype=np.float64)
    for j in range(n_joints):
        sel = np.flatnonzero(face_part == j)
        if sel.size == 0:
            continue
        children = np.flatnonzero(parents == j)
        if children.size:
            axis = joints[children].mean(axis=0) - joints[j]
        else:
            axis = joints[j] - joints[parents[j]] if parents[j] >= 0 else np.array([0.0, 1.0, 0.0])
        axis = axis / (np.linalg.norm(axis) or 1.0)
        helper = np.array([0.0, 0.0, 1.0]) if abs(axis[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
        side = np.cross(axis, helper)
        side /= np.linalg.norm(side)
        up = np.cross(axis, side)
        rel = vertices[faces[sel]] - joints[j]                # (n, 3, 3)
        along = rel @ axis
        turn = (np.arctan2(rel @ up, rel @ side) / (2 * np.pi)) % 1.0
        straddles = turn.max(axis=1) - turn.min(axis=1) > 0.5
        turn[straddles] = np.where(turn[straddles] < 0.5, turn[straddles] + 1.0, turn[straddles])
        turn = np.minimum(turn, wrap)
        lo, hi = along.min(), along.max()
        v = (along - lo) / ((hi - lo) or 1.0)
        tile_u, tile_v = j % cols, j // cols
        inner = 1.0 - 2 * margin
        uvs[sel, :, 0] = (tile_u + margin + inner * turn / wrap) / cols
        uvs[sel, :, 1] = 1.0 - (tile_v + margin + inner * (1.0 - v)) / rows
    return uvs.astype(np.float32)


# -- process-wide cache ----------------------------------------------------------

_lock = threading.Lock()
_cache: dict[tuple[str, str, str, float], SmplBodyModel] = {}


def load_smpl_model(model_type: str, config: BackendConfig, gender: str = "neutral") -> SmplBodyModel:
    """The user's `model_type` model of `gender` (MODEL_MISSING when absent), cached per file."""
    if gender not in GENDERS:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"gender: one of {', '.join(GENDERS)}, got {gender!r}",
                            field="gender")
    path = find_model_file(config, model_type, gender)
    if path is None:
        raise missing_model_error(config, model_type, gender)
    key = (model_type, gender, str(path), path.stat().st_mtime)
    with _lock:
        if key not in _cache:
            _cache[key] = SmplBodyModel(model_type, gender, path)
        return _cache[key]
