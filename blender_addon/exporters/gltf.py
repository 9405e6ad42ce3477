"""glTF binary (.glb) export of a rig's motion through Blender's own exporter
(io_scene_gltf2).

glTF fixes its own conventions (Y up, metres, +Z forward), so one setting
serves Unity (glTFast), Unreal (its glTF importer) and Blender alike: every
preset name maps to the same settings. Why each one:
- SCENE animation mode with the playback range and forced sampling: one
  animation, the motion as the scene evaluates it (NLA strips included),
  sampled every frame and not thinned (optimize off), so nothing drifts;
- skins on, the Armature modifier not applied (export_apply off): the bind
  pose is the body's rest pose (DESIGN §6);
- every bone, not deform bones only, and no leaf bones added;
- extras off: they would carry every custom property, the scene's AvatarForge
  panel settings included (Blender 4.2's importer then fails to set them back).
"""
from __future__ import annotations

from typing import Any

import bpy

SETTINGS: dict[str, Any] = {
    "export_format": "GLB",
    "use_selection": True,
    "export_yup": True,
    "export_apply": False,
    "export_skins": True,
    "export_def_bones": False,
    "export_leaf_bone": False,
    "export_animations": True,
    "export_animation_mode": "SCENE",
    "export_frame_range": True,
    "export_force_sampling": True,
    "export_frame_step": 1,
    "export_optimize_animation_size": False,
    "export_anim_slide_to_zero": False,
    "export_extras": False,
    "export_cameras": False,
    "export_lights": False,
}


def export(path: str) -> None:
    """Write the selected objects' .glb (the caller selects what goes, the mesh
    or not, and sets the frame range)."""
    result = bpy.ops.export_scene.gltf(filepath=path, **SETTINGS)
    if result != {"FINISHED"}:
        raise RuntimeError(f"Blender's glTF exporter returned {result}")
