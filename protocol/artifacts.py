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
    accepted = {"b": "biu", "i": "iu", "u": "iu"}.get(target.kind, "biuf")
    if arr.size and arr.dtype.kind not in accepted:
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


# SMPL's 24 body joints in SMPL order (DESIGN §6): the canonical motion skeleton.
SMPL24_JOINTS: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
    "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand",
    "right_hand")
SMPL24_PARENTS: tuple[int, ...] = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
MAX_MOTION_FRAMES = 200_000     # ~55 min at 60 fps: bounds what a client will allocate
FPS_RANGE = (1.0, 1000.0)


def _fps(d: dict[str, Any], kind: str) -> float:
    fps = d.get("fps")
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not FPS_RANGE[0] <= fps <= FPS_RANGE[1]:
        raise _bad(kind, "fps", f"must be a number in [{FPS_RANGE[0]:g}, {FPS_RANGE[1]:g}], got {fps!r}")
    return float(fps)


def _frames(n: int, kind: str) -> int:
    if not 1 <= n <= MAX_MOTION_FRAMES:
        raise _bad(kind, "rotations", f"must have 1..{MAX_MOTION_FRAMES} frames, got {n}")
    return n


@dataclass
class RetargetedTracks:
    """A motion on one target rig, ready to key: per-bone pose quaternions
    (w, x, y, z) as a Blender pose bone's `rotation_quaternion` means them
    (rotation relative to the bone's rest frame, in that frame), and the root
    bone's pose `location` (in its rest frame, metres)."""
    rig: str                     # preset used: "anny", "smpl", "mixamo", "rigify", "unreal", "map"...
    bone_names: list[str]        # (B) target bones that are driven, in the order of `rotations`
    rotations: np.ndarray        # (T, B, 4) float32 unit quaternions w, x, y, z
    root_bone: str               # the bone whose `location` carries root motion
    root_locations: np.ndarray   # (T, 3) float32
    unmapped: list[str] = field(default_factory=list)   # target bones nothing drives

    def to_wire(self) -> dict[str, Any]:
        return {"rig": self.rig, "bone_names": list(self.bone_names),
                "rotations": self.rotations.astype(np.float32), "root_bone": self.root_bone,
                "root_locations": self.root_locations.astype(np.float32), "unmapped": list(self.unmapped)}

    @classmethod
    def from_wire(cls, d: dict[str, Any], frames: int, kind: str = "retargeted") -> "RetargetedTracks":
        names = d.get("bone_names")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise _bad(kind, "bone_names", "must be a non-empty list of non-empty strings")
        if len(set(names)) != len(names):
            raise _bad(kind, "bone_names", "contains duplicates")
        rot = _array(d, kind, "rotations", np.float32, (frames, len(names), 4))
        if rot.size and not np.allclose(np.linalg.norm(rot, axis=-1), 1.0, atol=1e-3):
            raise _bad(kind, "rotations", "must be unit quaternions (w, x, y, z)")
        root = d.get("root_bone")
        if not isinstance(root, str) or root not in names:
            raise _bad(kind, "root_bone", f"must be one of bone_names, got {root!r}")
        unmapped = d.get("unmapped") or []
        if not isinstance(unmapped, list) or not all(isinstance(n, str) for n in unmapped):
            raise _bad(kind, "unmapped", "must be a list of bone names")
        rig = d.get("rig")
        if not isinstance(rig, str) or not rig:
            raise _bad(kind, "rig", "must be a non-empty string")
        return cls(rig, list(names), rot, root, _array(d, kind, "root_locations", np.float32, (frames, 3)),
                   list(unmapped))


def _smpl24_skeleton(value: Any, kind: str) -> Skeleton:
    """A Skeleton wire map that must be SMPL's 24 joints, in SMPL order with SMPL's parents."""
    if not isinstance(value, dict):
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"{kind}: must be a map (a skeleton)", field=kind)
    skeleton = Skeleton.from_wire(value, kind)
    if skeleton.joint_names != list(SMPL24_JOINTS):
        raise _bad(kind, "joint_names", "must be SMPL's 24 joint names in SMPL order")
    if skeleton.parents.tolist() != list(SMPL24_PARENTS):
        raise _bad(kind, "parents", "must be SMPL's 24-joint parents")
    return skeleton


@dataclass
class Motion:
    """A motion on SMPL's 24 joints (DESIGN §5), Z up, metres.

    rotations[t, j] is joint j's local axis-angle rotation relative to its
    parent, in SMPL's joint frames (whose rest orientation is SMPL's Y-up world
    rotated into ours: see backend/models/axes.py); `trans[t]` is the pelvis
    joint's position in the Z-up world. `joints` are forward-kinematics
    positions on the reference skeleton `rest_skeleton`: SMPL's 24 joints in
    SMPL order, each rest matrix = the SMPL joint frame in our world (rotation)
    at the T-pose joint position (translation), so an importer builds an
    SMPL-24 armature from it as it builds an avatar's. `contacts` says whether
    the left/right foot is planted. `retargeted` is the motion as pose-bone
    tracks, ready to key: on the requested target rig, or, when the request had
    none, on the `rest_skeleton` armature itself (rig REFERENCE_RIG); the backend
    always fills it, so an importer does no rotation math."""
    name: str
    fps: float
    rotations: np.ndarray                    # (T, 24, 3) float32 axis-angle
    trans: np.ndarray                        # (T, 3) float32
    joints: np.ndarray | None = None         # (T, 24, 3) float32
    contacts: np.ndarray | None = None       # (T, 2) bool: left foot, right foot
    rest_skeleton: Skeleton | None = None     # SMPL-24 reference skeleton (24 joints, SMPL order)
    retargeted: RetargetedTracks | None = None
    params: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    skeleton: str = "smpl24"

    KIND: ClassVar[str] = "motion"
    JOINT_NAMES: ClassVar[tuple[str, ...]] = SMPL24_JOINTS
    # RetargetedTracks.rig of tracks made for the rest_skeleton armature itself (no target rig).
    REFERENCE_RIG: ClassVar[str] = "smpl24"

    @property
    def frames(self) -> int:
        return int(len(self.rotations))

    @property
    def seconds(self) -> float:
        return (self.frames - 1) / self.fps if self.frames > 1 else 0.0

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.KIND, "name": self.name, "skeleton": self.skeleton, "joint_names": list(SMPL24_JOINTS),
            "fps": float(self.fps), "rotations": self.rotations.astype(np.float32),
            "trans": self.trans.astype(np.float32), "params": self.params, "provenance": self.provenance}
        if self.joints is not None:
            out["joints"] = self.joints.astype(np.float32)
        if self.contacts is not None:
            out["contacts"] = self.contacts.astype(np.bool_)
        if self.rest_skeleton is not None:
            out["rest_skeleton"] = self.rest_skeleton.to_wire()
        if self.retargeted is not None:
            out["retargeted"] = self.retargeted.to_wire()
        return out

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> "Motion":
        k = cls.KIND
        if d.get("skeleton") != "smpl24":
            raise _bad(k, "skeleton", f"must be 'smpl24', got {d.get('skeleton')!r}")
        if d.get("joint_names", list(SMPL24_JOINTS)) != list(SMPL24_JOINTS):
            raise _bad(k, "joint_names", "must be SMPL's 24 joint names in SMPL order")
        fps = _fps(d, k)
        rot = _array(d, k, "rotations", np.float32, (None, 24, 3))
        n = _frames(len(rot), k)
        trans = _array(d, k, "trans", np.float32, (n, 3))
        joints = _array(d, k, "joints", np.float32, (n, 24, 3)) if d.get("joints") is not None else None
        contacts = None
        if d.get("contacts") is not None:
            contacts = _array(d, k, "contacts", np.bool_, (n, 2))
        rest = _smpl24_skeleton(d["rest_skeleton"], f"{k}.rest_skeleton") \
            if d.get("rest_skeleton") is not None else None
        retargeted = None
        if d.get("retargeted") is not None:
            if not isinstance(d["retargeted"], dict):
                raise _bad(k, "retargeted", "must be a map")
            retargeted = RetargetedTracks.from_wire(d["retargeted"], n, f"{k}.retargeted")
        return cls(name=_name(d, k, "motion"), fps=fps, rotations=rot, trans=trans, joints=joints,
                   contacts=contacts, rest_skeleton=rest, retargeted=retargeted, params=_dict(d, k, "params"),
                   provenance=_dict(d, k, "provenance"))


@dataclass
class Camera:
    """A camera (DESIGN §5): intrinsics `K` (3, 3) in pixels of an image of
    `image_size` (width, height), and `world_to_camera` (4, 4), the rigid pose
    in OpenCV's camera convention (x right, y down, z forward) in the Z-up world
    of the avatar or motion it was fitted with. `params` says what it was solved
    from (e.g. {"video": {"filename", "fps", "frames", "start"}}), so an importer
    can line the footage up behind it."""
    name: str
    K: np.ndarray                 # (3, 3) float32
    image_size: tuple[int, int]   # (width, height) pixels
    world_to_camera: np.ndarray   # (4, 4) float32, rigid
    params: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    KIND: ClassVar[str] = "camera"
    MAX_IMAGE_SIDE: ClassVar[int] = 65536

    def to_wire(self) -> dict[str, Any]:
        return {"kind": self.KIND, "name": self.name, "K": self.K.astype(np.float32),
                "image_size": [int(self.image_size[0]), int(self.image_size[1])],
                "world_to_camera": self.world_to_camera.astype(np.float32),
                "params": self.params, "provenance": self.provenance}

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> "Camera":
        k = cls.KIND
        K = _array(d, k, "K", np.float32, (3, 3))
        if not (K[0, 0] > 0 and K[1, 1] > 0 and K[2, 2] == 1 and K[1, 0] == 0 and K[2, 0] == 0 and K[2, 1] == 0):
            raise _bad(k, "K", "must be an upper-triangular intrinsics matrix with positive focal lengths "
                               "and K[2, 2] = 1")
        size = d.get("image_size")
        if (not isinstance(size, (list, tuple)) or len(size) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= cls.MAX_IMAGE_SIDE
                           for v in size)):
            raise _bad(k, "image_size", f"must be [width, height] in pixels (1..{cls.MAX_IMAGE_SIDE}), got {size!r}")
        pose = _array(d, k, "world_to_camera", np.float32, (4, 4))
        R = pose[:3, :3].astype(np.float64)
        if (not np.allclose(R @ R.T, np.eye(3), atol=1e-3) or not abs(np.linalg.det(R) - 1.0) < 1e-3
                or not np.allclose(pose[3], [0, 0, 0, 1], atol=1e-6)):
            raise _bad(k, "world_to_camera", "must be a rigid transform (rotation and translation, last row 0 0 0 1)")
        return cls(name=_name(d, k, "camera"), K=K, image_size=(int(size[0]), int(size[1])),
                   world_to_camera=pose, params=_dict(d, k, "params"), provenance=_dict(d, k, "provenance"))


ARTIFACT_KINDS: dict[str, Any] = {RiggedAvatar.KIND: RiggedAvatar, Motion.KIND: Motion, Camera.KIND: Camera}


def artifact_from_wire(d: Any) -> Any:
    """Rebuild an artifact of any known kind from its wire form."""
    if not isinstance(d, dict) or not isinstance(d.get("kind"), str) or d["kind"] not in ARTIFACT_KINDS:
        kind = d.get("kind") if isinstance(d, dict) else type(d).__name__
        raise ProtocolError(ErrorCode.UNSUPPORTED,
                            f"artifact kind {kind!r} is not known to this side; known: {sorted(ARTIFACT_KINDS)}. "
                            "Update the add-on to the backend's release.")
    return ARTIFACT_KINDS[d["kind"]].from_wire(d)
