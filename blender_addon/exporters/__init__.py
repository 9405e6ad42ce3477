"""Exports of a rig's motion to files other applications read: FBX (.fbx) and
glTF binary (.glb), written by Blender's own exporters with the presets in
fbx.py (per target application) and gltf.py (one standard).

    export_motion(rig, "/out/take.fbx", preset="unity")   # or "unreal", "blender"
    export_motion(rig, "/out/take.glb")

What goes: the armature and, with `with_mesh`, the meshes it deforms; the take
is the motion as the scene plays it (the rig's active action, else its
unmuted NLA strips), over the motion's frames. The user's selection, active
object and frame range are put back afterwards.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import bpy

from . import fbx, gltf

PRESETS = tuple(fbx.PRESETS)            # "unity", "unreal", "blender"
DEFAULT_PRESET = "unity"
FORMATS = {".fbx": "FBX", ".glb": "GLB"}


class ExportFailed(Exception):
    """A motion could not be exported; the message says why and what to do."""


@dataclass
class ExportedMotion:
    path: str
    format: str                       # "FBX" | "GLB"
    preset: str
    frame_start: int
    frame_end: int
    fps: float
    objects: list[str] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return self.frame_end - self.frame_start + 1


def file_format(path: str) -> str:
    """"FBX" or "GLB" from the file name, refused otherwise."""
    fmt = FORMATS.get(os.path.splitext(path)[1].lower())
    if fmt is None:
        raise ExportFailed(f"cannot export a motion to '{os.path.basename(path)}': name the file .fbx or .glb")
    return fmt


def motion_range(rig: bpy.types.Object) -> tuple[int, int]:
    """The frames of the motion the rig plays: its active action's range, else its unmuted NLA strips'."""
    anim = rig.animation_data
    if anim is not None and anim.action is not None:
        start, end = anim.action.frame_range
        return int(round(start)), int(round(end))
    strips = [s for t in (anim.nla_tracks if anim else ()) if not t.mute for s in t.strips if not s.mute]
    if not strips:
        raise ExportFailed(f"'{rig.name}' has no motion to export (no action, no unmuted NLA strip); "
                           "animate it first")
    return int(round(min(s.frame_start for s in strips))), int(round(max(s.frame_end for s in strips)))


def deformed_meshes(rig: bpy.types.Object, scene: bpy.types.Scene) -> list[bpy.types.Object]:
    """The scene's meshes an Armature modifier binds to `rig`."""
    return [o for o in scene.objects if o.type == "MESH"
            and any(m.type == "ARMATURE" and m.object == rig for m in o.modifiers)]


class _ExportState:
    """Selection, active object and frame range set for an export, then restored."""

    def __init__(self, scene: bpy.types.Scene, view_layer: bpy.types.ViewLayer, objects: list[bpy.types.Object],
                 frames: tuple[int, int]) -> None:
        self.scene, self.view_layer, self.objects, self.frames = scene, view_layer, objects, frames

    def __enter__(self) -> "_ExportState":
        self.selected = [o for o in self.view_layer.objects if o.select_get(view_layer=self.view_layer)]
        self.active = self.view_layer.objects.active
        self.range = (self.scene.frame_start, self.scene.frame_end, self.scene.frame_current)
        for o in self.selected:
            o.select_set(False, view_layer=self.view_layer)
        for o in self.objects:
            o.select_set(True, view_layer=self.view_layer)
        self.view_layer.objects.active = self.objects[0]
        self.scene.frame_start, self.scene.frame_end = self.frames
        return self

    def __exit__(self, *exc: Any) -> None:
        for o in self.objects:
            o.select_set(False, view_layer=self.view_layer)
        for o in self.selected:
            o.select_set(True, view_layer=self.view_layer)
        self.view_layer.objects.active = self.active
        self.scene.frame_start, self.scene.frame_end = self.range[:2]
        self.scene.frame_set(self.range[2])


def export_motion(rig: bpy.types.Object, path: str, preset: str = DEFAULT_PRESET, with_mesh: bool = True,
                  context: Any = None) -> ExportedMotion:
    """Write `rig`'s motion (and, with `with_mesh`, the meshes it deforms) to
    `path` (.fbx with `preset`'s settings, or .glb)."""
    context = context or bpy.context
    if rig is None or rig.type != "ARMATURE":
        raise ExportFailed(f"'{getattr(rig, 'name', rig)}' is not an armature; pick the rig whose motion to export")
    if preset not in PRESETS:
        raise ExportFailed(f"export preset '{preset}' is not one of {', '.join(PRESETS)}")
    fmt = file_format(path)
    scene, view_layer = context.scene, context.view_layer
    active = view_layer.objects.active
    if active is not None and active.mode != "OBJECT":
        raise ExportFailed(f"'{active.name}' is in {active.mode.replace('_', ' ').lower()} mode; switch to Object "
                           "mode and export again")
    objects = [rig] + (deformed_meshes(rig, scene) if with_mesh else [])
    hidden = [o.name for o in objects if not o.visible_get(view_layer=view_layer)]
    if hidden:
        raise ExportFailed(f"{', '.join(hidden)} hidden or excluded from the view layer; show it to export it")
    frames = motion_range(rig)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ExportFailed(f"the folder {folder} does not exist")
    with _ExportState(scene, view_layer, objects, frames):
        try:
            if fmt == "FBX":
                fbx.export(path, preset, with_mesh)
            else:
                gltf.export(path)
        except RuntimeError as exc:      # the exporters report their failures as RuntimeError
            raise ExportFailed(f"Blender's {fmt} exporter failed: {exc}") from None
    return ExportedMotion(os.path.abspath(path), fmt, preset, frames[0], frames[1],
                          scene.render.fps / scene.render.fps_base, [o.name for o in objects])


__all__ = ["DEFAULT_PRESET", "ExportFailed", "ExportedMotion", "FORMATS", "PRESETS", "export_motion", "fbx", "gltf"]
