"""The one function both motion pipelines (import, text -> motion) end with:
arrays in, a complete Motion artifact out."""
from __future__ import annotations

from typing import Any

import numpy as np

from avatarforge.protocol import Motion

from .ops import foot_contacts
from .retarget import retarget
from .skeleton import forward_kinematics, reference_skeleton
from .target_rigs import TargetRig, reference_rig


def make_motion(name: str, fps: float, rotations: Any, trans: Any, params: dict[str, Any],
                provenance: dict[str, Any], target: dict[str, Any] | TargetRig | None = None,
                contacts: Any = None) -> Motion:
    """A Motion with FK joints on the reference skeleton, foot contacts (`contacts`
    when the caller knows them, e.g. a capture solve's, else detected on the joints),
    the reference skeleton itself (rest_skeleton) and pose-bone tracks: retargeted
    onto `target` (a normalised <target rig>) when given, planted feet kept in place,
    else onto the reference skeleton's own SMPL-24 armature, so an importer only keys them."""
    r = np.asarray(rotations, dtype=np.float32)
    t = np.asarray(trans, dtype=np.float32)
    if r.ndim != 3 or r.shape[1:] != (24, 3) or t.shape != (len(r), 3) or len(r) == 0:
        raise ValueError(f"make_motion: rotations (T, 24, 3) and trans (T, 3), got {r.shape} and {t.shape}")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(t))):
        raise ValueError("make_motion: rotations and trans must be finite")
    joints = forward_kinematics(r.astype(np.float64), t.astype(np.float64)).astype(np.float32)
    feet = foot_contacts(joints, fps) if contacts is None else np.asarray(contacts, bool)
    if feet.shape != (len(r), 2):
        raise ValueError(f"make_motion: contacts (T, 2), got {feet.shape}")
    return Motion(name=name, fps=float(fps), rotations=r, trans=t, joints=joints,
                  contacts=feet, rest_skeleton=reference_skeleton(),
                  retargeted=retarget(r, t, reference_rig() if target is None else target, feet),
                  params=params, provenance=provenance)
