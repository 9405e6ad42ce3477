"""A Blender armature described for the backend's retargeting: the `target`
param of the `text_motion` and `motion_import` jobs (docs/blender_addon.md).

    {"preset": "anny"|"smpl"|"mixamo"|"rigify"|"unreal"|"auto",
     "bone_names": [..B], "parents": [..B] (parents first, -1 root),
     "rest_matrices": (B,4,4) float32 = bone.matrix_local (armature space),
     "map": {target bone: smpl24 joint} (optional, overrides the preset)}

Avatars this add-on built carry `avatarforge_body_model`; that picks the
preset when the user leaves it on "auto".
"""
from __future__ import annotations

import json
import os
from typing import Any

import bpy
import numpy as np

from .importers.common import ImportFailed, read_stamp
from .protocol.limits import AUTO_RIG_PRESET, RIG_PRESETS

PRESETS = (AUTO_RIG_PRESET, *RIG_PRESETS)
# avatarforge_body_model stamp -> retargeting preset
PRESET_BY_BODY_MODEL = {"anny": "anny", "smpl": "smpl", "smplh": "smpl", "smplx": "smpl", "smpl24": "smpl"}


def bones_parent_first(armature: bpy.types.Armature) -> list[bpy.types.Bone]:
    """The armature's bones ordered so every parent precedes its children
    (depth first from each root, siblings in Blender's order)."""
    ordered: list[bpy.types.Bone] = []
    stack = [b for b in reversed(armature.bones) if b.parent is None]
    while stack:
        bone = stack.pop()
        ordered.append(bone)
        stack.extend(reversed(bone.children))
    return ordered


def detected_preset(rig: bpy.types.Object) -> str:
    """The preset an avatar built by this add-on implies, else "auto"."""
    body_model = read_stamp(rig, "body_model")
    return PRESET_BY_BODY_MODEL.get(str(body_model).lower(), AUTO_RIG_PRESET) if body_model else AUTO_RIG_PRESET


def parse_bone_map(source: str) -> dict[str, str]:
    """An explicit bone map {target bone: smpl24 joint} from, in order: the
    name of a Blender text block, a path to a .json file, or JSON text."""
    source = source.strip()
    if not source:
        return {}
    text_block = bpy.data.texts.get(source)
    if text_block is not None:
        raw, where = text_block.as_string(), f"text block '{source}'"
    elif os.path.isfile(bpy.path.abspath(source)):
        with open(bpy.path.abspath(source), encoding="utf-8") as f:
            raw, where = f.read(), f"file {source}"
    else:
        raw, where = source, "the bone map text"
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImportFailed(f"bone map: {where} is not JSON ({exc}); write {{\"TargetBone\": \"smpl_joint\", ...}}, "
                           "or name a text block / .json file") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ImportFailed(f"bone map: {where} must be a JSON object of bone name -> SMPL joint name")
    return value


def describe_rig(rig: bpy.types.Object, preset: str = AUTO_RIG_PRESET,
                 bone_map: dict[str, str] | None = None) -> dict[str, Any]:
    """The <target rig> wire dict for `rig` (an armature object)."""
    if rig is None or rig.type != "ARMATURE":
        raise ImportFailed(f"'{getattr(rig, 'name', rig)}' is not an armature; select the rig to animate")
    if preset not in PRESETS:
        raise ImportFailed(f"target preset '{preset}' is not one of {', '.join(PRESETS)}")
    bones = bones_parent_first(rig.data)
    if not bones:
        raise ImportFailed(f"armature '{rig.name}' has no bones")
    index = {b.name: i for i, b in enumerate(bones)}
    rest = np.array([np.array(b.matrix_local) for b in bones], dtype=np.float32)
    target: dict[str, Any] = {
        "preset": detected_preset(rig) if preset == AUTO_RIG_PRESET else preset,
        "bone_names": [b.name for b in bones],
        "parents": [index[b.parent.name] if b.parent else -1 for b in bones],
        "rest_matrices": rest,
    }
    if bone_map:
        unknown = sorted(set(bone_map) - set(index))
        if unknown:
            raise ImportFailed(f"bone map names bones '{rig.name}' does not have: {', '.join(unknown[:10])}")
        target["map"] = dict(bone_map)
    return target
