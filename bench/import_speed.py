"""Importing an avatar: our RiggedAvatar importer vs Blender's own glTF importer.

    .venv-blender/bin/python bench/import_speed.py --backend-python .venv/bin/python   # (make bench-import)
    .venv-blender/bin/python bench/import_speed.py --address tcp://127.0.0.1:5757 --backend-python .venv/bin/python

The same avatar (the body job's default, Anny) goes both ways in one run:
- ours: the RiggedAvatar as the add-on receives it (fetched from a backend),
  built by importers/rigged_avatar.py; timed from the artifact in memory, and
  from the wire bytes (decode + validate + import);
- glTF: the same request written to .glb by the backend CLI
  (`avatarforge generate body --out`), read by bpy.ops.import_scene.gltf.
Each is the median of --repeat runs on an emptied scene. Prints both times
and the ratio (target: ours at least 3x faster).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "blender_addon" / "scripts"))
from addon_loader import load_addon  # noqa: E402

sys.path.insert(0, str(REPO / "bench"))
from blender_common import fetch_body_avatar  # noqa: E402

import bpy  # noqa: E402

TARGET_RATIO = 3.0


def empty_scene() -> None:
    for coll in (bpy.data.objects, bpy.data.meshes, bpy.data.armatures, bpy.data.materials, bpy.data.images,
                 bpy.data.collections, bpy.data.actions):
        bpy.data.batch_remove(list(coll))


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, list[float], Any]:
    """Median seconds of `fn` over `repeat` runs, each on an empty scene."""
    times, result = [], None
    for _ in range(repeat):
        empty_scene()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, result


def write_glb(backend_python: str, texture_size: int, path: Path) -> None:
    cmd = [backend_python, "-m", "avatarforge.backend.cli", "generate", "body", "--texture-size", str(texture_size),
           "--out", str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"writing the .glb failed:\n{proc.stderr[-2000:]}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend-python", required=True, help="the backend env's Python (writes the .glb)")
    p.add_argument("--address", help="a running backend; default: start one with --backend-python")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--texture-size", type=int, default=1024)
    args = p.parse_args()

    addon = load_addon()
    protocol = addon.protocol
    avatar = fetch_body_avatar(addon, addon.api.body_params(texture_size=args.texture_size), args.address,
                               args.backend_python)
    with tempfile.TemporaryDirectory(prefix="af-bench-") as tmp:
        glb = Path(tmp) / "avatar.glb"
        write_glb(args.backend_python, args.texture_size, glb)

        wire = protocol.encode(protocol.make("result", job_id="bench", artifacts=[avatar.to_wire()]))
        wire_bytes = [bytes(f) for f in wire]

        def ours() -> Any:
            return addon.importers.rigged_avatar.import_rigged_avatar(avatar, bpy.context, name="Ours")

        def ours_from_wire() -> Any:
            msg = protocol.validate(protocol.decode(wire_bytes))
            (art,) = [protocol.artifact_from_wire(a) for a in msg["artifacts"]]
            return addon.importers.rigged_avatar.import_rigged_avatar(art, bpy.context, name="Ours")

        def gltf() -> Any:
            return bpy.ops.import_scene.gltf(filepath=str(glb))

        ours_s, ours_all, built = timed(ours, args.repeat)
        stages = built.timings
        wire_s, _, _ = timed(ours_from_wire, args.repeat)
        gltf_s, gltf_all, _ = timed(gltf, args.repeat)
        g_mesh = next(o for o in bpy.data.objects if o.type == "MESH")
        g_rig = next(o for o in bpy.data.objects if o.type == "ARMATURE")
        g_counts = (len(g_mesh.data.vertices), len(g_mesh.data.polygons), len(g_rig.data.bones))
        glb_mb = glb.stat().st_size / 1e6

    print(f"Blender {bpy.app.version_string}, avatar: {len(avatar.vertices)} vertices, {len(avatar.faces)} faces, "
          f"{len(avatar.skeleton)} joints, k={avatar.skin_weights.shape[1]}, "
          f"texture {args.texture_size} px; median of {args.repeat}")
    print(f"  glTF importer built: {g_counts[0]} vertices (split at UV seams), {g_counts[1]} faces, "
          f"{g_counts[2]} bones from a {glb_mb:.1f} MB .glb")
    print(f"  ours  (artifact in memory):    {ours_s * 1000:8.1f} ms   "
          + ", ".join(f"{k} {v * 1000:.1f}" for k, v in stages.items()))
    print(f"  ours  (from wire bytes):       {wire_s * 1000:8.1f} ms")
    print(f"  glTF  (bpy.ops.import_scene):  {gltf_s * 1000:8.1f} ms")
    ratio = gltf_s / ours_s
    print(f"  ratio glTF / ours: {ratio:.1f}x (from wire bytes: {gltf_s / wire_s:.1f}x); "
          f"target >= {TARGET_RATIO:g}x: {'met' if ratio >= TARGET_RATIO else 'NOT met'}")
    return 0 if ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
