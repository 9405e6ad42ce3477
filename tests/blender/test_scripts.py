"""The scripts shipped with the add-on, run as users run them (a fresh Python
with bpy, the add-on loaded from its installed folder), against the real backend."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

bpy = pytest.importorskip("bpy")


def run_script(script: Path, *args: str, address: str, timeout_s: float = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, AVATARFORGE_ADDRESS=address)
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, env=env,
                          timeout=timeout_s)


def load_objects(path: Path) -> list[Any]:
    """Append the objects of a saved .blend into this session, to inspect them."""
    with bpy.data.libraries.load(str(path)) as (src, dst):
        dst.objects = list(src.objects)
    return dst.objects


def test_batch_generates_requests_saves_and_renders(addon: Any, backend: Any, clean_scene: Any,
                                                    tmp_path: Path) -> None:
    requests = {
        "Guard": json.dumps({"phenotypes": {"muscle": 0.9}, "texture_size": 256}),
        "Prop": json.dumps({"job": "steps", "params": {"steps": 2, "seed": 9}, "name": "Prop"}),
        "Broken": json.dumps({"phenotypes": {"wingspan": 1.0}}),
    }
    for i, (name, request) in enumerate(requests.items()):
        empty = bpy.data.objects.new(name, None)
        empty.location = (2.0 * i, 1.0, 0.0)
        empty["avatarforge_request"] = request
        bpy.context.scene.collection.objects.link(empty)
    scene_file = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(scene_file), copy=True)

    script = Path(addon.__file__).parent / "scripts" / "batch_generate.py"
    out, png = tmp_path / "out.blend", tmp_path / "out.png"
    proc = run_script(script, "--open", str(scene_file), "--save", str(out), "--render", str(png),
                      "--resolution", "64", "--samples", "4", address=backend.address)
    assert proc.returncode == 1, proc.stdout + proc.stderr        # one request is broken
    assert "Broken: FAILED" in proc.stderr and "wingspan" in proc.stderr
    assert png.stat().st_size > 0

    bpy.data.batch_remove(list(bpy.data.objects))
    objects = {o.name: o for o in load_objects(out)}
    assert objects["Guard"]["avatarforge_status"] == "done"
    assert objects["Prop"]["avatarforge_status"] == "done"
    assert objects["Broken"]["avatarforge_status"].startswith("failed: BAD_REQUEST")
    guard_rig = objects["Guard_rig"]
    assert guard_rig.type == "ARMATURE" and len(guard_rig.data.bones) == 104
    assert tuple(guard_rig.location) == pytest.approx((0.0, 1.0, 0.0))
    assert tuple(objects["Prop_rig"].location) == pytest.approx((2.0, 1.0, 0.0))
    assert objects["Guard_body"].modifiers["Armature"].object == guard_rig
    assert objects["Guard"]["avatarforge_job_id"] == guard_rig["avatarforge_job_id"]


def test_batch_reports_a_missing_backend(addon: Any, tmp_path: Path) -> None:
    from .conftest import free_port

    script = Path(addon.__file__).parent / "scripts" / "batch_generate.py"
    proc = run_script(script, address=f"tcp://127.0.0.1:{free_port()}", timeout_s=60)
    assert proc.returncode == 1
    assert "no answer from the AvatarForge backend" in proc.stderr


def test_td_example_script(addon: Any, backend: Any, clean_scene: Any, tmp_path: Path) -> None:
    script = Path(addon.__file__).parent / "examples" / "generate_bodies.py"
    out = tmp_path / "lineup.blend"
    proc = run_script(script, str(out), address=backend.address)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rigs = sorted(o.name for o in load_objects(out) if o.type == "ARMATURE")
    assert rigs == ["Slim_rig", "Strong_rig", "Tall_rig"]
