"""FBX / glTF export of a motion on a rig, through Blender's own exporters, and
back through Blender's own importers into an emptied scene: every bone head's
world position within 1 cm of the original at several frames, for each preset
(their axes and scalings undone by the importer, as Unity / Unreal undo them).

Motions: a synthetic SMPL-24 motion with known forward kinematics (no backend)
and, end to end, a text motion on an Anny avatar from the backend, with its mesh.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .test_motion import require_jobs, synthetic_motion

bpy = pytest.importorskip("bpy")

TOLERANCE_M = 0.01


def heads(rig: Any, frames: list[int]) -> dict[int, dict[str, np.ndarray]]:
    """World positions of every bone head at each frame, as the scene plays."""
    out = {}
    for f in frames:
        bpy.context.scene.frame_set(f)
        out[f] = {b.name: np.array(rig.matrix_world @ b.head) for b in rig.pose.bones}
    return out


def empty_scene() -> None:
    """Everything the export came from removed (scene settings such as fps stay)."""
    for collection in (bpy.data.objects, bpy.data.meshes, bpy.data.armatures, bpy.data.materials,
                       bpy.data.images, bpy.data.actions):
        bpy.data.batch_remove(list(collection))
    bpy.data.batch_remove(list(bpy.data.collections))


def reimport(addon: Any, path: Path, preset: str) -> Any:
    """The armature Blender's own importer makes of the file."""
    if path.suffix == ".fbx":
        assert bpy.ops.import_scene.fbx(filepath=str(path), **addon.exporters.fbx.import_settings(preset)) \
            == {"FINISHED"}
    else:
        # (no bone display shapes: they would be one more mesh object)
        assert bpy.ops.import_scene.gltf(filepath=str(path), disable_bone_shape=True) == {"FINISHED"}
    (rig,) = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    return rig


def assert_round_trip(original: dict[int, dict[str, np.ndarray]], rig: Any, what: str) -> float:
    """Max head distance (m) between the original and the re-imported rig, asserted within TOLERANCE_M."""
    back = heads(rig, list(original))
    worst = 0.0
    for f, joints in original.items():
        missing = sorted(set(joints) - set(back[f]))
        assert not missing, f"{what}: bones lost: {missing[:10]}"
        d = max(float(np.linalg.norm(back[f][n] - p)) for n, p in joints.items())
        worst = max(worst, d)
        assert d < TOLERANCE_M, f"{what}: frame {f} off by {d * 100:.2f} cm"
    print(f"{what}: bone heads within {worst * 1000:.3f} mm over frames {sorted(original)}")
    return worst


def motion_moves(original: dict[int, dict[str, np.ndarray]]) -> float:
    """How far the joints travel over the compared frames (a still rig would pass any round trip)."""
    frames = sorted(original)
    return max(float(np.linalg.norm(original[frames[-1]][n] - original[frames[0]][n])) for n in original[frames[0]])


# -- no backend: a synthetic SMPL-24 motion --------------------------------------
@pytest.mark.parametrize("preset,suffix", [("unity", ".fbx"), ("unreal", ".fbx"), ("blender", ".fbx"),
                                           ("unity", ".glb")])
def test_smpl_motion_round_trips(addon: Any, clean_scene: Any, tmp_path: Path, preset: str, suffix: str) -> None:
    motion = synthetic_motion(addon.protocol, frames=30, fps=30.0)
    built = addon.importers.motion.import_motion(motion, bpy.context, name="Wiggle")
    frames = [1, 8, 17, 30]
    original = heads(built.rig, frames)
    assert motion_moves(original) > 0.1
    bpy.context.scene.frame_start, bpy.context.scene.frame_end = 5, 9     # export must not depend on these
    path = tmp_path / f"wiggle_{preset}{suffix}"
    done = addon.exporters.export_motion(built.rig, str(path), preset=preset)
    assert path.stat().st_size > 1000 and done.format == suffix[1:].upper()
    assert (done.frame_start, done.frame_end) == (1, 30) and done.objects == [built.rig.name]
    assert (bpy.context.scene.frame_start, bpy.context.scene.frame_end) == (5, 9)     # put back
    empty_scene()
    rig = reimport(addon, path, preset)
    assert_round_trip(original, rig, f"{preset}{suffix}")


def test_presets_say_what_the_engines_expect(addon: Any) -> None:
    fbx = addon.exporters.fbx
    for preset in addon.exporters.PRESETS:
        s = fbx.settings(preset, with_mesh=True)
        assert s["add_leaf_bones"] is False and s["bake_anim"] and s["bake_anim_simplify_factor"] == 0.0
        assert s["use_mesh_modifiers"] is False and s["object_types"] == {"ARMATURE", "MESH"}
    assert (fbx.settings("unity", False)["axis_up"], fbx.settings("unity", False)["apply_scale_options"]) == \
        ("Y", "FBX_SCALE_ALL")
    assert fbx.settings("unreal", False)["axis_up"] == "Z" and fbx.settings("unreal", False)["object_types"] == \
        {"ARMATURE"}


def fbx_facts(path: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The file's GlobalSettings and each Model node's type and local transform,
    read with Blender's own FBX parser (what Unity's and Unreal's importers read)."""
    from io_scene_fbx import parse_fbx

    root, _version = parse_fbx.parse(str(path))

    def props70(el: Any) -> dict[str, Any]:
        p70 = next((s for s in el.elems if s.id == b"Properties70"), None)
        return {p.props[0].decode(): p.props[4:] for p in (p70.elems if p70 else [])}

    settings, models = {}, {}
    for el in root.elems:
        if el.id == b"GlobalSettings":
            settings = props70(el)
        elif el.id == b"Objects":
            for m in (m for m in el.elems if m.id == b"Model"):
                props = props70(m)
                models[m.props[1].split(b"\x00")[0].decode()] = {
                    "type": m.props[2].decode(), "scale": props.get("Lcl Scaling", [1.0, 1.0, 1.0]),
                    "rotation": props.get("Lcl Rotation", [0.0, 0.0, 0.0])}
    return settings, models


@pytest.mark.parametrize("preset,up,unit,root_scale,root_turn", [
    ("unity", 1, 100.0, 1.0, -90.0),       # Y up, metres, armature unscaled (turned by the axis change)
    ("unreal", 2, 1.0, 100.0, 0.0),        # Z up, centimetres, armature node scaled to centimetres
    ("blender", 1, 1.0, 100.0, -90.0)])
def test_fbx_files_say_what_each_engine_reads(addon: Any, clean_scene: Any, tmp_path: Path, preset: str, up: int,
                                              unit: float, root_scale: float, root_turn: float) -> None:
    built = addon.importers.motion.import_motion(synthetic_motion(addon.protocol, frames=6, fps=30.0), bpy.context,
                                                 name="Axes")
    path = tmp_path / f"{preset}.fbx"
    addon.exporters.export_motion(built.rig, str(path), preset=preset)
    settings, models = fbx_facts(path)
    assert settings["UpAxis"] == [up] and settings["UnitScaleFactor"] == [pytest.approx(unit)]
    root = models[built.rig.name]
    assert root["type"] == "Null"
    assert root["scale"] == [pytest.approx(root_scale)] * 3
    assert root["rotation"][0] == pytest.approx(root_turn, abs=1e-4)
    bones = {n: m for n, m in models.items() if m["type"] == "LimbNode"}
    assert sorted(bones) == sorted(addon.protocol.SMPL24_JOINTS)      # no "_end" leaf bones added
    assert all(m["scale"] == [pytest.approx(1.0)] * 3 for m in bones.values())


def test_export_refusals(addon: Any, clean_scene: Any, tmp_path: Path) -> None:
    ex = addon.exporters
    rig = bpy.data.objects.new("Still", bpy.data.armatures.new("Still"))
    bpy.context.scene.collection.objects.link(rig)
    with pytest.raises(ex.ExportFailed, match="no motion"):
        ex.export_motion(rig, str(tmp_path / "a.fbx"))
    with pytest.raises(ex.ExportFailed, match=r"\.fbx or \.glb"):
        ex.export_motion(rig, str(tmp_path / "a.bvh"))
    with pytest.raises(ex.ExportFailed, match="preset"):
        ex.export_motion(rig, str(tmp_path / "a.fbx"), preset="godot")
    with pytest.raises(ex.ExportFailed, match="not an armature"):
        ex.export_motion(None, str(tmp_path / "a.fbx"))


def test_operator_and_api(addon: Any, af: Any, clean_scene: Any, tmp_path: Path) -> None:
    built = addon.importers.motion.import_motion(synthetic_motion(addon.protocol, frames=12, fps=24.0),
                                                 bpy.context, name="Op")
    s = bpy.context.scene.avatarforge
    s.motion_target = built.rig
    s.export_preset = "unreal"
    path = tmp_path / "op.fbx"
    assert bpy.ops.avatarforge.export_motion(filepath=str(path)) == {"FINISHED"}
    assert path.stat().st_size > 1000
    done = af.export_motion(built.rig, str(tmp_path / "api.glb"), preset="blender")
    assert done.format == "GLB" and done.frames == 12 and (tmp_path / "api.glb").exists()
    s.motion_target = None
    with pytest.raises(RuntimeError, match="no motion|armature"):      # nothing to export: refused with a reason
        bpy.context.view_layer.objects.active = None
        bpy.ops.avatarforge.export_motion(filepath=str(tmp_path / "none.fbx"))


# -- end to end: a text motion on an Anny avatar, with its mesh --------------------
def test_anny_text_motion_round_trips_with_mesh(addon: Any, af: Any, backend: Any, clean_scene: Any,
                                                tmp_path: Path) -> None:
    require_jobs(af, "text_motion")
    rig, mesh = af.generate_body(texture_size=256, name="Runner")
    motion = af.animate(rig, "walks forward", seconds=1.0, fps=15.0)
    frames = sorted({motion.frame_start, motion.frame_start + 5, motion.frame_end})
    original = heads(rig, frames)
    assert motion_moves(original) > 0.05
    n_vertices = len(mesh.data.vertices)
    paths = {}
    for preset, suffix in (("unity", ".fbx"), ("unreal", ".fbx"), ("unity", ".glb")):
        paths[(preset, suffix)] = tmp_path / f"anny_{preset}{suffix}"
        done = addon.exporters.export_motion(rig, str(paths[(preset, suffix)]), preset=preset)
        assert sorted(done.objects) == sorted([rig.name, mesh.name])
    empty_scene()
    for (preset, suffix), path in paths.items():
        back = reimport(addon, path, preset)
        meshes = [o for o in bpy.data.objects if o.type == "MESH"]
        assert len(meshes) == 1 and len(meshes[0].data.vertices) >= n_vertices * 0.99, \
            f"{preset}{suffix}: meshes {[(o.name, len(o.data.vertices)) for o in meshes]}, expected {n_vertices}"
        assert_round_trip(original, back, f"Anny {preset}{suffix}")
        empty_scene()
