"""Ground truth by synthesis for video -> motion: Anny, textured, performing a
known motion, rendered with Cycles on the CPU from static cameras; each video
gets the truth next to it.

    .venv-blender/bin/python bench/render_clips.py --backend-python .venv/bin/python \\
        --spec bench/data/video/dev.json --out /tmp/af-video-clips
    .venv-blender/bin/python bench/render_clips.py --address tcp://127.0.0.1:5757 --spec ... --only walk_front

A spec file holds {"clips": [clip, ...]} (or one clip). A clip:

    {"name": "walk",                                   # folder name of its videos
     "motion": {"prompt": "walks forward", "seconds": 2, "fps": 30, "seed": 0}   # text_motion job
            or {"file": "path/clip.bvh" (relative to the spec file), "fps": 30},  # motion_import job
     "avatar": {"prompt": "a man in a red shirt and blue jeans", "seed": 0, "texture_size": 512},
     "cameras": [{"name": "front", "distance": 4.5, "height": 1.2, "azimuth": 0, "focal_mm": 35,
                  "resolution": [512, 512]}],
     "samples": 8}

Camera placement: `azimuth` in degrees about +Z, 0 = in front of the avatar
(DESIGN §6: it faces -Y), 90 = on its left (+X); `distance` is horizontal, from
the clip's mean pelvis position; the camera looks at that point at pelvis
height from `height` metres above the floor. `focal_mm` is 35 mm-equivalent
(sensor 36 mm wide, fitted to the image width).

Out: <out>/<clip>/<camera>.mp4 (H.264, yuv420p, the motion's fps, encoded
with PyAV by the backend environment's Python) and <camera>.npz:
    fps, frames, image_size (w, h),
    joints_world (T, 24, 3)  Z-up metres: Anny's pose bones mapped to SMPL-24
                             (backend/motion/rigs.py ANNY map; the bone heads,
                             evaluated per frame through the depsgraph); SMPL's
                             left/right_foot and _hand, which Anny has no bone
                             for, are the tails of foot.L/R and wrist.L/R,
    smpl_joints (T, 24, 3)   the Motion's own FK joints (on SMPL's skeleton),
    contacts (T, 2)          the Motion's foot contacts (left, right), when given,
    K (3, 3), world_to_camera (4, 4)   OpenCV convention (`opencv_camera`),
    joints_px (T, 24, 2)     joints_world projected with K (checks and baselines),
    avatar, motion, camera   the specs (JSON strings).
    target_preset, target_bone_names, target_parents, target_rest_matrices
                             the rendered avatar's rig as a <target rig> (describe_rig).
A clip whose spec (and this renderer's version) has not changed is not
rendered again: <out>/<clip>/spec.json holds the hash it was made from.
--truth-only regenerates rendered clips' avatar and motion without rendering,
checks their joints against the saved truth and adds fields the npz lacks.
Rendering runs at the niceness it is started with: start it with `nice -n 10`.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RENDERER_VERSION = 2              # bump when a change here changes the pixels or the truth
BACKEND_PYTHON = REPO / ".venv" / "bin" / "python"
SENSOR_WIDTH_MM = 36.0            # "35 mm-equivalent" focal lengths
SMPL24 = ("pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
          "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
          "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
          "left_hand", "right_hand")
# SMPL joints Anny has no bone head for: the tail of the bone before them.
TAIL_JOINTS = {"left_foot": "foot.L", "right_foot": "foot.R", "left_hand": "wrist.L", "right_hand": "wrist.R"}
GROUND_COLOUR = (0.38, 0.36, 0.33)     # a warm grey floor
SKY_COLOUR = (0.55, 0.6, 0.68)         # a light blue-grey world: neither clothes nor skin


# -- specs ------------------------------------------------------------------------

def load_specs(path: Path) -> list[dict[str, Any]]:
    """The clips of a spec file, `motion.file` made absolute (relative to the file)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    clips = data["clips"] if isinstance(data, dict) and "clips" in data else [data]
    for clip in clips:
        for key in ("name", "motion", "avatar", "cameras"):
            if key not in clip:
                raise SystemExit(f"{path}: clip {clip.get('name', '?')!r} has no {key!r}")
        if "file" in clip["motion"]:
            clip["motion"]["file"] = str((path.parent / clip["motion"]["file"]).resolve())
    return clips


def spec_hash(clip: dict[str, Any]) -> str:
    """What a clip's pixels and truth depend on (a motion file by its content)."""
    keyed = dict(clip, renderer=RENDERER_VERSION)
    if "file" in clip["motion"]:
        digest = hashlib.sha256(Path(clip["motion"]["file"]).read_bytes()).hexdigest()
        keyed["motion"] = dict(clip["motion"], file=digest)
    return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:16]


def is_rendered(folder: Path, clip: dict[str, Any]) -> bool:
    marker = folder / "spec.json"
    if not marker.is_file():
        return False
    done = json.loads(marker.read_text(encoding="utf-8"))
    return done.get("hash") == spec_hash(clip) and all(
        (folder / f"{c['name']}.mp4").is_file() and (folder / f"{c['name']}.npz").is_file() for c in clip["cameras"])


# -- cameras ----------------------------------------------------------------------

def camera_pose(target: np.ndarray, distance: float, height: float, azimuth_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """(position, 3x3 camera-to-world rotation in Blender's camera convention:
    looking down -Z, +Y up) for a camera looking at `target`."""
    az = math.radians(azimuth_deg)
    position = np.array([target[0] + distance * math.sin(az), target[1] - distance * math.cos(az), height])
    forward = target - position
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return position, np.stack([right, up, -forward], axis=1)


def opencv_camera(focal_mm: float, sensor_width_mm: float, width: int, height: int,
                  camera_to_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Blender camera -> OpenCV (K, world_to_camera).

    Blender: the camera looks down its local -Z with +Y up; its sensor is fitted
    to the image width (sensor_fit HORIZONTAL), square pixels, no lens shift.
    OpenCV: x right, y down, z forward, so camera_cv = diag(1, -1, -1) @
    camera_blender. Pixel coordinates are continuous with (0, 0) the top-left
    corner of the image (MediaPipe's normalised x * width), so the principal
    point is the image centre (w/2, h/2).
    `camera_to_world`: the camera object's 4x4 world matrix (scale 1)."""
    f_px = focal_mm / sensor_width_mm * width
    K = np.array([[f_px, 0.0, width / 2.0], [0.0, f_px, height / 2.0], [0.0, 0.0, 1.0]])
    flip = np.diag([1.0, -1.0, -1.0, 1.0])
    world_to_camera = flip @ np.linalg.inv(np.asarray(camera_to_world, dtype=np.float64))
    return K, world_to_camera


def project(points: np.ndarray, K: np.ndarray, world_to_camera: np.ndarray) -> np.ndarray:
    """Pixel coordinates (..., 2) of world points (..., 3)."""
    cam = points @ world_to_camera[:3, :3].T + world_to_camera[:3, 3]
    uvw = cam @ K.T
    return uvw[..., :2] / uvw[..., 2:3]


# -- encoding (backend environment: PyAV) -----------------------------------------------

def encode_frames(frames_dir: Path, out: Path, fps: float) -> None:
    """PNG frames (sorted by name) -> H.264 yuv420p .mp4 at `fps` (PyAV)."""
    import av
    from fractions import Fraction

    files = sorted(frames_dir.glob("*.png"))
    if not files:
        raise SystemExit(f"no frames in {frames_dir}")
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "20", "preset": "medium"}
        for i, path in enumerate(files):
            img = av.open(str(path)).decode(video=0).__next__().to_ndarray(format="rgb24")
            if i == 0:
                stream.width, stream.height = img.shape[1], img.shape[0]
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def encode_with_backend_python(frames_dir: Path, out: Path, fps: float, python: Path) -> None:
    """The bpy environment has no PyAV: the backend's Python encodes."""
    done = subprocess.run([str(python), __file__, "encode", str(frames_dir), str(out), repr(float(fps))],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"encoding {out} failed:\n{done.stderr[-2000:]}")


# -- Blender side --------------------------------------------------------------------------

def clear_scene(bpy: Any) -> None:
    for collection in (bpy.data.objects, bpy.data.meshes, bpy.data.armatures, bpy.data.materials,
                       bpy.data.images, bpy.data.cameras, bpy.data.lights, bpy.data.actions):
        bpy.data.batch_remove(list(collection))


def make_avatar(af: Any, spec: dict[str, Any], address: str) -> tuple[Any, Any]:
    """(rig, mesh) from the text_avatar job."""
    return af.generate_avatar(spec["prompt"], seed=int(spec.get("seed", 0)), name="Actor", address=address,
                              texture_size=int(spec.get("texture_size", 512)), on_progress=af.print_progress)


def make_motion(af: Any, spec: dict[str, Any], rig: Any, address: str) -> tuple[Any, Any]:
    """(Motion artifact, ImportedMotion keyed on `rig`) from text_motion or motion_import."""
    if "prompt" in spec:
        job = "text_motion"
        params = {"prompt": spec["prompt"], "seconds": float(spec.get("seconds", 3.0)),
                  "fps": float(spec.get("fps", 30.0)), "seed": int(spec.get("seed", 0))}
    else:
        job = "motion_import"
        params = af.motion_file_params(spec["file"], fps=spec.get("fps"), scale=spec.get("scale"))
    params["target"] = af.motion_target(rig)
    job_id, artifacts = af.run(job, params, address=address, on_progress=af.print_progress)
    motion = next(a for a in artifacts if getattr(a, "KIND", "") == "motion")
    understood = motion.provenance.get("segments") or motion.provenance.get("plan") or sorted(motion.provenance)
    print(f"render_clips: motion {job}: {json.dumps(understood, default=str)[:400]}", flush=True)
    built = af.import_artifacts(artifacts, name="Take", job_id=job_id, target=rig)
    imported = next(b for b in built if type(b).__name__ == "ImportedMotion")
    return motion, imported


def joints_over_frames(bpy: Any, scene: Any, rig: Any, frames: list[int], bone_of: dict[str, str]) -> np.ndarray:
    """(T, 24, 3) world positions of the SMPL-24 joints on the posed Anny rig."""
    out = np.full((len(frames), 24, 3), np.nan)
    for t, frame in enumerate(frames):
        scene.frame_set(frame)
        depsgraph = bpy.context.evaluated_depsgraph_get()
        ev = rig.evaluated_get(depsgraph)
        world = np.array(ev.matrix_world)
        for j, name in enumerate(SMPL24):
            if name in TAIL_JOINTS:
                local = ev.pose.bones[TAIL_JOINTS[name]].tail
            else:
                local = ev.pose.bones[bone_of[name]].head
            out[t, j] = (world @ np.array([*local, 1.0]))[:3]
    return out


def stage_world(bpy: Any, scene: Any, addon: Any) -> None:
    """A floor, a light blue-grey world for ambient light and a sun."""
    addon.render_setup.set_world(scene, SKY_COLOUR)
    bpy.ops.mesh.primitive_plane_add(size=40.0, location=(0.0, 0.0, 0.0))
    floor = bpy.context.object
    floor.name = "Floor"
    material = bpy.data.materials.new("Floor")
    if not addon.compat.at_least(5, 0, 0):
        material.use_nodes = True
    bsdf = next(n for n in material.node_tree.nodes if n.bl_idname == "ShaderNodeBsdfPrincipled")
    bsdf.inputs["Base Color"].default_value = (*GROUND_COLOUR, 1.0)
    bsdf.inputs["Roughness"].default_value = 0.9
    floor.data.materials.append(material)
    addon.render_setup.add_key_light(scene, energy=3.0)


def configure_render(scene: Any, addon: Any, resolution: tuple[int, int], samples: int) -> None:
    """Cycles CPU, few samples, denoised, short light paths: seconds per frame."""
    addon.render_setup.configure_cycles(scene, resolution, samples, denoise=True)
    cycles = scene.cycles
    cycles.denoiser = "OPENIMAGEDENOISE"
    cycles.max_bounces, cycles.diffuse_bounces, cycles.glossy_bounces = 2, 1, 1
    cycles.transmission_bounces, cycles.volume_bounces, cycles.transparent_max_bounces = 0, 0, 2
    cycles.use_adaptive_sampling = True
    cycles.adaptive_threshold = 0.05
    scene.render.use_persistent_data = True          # the BVH is reused between frames
    scene.render.threads_mode = "FIXED"
    scene.render.threads = 2


def add_camera(bpy: Any, scene: Any, spec: dict[str, Any], target: np.ndarray) -> Any:
    data = bpy.data.cameras.new(f"cam {spec['name']}")
    data.lens = float(spec["focal_mm"])
    data.sensor_width = SENSOR_WIDTH_MM
    data.sensor_fit = "HORIZONTAL"
    data.clip_end = 200.0
    cam = bpy.data.objects.new(f"cam {spec['name']}", data)
    scene.collection.objects.link(cam)
    position, rotation = camera_pose(target, float(spec["distance"]), float(spec["height"]),
                                     float(spec.get("azimuth", 0.0)))
    matrix = np.eye(4)
    matrix[:3, :3], matrix[:3, 3] = rotation, position
    from mathutils import Matrix

    cam.matrix_world = Matrix(matrix.tolist())
    scene.camera = cam
    return cam


def render_camera(bpy: Any, scene: Any, frames: list[int], folder: Path) -> float:
    """Render `frames` as PNGs into `folder`; seconds per frame."""
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGB"
    t0 = time.perf_counter()
    for i, frame in enumerate(frames):
        scene.frame_set(frame)
        scene.render.filepath = str(folder / f"frame{i:05d}.png")
        bpy.ops.render.render(write_still=True)
    return (time.perf_counter() - t0) / max(1, len(frames))


def render_clip(bpy: Any, addon: Any, clip: dict[str, Any], out: Path, address: str, python: Path,
                frame_limit: int | None) -> None:
    af = addon.api
    scene = bpy.context.scene
    clear_scene(bpy)
    t0 = time.perf_counter()
    rig, mesh = make_avatar(af, clip["avatar"], address)
    motion, imported = make_motion(af, clip["motion"], rig, address)
    frames = list(range(imported.frame_start, imported.frame_end + 1))[:frame_limit]
    print(f"render_clips: {clip['name']}: avatar + motion ({len(frames)} frames at {motion.fps:g} fps) in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)
    bone_of = {joint: bone for bone, joint in rigs_anny_map().items()}
    joints = joints_over_frames(bpy, scene, rig, frames, bone_of)
    target = np.array([*np.nanmean(joints[:, 0, :2], axis=0), float(np.nanmean(joints[:, 0, 2]))])
    stage_world(bpy, scene, addon)
    folder = out / clip["name"]
    folder.mkdir(parents=True, exist_ok=True)
    n = len(frames)
    smpl = np.asarray(motion.joints, np.float64)[:n] if motion.joints is not None else np.full((n, 24, 3), np.nan)
    contacts = np.asarray(motion.contacts, bool)[:n] if motion.contacts is not None else np.zeros((n, 2), bool)
    for cam_spec in clip["cameras"]:
        w, h = (int(v) for v in cam_spec.get("resolution", (512, 512)))
        configure_render(scene, addon, (w, h), int(clip.get("samples", 8)))
        cam = add_camera(bpy, scene, cam_spec, target)
        K, world_to_camera = opencv_camera(cam.data.lens, cam.data.sensor_width, w, h, np.array(cam.matrix_world))
        px = project(joints, K, world_to_camera)
        inside = float(np.mean((px[..., 0] >= 0) & (px[..., 0] < w) & (px[..., 1] >= 0) & (px[..., 1] < h)))
        with tempfile.TemporaryDirectory(prefix="af-frames-") as tmp:
            per_frame = render_camera(bpy, scene, frames, Path(tmp))
            encode_with_backend_python(Path(tmp), folder / f"{cam_spec['name']}.mp4", motion.fps, python)
        np.savez_compressed(
            folder / f"{cam_spec['name']}.npz", fps=np.float64(motion.fps), frames=np.int64(n),
            image_size=np.array([w, h]), joints_world=joints.astype(np.float32), smpl_joints=smpl.astype(np.float32),
            contacts=contacts, K=K, world_to_camera=world_to_camera, joints_px=px.astype(np.float32),
            joint_names=np.array(SMPL24), avatar=json.dumps(clip["avatar"]), motion=json.dumps(clip["motion"]),
            camera=json.dumps(cam_spec), **target_arrays(af.motion_target(rig)))
        print(f"render_clips: {clip['name']}/{cam_spec['name']}: {n} frames {w}x{h}, {per_frame:.2f} s/frame, "
              f"joints in frame {inside:.1%}", flush=True)
        bpy.data.objects.remove(cam)
    (folder / "spec.json").write_text(json.dumps({"hash": spec_hash(clip), "clip": clip}, indent=1), "utf-8")


def target_arrays(target: dict[str, Any]) -> dict[str, np.ndarray]:
    """The rendered avatar's rig as a <target rig> (the add-on's description), for the
    npz: a bench can give the solver the actor's own bone lengths (--target actor)."""
    return {"target_preset": np.array(target["preset"]), "target_bone_names": np.array(target["bone_names"]),
            "target_parents": np.asarray(target["parents"], np.int32),
            "target_rest_matrices": np.asarray(target["rest_matrices"], np.float32)}


def refresh_truth(bpy: Any, addon: Any, clip: dict[str, Any], out: Path, address: str) -> None:
    """Regenerate a rendered clip's avatar and motion (no rendering), check that
    its joints are the ones saved, and add what this renderer version saves and
    the saved npz lacks (the actor's rig)."""
    af = addon.api
    scene = bpy.context.scene
    clear_scene(bpy)
    rig, _mesh = make_avatar(af, clip["avatar"], address)
    _motion, imported = make_motion(af, clip["motion"], rig, address)
    bone_of = {joint: bone for bone, joint in rigs_anny_map().items()}
    for cam_spec in clip["cameras"]:
        path = out / clip["name"] / f"{cam_spec['name']}.npz"
        saved = dict(np.load(path))
        frames = list(range(imported.frame_start, imported.frame_start + int(saved["frames"])))
        joints = joints_over_frames(bpy, scene, rig, frames, bone_of)
        error_mm = float(np.nanmax(np.abs(joints - saved["joints_world"]))) * 1000
        if error_mm > 1.0:
            raise SystemExit(f"{path}: the regenerated clip differs from the saved truth by {error_mm:.1f} mm; "
                             "render it again (--force)")
        saved.update(target_arrays(af.motion_target(rig)))
        np.savez_compressed(path, **saved)
        print(f"render_clips: {path}: truth refreshed (joints reproduced within {error_mm:.3f} mm)", flush=True)


def rigs_anny_map() -> dict[str, str]:
    """backend/motion/rigs.py's ANNY map (bone -> SMPL joint), read without
    importing the backend (this runs in Blender's Python)."""
    import ast

    source = (REPO / "backend" / "motion" / "rigs.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    sides = (("left", "L", "l", "Left"), ("right", "R", "r", "Right"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "ANNY":
            out: dict[str, str] = {}
            for key, value in zip(node.value.keys, node.value.values):
                if key is not None:
                    out[ast.literal_eval(key)] = ast.literal_eval(value)
                else:   # **_sided({...})
                    template = {ast.literal_eval(k): ast.literal_eval(v)
                                for k, v in zip(value.args[0].keys, value.args[0].values)}
                    for side, big, small, word in sides:
                        out.update({b.format(S=big, s=small, Side=word): j.format(side=side)
                                    for b, j in template.items()})
            return out
    raise SystemExit("backend/motion/rigs.py has no ANNY map")


def main_render(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="render_clips.py", description=__doc__.split("\n\n")[0])
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--backend-python", help="start a backend with this interpreter (the backend's env)")
    where.add_argument("--address", help="use the backend already running here")
    p.add_argument("--spec", type=Path, required=True, help="a clip spec file (JSON)")
    p.add_argument("--out", type=Path, default=Path("/tmp/af-video-clips"), help="where videos and truth go")
    p.add_argument("--only", nargs="*", help="render only these clips (names)")
    p.add_argument("--frames", type=int, help="render only the first N frames (timing a set-up)")
    p.add_argument("--force", action="store_true", help="render even when the spec has not changed")
    p.add_argument("--truth-only", action="store_true",
                   help="rendered clips: regenerate avatar and motion, check the saved joints, add missing truth")
    args = p.parse_args(argv)

    sys.path.insert(0, str(REPO / "blender_addon" / "scripts"))
    from addon_loader import load_addon
    import bpy

    clips = [c for c in load_specs(args.spec) if not args.only or c["name"] in args.only]
    todo = [c for c in clips if args.force or args.frames or not is_rendered(args.out / c["name"], c)]
    if args.truth_only:
        todo = [c for c in clips if all((args.out / c["name"] / f"{cam['name']}.npz").is_file() for cam in c["cameras"])]
    print(f"render_clips: {len(clips)} clips, {len(todo)} to render into {args.out}", flush=True)
    if not todo:
        return 0
    addon = load_addon()
    af = addon.api
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))     # `kill` still stops the backend (finally)
    python = Path(args.backend_python or BACKEND_PYTHON)
    backend = None
    try:
        address = args.address
        if args.backend_python:
            store = tempfile.mkdtemp(prefix="af-render-store-")
            backend = addon.backend_process.LocalBackend(args.backend_python, "tcp://127.0.0.1:*", store).start()
            address = backend.wait_ready(timeout_s=600)
        af.connect(address, timeout_s=60)
        for clip in todo:
            t0 = time.perf_counter()
            if args.truth_only:
                refresh_truth(bpy, addon, clip, args.out, address)
                continue
            render_clip(bpy, addon, clip, args.out, address, python, args.frames)
            print(f"render_clips: {clip['name']} done in {time.perf_counter() - t0:.0f} s", flush=True)
    finally:
        af.close()
        if backend is not None:
            backend.stop()
            shutil.rmtree(store, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "encode":     # run by the backend's Python (PyAV)
        encode_frames(Path(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4]))
        sys.exit(0)
    sys.exit(main_render(sys.argv[1:]))
