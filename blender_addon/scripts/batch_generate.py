"""Batch: build the avatars requested by objects of a .blend, then save and render it.

    blender -b scene.blend --python batch_generate.py -- --save out.blend --render out.png
    python batch_generate.py --open scene.blend --save out.blend --render out.png   # bpy wheel

A request is a custom property `avatarforge_request` on any object (usually an
empty), holding JSON text:

    {"phenotypes": {"gender": 0.2, "height": 0.8}, "texture_size": 512}       body params
    {"job": "body", "params": {...}, "tier": "anny", "name": "Guard"}         any job

Each avatar lands in its own collection, placed at the requesting object
(location and rotation). The object gets `avatarforge_status` ("done" or
"failed: <why>"), `avatarforge_result` (the collection) and
`avatarforge_job_id`. Objects that already have a result are skipped unless
--force. Exit code 0 when every request succeeded, 1 otherwise, 2 for bad usage.

Options: --address (else $AVATARFORGE_ADDRESS, the preferences, the default),
--resolution, --samples for the render; without a scene camera one is placed
framing the avatars.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from addon_loader import load_addon, script_args  # noqa: E402

import bpy  # noqa: E402

REQUEST = "avatarforge_request"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="batch_generate.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--open", help=".blend to open (the bpy wheel; the blender binary takes it before --python)")
    p.add_argument("--address", help="backend address, e.g. tcp://render-gpu:5757")
    p.add_argument("--save", help="save the result here (default: overwrite the opened file)")
    p.add_argument("--render", help="render the scene camera's view to this PNG")
    p.add_argument("--resolution", type=int, default=384)
    p.add_argument("--samples", type=int, default=16)
    p.add_argument("--force", action="store_true", help="regenerate objects that already have a result")
    return p.parse_args(argv)


def parse_request(obj: bpy.types.Object) -> tuple[str, dict[str, Any], str | None, str]:
    """(job, params, tier, name) from an object's request property."""
    raw = obj[REQUEST]
    data = json.loads(raw) if isinstance(raw, str) else raw.to_dict()
    if not isinstance(data, dict):
        raise ValueError(f"{REQUEST} must be a JSON object, got {type(data).__name__}")
    if "job" in data:
        extra = set(data) - {"job", "params", "tier", "name"}
        if extra:
            raise ValueError(f"unknown request keys {sorted(extra)}; use job, params, tier, name")
        return str(data["job"]), dict(data.get("params") or {}), data.get("tier"), str(data.get("name") or obj.name)
    return "body", data, None, obj.name


def place(built: list[Any], anchor: bpy.types.Object) -> None:
    """Put each avatar's root objects at the anchor's location and rotation."""
    loc, rot, _scale = anchor.matrix_world.decompose()
    for item in built:
        for obj in getattr(item, "objects", ()):
            if obj.parent is None:
                obj.location = loc
                obj.rotation_mode = "QUATERNION"
                obj.rotation_quaternion = rot


def run_requests(af: Any, address: str | None, force: bool) -> tuple[list[Any], int]:
    """Generate every request; returns (objects built, number of failures)."""
    objects: list[Any] = []
    failures = 0
    requests = [o for o in bpy.context.scene.objects if REQUEST in o]
    print(f"AvatarForge batch: {len(requests)} request(s) in {bpy.data.filepath or 'the scene'}")
    for anchor in requests:
        if anchor.get("avatarforge_status") == "done" and not force:
            print(f"  {anchor.name}: already done ({anchor.get('avatarforge_result')}), skipped")
            continue
        t0 = time.perf_counter()
        try:
            job, params, tier, name = parse_request(anchor)
            job_id, artifacts = af.run(job, params, tier, address=address)
            built = af.import_artifacts(artifacts, bpy.context, name=name, job_id=job_id)
        except (ValueError, af.ProtocolError, af.ImportFailed) as exc:
            failures += 1
            anchor["avatarforge_status"] = f"failed: {exc}"
            print(f"  {anchor.name}: FAILED: {exc}", file=sys.stderr)
            continue
        place(built, anchor)
        anchor["avatarforge_status"] = "done"
        anchor["avatarforge_job_id"] = job_id
        anchor["avatarforge_result"] = ", ".join(b.collection.name for b in built if hasattr(b, "collection"))
        objects += [o for b in built for o in getattr(b, "objects", ())]
        print(f"  {anchor.name}: {anchor['avatarforge_result']} in {time.perf_counter() - t0:.1f} s")
    return objects, failures


def main() -> int:
    args = parse_args(script_args())
    if args.open:
        bpy.ops.wm.open_mainfile(filepath=os.path.abspath(args.open))
    addon = load_addon()
    af = addon.api
    try:
        af.connect(args.address)
    except af.BackendUnavailable as exc:
        print(f"AvatarForge batch: {exc.message}", file=sys.stderr)
        return 1
    objects, failures = run_requests(af, args.address, args.force)
    scene = bpy.context.scene
    if args.render:
        meshes = [o for o in objects if o.type == "MESH"] or [o for o in scene.objects if o.type == "MESH"]
        if scene.camera is None:
            addon.render_setup.stage_avatar(scene, meshes, args.resolution, args.samples)
        else:
            addon.render_setup.configure_cycles(scene, args.resolution, args.samples)
        print(f"AvatarForge batch: rendered {addon.render_setup.render_still(scene, os.path.abspath(args.render))}")
    target = os.path.abspath(args.save) if args.save else bpy.data.filepath
    if target:
        bpy.ops.wm.save_as_mainfile(filepath=target, compress=True)
        print(f"AvatarForge batch: saved {target}")
    af.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())   # under the blender binary too: Blender exits with this code
