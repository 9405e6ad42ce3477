"""The add-on against a real backend subprocess: operators, the TD API, the
threaded link (pumped by hand: timers never fire in background mode),
cancel, a backend that is down or restarts, and a Cycles render."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .conftest import free_port, start_backend

bpy = pytest.importorskip("bpy")
from mathutils import Quaternion  # noqa: E402

from .readback import evaluated_vertices, weights_of  # noqa: E402

ADDON_ID = "bl_ext.user_default.avatarforge"
BODY = {"phenotypes": {"gender": 0.8, "height": 0.7, "muscle": 0.6}, "texture_size": 256}


@pytest.fixture()
def prefs(addon: Any, backend: Any) -> Any:
    p = bpy.context.preferences.addons[ADDON_ID].preferences
    saved = (p.backend_address, p.connect_timeout_s)
    yield p
    p.backend_address, p.connect_timeout_s = saved


@pytest.fixture(scope="module")
def body_artifact(af: Any, backend: Any) -> Any:
    """The body the tests generate, fetched once through the blocking client."""
    _job_id, (avatar,) = af.run("body", af.body_params(**BODY))
    return avatar






def avatar_objects() -> tuple[Any, Any]:
    rigs = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    meshes = [o for o in bpy.data.objects if o.type == "MESH"]
    assert len(rigs) == 1 and len(meshes) == 1, (rigs, meshes)
    return rigs[0], meshes[0]


def assert_matches_artifact(rig: Any, mesh_obj: Any, avatar: Any) -> None:
    skel = avatar.skeleton
    bones = rig.data.bones
    assert len(bones) == len(skel.joint_names)
    assert [b.name for b in bones] == list(skel.joint_names)
    parents = [skel.joint_names.index(b.parent.name) if b.parent else -1 for b in bones]
    assert parents == skel.parents.tolist()
    rest = np.array([np.array(b.matrix_local) for b in bones])
    np.testing.assert_allclose(rest, skel.rest_matrices, atol=1e-4)
    mesh = mesh_obj.data
    assert (len(mesh.vertices), len(mesh.polygons)) == (len(avatar.vertices), len(avatar.faces))
    w = weights_of(mesh_obj)
    assert (w > 0).any(axis=1).all(), "every vertex is in at least one group"
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-4)
    uv = np.empty(len(mesh.loops) * 2, np.float32)
    mesh.uv_layers.active.data.foreach_get("uv", uv)
    np.testing.assert_allclose(uv.reshape(-1, 3, 2), avatar.uvs, atol=1e-6)
    image = mesh.materials[0].node_tree.nodes["Image Texture"].image
    assert image.packed_file is not None and image.size[0] == 256
    for obj in (rig, mesh_obj):
        assert obj["avatarforge_body_model"] == avatar.body_model == "anny"
        assert json.loads(obj["avatarforge_params"])["phenotypes"]["gender"] == pytest.approx(0.8)
        assert json.loads(obj["avatarforge_provenance"])
        assert obj["avatarforge_job_id"]


def test_operator_generates_body(clean_scene: Any, prefs: Any, body_artifact: Any) -> None:
    s = bpy.context.scene.avatarforge
    s.avatar_name = "Hero"
    s.texture_size = 256
    for name, value in BODY["phenotypes"].items():
        setattr(s, name, value)
    assert bpy.ops.avatarforge.generate_body() == {"FINISHED"}
    rig, mesh_obj = avatar_objects()
    assert rig.users_collection[0].name == "Hero"
    assert_matches_artifact(rig, mesh_obj, body_artifact)


def test_api_generate_body_poses_and_renders(af: Any, addon: Any, clean_scene: Any, backend: Any,
                                             body_artifact: Any, tmp_path: Path) -> None:
    rig, mesh_obj = af.generate_body(phenotypes=BODY["phenotypes"], texture_size=256, name="TD")
    assert (rig, mesh_obj) == avatar_objects()
    assert_matches_artifact(rig, mesh_obj, body_artifact)

    # The skin works: bending an upper arm moves the hand, not the feet.
    rest = evaluated_vertices(mesh_obj)
    arm = next(b for b in rig.pose.bones if "upperarm" in b.name.lower() or "upper_arm" in b.name.lower())
    arm.rotation_quaternion = Quaternion((1, 0, 0), 1.0)
    bpy.context.view_layer.update()
    moved = np.linalg.norm(evaluated_vertices(mesh_obj) - rest, axis=1)
    assert moved.max() > 0.1, f"posing {arm.name} should move its arm"
    assert moved[rest[:, 2] < 0.2].max() < 1e-5, "the feet stay put"
    arm.rotation_quaternion = (1, 0, 0, 0)

    # A small Cycles render shows the body in the middle of the frame.
    scene = bpy.context.scene
    addon.render_setup.stage_avatar(scene, [mesh_obj], resolution=128, samples=8)
    t0 = time.perf_counter()
    path = addon.render_setup.render_still(scene, str(tmp_path / "body.png"))
    print(f"cycles 128 px: {time.perf_counter() - t0:.1f} s")
    image = bpy.data.images.load(path)
    px = np.empty(image.size[0] * image.size[1] * 4, np.float32)
    image.pixels.foreach_get(px)
    px = px.reshape(image.size[1], image.size[0], 4)[..., :3]
    background = px[:8, :8].reshape(-1, 3).mean(axis=0)
    middle = px[48:80, 56:72]
    differs = np.abs(middle - background).max(axis=-1) > 0.05
    assert differs.mean() > 0.8, f"only {differs.mean():.0%} of the middle shows the body"
    assert np.abs(px[:8, :8] - background).max() < 0.05, "the corners show the background"


def test_backend_down_cancels_with_a_readable_report(addon: Any, clean_scene: Any, prefs: Any) -> None:
    prefs.backend_address = f"tcp://127.0.0.1:{free_port()}"
    prefs.connect_timeout_s = 1.0
    addon.api.close()
    t0 = time.monotonic()
    # bpy turns an operator's ERROR report into RuntimeError after the operator returned CANCELLED.
    with pytest.raises(RuntimeError, match=r"backend unavailable: no answer from the AvatarForge backend at "
                                           r"tcp://127\.0\.0\.1:\d+ within 1 s.*Start it"):
        bpy.ops.avatarforge.generate_body()
    assert time.monotonic() - t0 < 5.0, "a missing backend must not stall Blender"
    assert "backend unavailable" in addon.operators.LAST_ERROR["message"]
    assert not bpy.data.objects


def test_bad_request_reports_the_backends_message(clean_scene: Any, prefs: Any, addon: Any) -> None:
    with pytest.raises(RuntimeError, match=r"BAD_REQUEST.*phenotypes\.wingspan: not an Anny phenotype"):
        bpy.ops.avatarforge.submit_job(job="body", params=json.dumps({"phenotypes": {"wingspan": 0.5}}))
    assert "wingspan" in addon.operators.LAST_ERROR["message"]


def test_api_cancel_mid_job(af: Any, backend: Any) -> None:
    job = af.submit("steps", {"steps": 200, "step_s": 0.05, "seed": 1})
    seen: list[float] = []

    def on_progress(fraction: float, stage: str) -> None:
        seen.append(fraction)
        if len(seen) == 3:
            job.cancel()

    t0 = time.monotonic()
    with pytest.raises(af.ProtocolError) as err:
        job.wait(on_progress)
    assert err.value.code == af.ErrorCode.CANCELLED
    assert time.monotonic() - t0 < 5.0, "the job stopped at its next step, not after 10 s"
    assert job.status()["state"] == "cancelled"


def pump_until(table: Any, predicate: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting; records: " + repr(list(table.records.values()))
        if not table.pump():
            time.sleep(0.02)


def test_async_link_imports_result(addon: Any, clean_scene: Any, prefs: Any) -> None:
    table = addon.jobs.TABLE
    assert bpy.ops.avatarforge.submit_job(job="steps", params=json.dumps({"steps": 4, "seed": 2}), name="Async",
                                          wait=False) == {"FINISHED"}
    (record,) = table.records.values()
    stages: list[str] = []
    pump_until(table, lambda: (stages.append(record.stage), not record.active)[1], 30)
    assert record.state == "done", record.message
    assert any(s.startswith("step ") for s in stages), stages
    assert sorted(record.imported) == ["Async_body", "Async_rig"]
    assert bpy.data.objects["Async_rig"]["avatarforge_job_id"] == record.job_id


def test_async_cancel_mid_job(addon: Any, clean_scene: Any, prefs: Any) -> None:
    table = addon.jobs.TABLE
    bpy.ops.avatarforge.submit_job(job="steps", params=json.dumps({"steps": 200, "step_s": 0.05, "seed": 3}),
                                   wait=False)
    (record,) = table.records.values()
    pump_until(table, lambda: record.state == "running" and record.fraction > 0, 30)
    assert bpy.ops.avatarforge.cancel_job(key=record.local_id) == {"FINISHED"}
    pump_until(table, lambda: not record.active, 10)
    assert record.state == "cancelled"
    assert not bpy.data.objects


def test_async_submit_while_backend_down(addon: Any, clean_scene: Any, prefs: Any) -> None:
    prefs.backend_address = f"tcp://127.0.0.1:{free_port()}"
    prefs.connect_timeout_s = 0.5
    table = addon.jobs.TABLE
    try:
        bpy.ops.avatarforge.submit_job(job="steps", params="{}", wait=False)
        (record,) = table.records.values()
        pump_until(table, lambda: not record.active, 10)
        assert record.state == "failed"
        assert "no AvatarForge backend answers at" in record.message
        # Now the link knows: Generate refuses at once, with the reason.
        with pytest.raises(RuntimeError, match="Not submitted: no AvatarForge backend answers"):
            bpy.ops.avatarforge.submit_job(job="steps", params="{}", wait=False)
    finally:
        table.disconnect()


def test_link_survives_backend_restart(addon: Any, clean_scene: Any, prefs: Any, tmp_path: Path) -> None:
    """A job running when its backend dies is followed again once a backend is
    back at the address: re-attached by id, or re-run when the new process
    never heard of it."""
    address = f"tcp://127.0.0.1:{free_port()}"
    first = start_backend(tmp_path / "store", address)
    prefs.backend_address = address
    table = addon.jobs.TABLE
    try:
        bpy.ops.avatarforge.submit_job(job="steps", params=json.dumps({"steps": 30, "step_s": 0.05, "seed": 4}),
                                       name="Survivor", wait=False)
        (record,) = table.records.values()
        pump_until(table, lambda: record.state == "running", 30)
        first_id = record.job_id
        first.stop()
        pump_until(table, lambda: table.state == "unreachable", 15)
        assert record.active
        second = start_backend(tmp_path / "store", address)
        try:
            pump_until(table, lambda: not record.active, 60)
        finally:
            second.stop()
        assert record.state == "done", record.message
        assert record.job_id == first_id, "same request, same job id"
        assert "Survivor_rig" in bpy.data.objects
    finally:
        table.disconnect()
        first.stop()


def test_start_and_stop_local_backend_from_preferences(addon: Any, prefs: Any, tmp_path: Path) -> None:
    from .conftest import BACKEND_PYTHON

    saved = (prefs.backend_python, prefs.local_bind, prefs.local_store)
    try:
        prefs.backend_python = str(tmp_path / "no-python")
        with pytest.raises(RuntimeError, match="is not an executable Python interpreter"):
            bpy.ops.avatarforge.start_backend()

        prefs.backend_python = str(BACKEND_PYTHON)
        prefs.local_bind = f"tcp://127.0.0.1:{free_port()}"
        prefs.local_store = str(tmp_path / "store")
        assert bpy.ops.avatarforge.start_backend() == {"FINISHED"}
        local = addon.backend_process.LOCAL
        assert local.state == "running"
        assert prefs.backend_address == local.address == prefs.local_bind
        welcome = addon.api.connect(local.address)
        assert "body" in welcome["pipelines"]
        assert bpy.ops.avatarforge.stop_backend() == {"FINISHED"}
        assert local.proc.returncode == 0, "SIGTERM stops the server cleanly"
        assert addon.backend_process.LOCAL is None
    finally:
        prefs.backend_python, prefs.local_bind, prefs.local_store = saved
        addon.api.close()
        addon.jobs.TABLE.disconnect()
        if addon.backend_process.LOCAL is not None:
            addon.backend_process.LOCAL.stop()
            addon.backend_process.LOCAL = None


def test_failed_import_can_be_retried(addon: Any, clean_scene: Any, prefs: Any) -> None:
    """A result that arrives while the user is in Edit mode is kept, and the
    panel's Import button builds it once they are back in Object mode."""
    table = addon.jobs.TABLE
    bpy.ops.mesh.primitive_cube_add()
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        bpy.ops.avatarforge.submit_job(job="steps", params=json.dumps({"steps": 2, "seed": 5}), name="Later",
                                       wait=False)
        (record,) = table.records.values()
        pump_until(table, lambda: not record.active, 30)
        assert record.state == "failed" and "switch to Object mode" in record.message
        assert record.artifacts and "Later_rig" not in bpy.data.objects
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
    assert bpy.ops.avatarforge.import_result(key=record.local_id) == {"FINISHED"}
    assert record.state == "done" and not record.artifacts
    assert bpy.data.objects["Later_body"].modifiers["Armature"].object == bpy.data.objects["Later_rig"]
