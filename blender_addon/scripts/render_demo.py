"""The whole main job, headless: start a backend, generate the default avatar,
save it and render it with Cycles on the CPU. `make demo` runs this.

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
import time

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
    return p.parse_args(argv)


def empty_scene() -> bpy.types.Scene:
    """The startup file's cube, light and camera go: the demo stages its own."""
    bpy.data.batch_remove(list(bpy.data.objects))
    return bpy.context.scene


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
        rig, mesh = af.generate_body(address=address, name="Demo", texture_size=args.texture_size,
                                     on_progress=af.print_progress)
        t_generate = time.perf_counter() - t0
        print(f"demo: {rig.name} ({len(rig.data.bones)} bones), {mesh.name} ({len(mesh.data.vertices)} vertices) "
              f"in {t_generate:.1f} s", flush=True)

        addon.render_setup.stage_avatar(scene, [mesh], args.resolution, args.samples)
        os.makedirs(os.path.dirname(os.path.abspath(args.blend)), exist_ok=True)
        bpy.ops.wm.save_as_mainfile(filepath=os.path.abspath(args.blend), compress=True)
        print(f"demo: saved {args.blend}", flush=True)
        t0 = time.perf_counter()
        addon.render_setup.render_still(scene, os.path.abspath(args.png))
        print(f"demo: rendered {args.png} ({args.resolution} px, {args.samples} samples, Cycles CPU) "
              f"in {time.perf_counter() - t0:.1f} s", flush=True)
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
