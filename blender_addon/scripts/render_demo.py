"""The whole main job, headless: start a backend, generate an avatar from a
description (default 'a young woman in a red hoodie and blue jeans';
--prompt '' builds the default body instead), save it and render it with
Cycles on the CPU; then animate it from a prompt
(default 'waves hello, then jumps') and render a strip of frames of the
motion side by side (out/demo_motion.png); then capture the motion of the
person in a short bundled video (tests/data/video/demo_wave, rendered by
bench/render_clips.py) onto the same avatar and render video frames above the
avatar seen through the solved camera over them (out/demo_video.png). `make demo`
runs this.

    python render_demo.py --backend-python .venv/bin/python --store out/store \\
        --blend out/demo.blend --png out/demo.png                          # bpy wheel
    blender -b --python render_demo.py -- --address tcp://127.0.0.1:5757 ...  # a running backend

With --backend-python it starts `<python> -m avatarforge.backend.cli serve`
on a free loopback port (the server picks it and prints it) and stops it
cleanly at the end, whatever happens.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from addon_loader import load_addon, script_args  # noqa: E402

import bpy  # noqa: E402


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="render_demo.py", description=__doc__.split("\n\n")[0])
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--backend-python", help="start a backend with this interpreter (the backend's env)")
    where.add_argument("--address", help="use the backend already running here")
    p.add_argument("--store", help="result store of the started backend")
    p.add_argument("--blend", default="out/demo.blend")
    p.add_argument("--png", default="out/demo.png")
    p.add_argument("--resolution", type=int, default=320)
    p.add_argument("--samples", type=int, default=16)
    p.add_argument("--texture-size", type=int, default=1024)
    p.add_argument("--prompt", default="a young woman in a red hoodie and blue jeans",
                   help="describe the demo avatar (text_avatar job); '' builds the default body (body job)")
    p.add_argument("--motion-prompt", default="waves hello, then jumps",
                   help="what the demo avatar does ('' skips the motion part)")
    p.add_argument("--motion-seconds", type=float, default=4.0)
    p.add_argument("--motion-png", default="out/demo_motion.png", help="the strip of rendered motion frames")
    p.add_argument("--motion-frames", type=int, default=6, help="frames in the strip")
    p.add_argument("--motion-size", default="160x240", help="width x height of each frame of the strip")
    p.add_argument("--motion-samples", type=int, default=8)
    p.add_argument("--video", default=DEMO_VIDEO, help="a video of one person for video -> motion ('' skips it)")
    p.add_argument("--video-focal-mm", type=float, default=35.0,
                   help="the video's 35 mm-equivalent focal length (the bundled clip was rendered with 35 mm)")
    p.add_argument("--video-png", default="out/demo_video.png",
                   help="video frames (top) above the avatar performing them, seen through the solved camera")
    p.add_argument("--video-frames", type=int, default=4, help="frames compared")
    return p.parse_args(argv)


DEMO_VIDEO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data", "video",
                          "demo_wave", "front.mp4")


def empty_scene() -> bpy.types.Scene:
    """The startup file's cube, light and camera go: the demo stages its own."""
    bpy.data.batch_remove(list(bpy.data.objects))
    return bpy.context.scene


def bounds_over_frames(scene: bpy.types.Scene, objects: list[bpy.types.Object],
                       frames: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Corners of the box the objects fill over `frames` (a jump goes up, a wave out)."""
    from avatarforge_addon import render_setup

    boxes = []
    for frame in frames:
        scene.frame_set(frame)
        boxes.append(render_setup.world_bounds(objects))
    return np.min([b[0] for b in boxes], axis=0), np.max([b[1] for b in boxes], axis=0)


def frame_motion(scene: bpy.types.Scene, objects: list[bpy.types.Object], frames: list[int]) -> None:
    """A camera that keeps the whole motion in view: render_setup.frame_front
    fitted to a stand-in box of the motion's bounds (removed afterwards)."""
    from avatarforge_addon import render_setup

    lo, hi = bounds_over_frames(scene, objects, frames)
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    box_mesh = bpy.data.meshes.new("demo bounds")
    box_mesh.from_pydata(corners.tolist(), [], [])
    box = bpy.data.objects.new("demo bounds", box_mesh)
    scene.collection.objects.link(box)
    try:
        if scene.camera is not None:
            old = scene.camera
            scene.camera = None
            bpy.data.objects.remove(old)
        render_setup.frame_front(scene, [box])
    finally:
        bpy.data.objects.remove(box)
        bpy.data.meshes.remove(box_mesh)


def render_tiles(scene: bpy.types.Scene, frames: list[int]) -> np.ndarray:
    """Each frame rendered, side by side: (h, w * n, 4) RGBA, rows bottom-up as Blender stores pixels."""
    from avatarforge_addon import render_setup

    tiles = []
    with tempfile.TemporaryDirectory(prefix="af-demo-") as tmp:
        for frame in frames:
            scene.frame_set(frame)
            tile = render_setup.render_still(scene, os.path.join(tmp, f"frame{frame:04d}.png"))
            img = bpy.data.images.load(tile)
            w, h = img.size
            tiles.append(np.array(img.pixels[:], np.float32).reshape(h, w, 4))
            bpy.data.images.remove(img)
    return np.concatenate(tiles, axis=1)


def save_png(pixels: np.ndarray, path: str) -> None:
    out = bpy.data.images.new("demo picture", pixels.shape[1], pixels.shape[0], alpha=True)
    out.pixels.foreach_set(pixels.ravel())
    out.filepath_raw = path
    out.file_format = "PNG"
    out.save()
    bpy.data.images.remove(out)


def render_strip(scene: bpy.types.Scene, frames: list[int], path: str) -> None:
    """Render each frame and write them side by side into one PNG."""
    save_png(render_tiles(scene, frames), path)


def animate_demo(af: object, args: argparse.Namespace, address: str, scene: bpy.types.Scene,
                 rig: bpy.types.Object, mesh: bpy.types.Object) -> None:
    """Animate the demo avatar from the prompt and render out/demo_motion.png."""
    t0 = time.perf_counter()
    motion = af.animate(rig, args.motion_prompt, seconds=args.motion_seconds, fps=30.0, address=address,
                        on_progress=af.print_progress)
    print(f"demo: '{args.motion_prompt}': {motion.frame_end - motion.frame_start + 1} frames on {rig.name} "
          f"in {time.perf_counter() - t0:.1f} s" + (f" ({motion.notes})" if motion.notes else ""), flush=True)
    frames = np.linspace(motion.frame_start, motion.frame_end, max(1, args.motion_frames)).round().astype(int)
    width, height = (int(v) for v in args.motion_size.lower().split("x"))
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.cycles.samples = args.motion_samples
    frame_motion(scene, [mesh], frames.tolist())
    t0 = time.perf_counter()
    os.makedirs(os.path.dirname(os.path.abspath(args.motion_png)), exist_ok=True)
    render_strip(scene, frames.tolist(), os.path.abspath(args.motion_png))
    scene.frame_set(motion.frame_start)
    print(f"demo: rendered {args.motion_png} (frames {', '.join(map(str, frames))}, {width}x{height} px, "
          f"{args.motion_samples} samples) in {time.perf_counter() - t0:.1f} s", flush=True)


def capture_demo(af: object, args: argparse.Namespace, address: str, scene: bpy.types.Scene,
                 rig: bpy.types.Object, mesh: bpy.types.Object) -> None:
    """Capture the bundled video's motion onto the demo avatar; render video frames
    (top row: the footage alone) above the avatar performing them, seen through the
    solved camera in front of the footage (bottom row): out/demo_video.png."""
    t0 = time.perf_counter()
    take = af.motion_from_video(args.video, rig=rig, focal_mm=args.video_focal_mm, reference="plane",
                                address=address, on_progress=af.print_progress)
    said = "; ".join(take.report()) or "no gaps, one person"
    print(f"demo: video -> motion: {take.motion.frame_end - take.motion.frame_start + 1} frames on {rig.name} "
          f"({said}) in {time.perf_counter() - t0:.1f} s", flush=True)
    plane = take.camera.plane
    scene.camera = take.camera.camera          # the importer set the render size to the video's
    scene.cycles.samples = args.motion_samples
    plane.hide_render = False
    start, end = take.motion.frame_start, take.motion.frame_end
    frames = np.linspace(start, end, max(1, args.video_frames)).round().astype(int).tolist()
    t0 = time.perf_counter()
    mesh.hide_render = True
    footage = render_tiles(scene, frames)
    mesh.hide_render = False
    performed = render_tiles(scene, frames)
    plane.hide_render = True
    save_png(np.concatenate([performed, footage], axis=0), os.path.abspath(args.video_png))  # rows bottom-up
    print(f"demo: rendered {args.video_png} (video frames {', '.join(map(str, frames))} above the avatar "
          f"through the solved camera) in {time.perf_counter() - t0:.1f} s", flush=True)


def main() -> int:
    args = parse_args(script_args())
    addon = load_addon()
    af = addon.api
    t_start = time.perf_counter()
    backend = None
    try:
        address = args.address
        if args.backend_python:
            backend = addon.backend_process.LocalBackend(args.backend_python, "tcp://127.0.0.1:*",
                                                         os.path.abspath(args.store) if args.store else None)
            backend.start()
            address = backend.wait_ready(timeout_s=300)
            print(f"demo: backend listening on {address}", flush=True)
        welcome = af.connect(address, timeout_s=30)
        print(f"demo: connected to {welcome['server']} {welcome['server_version']}", flush=True)

        scene = empty_scene()
        t0 = time.perf_counter()
        if args.prompt:
            rig, mesh = af.generate_avatar(args.prompt, address=address, name="Demo",
                                           texture_size=args.texture_size, on_progress=af.print_progress)
        else:
            rig, mesh = af.generate_body(address=address, name="Demo", texture_size=args.texture_size,
                                         on_progress=af.print_progress)
        t_generate = time.perf_counter() - t0
        print(f"demo: {rig.name} ({len(rig.data.bones)} bones), {mesh.name} ({len(mesh.data.vertices)} vertices) "
              f"in {t_generate:.1f} s", flush=True)

        addon.render_setup.stage_avatar(scene, [mesh], args.resolution, args.samples)
        t0 = time.perf_counter()
        addon.render_setup.render_still(scene, os.path.abspath(args.png))
        print(f"demo: rendered {args.png} ({args.resolution} px, {args.samples} samples, Cycles CPU) "
              f"in {time.perf_counter() - t0:.1f} s", flush=True)
        if args.motion_prompt:
            animate_demo(af, args, address, scene, rig, mesh)
        if args.video:
            capture_demo(af, args, address, scene, rig, mesh)
        os.makedirs(os.path.dirname(os.path.abspath(args.blend)), exist_ok=True)
        bpy.ops.wm.save_as_mainfile(filepath=os.path.abspath(args.blend), compress=True)
        print(f"demo: saved {args.blend}", flush=True)
    except (af.ProtocolError, af.ImportFailed, addon.backend_process.BackendStartFailed) as exc:
        print(f"demo: FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        af.close()
        if backend is not None:
            code = backend.stop()
            print(f"demo: backend stopped (exit code {code})", flush=True)
    print(f"demo: done in {time.perf_counter() - t_start:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
