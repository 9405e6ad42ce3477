"""Helpers every artifact importer shares: collections, meshes, armatures,
vertex groups, packed images, materials and provenance stamps.

Everything here writes in bulk (`foreach_set` from numpy arrays); no helper
loops over vertices in Python. Conventions follow DESIGN §6: metres, Z up, and
each bone's local frame equals the body model's joint frame.
"""
from __future__ import annotations

import json
import zlib
from typing import Any, Iterable, Sequence

import bmesh
import bpy
import numpy as np
from mathutils import Matrix

from .. import compat

PROP_PREFIX = "avatarforge_"
MIN_BONE_LENGTH = 0.01      # metres; Blender deletes zero-length bones when leaving edit mode
DEFAULT_LEAF_FRACTION = 0.5  # a leaf bone is this fraction of its parent's length


class ImportFailed(Exception):
    """An artifact could not be built in the scene; the message says why and what to do."""


# -- scene structure ----------------------------------------------------------
def new_collection(name: str, parent: bpy.types.Collection) -> bpy.types.Collection:
    """A fresh collection under `parent` (Blender suffixes the name if it is taken)."""
    coll = bpy.data.collections.new(name)
    parent.children.link(coll)
    return coll


def stamp(idblock: bpy.types.ID, kind: str, values: dict[str, Any]) -> None:
    """Record provenance as custom properties: scalars as they are, anything
    else as JSON text (ID properties cannot hold arbitrary nested data)."""
    idblock[PROP_PREFIX + "kind"] = kind
    for key, value in values.items():
        if isinstance(value, (str, int, float, bool)):
            idblock[PROP_PREFIX + key] = value
        else:
            idblock[PROP_PREFIX + key] = json.dumps(value, sort_keys=True, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return str(value)


def read_stamp(idblock: bpy.types.ID, key: str) -> Any:
    """A value written by `stamp`, JSON decoded where it was encoded."""
    value = idblock.get(PROP_PREFIX + key)
    if isinstance(value, str) and value[:1] in "[{":
        return json.loads(value)
    return value


# -- meshes -------------------------------------------------------------------
def point_mesh(name: str, vertices: np.ndarray) -> bpy.types.Mesh:
    """A mesh of vertices only (faces come later, see add_triangles)."""
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(vertices))
    compat.set_positions(mesh, np.ascontiguousarray(vertices, np.float32).ravel())
    return mesh


def add_triangles(mesh: bpy.types.Mesh, faces: np.ndarray, corner_uvs: np.ndarray | None = None,
                  uv_name: str = "UVMap") -> None:
    """Add (F,3) triangles and optional (F,3,2) per-corner UVs to a point mesh,
    in bulk (loops are in face-corner order, so corner UVs map one to one)."""
    n_faces = len(faces)
    mesh.loops.add(n_faces * 3)
    compat.set_corner_verts(mesh, np.ascontiguousarray(faces, np.int32).ravel())
    mesh.polygons.add(n_faces)
    mesh.polygons.foreach_set("loop_start", np.arange(0, 3 * n_faces, 3, dtype=np.int32))
    mesh.update(calc_edges=True)
    if corner_uvs is not None:
        compat.add_corner_uvs(mesh, uv_name, np.ascontiguousarray(corner_uvs, np.float32).ravel())
    compat.shade_smooth(mesh)


def build_mesh(name: str, vertices: np.ndarray, faces: np.ndarray,
               corner_uvs: np.ndarray | None = None, uv_name: str = "UVMap") -> bpy.types.Mesh:
    """A triangle mesh from (V,3) vertices, (F,3) faces and optional (F,3,2) UVs."""
    mesh = point_mesh(name, vertices)
    add_triangles(mesh, faces, corner_uvs, uv_name)
    return mesh


def write_deform_weights(mesh: bpy.types.Mesh, indices: np.ndarray, weights: np.ndarray) -> None:
    """Vertex v gets weights[v, i] in vertex group indices[v, i] (zeros left out,
    so the Armature modifier skips them).

    Blender has no bulk setter for group weights. Measured on Anny (13,718
    vertices, 30k weights): VertexGroup.add grouped by (group, weight) 24 ms,
    one add per weight 30 ms, attribute_convert per group 115 ms; the fastest
    is writing the BMesh deform layer of the mesh while it has no faces yet
    (from_mesh/to_mesh are then nearly free): 7 ms. Call this on a point mesh,
    before add_triangles; the object's vertex groups must be created in the
    order of the indices (group i = index i).
    """
    if len(mesh.polygons):
        raise ValueError("write_deform_weights needs a mesh without faces (call it before add_triangles)")
    keep = weights > 0.0
    vert = np.nonzero(keep)[0].tolist()
    joint = indices[keep].tolist()
    weight = weights[keep].astype(np.float32).tolist()
    bm = bmesh.new()
    try:
        bm.from_mesh(mesh)
        layer = bm.verts.layers.deform.verify()
        dverts = [v[layer] for v in bm.verts]
        for v, j, w in zip(vert, joint, weight):
            dverts[v][j] = w
        bm.to_mesh(mesh)
    finally:
        bm.free()


# -- armatures ----------------------------------------------------------------
def bone_lengths(parents: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """A length per joint: the distance to its farthest child's head (so a
    chain's tails reach the next joint), else a fraction of the parent's
    length for leaves, never below MIN_BONE_LENGTH."""
    heads = rest[:, :3, 3].astype(np.float64)
    lengths = np.zeros(len(parents))
    for child, parent in enumerate(parents.tolist()):
        if parent >= 0:
            lengths[parent] = max(lengths[parent], float(np.linalg.norm(heads[child] - heads[parent])))
    for joint, parent in enumerate(parents.tolist()):   # parents precede children
        if lengths[joint] < MIN_BONE_LENGTH:
            lengths[joint] = lengths[parent] * DEFAULT_LEAF_FRACTION if parent >= 0 else 0.1
    return np.maximum(lengths, MIN_BONE_LENGTH)


def check_rest_frames(names: Sequence[str], rest: np.ndarray) -> None:
    """Bones can only take right-handed orthonormal frames."""
    rot = rest[:, :3, :3].astype(np.float64)
    gram_error = np.abs(np.einsum("jik,jil->jkl", rot, rot) - np.eye(3)).max(axis=(1, 2))
    det = np.linalg.det(rot)
    bad = np.flatnonzero((gram_error > 1e-3) | (det < 0))
    if len(bad):
        j = int(bad[0])
        raise ImportFailed(f"joint '{names[j]}' has a rest matrix that is not a rotation "
                           f"(det {det[j]:.3f}); the backend must send right-handed orthonormal frames")


def build_armature(name: str, joint_names: Sequence[str], parents: np.ndarray, rest: np.ndarray,
                   collection: bpy.types.Collection, view_layer: bpy.types.ViewLayer) -> bpy.types.Object:
    """An armature object whose bone i has rest_matrices[i] as its local frame
    (armature space), so model rotations go into rotation_quaternion verbatim."""
    check_rest_frames(joint_names, rest)
    arm = bpy.data.armatures.new(name)
    arm.display_type = "OCTAHEDRAL"
    obj = bpy.data.objects.new(name, arm)
    collection.objects.link(obj)
    lengths = bone_lengths(parents, rest)
    with edit_mode(obj, view_layer):
        bones = arm.edit_bones
        created = []
        for joint, joint_name in enumerate(joint_names):
            bone = bones.new(joint_name)
            # Head at the origin, tail along +Y: setting .matrix then places
            # the bone and keeps this length, with Y the joint frame's Y.
            bone.head = (0.0, 0.0, 0.0)
            bone.tail = (0.0, float(lengths[joint]), 0.0)
            bone.matrix = Matrix(rest[joint].tolist())  # rows; a bare nested list would be read as columns
            parent = int(parents[joint])
            if parent >= 0:
                bone.parent = created[parent]
            created.append(bone)
    return obj


def check_object_mode(view_layer: bpy.types.ViewLayer) -> None:
    """Building an armature needs Edit mode on it, which Blender refuses while
    the user edits something else: say so instead of switching their mode."""
    active = view_layer.objects.active
    if active is not None and active.mode != "OBJECT":
        raise ImportFailed(f"'{active.name}' is in {active.mode.replace('_', ' ').lower()} mode; "
                           "switch to Object mode and import again")


class edit_mode:
    """Context manager: `obj` in edit mode, back to object mode after, with the
    previous active object restored. Works in background mode and timers
    (no window needed): the operators get an explicit context override."""

    def __init__(self, obj: bpy.types.Object, view_layer: bpy.types.ViewLayer) -> None:
        self.obj, self.view_layer = obj, view_layer
        self.previous: bpy.types.Object | None = None

    def _mode_set(self, mode: str) -> None:
        with bpy.context.temp_override(view_layer=self.view_layer, active_object=self.obj, object=self.obj,
                                       selected_objects=[self.obj], selected_editable_objects=[self.obj]):
            bpy.ops.object.mode_set(mode=mode)

    def __enter__(self) -> "edit_mode":
        check_object_mode(self.view_layer)
        self.previous = self.view_layer.objects.active
        self.view_layer.objects.active = self.obj
        self._mode_set("EDIT")
        return self

    def __exit__(self, *exc: Any) -> None:
        self._mode_set("OBJECT")
        self.view_layer.objects.active = self.previous


def add_armature_modifier(mesh_obj: bpy.types.Object, rig: bpy.types.Object) -> bpy.types.Modifier:
    mesh_obj.parent = rig
    mod = mesh_obj.modifiers.new("Armature", "ARMATURE")
    mod.object = rig
    mod.use_vertex_groups = True
    mod.use_deform_preserve_volume = False
    return mod


# -- materials ----------------------------------------------------------------
# Which Principled BSDF input each texture role drives, and whether its pixels
# are colour (sRGB) or data.
ROLE_INPUTS: dict[str, tuple[str, bool]] = {
    "base_color": ("Base Color", True),
    "roughness": ("Roughness", False),
    "metallic": ("Metallic", False),
    "emission": ("Emission Color", True),
    "normal": ("Normal", False),
}
# Scalar settings the backend may send, by Principled BSDF input.
SETTING_INPUTS = {"roughness": "Roughness", "metallic": "Metallic", "ior": "IOR",
                  "subsurface_weight": "Subsurface Weight", "specular_ior_level": "Specular IOR Level",
                  "emission_strength": "Emission Strength", "coat_weight": "Coat Weight",
                  "sheen_weight": "Sheen Weight",
                  # the names the style presets use (backend/text/styles.py)
                  "specular": "Specular IOR Level", "subsurface": "Subsurface Weight", "coat": "Coat Weight"}


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_png(name: str, png: bytes) -> None:
    """Refuse PNG bytes Blender could not decode: a bad signature, a truncated
    chunk or a chunk whose CRC does not match. Cheap (a CRC pass over the
    bytes) and it matters: Blender 4.2 crashes rendering an undecodable
    packed image."""
    def bad(why: str) -> ImportFailed:
        return ImportFailed(f"texture '{name}' is not a valid PNG ({why}); the backend sent corrupt image data")

    if not png.startswith(PNG_SIGNATURE):
        raise bad("no PNG signature")
    view = memoryview(png)
    pos, tags = len(PNG_SIGNATURE), []
    while pos < len(png):
        if pos + 12 > len(png):
            raise bad("truncated chunk header")
        length = int.from_bytes(view[pos:pos + 4], "big")
        end = pos + 8 + length
        if end + 4 > len(png):
            raise bad(f"chunk {bytes(view[pos + 4:pos + 8])!r} runs past the end")
        if zlib.crc32(view[pos + 4:end]) != int.from_bytes(view[end:end + 4], "big"):
            raise bad(f"chunk {bytes(view[pos + 4:pos + 8]).decode('latin-1')} fails its CRC")
        tags.append(bytes(view[pos + 4:pos + 8]))
        pos = end + 4
    if not tags or tags[0] != b"IHDR" or tags[-1] != b"IEND" or b"IDAT" not in tags:
        raise bad("chunks missing or out of order")


def packed_image(name: str, png: bytes, colour: bool) -> bpy.types.Image:
    """An image whose PNG bytes live inside the .blend (packed)."""
    image = bpy.data.images.new(name, 1, 1)
    compat.pack_png(image, png)
    image.filepath_raw = f"//textures/{bpy.path.clean_name(name)}.png"
    image.colorspace_settings.name = "sRGB" if colour else "Non-Color"
    return image


def principled_material(name: str, textures: Iterable[tuple[str, str, bytes]],
                        settings: dict[str, Any]) -> bpy.types.Material:
    """A Principled BSDF material; `textures` are (role, image name, PNG bytes)."""
    mat = bpy.data.materials.new(name)
    tree = compat.ensure_material_nodes(mat)
    bsdf = next(n for n in tree.nodes if n.bl_idname == "ShaderNodeBsdfPrincipled")
    for key, value in settings.items():
        socket = bsdf.inputs.get(SETTING_INPUTS.get(key, ""))
        if socket is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
            socket.default_value = float(value)
    for row, (role, image_name, png) in enumerate(textures):
        if role not in ROLE_INPUTS:
            continue
        input_name, colour = ROLE_INPUTS[role]
        node = tree.nodes.new("ShaderNodeTexImage")
        node.image = packed_image(image_name, png, colour)
        node.label = role
        node.location = (bsdf.location.x - 500, bsdf.location.y - 300 * row)
        if role == "normal":
            normal_map = tree.nodes.new("ShaderNodeNormalMap")
            normal_map.location = (bsdf.location.x - 200, bsdf.location.y - 300 * row)
            tree.links.new(node.outputs["Color"], normal_map.inputs["Color"])
            tree.links.new(normal_map.outputs["Normal"], bsdf.inputs["Normal"])
        else:
            tree.links.new(node.outputs["Color"], bsdf.inputs[input_name])
            if role == "emission":
                bsdf.inputs["Emission Strength"].default_value = float(settings.get("emission_strength", 1.0))
    return mat


# -- style presets --------------------------------------------------------------
# The backend records a style preset in Material.settings (issue 4; the keys are
# documented in backend/text/styles.py): {"style": "toon"|"anime"|"clay"|"metal"|
# "realistic"|..., "shading": "principled"|"toon", "roughness", "metallic",
# "specular", "subsurface", "coat", "outline", "outline_width", "toon_steps",
# "saturation"}. Principled values go straight into the BSDF (SETTING_INPUTS);
# the rest builds nodes (and an outline shell) below.
SHADINGS = ("principled", "toon")
TOON_SHADE = 0.55             # brightness of the darkest band
TOON_FIRST_BAND = 0.35        # Layer Weight "Facing" where the first shade band starts
TOON_LAST_BAND = 0.75         # ... and where the darkest one starts
TOON_FLAT = {"toon": 0.4, "anime": 0.6}   # emission share: how flat (unlit) the colour reads
DEFAULT_TOON_STEPS = 3
DEFAULT_OUTLINE_WIDTH = 0.003  # metres
STYLE_NODE = "AvatarForge {}"


def shading_of(settings: dict[str, Any]) -> str | None:
    """The shading a material's settings ask for (None: no style preset)."""
    shading = settings.get("shading")
    if shading is None and settings.get("style") in TOON_FLAT:
        shading = "toon"
    if shading is not None and shading not in SHADINGS:
        raise ImportFailed(f"material shading '{shading}' is unknown to this add-on (it knows "
                           f"{', '.join(SHADINGS)}); update the add-on to the backend's release")
    return shading


def _number(settings: dict[str, Any], key: str, default: float) -> float:
    value = settings.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _socket(sockets: Any, identifier: str) -> Any:
    return next(s for s in sockets if s.identifier == identifier)


def _style_node(tree: bpy.types.NodeTree, kind: str, label: str, at: tuple[float, float]) -> Any:
    node = tree.nodes.new(kind)
    node.name = node.label = STYLE_NODE.format(label)
    node.location = at
    return node


def _principled(tree: bpy.types.NodeTree) -> Any:
    return next(n for n in tree.nodes if n.bl_idname == "ShaderNodeBsdfPrincipled")


def insert_saturation(mat: bpy.types.Material, saturation: float) -> None:
    """A Hue/Saturation node between the base colour (texture) and the BSDF."""
    tree = compat.ensure_material_nodes(mat)
    bsdf = _principled(tree)
    base = bsdf.inputs["Base Color"]
    node = _style_node(tree, "ShaderNodeHueSaturation", "Saturation", (bsdf.location.x - 250, bsdf.location.y - 450))
    node.inputs["Saturation"].default_value = saturation
    if base.links:
        tree.links.new(base.links[0].from_socket, node.inputs["Color"])
    else:
        node.inputs["Color"].default_value = base.default_value
    tree.links.new(node.outputs["Color"], base)


def build_toon_nodes(mat: bpy.types.Material, settings: dict[str, Any]) -> None:
    """NPR shading that renders the same way in EEVEE and Cycles.

    EEVEE's usual cel set-up (Diffuse -> Shader to RGB -> ColorRamp) renders
    black in Cycles, and Toon BSDF is only approximated in EEVEE, so the bands
    come from the view instead of the lights: Layer Weight "Facing" -> a
    constant ColorRamp of `toon_steps` bands multiplies the base colour (the
    texture stays the source); the banded colour feeds the Principled BSDF (so
    lights, roughness and metallic still act) and an Emission shader, mixed by
    how flat the style is (anime flatter than toon). Every node here exists
    and renders in both engines."""
    tree = compat.ensure_material_nodes(mat)
    links = tree.links
    bsdf = _principled(tree)
    output = next(n for n in tree.nodes if n.bl_idname == "ShaderNodeOutputMaterial")
    x, y = bsdf.location.x, bsdf.location.y

    facing = _style_node(tree, "ShaderNodeLayerWeight", "Facing", (x - 700, y + 350))
    facing.inputs["Blend"].default_value = 0.5
    ramp = _style_node(tree, "ShaderNodeValToRGB", "Toon Ramp", (x - 500, y + 350))
    ramp.color_ramp.interpolation = "CONSTANT"
    steps = max(2, int(_number(settings, "toon_steps", DEFAULT_TOON_STEPS) or DEFAULT_TOON_STEPS))
    stops = ramp.color_ramp.elements
    while len(stops) < steps:
        stops.new(1.0)
    for k, stop in enumerate(stops):
        shade = 1.0 - (1.0 - TOON_SHADE) * k / (steps - 1)
        span = (TOON_LAST_BAND - TOON_FIRST_BAND) * (k - 1) / max(steps - 2, 1)
        stop.position = 0.0 if k == 0 else TOON_FIRST_BAND + span
        stop.color = (shade, shade, shade, 1.0)
    links.new(facing.outputs["Facing"], ramp.inputs["Fac"])

    banded = _style_node(tree, "ShaderNodeMix", "Banded Colour", (x - 220, y + 250))
    banded.data_type = "RGBA"
    banded.blend_type = "MULTIPLY"
    _socket(banded.inputs, "Factor_Float").default_value = 1.0
    base = bsdf.inputs["Base Color"]
    if base.links:   # the texture keeps driving the colour, through the bands
        links.new(base.links[0].from_socket, _socket(banded.inputs, "A_Color"))
    else:
        _socket(banded.inputs, "A_Color").default_value = base.default_value
    links.new(ramp.outputs["Color"], _socket(banded.inputs, "B_Color"))
    links.new(_socket(banded.outputs, "Result_Color"), base)

    emission = _style_node(tree, "ShaderNodeEmission", "Flat Colour", (x, y - 700))
    links.new(_socket(banded.outputs, "Result_Color"), emission.inputs["Color"])
    mix = _style_node(tree, "ShaderNodeMixShader", "Toon Mix", (x + 320, y))
    mix.inputs["Fac"].default_value = _number(settings, "flat", TOON_FLAT.get(settings.get("style"), 0.4))
    links.new(bsdf.outputs["BSDF"], mix.inputs[1])
    links.new(emission.outputs["Emission"], mix.inputs[2])
    links.new(mix.outputs["Shader"], output.inputs["Surface"])
    output.location = (x + 540, y)


def outline_material(name: str) -> bpy.types.Material:
    """Black where the inverted hull shows its outer side, see-through where
    it faces the camera: the Geometry node's Backfacing picks, which both
    engines honour (Cycles ignores backface culling, so the flag alone would not do)."""
    mat = bpy.data.materials.new(name)
    tree = compat.ensure_material_nodes(mat)
    for node in [n for n in tree.nodes if n.bl_idname != "ShaderNodeOutputMaterial"]:
        tree.nodes.remove(node)
    output = next(n for n in tree.nodes if n.bl_idname == "ShaderNodeOutputMaterial")
    geometry = _style_node(tree, "ShaderNodeNewGeometry", "Geometry", (-600, 0))
    black = _style_node(tree, "ShaderNodeEmission", "Outline Colour", (-350, 100))
    black.inputs["Color"].default_value = (0.0, 0.0, 0.0, 1.0)
    clear = _style_node(tree, "ShaderNodeBsdfTransparent", "See Through", (-350, -100))
    mix = _style_node(tree, "ShaderNodeMixShader", "Outline Mix", (-120, 0))
    tree.links.new(geometry.outputs["Backfacing"], mix.inputs["Fac"])
    tree.links.new(black.outputs["Emission"], mix.inputs[1])
    tree.links.new(clear.outputs["BSDF"], mix.inputs[2])
    tree.links.new(mix.outputs["Shader"], output.inputs["Surface"])
    mat.use_backface_culling = True
    return mat


def add_outline(mesh_obj: bpy.types.Object, width: float) -> bpy.types.Modifier:
    """An inverted-hull outline: a Solidify shell `width` metres outside the
    (deformed) body with flipped normals and the outline material."""
    mesh_obj.data.materials.append(outline_material(f"{mesh_obj.name}_outline"))
    mod = mesh_obj.modifiers.new("AvatarForge Outline", "SOLIDIFY")
    mod.thickness = width
    mod.offset = 1.0
    mod.use_flip_normals = True
    mod.use_rim = False
    mod.material_offset = len(mesh_obj.data.materials) - 1
    return mod


def apply_style(mat: bpy.types.Material, settings: dict[str, Any], mesh_obj: bpy.types.Object | None = None) -> None:
    """The style preset in `settings` on `mat` (principled values are already
    set by principled_material) and, for an outline, on `mesh_obj`; the preset
    is recorded on the material as custom properties."""
    shading = shading_of(settings)
    if shading is None and "style" not in settings:
        return
    saturation = _number(settings, "saturation", 1.0)
    if abs(saturation - 1.0) > 1e-6:
        insert_saturation(mat, saturation)
    if shading == "toon":
        build_toon_nodes(mat, settings)
    if settings.get("outline") is True and mesh_obj is not None:
        add_outline(mesh_obj, _number(settings, "outline_width", 0.0) or DEFAULT_OUTLINE_WIDTH)
    mat[PROP_PREFIX + "style"] = str(settings.get("style") or "")
    mat[PROP_PREFIX + "shading"] = shading or "principled"
    for key, value in settings.items():
        if isinstance(value, (bool, int, float)) and key not in ("style", "shading"):
            mat[PROP_PREFIX + "style_" + key] = value
    mat[PROP_PREFIX + "style_settings"] = json.dumps(settings, sort_keys=True, default=_json_default)
