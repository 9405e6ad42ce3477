"""Target rigs resolved: a <target rig> param (targets.py) turned into bone
names, parents, rest matrices and the bone -> SMPL joint map the retargeter
(retarget.py) drives; the built-in rigs (Anny's default body, loaded from the
model, and the reference skeleton's SMPL-24 armature) are made here."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from avatarforge.protocol import SMPL24_JOINTS, ErrorCode, Motion, ProtocolError

from ..core import rotations as rot
from . import rigs
from .skeleton import PARENTS, reference_rest_matrices

REFERENCE_RIG = Motion.REFERENCE_RIG     # RetargetedTracks.rig of tracks on the reference skeleton's armature
# Core joints a rig must provide (pelvis always; then most of the others).
CORE_GROUPS: tuple[tuple[str, ...], ...] = (("spine1", "spine2", "spine3"),) + tuple(
    (f"{side}_{j}",) for j in ("shoulder", "elbow", "wrist", "knee", "ankle") for side in ("left", "right"))
MIN_CORE_GROUPS = 9          # of the 11 above, besides the pelvis


def bad_target(field: str, message: str, **details: Any) -> ProtocolError:
    """A BAD_REQUEST about (a part of) the target param, naming it."""
    return ProtocolError(ErrorCode.BAD_REQUEST, f"{field}: {message}", field=field, **details)


@dataclass
class TargetRig:
    rig: str                     # preset used ("anny", "smpl", ..., "map")
    bone_names: list[str]
    parents: np.ndarray          # (B,) int
    rest: np.ndarray             # (B, 4, 4) float64, orthonormal rotation parts
    mapping: dict[str, str]      # target bone -> SMPL joint
    verbatim: bool               # the rig's frames are SMPL's: no swing correction


def builds_on_anny(target: dict[str, Any] | None) -> bool:
    """Whether resolving a normalised `target` loads Anny: its built-in rig, named
    without the rig's own bones (default_rig)."""
    return target is not None and target["preset"] == "anny" and target.get("bone_names") is None


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
        raise bad_target(field, f"cannot retarget onto this rig with preset {preset!r}: no bone for SMPL joint(s) "
                   f"{', '.join(missing)}. Bones that could not be mapped: {shown}. Pick another preset or give "
                   "an explicit map {bone: SMPL joint}", unmapped=unmapped, missing_joints=missing,
                   preset=preset)
