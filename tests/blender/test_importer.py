"""The RiggedAvatar importer on a hand-made avatar with known answers (no backend)."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from .synthetic import tube_avatar

bpy = pytest.importorskip("bpy")
from mathutils import Quaternion  # noqa: E402

from .readback import evaluated_vertices, weights_of  # noqa: E402


@pytest.fixture()
def tube(addon: Any) -> Any:
    return tube_avatar(addon.protocol)


@pytest.fixture()
def imported(addon: Any, clean_scene: Any, tube: Any) -> Any:
    return addon.importers.rigged_avatar.import_rigged_avatar(tube, bpy.context, name="Tube", job_id="job-123")






def test_armature_matches_skeleton(imported: Any, tube: Any) -> None:
    rig = imported.rig
    bones = rig.data.bones
    skel = tube.skeleton
    assert [b.name for b in bones] == skel.joint_names
    for name, parent in zip(skel.joint_names, skel.parents):
        assert (bones[name].parent.name if bones[name].parent else None) == \
            (skel.joint_names[parent] if parent >= 0 else None)
    for name, rest in zip(skel.joint_names, skel.rest_matrices):
        # DESIGN §6: the bone's local frame is the joint's frame.
        np.testing.assert_allclose(np.array(bones[name].matrix_local), rest, atol=1e-5)
        assert bones[name].length >= 0.01


def test_rotation_quaternion_goes_in_verbatim(imported: Any, tube: Any) -> None:
    """A model rotation D (in the joint's rest frame) set as rotation_quaternion
    gives W_child = W_parent P_parent^-1 P_child D, no conversion."""
    rig = imported.rig
    q = Quaternion((0.9, 0.1, -0.3, 0.2)).normalized()
    rig.pose.bones["spine"].rotation_quaternion = q
    bpy.context.view_layer.update()
    rest = tube.skeleton.rest_matrices.astype(np.float64)
    d = np.array(q.to_matrix().to_4x4())
    expected_spine = rest[0] @ np.linalg.inv(rest[0]) @ rest[1] @ d
    np.testing.assert_allclose(np.array(rig.pose.bones["spine"].matrix), expected_spine, atol=1e-5)
    expected_head = expected_spine @ np.linalg.inv(rest[1]) @ rest[2]
    np.testing.assert_allclose(np.array(rig.pose.bones["head"].matrix), expected_head, atol=1e-5)


def test_mesh_counts_positions_and_uvs(imported: Any, tube: Any) -> None:
    mesh = imported.mesh.data
    assert len(mesh.vertices) == len(tube.vertices)
    assert len(mesh.polygons) == len(tube.faces)
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    np.testing.assert_array_equal(co.reshape(-1, 3), tube.vertices)
    loops = np.empty(len(mesh.loops), np.int32)
    mesh.loops.foreach_get("vertex_index", loops)
    np.testing.assert_array_equal(loops.reshape(-1, 3), tube.faces)
    assert len(mesh.uv_layers) == 1 and mesh.uv_layers.active is not None
    uv = np.empty(len(mesh.loops) * 2, np.float32)
    mesh.uv_layers.active.data.foreach_get("uv", uv)
    np.testing.assert_allclose(uv.reshape(-1, 3, 2), tube.uvs, atol=1e-6)


def test_skin_weights(imported: Any, tube: Any) -> None:
    obj = imported.mesh
    assert [g.name for g in obj.vertex_groups] == tube.skeleton.joint_names
    w = weights_of(obj)
    assert (w > 0).any(axis=1).all(), "every vertex is in at least one group"
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-5)
    expected = np.zeros_like(w)
    np.add.at(expected, (np.arange(len(w))[:, None].repeat(3, 1), tube.skin_indices), tube.skin_weights)
    np.testing.assert_allclose(w, expected, atol=1e-6)
    # Zero weights are not written: the padding joint ("arm") holds no vertex.
    assert not any(g.group == 3 for v in obj.data.vertices for g in v.groups)
    mod = obj.modifiers["Armature"]
    assert mod.type == "ARMATURE" and mod.object == imported.rig and mod.use_vertex_groups
    assert obj.parent == imported.rig


def test_material_texture_is_packed(imported: Any) -> None:
    mat = imported.mesh.data.materials[0]
    bsdf = next(n for n in mat.node_tree.nodes if n.bl_idname == "ShaderNodeBsdfPrincipled")
    link = bsdf.inputs["Base Color"].links[0]
    image = link.from_node.image
    assert image.packed_file is not None and image.packed_file.size > 0
    assert tuple(image.size) == (8, 8)
    assert image.colorspace_settings.name == "sRGB"
    assert bsdf.inputs["Roughness"].default_value == pytest.approx(0.55)


def test_custom_properties_and_collection(imported: Any, tube: Any) -> None:
    for idblock in (imported.rig, imported.mesh, imported.collection):
        assert idblock["avatarforge_kind"] == "rigged_avatar"
        assert idblock["avatarforge_body_model"] == "synthetic"
        assert json.loads(idblock["avatarforge_params"]) == tube.params
        assert json.loads(idblock["avatarforge_provenance"]) == tube.provenance
        assert idblock["avatarforge_job_id"] == "job-123"
    assert set(imported.collection.objects) == {imported.rig, imported.mesh}
    assert imported.collection.name in bpy.context.scene.collection.children


def test_each_avatar_gets_its_own_collection(addon: Any, clean_scene: Any, tube: Any) -> None:
    first = addon.importers.import_artifacts([tube], bpy.context, name="Twin")[0]
    second = addon.importers.import_artifacts([tube], bpy.context, name="Twin")[0]
    assert first.collection != second.collection
    assert not set(first.collection.objects) & set(second.collection.objects)


def test_posing_a_bone_moves_the_mesh(imported: Any) -> None:
    rest = evaluated_vertices(imported.mesh)
    imported.rig.pose.bones["spine"].rotation_quaternion = Quaternion((0, 1, 0), 0.8)
    bpy.context.view_layer.update()
    posed = evaluated_vertices(imported.mesh)
    moved = np.linalg.norm(posed - rest, axis=1)
    z = rest[:, 2]
    assert moved[z < 0.05].max() < 1e-5, "vertices bound to the root alone stay put"
    assert moved[z > 1.0].min() > 0.05, "vertices above the spine joint follow it"


def test_import_keeps_the_users_active_object(addon: Any, clean_scene: Any, tube: Any) -> None:
    bpy.ops.mesh.primitive_cube_add()
    cube = bpy.context.view_layer.objects.active
    addon.importers.import_artifacts([tube], bpy.context)
    assert bpy.context.view_layer.objects.active == cube
    assert cube.mode == "OBJECT"


def test_bad_rest_frame_is_refused(addon: Any, clean_scene: Any, tube: Any) -> None:
    tube.skeleton.rest_matrices[2, :3, 0] *= -1.0     # a mirrored (left-handed) frame
    with pytest.raises(addon.importers.ImportFailed, match="joint 'head'.*not a rotation"):
        addon.importers.import_artifacts([tube], bpy.context)
    assert not bpy.data.objects and not bpy.data.collections


def test_corrupt_texture_is_refused_before_anything_is_built(addon: Any, clean_scene: Any, tube: Any) -> None:
    png = bytearray(tube.materials[0].png)
    png[45] ^= 0xFF                                   # a flipped byte inside IDAT
    tube.materials[0].png = bytes(png)
    with pytest.raises(addon.importers.ImportFailed, match=r"texture 'skin \(base_color\)'.*IDAT fails its CRC"):
        addon.importers.import_artifacts([tube], bpy.context)
    assert not bpy.data.objects and not bpy.data.collections


def test_unknown_artifact_kind_is_refused(addon: Any, clean_scene: Any) -> None:
    with pytest.raises(addon.importers.ImportFailed, match="cannot import 'str'"):
        addon.importers.import_artifacts(["not an artifact"], bpy.context)


def test_action_fcurves_compat(addon: Any, clean_scene: Any, imported: Any) -> None:
    """Keyframes in bulk through the one compat helper, on 4.2 (Action.fcurves)
    and 5.0 (layered actions, no Action.fcurves)."""
    rig = imported.rig
    action = bpy.data.actions.new("walk")
    curves = addon.compat.action_fcurves(rig, action)
    fc = addon.compat.new_fcurve(curves, 'pose.bones["spine"].rotation_quaternion', 0, "spine")
    frames = np.arange(1, 11, dtype=np.float32)
    fc.keyframe_points.add(len(frames))
    fc.keyframe_points.foreach_set("co", np.stack([frames, np.linspace(1, 0, 10)], 1).ravel())
    fc.update()
    assert len(addon.compat.action_fcurves(rig, action)) == 1
    assert fc.evaluate(10) == pytest.approx(0.0)
    bpy.context.scene.frame_set(10)   # the action drives the rig (its slot is the rig's)
    assert rig.pose.bones["spine"].rotation_quaternion[0] == pytest.approx(0.0, abs=1e-6)
    bpy.context.scene.frame_set(1)
    assert rig.pose.bones["spine"].rotation_quaternion[0] == pytest.approx(1.0, abs=1e-6)


def test_generate_is_undoable(addon: Any) -> None:
    for op in (addon.operators.AVATARFORGE_OT_generate_body, addon.operators.AVATARFORGE_OT_submit_job):
        assert "UNDO" in op.bl_options
