"""The <target rig> param of the motion jobs (DESIGN wire params): validated
and made canonical, and summarised for provenance. Resolving it into a rig is
target_rigs.py's job; driving that rig, retarget.py's."""
from __future__ import annotations

from typing import Any

import numpy as np

from avatarforge.protocol import SMPL24_JOINTS

from . import rigs
from .target_rigs import bad_target, default_rig

MAX_BONES = 2048
TARGET_KEYS = ("preset", "bone_names", "parents", "rest_matrices", "map")
ORTHONORMAL_TOL = 1e-2


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
        raise bad_target(field, "must be a map {preset, bone_names, parents, rest_matrices, map} or a preset name")
    for key in value:
        if key not in TARGET_KEYS:
            raise bad_target(f"{field}.{key}", f"unknown key; allowed: {', '.join(TARGET_KEYS)}")
    names = _bone_names(value.get("bone_names"), f"{field}.bone_names")
    explicit = _bone_map(value.get("map"), f"{field}.map")
    presets = rigs.PRESETS + (rigs.AUTO,)
    preset = value.get("preset")
    if preset is None:
        preset = "map" if explicit and names is not None else rigs.AUTO if names is not None else None
    if preset is None:
        raise bad_target(f"{field}.preset", "give a preset ('anny' or 'smpl' use the built-in rigs) or the rig's "
                   "bone_names, parents and rest_matrices")
    if preset not in presets + ("map",):
        raise bad_target(f"{field}.preset", f"must be one of {', '.join(presets)}, got {preset!r}")
    if preset == "map" and not explicit:
        raise bad_target(f"{field}.map", "preset 'map' needs a map {target bone: SMPL joint}")
    out: dict[str, Any] = {"preset": preset, "bone_names": names, "parents": None, "rest_matrices": None,
                           "map": dict(sorted(explicit.items()))}
    if names is None:
        for key in ("parents", "rest_matrices"):
            if value.get(key) is not None:
                raise bad_target(f"{field}.{key}", "given without bone_names")
        if preset not in ("anny", "smpl"):
            raise bad_target(f"{field}.bone_names", f"preset {preset!r} describes a rig in the scene: send its "
                       "bone_names, parents and rest_matrices (only 'anny' and 'smpl' have built-in rigs)")
        known = set(default_rig(preset)[0]) if explicit else set()     # (loads Anny only to check a map)
    else:
        out["parents"] = _parents(value.get("parents"), len(names), f"{field}.parents")
        out["rest_matrices"] = _rest_matrices(value.get("rest_matrices"), len(names), f"{field}.rest_matrices")
        known = set(names)
    for bone in explicit:
        if bone not in known:
            raise bad_target(f"{field}.map.{bone}", "is not a bone of the target rig")
    return out


def _bone_names(value: Any, field: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(n, str) and n for n in value):
        raise bad_target(field, "must be a non-empty list of non-empty strings")
    if len(value) > MAX_BONES:
        raise bad_target(field, f"at most {MAX_BONES} bones, got {len(value)}")
    seen: set[str] = set()
    for n in value:
        if n in seen:
            raise bad_target(field, f"bone {n!r} appears twice")
        seen.add(n)
    return list(value)


def _parents(value: Any, n: int, field: str) -> list[int]:
    if not isinstance(value, (list, tuple, np.ndarray)) or len(value) != n:
        raise bad_target(field, f"must be a list of {n} integers (one per bone, -1 for a root)")
    out = []
    for i, p in enumerate(value):
        if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, np.integer)) or not -1 <= int(p) < i:
            raise bad_target(f"{field}[{i}]", f"must be -1 or the index of an earlier bone (parents precede "
                       f"children), got {p!r}")
        out.append(int(p))
    return out


def _rest_matrices(value: Any, n: int, field: str) -> np.ndarray:
    if value is None:
        raise bad_target(field, f"is missing: give ({n}, 4, 4) armature-space bone rest matrices (bone.matrix_local)")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise bad_target(field, "must be an array of numbers") from None
    if arr.shape != (n, 4, 4):
        raise bad_target(field, f"must have shape ({n}, 4, 4), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise bad_target(field, "contains NaN or infinite values")
    r = arr[:, :3, :3]
    err = np.abs(np.swapaxes(r, 1, 2) @ r - np.eye(3)).max(axis=(1, 2))
    bad = np.flatnonzero((err > ORTHONORMAL_TOL) | (np.linalg.det(r) < 0))
    if len(bad):
        raise bad_target(f"{field}[{int(bad[0])}]", "rotation part must be a rotation (orthonormal, det +1; "
                   "apply the armature's scale before sending)", bones=[int(i) for i in bad[:20]])
    if np.abs(arr[:, 3] - [0, 0, 0, 1]).max() > 1e-5:
        raise bad_target(field, "last row of every matrix must be (0, 0, 0, 1)")
    if np.abs(arr[:, :3, 3]).max() > 100:
        raise bad_target(field, "bone heads more than 100 m from the origin: rest matrices must be in metres")
    return arr.astype(np.float32)


def _bone_map(value: Any, field: str) -> dict[str, str | None]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_target(field, "must be a map {target bone: SMPL joint name (or null to leave it unmapped)}")
    out: dict[str, str | None] = {}
    for bone, joint in value.items():
        if not isinstance(bone, str) or not bone:
            raise bad_target(field, f"bone names must be non-empty strings, got {bone!r}")
        if joint is not None and joint not in SMPL24_JOINTS:
            raise bad_target(f"{field}.{bone}", f"must be an SMPL joint name ({', '.join(SMPL24_JOINTS)}) or null, "
                       f"got {joint!r}")
        out[bone] = joint
    return out


def target_summary(target: dict[str, Any] | None) -> dict[str, Any] | None:
    """A short description of a normalised target for provenance (no matrices)."""
    if target is None:
        return None
    names = target.get("bone_names")
    return {"preset": target["preset"], "bones": None if names is None else len(names),
            "map": dict(target.get("map") or {})}
