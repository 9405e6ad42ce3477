"""Keying a 1,000-frame motion onto the Anny rig in Blender (the Motion importer).

    .venv-blender/bin/python bench/keyframe_import.py --backend-python .venv/bin/python   # (make bench-keyframes)
    .venv-blender/bin/python bench/keyframe_import.py --address tcp://127.0.0.1:5757

The Anny avatar comes from a backend (the body job's default, 256 px
texture); the motion is synthetic: smooth rotations on all 104 bones plus
root motion, as the backend's retargeted tracks arrive. Timed: the importer
from the Motion artifact in memory to a playing NLA strip (Action, 104 x 4 +
3 F-curves of 1,000 keys each, bulk-filled), median of --repeat runs, each on
a fresh Action. Prints seconds; target < 1 s.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "blender_addon" / "scripts"))
from addon_loader import load_addon  # noqa: E402

sys.path.insert(0, str(REPO / "bench"))
from blender_common import fetch_body_avatar  # noqa: E402

import bpy  # noqa: E402

TARGET_S = 1.0


def synthetic_tracks(protocol: object, bone_names: list[str], frames: int) -> object:
    """Smooth unit quaternions per bone and a walking root, like a retargeted motion."""
    rng = np.random.default_rng(0)
    t = np.linspace(0.0, 2 * np.pi, frames)[:, None]
    axes = rng.normal(size=(len(bone_names), 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    half = 0.3 * np.sin(t * rng.uniform(0.5, 3.0, len(bone_names)))[..., None]
    q = np.concatenate([np.cos(half), np.sin(half) * axes[None]], axis=-1).astype(np.float32)
    root = np.stack([0.1 * np.sin(t[:, 0]), np.linspace(0, 3, frames), 0.02 * np.sin(4 * t[:, 0])], -1)
    return protocol.RetargetedTracks("anny", list(bone_names), q, bone_names[0], root.astype(np.float32), [])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--backend-python", help="start a backend with this interpreter (the backend's env)")
    where.add_argument("--address", help="a running backend")
    p.add_argument("--frames", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()

    addon = load_addon()
    protocol = addon.protocol
    avatar = fetch_body_avatar(addon, addon.api.body_params(texture_size=256), args.address, args.backend_python)

    built = addon.importers.rigged_avatar.import_rigged_avatar(avatar, bpy.context, name="Anny")
    names = list(avatar.skeleton.joint_names)
    tracks = synthetic_tracks(protocol, names, args.frames)
    motion = protocol.Motion(name="bench", fps=30.0, rotations=np.zeros((args.frames, 24, 3), np.float32),
                             trans=np.zeros((args.frames, 3), np.float32), retargeted=tracks,
                             provenance={"job": "bench"})
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        result = addon.importers.motion.import_motion(motion, bpy.context, target=built.rig)
        times.append(time.perf_counter() - t0)
    bpy.context.scene.frame_set(args.frames // 2)   # it plays: the evaluated pose moved
    moved = any(pb.matrix != bone.matrix_local for pb, bone in zip(built.rig.pose.bones, built.rig.data.bones))
    median = statistics.median(times)
    curves = len(names) * 4 + 3
    print(f"Blender {bpy.app.version_string}: {args.frames} frames onto the Anny rig ({len(names)} bones, "
          f"{curves} F-curves, {curves * args.frames:,} keys); median of {args.repeat}")
    print(f"  import_motion: {median:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in times)}; "
          f"rig {result.timings['rig'] * 1000:.1f} ms, keys {result.timings['keys'] * 1000:.1f} ms)")
    print(f"  target < {TARGET_S:g} s: {'met' if median < TARGET_S else 'NOT met'}; pose moves on playback: {moved}")
    return 0 if median < TARGET_S and moved else 1


if __name__ == "__main__":
    sys.exit(main())
