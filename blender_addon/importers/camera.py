"""Builds a Camera (protocol/artifacts.py) in the scene: a Blender camera that
sees what the solved camera saw, with the footage it was solved from behind it.

The conversion from OpenCV's pinhole (K in pixels, world_to_camera with x
right, y down, z forward) to Blender's camera is `blender_camera`, the one
place it is done (DESIGN §6). The video, when its file is on this machine,
becomes a reference the artist scrubs with the timeline:
- "background": the camera's background image, a MovieClip (Blender decodes
  the file itself, also in background mode); the default;
- "plane": an image plane parented to the camera, filling its frame behind the
  subject (seen in any view, Material Preview or Rendered shading);
- "none".
Scene frame `start_frame` shows the video frame at `Camera.params["video"]["start"]`
seconds (the motion's first frame). Blender plays a clip one video frame per
scene frame, so the reference stays in step when the scene runs at the video's
rate (the motion's default); `ImportedCamera.notes` says when it does not.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import bpy
import numpy as np
from mathutils import Matrix

from .. import compat
from ..protocol import Camera
from . import common

KIND = Camera.KIND
REFERENCES = ("background", "plane", "none")
SENSOR_MM = 36.0          # 35 mm film's width: the lens in mm is then the 35 mm-equivalent focal length
START_FRAME = 1
# OpenCV camera axes (x right, y down, z forward) -> Blender's (x right, y up, looking down -z).
CV_TO_BLENDER = np.diag([1.0, -1.0, -1.0, 1.0])
PLANE_MIN_DISTANCE = 5.0  # metres from the camera to the image plane, at least


@dataclass(frozen=True)
class BlenderCameraSettings:
    """Blender's camera for an OpenCV pinhole: what `blender_camera` returns."""
    lens_mm: float
    sensor_fit: str                   # "HORIZONTAL" (wide image) or "VERTICAL" (tall image)
    sensor_mm: float                  # size of the fitted side of the sensor
    shift_x: float
    shift_y: float
    resolution: tuple[int, int]       # render width, height in pixels
    pixel_aspect: tuple[float, float]  # render pixel_aspect_x, pixel_aspect_y (1, 1 unless fx != fy)
    camera_to_world: np.ndarray       # (4, 4) the camera object's matrix (Blender axes), in the camera's world


def blender_camera(K: np.ndarray, image_size: tuple[int, int], world_to_camera: np.ndarray,
                   sensor_mm: float = SENSOR_MM) -> BlenderCameraSettings:
    """Blender's camera for the OpenCV pinhole (K, image_size, world_to_camera).

    Pixel coordinates are continuous with the origin at the top-left corner of
    the image (backend/core/capture.py), so u = x_c / z_c * fx + cx spans [0, w].
    Blender's view plane, for a render of w x h pixels with pixel aspect
    ycor = aspect_y / aspect_x, covers (at unit distance, with `viewfac` the
    fitted side in pixels: w for HORIZONTAL, ycor * h for VERTICAL):
        x in [-w/2 + shift_x * viewfac, w/2 + shift_x * viewfac] * s,
        y in [-ycor * h/2 + shift_y * viewfac, ycor * h/2 + shift_y * viewfac] * s,
        s = sensor / (lens * viewfac).
    Equating with OpenCV's x in [-cx, w - cx] / fx and (y up) [cy - h, cy] / fy:
        s = 1 / fx, ycor = fx / fy,
        lens = fx * sensor / viewfac,
        shift_x = (w/2 - cx) / viewfac,   shift_y = (cy - h/2) * ycor / viewfac.
    The sensor is fitted to the longer side, 36 mm, so `lens` is the 35 mm-
    equivalent focal length (as PinholeCamera.from_focal_mm states it).
    The object's matrix is the camera-to-world pose with OpenCV's y and z flipped.
    """
    K = np.asarray(K, np.float64)
    w, h = int(image_size[0]), int(image_size[1])
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    if abs(K[0, 1]) > 1e-6 * fx:
        raise common.ImportFailed(f"camera intrinsics have a skew of {K[0, 1]:g} px; Blender's camera has none")
    ycor = fx / fy
    # Blender's pixel aspect values are >= 1: the larger one carries the ratio.
    aspect = (1.0, ycor) if ycor >= 1.0 else (1.0 / ycor, 1.0)
    if w >= h:
        fit, viewfac = "HORIZONTAL", float(w)
    else:
        fit, viewfac = "VERTICAL", ycor * h
    pose = np.asarray(world_to_camera, np.float64)
    return BlenderCameraSettings(
        lens_mm=float(fx * sensor_mm / viewfac), sensor_fit=fit, sensor_mm=float(sensor_mm),
        shift_x=float((w / 2.0 - cx) / viewfac), shift_y=float((cy - h / 2.0) * ycor / viewfac),
        resolution=(w, h), pixel_aspect=(float(aspect[0]), float(aspect[1])),
        camera_to_world=np.linalg.inv(pose) @ CV_TO_BLENDER)


@dataclass
class ImportedCamera:
    camera: bpy.types.Object
    clip: bpy.types.MovieClip | None = None        # the footage behind it ("background")
    plane: bpy.types.Object | None = None          # the image plane ("plane")
    video_frame_offset: int = 0                    # video frame (0-based) shown at the start frame
    note_list: list[str] = field(default_factory=list)

    @property
    def objects(self) -> tuple[bpy.types.Object, ...]:
        return (self.camera,) + ((self.plane,) if self.plane is not None else ())

    @property
    def notes(self) -> str:
        return "; ".join(self.note_list)


def video_facts(camera: Camera) -> dict[str, Any]:
    """Camera.params["video"] (empty when the camera was not solved from a video)."""
    video = camera.params.get("video")
    return video if isinstance(video, dict) else {}


def first_video_frame(video: dict[str, Any]) -> int:
    """The 0-based video frame at `start` seconds: what the motion's first frame shows."""
    fps, start = video.get("fps"), video.get("start") or 0.0
    if not isinstance(fps, (int, float)) or fps <= 0:
        return 0
    return max(0, int(round(float(start) * float(fps))))


def apply_settings(cam_obj: bpy.types.Object, settings: BlenderCameraSettings, world: Matrix,
                   scene: bpy.types.Scene | None) -> None:
    """Write `settings` onto a camera object (and the scene's render size when `scene` is given)."""
    data = cam_obj.data
    data.type = "PERSP"
    data.lens_unit = "MILLIMETERS"
    data.sensor_fit = settings.sensor_fit
    data.sensor_width = data.sensor_height = settings.sensor_mm
    data.lens = settings.lens_mm
    data.shift_x, data.shift_y = settings.shift_x, settings.shift_y
    cam_obj.matrix_world = world @ Matrix(settings.camera_to_world.tolist())
    if scene is not None:
        render = scene.render
        render.resolution_x, render.resolution_y = settings.resolution
        render.resolution_percentage = 100
        render.pixel_aspect_x, render.pixel_aspect_y = settings.pixel_aspect


def video_path_for(video: dict[str, Any], video_path: str | None) -> str | None:
    """The footage's path on this machine: `video_path` when given and present."""
    if not video_path:
        return None
    path = bpy.path.abspath(video_path)
    if not os.path.isfile(path):
        raise common.ImportFailed(f"the video '{video_path}' is not on this machine any more; import again with "
                                  "reference 'none' or put the file back")
    return path


def add_background_clip(cam_obj: bpy.types.Object, path: str, offset: int, start_frame: int) -> bpy.types.MovieClip:
    """The footage as the camera's background image: scene frame `start_frame`
    shows video frame `offset` (0-based). A MovieClip maps scene frame f to
    clip frame f - frame_start + 1, read from file frame clip frame + frame_offset."""
    clip = bpy.data.movieclips.load(path, check_existing=False)
    clip.frame_start = start_frame
    clip.frame_offset = offset
    data = cam_obj.data
    bg = data.background_images.new()
    bg.source = "MOVIE_CLIP"
    bg.clip = clip
    bg.alpha = 1.0
    bg.frame_method = "FIT"       # the clip and the camera frame have the same aspect: FIT is exact
    data.show_background_images = True
    return clip


def plane_corners(K: np.ndarray, image_size: tuple[int, int], distance: float) -> np.ndarray:
    """(4, 3) corners of the image at `distance` in the Blender camera's local
    frame (looking down -z): bottom-left, bottom-right, top-right, top-left."""
    w, h = image_size
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    u = np.array([0.0, w, w, 0.0])
    v = np.array([h, h, 0.0, 0.0])
    return np.stack([(u - cx) / fx * distance, -(v - cy) / fy * distance, np.full(4, -distance)], 1)


def add_image_plane(cam_obj: bpy.types.Object, name: str, path: str, K: np.ndarray, image_size: tuple[int, int],
                    distance: float, frames: int, offset: int, start_frame: int,
                    collection: bpy.types.Collection) -> bpy.types.Object:
    """A plane parented to the camera that exactly fills its frame at
    `distance`, showing the video (an emission shader: the footage as shot)."""
    mesh = bpy.data.meshes.new(f"{name}_video")
    mesh.from_pydata(plane_corners(K, image_size, distance).tolist(), [], [(0, 1, 2, 3)])
    compat.add_corner_uvs(mesh, "UVMap", np.array([0, 0, 1, 0, 1, 1, 0, 1], np.float32))
    plane = bpy.data.objects.new(f"{name}_video", mesh)
    collection.objects.link(plane)
    plane.parent = cam_obj            # local corners are in the camera's frame
    plane.hide_render = True          # a reference, not part of the shot
    image = bpy.data.images.load(path, check_existing=False)
    image.source = "MOVIE"
    mat = bpy.data.materials.new(f"{name}_video")
    tree = compat.ensure_material_nodes(mat)
    tree.nodes.clear()
    tex = tree.nodes.new("ShaderNodeTexImage")
    tex.image = image
    user = tex.image_user
    user.frame_start = start_frame
    user.frame_offset = offset        # scene frame f shows movie frame f - frame_start + 1 + offset (1-based)
    user.frame_duration = max(1, frames)
    user.use_auto_refresh = True
    emit = tree.nodes.new("ShaderNodeEmission")
    out = tree.nodes.new("ShaderNodeOutputMaterial")
    tree.links.new(tex.outputs["Color"], emit.inputs["Color"])
    tree.links.new(emit.outputs["Emission"], out.inputs["Surface"])
    mesh.materials.append(mat)
    return plane


def plane_distance(cam_world: Matrix, focus: Matrix) -> float:
    """Behind the subject: twice the camera's distance to `focus`' origin, at least PLANE_MIN_DISTANCE."""
    return max(PLANE_MIN_DISTANCE, 2.0 * (cam_world.translation - focus.translation).length)


def import_camera(camera: Camera, context: Any = None, name: str | None = None, job_id: str | None = None,
                  target: bpy.types.Object | None = None, video_path: str | None = None,
                  reference: str = "background", set_render: bool = True,
                  start_frame: int = START_FRAME) -> ImportedCamera:
    """A camera object for `camera`, in the world of `target` (the rig its
    motion was solved onto: its object matrix places the camera; None: the
    scene's world), made the scene camera. `video_path`: the footage on this
    machine, shown as `reference` ("background", "plane" or "none").
    `set_render`: the scene's render size and pixel aspect become the video's."""
    if reference not in REFERENCES:
        raise common.ImportFailed(f"video reference '{reference}' is not one of {', '.join(REFERENCES)}")
    context = context or bpy.context
    scene = context.scene
    name = name or camera.name or "Camera"
    video = video_facts(camera)
    settings = blender_camera(camera.K, camera.image_size, camera.world_to_camera)
    path = video_path_for(video, video_path) if reference != "none" else None   # refuse before building

    world = target.matrix_world.copy() if target is not None else Matrix.Identity(4)
    data = bpy.data.cameras.new(f"{name}_camera")
    cam_obj = bpy.data.objects.new(f"{name}_camera", data)
    collection = (target.users_collection[0] if target is not None and target.users_collection
                  else scene.collection)
    collection.objects.link(cam_obj)
    apply_settings(cam_obj, settings, world, scene if set_render else None)
    scene.camera = cam_obj

    built = ImportedCamera(cam_obj, video_frame_offset=first_video_frame(video))
    if path is not None:
        frames = int(video.get("frames") or 0)
        if reference == "background":
            built.clip = add_background_clip(cam_obj, path, built.video_frame_offset, start_frame)
            frames = frames or built.clip.frame_duration
            if tuple(built.clip.size) != tuple(camera.image_size):
                # e.g. a phone video whose rotation metadata this Blender does not apply
                built.note_list.append(f"Blender reads the video as {built.clip.size[0]}x{built.clip.size[1]} but "
                                       f"it was solved as {camera.image_size[0]}x{camera.image_size[1]} (rotated?): "
                                       "the background does not line up; use a video without rotation metadata")
        else:
            dist = plane_distance(cam_obj.matrix_world, world)
            built.plane = add_image_plane(cam_obj, name, path, camera.K.astype(np.float64), camera.image_size,
                                          dist, frames or 1, built.video_frame_offset, start_frame, collection)
            data.clip_end = max(data.clip_end, 2.0 * dist)
        built.note_list += timing_notes(video, scene)
    elif reference != "none":
        built.note_list.append("no video file given: the camera has no reference footage")

    values: dict[str, Any] = {"params": camera.params, "provenance": camera.provenance, "artifact": camera.name,
                              "K": camera.K, "image_size": list(camera.image_size),
                              "world_to_camera": camera.world_to_camera, "reference": reference,
                              "video_frame_offset": built.video_frame_offset}
    if path is not None:
        values["video_path"] = path
    if target is not None:
        values["rig"] = target.name
    if job_id:
        values["job_id"] = job_id
    common.stamp(cam_obj, KIND, values)
    common.stamp(data, KIND, {"artifact": camera.name})
    reference_values = {"artifact": camera.name, "role": "video reference", "camera": cam_obj.name,
                        "video_frame_offset": built.video_frame_offset}
    for idblock in (built.clip, built.plane):
        if idblock is not None:
            common.stamp(idblock, KIND, reference_values)
    return built


def timing_notes(video: dict[str, Any], scene: bpy.types.Scene) -> list[str]:
    """What keeps the footage out of step with the scene, said plainly."""
    fps = video.get("fps")
    scene_fps = scene.render.fps / scene.render.fps_base
    if isinstance(fps, (int, float)) and fps > 0 and not math.isclose(float(fps), scene_fps, rel_tol=1e-3):
        return [f"the video runs at {float(fps):g} fps and the scene at {scene_fps:g} fps: Blender shows one video "
                "frame per scene frame, so the reference drifts; import at the video's rate to compare frame by "
                "frame"]
    return []


def import_artifact(artifact: Any, context: Any = None, target: bpy.types.Object | None = None,
                    video_path: str | None = None, reference: str = "background", set_render: bool = True,
                    **kwargs: Any) -> ImportedCamera:
    """The importer registry's entry point (see importers/__init__.py); the
    named options are the ones import_artifacts passes on to cameras only."""
    if not isinstance(artifact, Camera):
        raise common.ImportFailed(f"expected a Camera, got {type(artifact).__name__}")
    return import_camera(artifact, context, target=target, video_path=video_path, reference=reference,
                         set_render=set_render, **kwargs)
