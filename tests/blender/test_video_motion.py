"""Motion from Video in real Blender: the Camera importer (OpenCV pinhole ->
Blender camera, checked by projecting points through Blender's own camera
maths), the footage as a scrubbable reference behind it, and end to end the
`video_motion` job through the operator and `af.motion_from_video` in
background mode on the tiny clip under tests/data/video/.
"""
from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
from bpy_extras.object_utils import world_to_camera_view  # noqa: E402
from mathutils import Matrix, Vector  # noqa: E402

from .conftest import BACKEND_PYTHON, REPO  # noqa: E402

VIDEO_DIR = REPO / "tests" / "data" / "video"


# -- references written for the tests -------------------------------------------
def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = np.array([0.0, 0.0, 1.0])) -> np.ndarray:
    """(4, 4) world_to_camera in OpenCV's convention (x right, y down, z forward)."""
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    m = np.eye(4)
    m[:3, :3] = R
    m[:3, 3] = -R @ eye
    return m


def opencv_project(K: np.ndarray, world_to_camera: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) pixels (origin at the image's top-left corner) and (N,) depths."""
    cam = points @ world_to_camera[:3, :3].T + world_to_camera[:3, 3]
    uv = cam @ K.T
    return uv[:, :2] / uv[:, 2:], cam[:, 2]


def blender_project(scene: Any, cam_obj: Any, points: np.ndarray) -> np.ndarray:
    """(N, 2) pixels from Blender's camera (world_to_camera_view: x right, y up, in [0, 1])."""
    w, h = scene.render.resolution_x, scene.render.resolution_y
    out = []
    for p in points:
        ndc = world_to_camera_view(scene, cam_obj, Vector(p.tolist()))
        out.append((ndc.x * w, (1.0 - ndc.y) * h))
    return np.array(out)


def make_clip(path: Path, width: int = 64, height: int = 48, frames: int = 12, fps: int = 25) -> Path:
    """A small H.264 clip written by PyAV in the backend environment (the bpy one has no encoder library)."""
    script = (
        "import sys, av, numpy as np\n"
        "path, w, h, n, fps = sys.argv[1], *map(int, sys.argv[2:])\n"
        "c = av.open(path, 'w'); s = c.add_stream('libx264', rate=fps); s.width, s.height = w, h\n"
        "s.pix_fmt = 'yuv420p'\n"
        "for i in range(n):\n"
        "    img = np.full((h, w, 3), 10 * i, np.uint8)\n"
        "    for p in s.encode(av.VideoFrame.from_ndarray(img, format='rgb24')): c.mux(p)\n"
        "for p in s.encode(): c.mux(p)\n"
        "c.close()\n")
    subprocess.run([str(BACKEND_PYTHON), "-c", script, str(path), str(width), str(height), str(frames), str(fps)],
                   check=True, capture_output=True)
    return path


def camera_artifact(protocol: Any, K: np.ndarray, size: tuple[int, int], pose: np.ndarray,
                    video: dict[str, Any] | None = None) -> Any:
    params = {"video": video} if video else {}
    return protocol.Camera(name="take", K=K.astype(np.float32), image_size=size,
                           world_to_camera=pose.astype(np.float32), params=params,
                           provenance={"job": "video_motion"})


def points_in_view(K: np.ndarray, size: tuple[int, int], pose: np.ndarray, n: int = 60) -> np.ndarray:
    """World points in front of the camera, inside and a little outside its frame."""
    rng = np.random.default_rng(4)
    w, h = size
    uv = rng.uniform([-0.2 * w, -0.2 * h], [1.2 * w, 1.2 * h], (n, 2))
    depth = rng.uniform(1.0, 8.0, n)
    cam = np.concatenate([(uv - K[:2, 2]) / np.diag(K)[:2] * depth[:, None], depth[:, None]], 1)
    R, t = pose[:3, :3], pose[:3, 3]
    return (cam - t) @ R            # R^T (cam - t), row-wise


CAMERAS = {
    # name: (K, image size, eye) -- off-centre principal points; a tall phone video; non-square pixels
    "landscape": (np.array([[500.0, 0, 300.0], [0, 500.0, 200.0], [0, 0, 1]]), (640, 360), (2.0, -4.0, 1.5)),
    "portrait": (np.array([[700.0, 0, 190.0], [0, 700.0, 310.0], [0, 0, 1]]), (360, 640), (-3.0, -2.5, 0.8)),
    "non_square": (np.array([[520.0, 0, 330.0], [0, 480.0, 230.0], [0, 0, 1]]), (640, 480), (0.5, 5.0, 2.5)),
}


# -- the importer, no backend ------------------------------------------------------
@pytest.mark.parametrize("case", sorted(CAMERAS))
def test_blender_camera_projects_like_opencv(addon: Any, clean_scene: Any, case: str) -> None:
    K, size, eye = CAMERAS[case]
    pose = look_at(np.array(eye), np.array([0.0, 0.2, 1.0]))
    built = addon.importers.camera.import_camera(camera_artifact(addon.protocol, K, size, pose), bpy.context,
                                                 name="Take", job_id="job-c", reference="none")
    scene, cam_obj = bpy.context.scene, built.camera
    assert scene.camera == cam_obj and (scene.render.resolution_x, scene.render.resolution_y) == size
    points = points_in_view(K, size, pose)
    expected, depth = opencv_project(K, pose, points)
    assert (depth > 0.5).all()
    got = blender_project(scene, cam_obj, points)
    err = np.abs(got - expected).max()
    assert err < 0.5, f"{case}: max reprojection difference {err:.3f} px"
    # The lens is the 35 mm-equivalent focal length: 36 mm across the longer side.
    fit = cam_obj.data.sensor_fit
    assert fit == ("HORIZONTAL" if size[0] >= size[1] else "VERTICAL")
    if case != "non_square":
        assert cam_obj.data.lens == pytest.approx(K[0, 0] * 36.0 / max(size), rel=1e-5)
    stamp = addon.importers.common.read_stamp
    assert cam_obj["avatarforge_kind"] == "camera" and cam_obj["avatarforge_job_id"] == "job-c"
    np.testing.assert_allclose(stamp(cam_obj, "K"), K, atol=1e-4)
    np.testing.assert_allclose(stamp(cam_obj, "world_to_camera"), pose, atol=1e-5)
    assert stamp(cam_obj, "provenance") == {"job": "video_motion"}


def test_camera_follows_the_rig_it_was_solved_on(addon: Any, clean_scene: Any) -> None:
    """The camera is in the world of the motion's rig: a moved rig moves it along."""
    K, size, eye = CAMERAS["landscape"]
    pose = look_at(np.array(eye), np.array([0.0, 0.0, 1.0]))
    rig = bpy.data.objects.new("Rig", bpy.data.armatures.new("Rig"))
    bpy.context.scene.collection.objects.link(rig)
    rig.matrix_world = Matrix.Translation((1.0, 2.0, 0.0)) @ Matrix.Rotation(0.7, 4, "Z")
    built = addon.importers.camera.import_camera(camera_artifact(addon.protocol, K, size, pose), bpy.context,
                                                 target=rig, reference="none")
    points = points_in_view(K, size, pose, 20)            # in the rig's space
    world = points @ np.array(rig.matrix_world)[:3, :3].T + np.array(rig.matrix_world)[:3, 3]
    expected, _ = opencv_project(K, pose, points)
    got = blender_project(bpy.context.scene, built.camera, world)
    assert np.abs(got - expected).max() < 0.5
    assert built.camera["avatarforge_rig"] == "Rig"


def test_bad_intrinsics_are_refused(addon: Any, clean_scene: Any) -> None:
    K = np.array([[500.0, 3.0, 320.0], [0, 500.0, 240.0], [0, 0, 1]])
    cam = camera_artifact(addon.protocol, K, (640, 480), np.eye(4))
    n = len(bpy.data.objects)
    with pytest.raises(addon.importers.ImportFailed, match="skew"):
        addon.importers.camera.import_camera(cam, bpy.context, reference="none")
    with pytest.raises(addon.importers.ImportFailed, match="reference"):
        addon.importers.camera.import_camera(cam, bpy.context, reference="hologram")
    assert len(bpy.data.objects) == n


def test_video_behind_the_camera(addon: Any, clean_scene: Any, tmp_path: Path) -> None:
    """The footage as the camera's background MovieClip, decoded by Blender in
    background mode, scene frame 1 = the video frame at `start`."""
    clip_path = make_clip(tmp_path / "take.mp4", 64, 48, frames=12, fps=25)
    K = np.array([[60.0, 0, 32.0], [0, 60.0, 24.0], [0, 0, 1]])
    video = {"filename": "take.mp4", "fps": 25.0, "frames": 12, "start": 0.2, "width": 64, "height": 48}
    cam = camera_artifact(addon.protocol, K, (64, 48), look_at(np.array([0.0, -4.0, 1.0]), np.zeros(3)), video)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 25, 1.0
    built = addon.importers.camera.import_camera(cam, bpy.context, video_path=str(clip_path))
    clip = built.clip
    assert clip is not None and tuple(clip.size) == (64, 48) and clip.frame_duration == 12   # decoded here
    assert clip.fps == pytest.approx(25.0)
    assert (clip.frame_start, clip.frame_offset) == (1, 5) and built.video_frame_offset == 5   # 0.2 s * 25 fps
    data = built.camera.data
    assert data.show_background_images and len(data.background_images) == 1
    bg = data.background_images[0]
    assert bg.source == "MOVIE_CLIP" and bg.clip == clip
    assert built.camera["avatarforge_video_path"] == str(clip_path) and built.notes == ""
    assert clip["avatarforge_role"] == "video reference" and clip["avatarforge_camera"] == built.camera.name

    # Another scene rate: said, not hidden.
    scene.render.fps = 30
    other = addon.importers.camera.import_camera(cam, bpy.context, video_path=str(clip_path))
    assert "drifts" in other.notes

    # The image plane: parented to the camera, filling its frame exactly.
    scene.render.fps = 25
    planed = addon.importers.camera.import_camera(cam, bpy.context, video_path=str(clip_path), reference="plane")
    plane = planed.plane
    assert plane is not None and plane.parent == planed.camera and plane.hide_render
    bpy.context.view_layer.update()
    corners = np.array([plane.matrix_world @ v.co for v in plane.data.vertices])
    px = blender_project(scene, planed.camera, corners)
    np.testing.assert_allclose(px, [[0, 48], [64, 48], [64, 0], [0, 0]], atol=0.05)
    tex = next(n for n in plane.active_material.node_tree.nodes if n.type == "TEX_IMAGE")
    assert tex.image.source == "MOVIE" and tex.image_user.frame_offset == 5 and tex.image_user.use_auto_refresh

    with pytest.raises(addon.importers.ImportFailed, match="not on this machine"):
        addon.importers.camera.import_camera(cam, bpy.context, video_path=str(tmp_path / "gone.mp4"))


# -- the async path, no backend: a finished job's [Motion, Camera] imported by the job table --------
def test_job_table_imports_motion_and_camera_with_the_video(addon: Any, clean_scene: Any, tmp_path: Path) -> None:
    from .test_motion import synthetic_motion

    clip_path = make_clip(tmp_path / "walk.mp4", 64, 48, frames=30, fps=30)
    motion = synthetic_motion(addon.protocol, frames=30, fps=30.0)
    motion.params["video"] = {"filename": "walk.mp4", "fps": 30.0, "frames": 30, "start": 0.0,
                              "gaps": [[3, 5]], "people_max": 2, "stopped": None}
    K = np.array([[60.0, 0, 32.0], [0, 60.0, 24.0], [0, 0, 1]])
    cam = camera_artifact(addon.protocol, K, (64, 48), look_at(np.array([0.0, -4.0, 1.0]), np.zeros(3)),
                          {"filename": "walk.mp4", "fps": 30.0, "frames": 30, "start": 0.0, "width": 64,
                           "height": 48})
    jobs = addon.jobs
    record = jobs.JobRecord("local-v", "video_motion", {}, "walk", bpy.context.scene.name, job_id="jv",
                            state="running", artifacts=[motion, cam],
                            options={"video_path": str(clip_path), "reference": "background"})
    jobs.TABLE.records[record.local_id] = record
    built = jobs.TABLE.import_record(record)
    motion_built, cam_built = built
    assert record.state == "done" and cam_built.camera.name in record.imported
    assert cam_built.clip is not None and cam_built.camera["avatarforge_rig"] == motion_built.rig.name
    # The operator's hook put the take's report on the record for the panel.
    assert "scene frames 4-6" in record.message and "2 people" in record.message, record.message


def test_video_params_and_refusals(addon: Any, af: Any, clean_scene: Any, tmp_path: Path) -> None:
    clip = tmp_path / "take.MOV"
    clip.write_bytes(b"\x00\x00\x00\x18ftypqt  ")
    assert af.video_file_params(str(clip), fps=24, focal_mm=28, start=0.5) == {
        "data": b"\x00\x00\x00\x18ftypqt  ", "filename": "take.MOV", "fps": 24.0, "focal_mm": 28.0, "start": 0.5}
    with pytest.raises(af.ImportFailed, match="video file"):
        af.video_file_params(str(tmp_path / "take.bvh"))
    with pytest.raises(af.ImportFailed, match="cannot read"):
        af.video_file_params(str(tmp_path / "gone.mp4"))
    s = bpy.context.scene.avatarforge
    s.video_path = ""
    with pytest.raises(RuntimeError, match="Choose the video"):
        bpy.ops.avatarforge.motion_from_video(wait=True)
    s.video_fps, s.video_focal_mm, s.video_start, s.video_end = 0.0, 35.0, 0.0, 2.5
    assert addon.properties.video_params(s) == {"focal_mm": 35.0, "end": 2.5}
    s.video_focal_mm, s.video_end = 0.0, 0.0


def test_panel_section(addon: Any, clean_scene: Any) -> None:
    from .test_ui import draw, texts

    s = bpy.context.scene.avatarforge
    s.video_path = ""
    log = draw(addon.panels.AVATARFORGE_PT_video.draw)
    shown = [name for kind, name in log if kind in ("prop", "operator")]
    for name in ("video_path", "motion_target", "motion_preset", "video_fps", "video_focal_mm", "video_start",
                 "video_end", "video_reference", "avatarforge.motion_from_video"):
        assert name in shown, name
    assert "a new SMPL-24 armature" in texts(log)
    record = addon.jobs.JobRecord("local-p", "video_motion", {}, "walk", bpy.context.scene.name, job_id="jp",
                                  state="running", fraction=0.4, stage="landmarks: frame 12 of 37")
    addon.jobs.TABLE.records[record.local_id] = record
    log = draw(addon.panels.AVATARFORGE_PT_video.draw)
    assert ("progress", "40%  landmarks: frame 12 of 37") in log and ("operator", "avatarforge.cancel_job") in log
    log = draw(addon.panels.AVATARFORGE_PT_motion.draw)
    assert ("operator", "avatarforge.export_motion") in log and ("prop", "export_preset") in log


# -- end to end: the video_motion job on the tiny rendered clip ------------------------------
def rendered_clip() -> tuple[Path, dict[str, Any]]:
    """The smallest clip under tests/data/video/ with its ground truth (K, joints in pixels)."""
    clips = sorted(VIDEO_DIR.glob("*/*.mp4"), key=lambda p: p.stat().st_size)
    if not clips:
        pytest.fail(f"no rendered clip under {VIDEO_DIR} (its render script makes them)")
    path = clips[0]
    truth = np.load(path.with_suffix(".npz"))
    return path, {k: truth[k] for k in truth.files}


def require_video_job(af: Any) -> None:
    pipelines = af.connect()["pipelines"]
    assert "video_motion" in pipelines, f"the backend lacks video_motion (it has {sorted(pipelines)})"


def pixel_error(scene: Any, cam_obj: Any, rig: Any, truth: dict[str, Any], frames: list[int]) -> float:
    """Median distance (px) between the captured SMPL joints seen through the imported camera and
    where the rendered clip shows them: the camera, the footage and the motion line up."""
    names = [str(n) for n in truth["joint_names"]]
    errors = []
    for f in frames:
        scene.frame_set(1 + f)
        heads = np.array([tuple(rig.matrix_world @ rig.pose.bones[n].head) for n in names])
        errors.append(np.linalg.norm(blender_project(scene, cam_obj, heads) - truth["joints_px"][f], axis=1))
    return float(np.median(np.concatenate(errors)))


def test_api_captures_the_clip(addon: Any, af: Any, backend: Any, clean_scene: Any) -> None:
    require_video_job(af)
    path, truth = rendered_clip()
    focal = float(truth["K"][0, 0] * 36.0 / max(truth["image_size"]))     # the 35 mm-equivalent it was rendered with
    take = af.motion_from_video(str(path), focal_mm=focal, on_progress=af.print_progress)
    scene, cam = bpy.context.scene, take.camera_object
    frames = int(take.video["frames"])
    assert frames >= 0.9 * int(truth["frames"]) and take.motion.frame_end - take.motion.frame_start + 1 == frames
    assert take.action.users and take.rig.animation_data.nla_tracks[-1].strips[0].action == take.action
    assert scene.render.fps / scene.render.fps_base == pytest.approx(float(truth["fps"]), rel=1e-3)
    # The camera: the intrinsics the clip was rendered with, the video behind it.
    w, h = (int(v) for v in truth["image_size"])
    assert (scene.render.resolution_x, scene.render.resolution_y) == (w, h) and scene.camera == cam
    assert cam.data.lens == pytest.approx(focal, rel=1e-4)
    assert cam.data.shift_x == pytest.approx(0.0, abs=1e-6) and cam.data.shift_y == pytest.approx(0.0, abs=1e-6)
    assert take.camera.clip is not None and tuple(take.camera.clip.size) == (w, h)
    assert cam.data.background_images[0].clip == take.camera.clip and cam.data.show_background_images
    assert cam["avatarforge_video_path"] == str(path) and cam["avatarforge_kind"] == "camera"
    assert take.gaps == [] and take.stopped is None and take.people_max <= 1, take.video
    err = pixel_error(scene, cam, take.rig, truth, [0, frames // 2, frames - 1])
    print(f"captured joints through the imported camera: median {err:.1f} px from the render's")
    assert err < 0.1 * h, f"captured joints are {err:.1f} px (median) from where the video shows them"


def test_operator_captures_onto_an_avatar(addon: Any, af: Any, backend: Any, clean_scene: Any) -> None:
    require_video_job(af)
    path, truth = rendered_clip()
    rig, _mesh = af.generate_body(texture_size=256, name="Actor")
    s = bpy.context.scene.avatarforge
    s.video_path, s.motion_target, s.video_reference = str(path), rig, "plane"
    s.video_fps, s.video_focal_mm, s.video_start, s.video_end = 0.0, 0.0, 0.0, 0.0
    assert bpy.ops.avatarforge.motion_from_video(wait=True) == {"FINISHED"}
    tracks = rig.animation_data.nla_tracks
    assert len(tracks) == 1 and tracks[0].strips[0].action["avatarforge_retarget_preset"] == "anny"
    (cam,) = [o for o in bpy.data.objects if o.type == "CAMERA"]
    assert cam["avatarforge_rig"] == rig.name and bpy.context.scene.camera == cam
    (plane,) = [o for o in bpy.data.objects if o.parent == cam]
    assert plane.hide_render and plane.active_material is not None
    s.motion_target, s.video_path = None, ""


def test_cancel_a_running_capture(addon: Any, af: Any, backend: Any, clean_scene: Any) -> None:
    """The UI path (the job table), driven by hand in background mode: submit, cancel, cancelled."""
    require_video_job(af)
    path, _truth = rendered_clip()
    s = bpy.context.scene.avatarforge
    s.video_path, s.video_start = str(path), 0.1          # a request the store has not seen
    assert bpy.ops.avatarforge.motion_from_video(wait=False) == {"FINISHED"}
    (record,) = addon.jobs.TABLE.records.values()
    assert record.params["data"].endswith("bytes>") and record.options["video_path"] == str(path)
    deadline = time.monotonic() + 20.0
    while record.job_id is None and time.monotonic() < deadline:     # accepted: the backend has it
        addon.jobs.TABLE.pump()
        time.sleep(0.05)
    assert record.job_id, record.message
    bpy.ops.avatarforge.cancel_job(key=record.local_id)
    addon.jobs.TABLE.wait_for(record, 60.0)
    assert record.state == "cancelled", (record.state, record.message)
    assert not [o for o in bpy.data.objects if o.type == "CAMERA"]
    s.video_path, s.video_start = "", 0.0


@pytest.fixture()
def render_scene(addon: Any, clean_scene: Any) -> Any:
    """The scene set up for tiny Cycles CPU renders that keep grey levels; render settings put back after."""
    scene = bpy.context.scene
    saved = (scene.render.engine, scene.view_settings.view_transform, scene.view_settings.look,
             scene.render.filepath, scene.render.use_compositing)
    addon.compat.cycles_cpu(scene, samples=1)
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    yield scene
    if hasattr(scene, "compositing_node_group"):
        scene.compositing_node_group = None
    else:
        scene.use_nodes = False
    (scene.render.engine, scene.view_settings.view_transform, scene.view_settings.look,
     scene.render.filepath, scene.render.use_compositing) = saved


def rendered_grey(scene: Any, path: Path) -> float:
    """Render the scene (Cycles, CPU, 1 sample) and return the mean grey level (0-255) of the image."""
    scene.render.filepath = str(path)
    scene.render.image_settings.file_format = "PNG"
    bpy.ops.render.render(write_still=True)
    image = bpy.data.images.load(str(path), check_existing=False)
    pixels = np.empty(len(image.pixels), np.float32)
    image.pixels.foreach_get(pixels)
    bpy.data.images.remove(image)
    return float(pixels.reshape(-1, 4)[:, :3].mean() * 255.0)


def test_image_plane_shows_the_video_frame_at_start(addon: Any, render_scene: Any, tmp_path: Path) -> None:
    """Rendered through the solved camera, scene frame f shows video frame f - 1 + start * fps
    (each frame of the test clip has its own grey level: 10 x its index)."""
    clip_path = make_clip(tmp_path / "grey.mp4", 64, 48, frames=12, fps=25)
    K = np.array([[60.0, 0, 32.0], [0, 60.0, 24.0], [0, 0, 1]])
    video = {"filename": "grey.mp4", "fps": 25.0, "frames": 12, "start": 0.2, "width": 64, "height": 48}
    cam = camera_artifact(addon.protocol, K, (64, 48), look_at(np.array([0.0, -4.0, 1.0]), np.zeros(3)), video)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 25, 1.0
    built = addon.importers.camera.import_camera(cam, bpy.context, video_path=str(clip_path), reference="plane")
    built.plane.hide_render = False                     # a viewport reference; rendered here only to read it
    seen = {}
    for frame in (1, 4):
        scene.frame_set(frame)
        seen[frame] = rendered_grey(scene, tmp_path / f"frame{frame}.png")
    # video frames 5 and 8 (0.2 s x 25 fps = 5 frames in)
    assert seen[1] == pytest.approx(50.0, abs=4.0) and seen[4] == pytest.approx(80.0, abs=4.0), seen


def composite_clip(scene: Any, clip: Any) -> None:
    """The compositor outputs `clip` at the scene's frame (how a render can read what a MovieClip shows).
    Blender 5.0 composites through a node group; 4.x through the scene's own tree."""
    if hasattr(scene, "compositing_node_group"):
        tree = bpy.data.node_groups.new("clip", "CompositorNodeTree")
        scene.compositing_node_group = tree
        tree.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
        out = tree.nodes.new("NodeGroupOutput")
        target = out.inputs[0]
    else:
        scene.use_nodes = True
        tree = scene.node_tree
        tree.nodes.clear()
        target = tree.nodes.new("CompositorNodeComposite").inputs["Image"]
    node = tree.nodes.new("CompositorNodeMovieClip")
    node.clip = clip
    tree.links.new(node.outputs["Image"], target)
    scene.render.use_compositing = True


def test_background_clip_shows_the_video_frame_at_start(addon: Any, render_scene: Any, tmp_path: Path) -> None:
    """The camera background's MovieClip, decoded by Blender in background mode: scene frame f
    shows video frame f - 1 + start * fps (read back through the compositor)."""
    clip_path = make_clip(tmp_path / "grey.mp4", 64, 48, frames=12, fps=25)
    K = np.array([[60.0, 0, 32.0], [0, 60.0, 24.0], [0, 0, 1]])
    video = {"filename": "grey.mp4", "fps": 25.0, "frames": 12, "start": 0.2, "width": 64, "height": 48}
    cam = camera_artifact(addon.protocol, K, (64, 48), look_at(np.array([0.0, -4.0, 1.0]), np.zeros(3)), video)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 25, 1.0
    built = addon.importers.camera.import_camera(cam, bpy.context, video_path=str(clip_path))
    composite_clip(scene, built.clip)
    seen = {}
    for frame in (1, 4):
        scene.frame_set(frame)
        seen[frame] = rendered_grey(scene, tmp_path / f"clip{frame}.png")
    assert seen[1] == pytest.approx(50.0, abs=4.0) and seen[4] == pytest.approx(80.0, abs=4.0), seen
