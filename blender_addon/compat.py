"""Every Blender-version difference the add-on touches, in one place.

Supported: Blender 4.2 LTS through 5.x. Code elsewhere calls these helpers
instead of testing `bpy.app.version` itself, so the next API change is fixed
here once.
"""
from __future__ import annotations

from typing import Any

import bpy

BLENDER: tuple[int, int, int] = tuple(bpy.app.version)  # type: ignore[assignment]
MIN_BLENDER = (4, 2, 0)


def at_least(*version: int) -> bool:
    return BLENDER >= tuple(version)


def ensure_material_nodes(material: bpy.types.Material) -> bpy.types.ShaderNodeTree:
    """The material's node tree. Blender 5.0 always has one and deprecates
    `use_nodes` (it warns); 4.x needs `use_nodes = True` to create it."""
    if not at_least(5, 0, 0) and not material.use_nodes:
        material.use_nodes = True
    return material.node_tree


def _attribute(mesh: bpy.types.Mesh, name: str) -> Any:
    return mesh.attributes.get(name)


def set_positions(mesh: bpy.types.Mesh, flat_xyz: Any) -> None:
    """Vertex positions in bulk: the `position` attribute is a raw copy (Blender
    3.5+ stores positions as an attribute); `vertices.co` goes item by item."""
    attr = _attribute(mesh, "position")
    if attr is not None:
        attr.data.foreach_set("vector", flat_xyz)
    else:
        mesh.vertices.foreach_set("co", flat_xyz)


def set_corner_verts(mesh: bpy.types.Mesh, flat_indices: Any) -> None:
    """Each face corner's vertex: the internal `.corner_vert` attribute (4.0+)
    is a raw copy, about 50x faster than `loops.vertex_index`."""
    attr = _attribute(mesh, ".corner_vert")
    if attr is not None:
        attr.data.foreach_set("value", flat_indices)
    else:
        mesh.loops.foreach_set("vertex_index", flat_indices)


def add_corner_uvs(mesh: bpy.types.Mesh, name: str, flat_uv: Any) -> None:
    """A UV map from per-corner UVs, made the active and render one. A FLOAT2
    corner attribute is a UV map since 3.5 and takes a raw copy."""
    attr = mesh.attributes.new(name, "FLOAT2", "CORNER")
    attr.data.foreach_set("vector", flat_uv)
    layer = mesh.uv_layers[name]
    mesh.uv_layers.active = layer
    layer.active_render = True


def shade_smooth(mesh: bpy.types.Mesh) -> None:
    """Smooth shading for every face, without a Python loop (4.1+ has shade_smooth)."""
    mesh.shade_smooth()


def pack_png(image: bpy.types.Image, png: bytes) -> None:
    """Pack PNG bytes into `image` so the .blend carries them (no temp file)."""
    image.pack(data=png, data_len=len(png))
    image.source = "FILE"


def action_fcurves(idblock: bpy.types.ID, action: bpy.types.Action) -> Any:
    """Assign `action` to `idblock` and return the F-curve collection its keys go to.

    Blender 4.4 introduced layered actions (layers -> strips -> channelbags per
    slot) and 5.0 removed the legacy `Action.fcurves`; before that the action
    itself holds the curves. On the layered API the ID gets a slot of its own.
    """
    anim = idblock.animation_data or idblock.animation_data_create()
    anim.action = action
    if not hasattr(action, "layers") or (not at_least(5, 0, 0) and not action.layers):
        return action.fcurves
    slot = anim.action_slot
    if slot is None:
        slot = action.slots.new(id_type=idblock.id_type, name=idblock.name)
        anim.action_slot = slot
    layer = action.layers[0] if action.layers else action.layers.new("Layer")
    strip = layer.strips[0] if layer.strips else layer.strips.new(type="KEYFRAME")
    return strip.channelbag(slot, ensure=True).fcurves


def new_fcurve(fcurves: Any, data_path: str, index: int, group: str) -> bpy.types.FCurve:
    """A new F-curve in `fcurves` (from action_fcurves). The group keyword is
    `action_group` on legacy actions and `group_name` on channelbags."""
    params = fcurves.bl_rna.functions["new"].parameters.keys()
    key = "group_name" if "group_name" in params else "action_group"
    return fcurves.new(data_path, index=index, **{key: group})


def push_to_nla(idblock: bpy.types.ID, action: bpy.types.Action, track_name: str,
                start_frame: int) -> tuple[bpy.types.NlaTrack, bpy.types.NlaStrip]:
    """Put `action` (already assigned by action_fcurves) on a new NLA track of
    `idblock` as one strip starting at `start_frame`, and clear the active
    action so the NLA plays it (Blender's Push Down). On slotted actions
    (4.4+) the strip must use the slot the keys were written for."""
    anim = idblock.animation_data or idblock.animation_data_create()
    slot = getattr(anim, "action_slot", None)
    track = anim.nla_tracks.new()
    track.name = track_name
    strip = track.strips.new(action.name, int(start_frame), action)
    if slot is not None and hasattr(strip, "action_slot") and strip.action_slot != slot:
        strip.action_slot = slot
    anim.action = None
    return track, strip


def cycles_cpu(scene: bpy.types.Scene, samples: int, denoise: bool = False) -> None:
    """Cycles on the CPU with few samples: what headless renders on any machine use."""
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = denoise
    scene.cycles.use_adaptive_sampling = True
    if hasattr(scene.cycles, "preview_samples"):
        scene.cycles.preview_samples = samples


def status_bar_header() -> type:
    """The status bar's header class, where progress bars are drawn."""
    return bpy.types.STATUSBAR_HT_header


def progress_bar(layout: bpy.types.UILayout, factor: float, text: str) -> None:
    """A progress bar (UILayout.progress exists since 4.0)."""
    layout.progress(factor=max(0.0, min(1.0, factor)), type="BAR", text=text)
