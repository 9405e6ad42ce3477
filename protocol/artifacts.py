"""Artifacts a job returns (DESIGN §5), as data classes with a wire form.

Both sides use these: the backend builds them, the add-on imports them.
`from_wire` validates shapes and dtypes so an importer can trust what it gets.
Conventions: metres, right-handed, Z up.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .errors import ErrorCode, ProtocolError


def _bad(kind: str, name: str, message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_REQUEST, f"{kind}.{name}: {message}", field=f"{kind}.{name}")


def _dict(d: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    """d[name] as a map; absent or None is an empty one."""
    value = d.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(kind, name, f"must be a map, got {type(value).__name__}")
    return dict(value)


def _name(d: dict[str, Any], kind: str, default: str) -> str:
    """d["name"]; absent, None or empty gives `default`."""
    value = d.get("name")
    if value is None:
        return default
    if not isinstance(value, str):
        raise _bad(kind, "name", f"must be a string, got {type(value).__name__}")
    return value or default


def _array(d: dict[str, Any], kind: str, name: str, dtype: Any, shape: tuple[int | None, ...]) -> np.ndarray:
    """Fetch d[name] as an array of `dtype`, checking its shape (None = any size)."""
    if name not in d:
        raise _bad(kind, name, "is missing")
    try:
        arr = np.asarray(d[name])
    except (ValueError, TypeError):  # ragged nested lists
        raise _bad(kind, name, "must be an array of numbers") from None
    if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise _bad(kind, name, f"must have shape {want}, got {arr.shape}")
    target = np.dtype(dtype)
    if arr.size and arr.dtype.kind not in ("iu" if target.kind in "iu" else "biuf"):
        what = "integers" if target.kind in "iu" else "numbers"
        raise _bad(kind, name, f"must be {what}, got dtype {arr.dtype}")
    # Range before the cast: astype would wrap an int64 index into int32 silently.
    if target.kind in "iu" and arr.size:
        info = np.iinfo(target)
        if arr.min() < info.min or arr.max() > info.max:
            raise _bad(kind, name, f"has values outside {target} range")
    with np.errstate(over="ignore"):
        out = arr.astype(target, copy=False)
    # Finiteness after it: a float64 1e300 is finite, and infinite as float32.
    if target.kind == "f" and not np.all(np.isfinite(out)):
        raise _bad(kind, name, "contains NaN or infinite values")
    return out


@dataclass
class Skeleton:
    """Joints in armature space: joint i's frame is rest_matrices[i] (4x4, metres,
    Z up). Its parent is parents[i] (-1 for the root); parents precede children."""
    joint_names: list[str]
    parents: np.ndarray          # (J,) int32
    rest_matrices: np.ndarray    # (J, 4, 4) float32

    def __len__(self) -> int:
        return len(self.joint_names)

    def to_wire(self) -> dict[str, Any]:
        return {"joint_names": list(self.joint_names), "parents": self.parents.astype(np.int32),
                "rest_matrices": self.rest_matrices.astype(np.float32)}

    @classmethod
    def from_wire(cls, d: dict[str, Any], kind: str = "skeleton") -> "Skeleton":
        names = d.get("joint_names")
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise _bad(kind, "joint_names", "must be a list of non-empty strings")
        if len(set(names)) != len(names):
            raise _bad(kind, "joint_names", "contains duplicates")
        j = len(names)
        parents = _array(d, kind, "parents", np.int32, (j,))
        for i, p in enumerate(parents):
            if not -1 <= p < i:
                raise _bad(kind, "parents", f"joint {i} ({names[i]}) has parent {p}; parents must precede children")
        rest = _array(d, kind, "rest_matrices", np.float32, (j, 4, 4))
        return cls(list(names), parents, rest)


@dataclass
class Material:
    """A texture with its role in the material (base_color, normal, roughness...)
    and scalar settings (e.g. roughness) the importer applies."""
    name: str
    role: str
    png: bytes
    settings: dict[str, Any] = field(default_factory=dict)

    ROLES: ClassVar[frozenset[str]] = frozenset(["base_color", "normal", "roughness", "metallic", "emission"])

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "png": bytes(self.png), "settings": dict(self.settings)}

    @classmethod
    def from_wire(cls, d: dict[str, Any], kind: str = "material") -> "Material":
        role = d.get("role")
        if not isinstance(role, str) or role not in cls.ROLES:
            raise _bad(kind, "role", f"must be one of {sorted(cls.ROLES)}, got {role!r}")
        png = d.get("png")
        if not isinstance(png, bytes) or not png.startswith(b"\x89PNG\r\n\x1a\n"):
            raise _bad(kind, "png", "must be PNG bytes")
        return cls(_name(d, kind, role), role, png, _dict(d, kind, "settings"))


@dataclass
class RiggedAvatar:
    """A skinned, textured body (DESIGN §5)."""
    name: str
    vertices: np.ndarray         # (V, 3) float32, metres, Z up, rest pose
    faces: np.ndarray            # (F, 3) int32; quads are split by the producer
    uvs: np.ndarray              # (F, 3, 2) float32, per face corner, in [0, 1]
    skeleton: Skeleton
    skin_indices: np.ndarray     # (V, k) int32 joint indices
    skin_weights: np.ndarray     # (V, k) float32, rows sum to 1
    materials: list[Material]
    body_model: str              # "anny", "smpl", "smplh", "smplx"
    params: dict[str, Any]       # the body-model parameters that made it
    provenance: dict[str, Any]   # request, seed, model names and versions

    KIND: ClassVar[str] = "rigged_avatar"

    def to_wire(self) -> dict[str, Any]:
        return {
            "kind": self.KIND, "name": self.name,
            "vertices": self.vertices.astype(np.float32), "faces": self.faces.astype(np.int32),
            "uvs": self.uvs.astype(np.float32), "skeleton": self.skeleton.to_wire(),
            "skin_indices": self.skin_indices.astype(np.int32),
            "skin_weights": self.skin_weights.astype(np.float32),
            "materials": [m.to_wire() for m in self.materials],
            "body_model": self.body_model, "params": self.params, "provenance": self.provenance,
        }

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> "RiggedAvatar":
        k = cls.KIND
        verts = _array(d, k, "vertices", np.float32, (None, 3))
        faces = _array(d, k, "faces", np.int32, (None, 3))
        if faces.size and (faces.min() < 0 or faces.max() >= len(verts)):
            raise _bad(k, "faces", f"index out of range for {len(verts)} vertices")
        uvs = _array(d, k, "uvs", np.float32, (len(faces), 3, 2))
        if not isinstance(d.get("skeleton"), dict):
            raise _bad(k, "skeleton", "is missing")
        skeleton = Skeleton.from_wire(d["skeleton"], f"{k}.skeleton")
        idx = _array(d, k, "skin_indices", np.int32, (len(verts), None))
        w = _array(d, k, "skin_weights", np.float32, idx.shape)
        if idx.size and (idx.min() < 0 or idx.max() >= len(skeleton)):
            raise _bad(k, "skin_indices", f"joint index out of range for {len(skeleton)} joints")
        if len(verts) and not np.allclose(w.sum(axis=1), 1.0, atol=1e-3):
            raise _bad(k, "skin_weights", "rows must sum to 1")
        mats = d.get("materials")
        mats = [] if mats is None else mats
        if not isinstance(mats, list) or not all(isinstance(m, dict) for m in mats):
            raise _bad(k, "materials", "must be a list of maps")
        return cls(
            name=_name(d, k, "avatar"), vertices=verts, faces=faces, uvs=uvs, skeleton=skeleton,
            skin_indices=idx, skin_weights=w,
            materials=[Material.from_wire(m, f"{k}.materials[{i}]") for i, m in enumerate(mats)],
            body_model=str(d.get("body_model", "")), params=_dict(d, k, "params"),
            provenance=_dict(d, k, "provenance"))


ARTIFACT_KINDS: dict[str, Any] = {RiggedAvatar.KIND: RiggedAvatar}


def artifact_from_wire(d: Any) -> Any:
    """Rebuild an artifact of any known kind from its wire form."""
    if not isinstance(d, dict) or not isinstance(d.get("kind"), str) or d["kind"] not in ARTIFACT_KINDS:
        kind = d.get("kind") if isinstance(d, dict) else type(d).__name__
        raise ProtocolError(ErrorCode.UNSUPPORTED,
                            f"artifact kind {kind!r} is not known to this side; known: {sorted(ARTIFACT_KINDS)}. "
                            "Update the add-on to the backend's release.")
    return ARTIFACT_KINDS[d["kind"]].from_wire(d)
