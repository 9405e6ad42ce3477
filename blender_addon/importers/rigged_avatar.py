"""Builds a RiggedAvatar (protocol/artifacts.py) in the scene.

Result: one collection per avatar holding an armature (bone local frames =
the model's joint frames) and a skinned mesh child (UVs, one vertex group per
joint, an Armature modifier, a Principled BSDF material with packed textures).
Both objects carry the body model, its params and the provenance as custom
properties. A style preset in the material settings (toon, anime, clay,
metal, realistic) is applied to the material (common.apply_style).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import bpy

from ..protocol import RiggedAvatar
from . import common

KIND = RiggedAvatar.KIND


@dataclass
class ImportedAvatar:
    rig: bpy.types.Object
    mesh: bpy.types.Object
    collection: bpy.types.Collection
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def objects(self) -> tuple[bpy.types.Object, bpy.types.Object]:
        return self.rig, self.mesh


def avatar_stamp(avatar: RiggedAvatar, job_id: str | None) -> dict[str, Any]:
    """The custom properties recorded on what we create."""
    values: dict[str, Any] = {"body_model": avatar.body_model, "params": avatar.params,
                              "provenance": avatar.provenance, "artifact": avatar.name}
    if job_id:
        values["job_id"] = job_id
    return values


def import_rigged_avatar(avatar: RiggedAvatar, context: bpy.types.Context | None = None,
                         name: str | None = None, job_id: str | None = None,
                         parent_collection: bpy.types.Collection | None = None) -> ImportedAvatar:
    """Build `avatar` in the scene of `context` (default: the current one)."""
    context = context or bpy.context
    scene = context.scene
    view_layer = context.view_layer
    name = name or avatar.name or "Avatar"
    timings: dict[str, float] = {}
    t = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal t
        now = time.perf_counter()
        timings[stage] = now - t
        t = now

    # Check everything that can be refused before creating anything, so a
    # refused avatar leaves no half-built objects behind.
    skel = avatar.skeleton
    common.check_object_mode(view_layer)
    common.check_rest_frames(skel.joint_names, skel.rest_matrices)
    for m in avatar.materials:
        common.check_png(f"{m.name} ({m.role})", m.png)
        common.shading_of(m.settings)
    lap("checks")

    collection = common.new_collection(name, parent_collection or scene.collection)
    rig = common.build_armature(f"{name}_rig", skel.joint_names, skel.parents, skel.rest_matrices,
                                collection, view_layer)
    lap("armature")

    # Weights go in while the mesh has no faces yet: the fastest bulk path (common.write_deform_weights).
    mesh = common.point_mesh(f"{name}_body", avatar.vertices)
    common.write_deform_weights(mesh, avatar.skin_indices, avatar.skin_weights)
    lap("skin")
    common.add_triangles(mesh, avatar.faces, avatar.uvs)
    mesh_obj = bpy.data.objects.new(f"{name}_body", mesh)
    for joint_name in skel.joint_names:   # group i is joint i, as the deform weights index them
        mesh_obj.vertex_groups.new(name=joint_name)
    collection.objects.link(mesh_obj)
    common.add_armature_modifier(mesh_obj, rig)
    lap("mesh")

    if avatar.materials:
        settings: dict[str, Any] = {}
        for m in avatar.materials:
            settings.update(m.settings)
        material = common.principled_material(
            f"{name}_skin", [(m.role, f"{name}_{m.name}_{m.role}", m.png) for m in avatar.materials], settings)
        mesh.materials.append(material)
        common.apply_style(material, settings, mesh_obj)
        common.stamp(material, KIND, {"body_model": avatar.body_model})
    lap("material")

    values = avatar_stamp(avatar, job_id)
    for idblock in (rig, mesh_obj, collection):
        common.stamp(idblock, KIND, values)
    return ImportedAvatar(rig, mesh_obj, collection, timings)


def import_artifact(artifact: Any, context: bpy.types.Context | None = None,
                    target: bpy.types.Object | None = None, **kwargs: Any) -> ImportedAvatar:
    """The importer registry's entry point (see importers/__init__.py). An
    avatar is always built new: `target` (the rig a motion goes onto) does not apply."""
    if not isinstance(artifact, RiggedAvatar):
        raise common.ImportFailed(f"expected a RiggedAvatar, got {type(artifact).__name__}")
    return import_rigged_avatar(artifact, context, **kwargs)

