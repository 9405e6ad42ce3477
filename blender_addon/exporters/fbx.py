"""FBX export of a rig's motion through Blender's own exporter (io_scene_fbx),
with the settings each target application expects, in one table.

Shared by every preset (why):
- add_leaf_bones=False: Blender's default adds an "_end" bone per chain, which
  Unity and Unreal import as extra joints (and retargeting trips on);
- primary/secondary bone axis Y/X: Blender's own bone frames, written as they
  are; Unity's and Unreal's importers rebuild their bind poses from the node
  transforms and need no axis swap (Epic's Send to Unreal writes Y/X);
- armature_nodetype NULL: the armature object is a plain node (Unity's Avatar
  and Unreal's skeleton both want that, not a LimbNode or Root);
- bake_anim with every bone keyed on every frame (simplify 0, step 1,
  start/end keyed): the take is the evaluated motion (NLA strips included),
  sample for sample, so nothing drifts from what Blender plays;
- use_mesh_modifiers=False: the Armature modifier is never applied (DESIGN §6:
  the bind pose is the body's rest pose, the motion travels as animation);
- use_custom_props=True: the AvatarForge provenance stamps travel as FBX user
  properties.
Per preset (what the file then says, pinned by tests/blender/test_motion_export.py):
- "unity": -Z forward, Y up (Unity's axes) and "FBX All" scalings: the file
  declares metres (UnitScaleFactor 100) with the data in metres, so Unity
  imports at scale 1 with "Convert Units" on (no 100x on the armature); the
  armature node carries the -90 degree X turn of the axis change, which Unity
  undoes with "Bake Axis Conversion" (its Humanoid avatar ignores it anyway).
  "Apply Transform" (bake_space_transform) does not remove that turn from an
  armature node and is documented broken with armatures, so it stays off;
- "unreal": Blender's own Z up, Y forward and "All Local" scalings, as Epic's
  Send to Unreal writes them: the file declares centimetres (UnitScaleFactor 1),
  Unreal's unit, with the armature node scaled 100 (Unreal folds it into the
  skeleton on import); the armature object's name becomes the root bone (name
  it "Armature" to have Unreal skip it). Send to Unreal also rescales the
  scene to centimetres first so that node is unscaled; that is not done here
  (it rewrites the user's rig);
- "blender": Blender's exporter defaults (-Z forward, Y up, "All Local"), for
  going back into Blender or tools that read FBX the way Blender writes it.
"""
from __future__ import annotations

from typing import Any

import bpy

COMMON: dict[str, Any] = {
    "use_selection": True,
    "global_scale": 1.0,
    "apply_unit_scale": True,
    "bake_space_transform": False,           # "experimental, known broken with armatures/animations"
    "add_leaf_bones": False,
    "primary_bone_axis": "Y",
    "secondary_bone_axis": "X",
    "armature_nodetype": "NULL",
    "use_armature_deform_only": False,
    "bake_anim": True,
    "bake_anim_use_all_bones": True,
    "bake_anim_use_nla_strips": False,       # one take: the motion as the scene plays it
    "bake_anim_use_all_actions": False,
    "bake_anim_force_startend_keying": True,
    "bake_anim_step": 1.0,
    "bake_anim_simplify_factor": 0.0,
    "use_mesh_modifiers": False,
    "mesh_smooth_type": "FACE",
    "use_tspace": False,
    "use_custom_props": True,
    "path_mode": "COPY",
    "embed_textures": True,
}

PRESETS: dict[str, dict[str, Any]] = {
    "unity": {"axis_forward": "-Z", "axis_up": "Y", "apply_scale_options": "FBX_SCALE_ALL"},
    "unreal": {"axis_forward": "Y", "axis_up": "Z", "apply_scale_options": "FBX_SCALE_NONE"},
    "blender": {"axis_forward": "-Z", "axis_up": "Y", "apply_scale_options": "FBX_SCALE_NONE"},
}
DESCRIPTIONS = {
    "unity": "Unity: Y up, -Z forward, scale 1 with Convert Units (FBX All scalings), no leaf bones",
    "unreal": "Unreal Engine: Z up, centimetres by the FBX unit, no leaf bones (Send to Unreal's settings)",
    "blender": "Blender's own FBX conventions (-Z forward, Y up), no leaf bones",
}


def settings(preset: str, with_mesh: bool) -> dict[str, Any]:
    """The export_scene.fbx keyword arguments for `preset`."""
    return {**COMMON, **PRESETS[preset], "object_types": {"ARMATURE", "MESH"} if with_mesh else {"ARMATURE"}}


def import_settings(preset: str) -> dict[str, Any]:
    """What Blender's FBX importer needs to read a file of `preset` back as it
    was (tests, and artists re-importing a take): the same axes and bone axes,
    leaf bones not expected, and no frame offset (the exporter writes frame f
    at time f / fps; the importer's default anim_offset of 1 would shift the
    take one frame later)."""
    p = PRESETS[preset]
    return {"axis_forward": p["axis_forward"], "axis_up": p["axis_up"], "use_manual_orientation": False,
            "primary_bone_axis": COMMON["primary_bone_axis"], "secondary_bone_axis": COMMON["secondary_bone_axis"],
            "automatic_bone_orientation": False, "ignore_leaf_bones": False, "use_anim": True,
            "anim_offset": 0.0, "global_scale": 1.0}


def export(path: str, preset: str, with_mesh: bool) -> None:
    """Write the selected objects' FBX (the caller selects and sets the frame range)."""
    result = bpy.ops.export_scene.fbx(filepath=path, **settings(preset, with_mesh))
    if result != {"FINISHED"}:
        raise RuntimeError(f"Blender's FBX exporter returned {result}")
