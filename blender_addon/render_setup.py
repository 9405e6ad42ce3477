"""A camera framing an avatar, a light, and small Cycles CPU renders: what the
demo, the batch script and the tests use to show what was built."""
from __future__ import annotations

import math
from typing import Iterable

import bpy
import numpy as np
from mathutils import Vector

from . import compat

WORLD_COLOUR = (0.05, 0.05, 0.06)


def world_bounds(objects: Iterable[bpy.types.Object]) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned (min, max) corners of the objects' evaluated geometry in world space."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    corners = []
    for obj in objects:
        if obj.type != "MESH":
            continue
        ev = obj.evaluated_get(depsgraph)
        corners += [ev.matrix_world @ Vector(c) for c in ev.bound_box]
    if not corners:
        raise ValueError("nothing to frame: no mesh among the objects")
    pts = np.array([tuple(c) for c in corners])
    return pts.min(axis=0), pts.max(axis=0)


def frame_front(scene: bpy.types.Scene, objects: Iterable[bpy.types.Object], margin: float = 1.15,
                lens_mm: float = 50.0) -> bpy.types.Object:
    """A camera in front of the objects (they face -Y, DESIGN §6) that fits
    their height and width in the frame; made the scene camera."""
    lo, hi = world_bounds(objects)
    centre = (lo + hi) / 2
    size = hi - lo
    cam_data = bpy.data.cameras.new("AvatarForge Camera")
    cam_data.lens = lens_mm
    cam = bpy.data.objects.new("AvatarForge Camera", cam_data)
    scene.collection.objects.link(cam)
    aspect = scene.render.resolution_x / scene.render.resolution_y
    half_fov = math.atan(cam_data.sensor_width / (2 * lens_mm))   # across the wider side
    half_h = math.atan(math.tan(half_fov) / aspect) if aspect >= 1 else half_fov
    half_w = math.atan(math.tan(half_fov) * aspect) if aspect < 1 else half_fov
    need = max((size[2] / 2 * margin) / math.tan(half_h), (size[0] / 2 * margin) / math.tan(half_w))
    cam.location = (centre[0], lo[1] - need, centre[2])
    cam.rotation_euler = (math.pi / 2, 0.0, 0.0)    # looks along +Y
    scene.camera = cam
    return cam


def add_key_light(scene: bpy.types.Scene, energy: float = 3.0) -> bpy.types.Object:
    """A sun from the front left, above: enough to read the shape."""
    light_data = bpy.data.lights.new("AvatarForge Key", "SUN")
    light_data.energy = energy
    light = bpy.data.objects.new("AvatarForge Key", light_data)
    light.rotation_euler = (math.radians(50), 0.0, math.radians(-30))
    scene.collection.objects.link(light)
    return light


def set_world(scene: bpy.types.Scene, colour: tuple[float, float, float] = WORLD_COLOUR) -> None:
    """A plain, dark world so the body stands out from the background."""
    world = scene.world or bpy.data.worlds.new("AvatarForge World")
    scene.world = world
    if not compat.at_least(5, 0, 0):  # 5.0 always has world nodes and deprecates use_nodes
        world.use_nodes = True
    tree = world.node_tree
    background = next((n for n in tree.nodes if n.bl_idname == "ShaderNodeBackground"), None)
    if background is None:
        background = tree.nodes.new("ShaderNodeBackground")
        output = next((n for n in tree.nodes if n.bl_idname == "ShaderNodeOutputWorld"), None) or \
            tree.nodes.new("ShaderNodeOutputWorld")
        tree.links.new(background.outputs["Background"], output.inputs["Surface"])
    background.inputs["Color"].default_value = (*colour, 1.0)
    background.inputs["Strength"].default_value = 1.0


def configure_cycles(scene: bpy.types.Scene, resolution: int | tuple[int, int] = 384, samples: int = 16,
                     denoise: bool = False) -> None:
    """Cycles on the CPU, small image, few samples: seconds on any machine."""
    w, h = (resolution, resolution) if isinstance(resolution, int) else resolution
    scene.render.resolution_x, scene.render.resolution_y = int(w), int(h)
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "PNG"
    scene.render.film_transparent = False
    compat.cycles_cpu(scene, samples, denoise)


def stage_avatar(scene: bpy.types.Scene, objects: Iterable[bpy.types.Object], resolution: int | tuple[int, int],
                 samples: int) -> bpy.types.Object:
    """Camera, light, world and render settings for a portrait of `objects`."""
    configure_cycles(scene, resolution, samples)
    set_world(scene)
    add_key_light(scene)
    return frame_front(scene, list(objects))


def render_still(scene: bpy.types.Scene, filepath: str) -> str:
    """Render the scene camera's view to `filepath` (PNG)."""
    if scene.camera is None:
        raise ValueError("the scene has no camera; call frame_front first")
    scene.render.filepath = filepath
    with bpy.context.temp_override(scene=scene):
        bpy.ops.render.render(write_still=True, scene=scene.name)
    return bpy.path.abspath(filepath)
