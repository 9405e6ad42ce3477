"""A RiggedAvatar as a skinned, textured glTF 2.0 binary (.glb).

glTF is Y up, facing +Z; we are Z up, facing -Y: positions, normals and joint
frames go through `core.axes` (the one place frames are converted). glTF has
per-vertex attributes only, so vertices are split where UV seams cut them; the
extra `_AVATARFORGE_VERTEX` attribute (application-specific, per the spec's
underscore rule) gives each glTF vertex its index in the avatar.

Layout: the scene holds the skeleton's root joint node (its joints nested by
parent, local TRS from the rest matrices) and the mesh node that uses the skin.
Texture coordinates are flipped to glTF's top-left origin (v' = 1 - v).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pygltflib as g

from avatarforge.protocol import RiggedAvatar

from .. import __version__
from ..core import rotations as rot
from ..core.axes import frames_z_up_to_y_up, z_up_to_y_up

_ALIGN = 4


class _Blob:
    """The .glb's binary chunk, built one buffer view at a time."""

    def __init__(self, gltf: g.GLTF2) -> None:
        self.gltf = gltf
        self.data = bytearray()

    def view(self, payload: bytes, target: int | None = None) -> int:
        self.data += b"\0" * (-len(self.data) % _ALIGN)
        self.gltf.bufferViews.append(g.BufferView(buffer=0, byteOffset=len(self.data), byteLength=len(payload),
                                                  target=target))
        self.data += payload
        return len(self.gltf.bufferViews) - 1

    def accessor(self, array: np.ndarray, kind: str, component: int, target: int | None = None,
                 with_bounds: bool = False) -> int:
        array = np.ascontiguousarray(array)
        acc = g.Accessor(bufferView=self.view(array.tobytes(), target), componentType=component,
                         count=len(array), type=kind)
        if with_bounds:
            acc.min = array.min(axis=0).tolist()
            acc.max = array.max(axis=0).tolist()
        self.gltf.accessors.append(acc)
        return len(self.gltf.accessors) - 1


def split_seams(faces: np.ndarray, uvs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One glTF vertex per distinct (vertex, UV) corner.

    Returns (source vertex index per new vertex (N,), new faces (F, 3), UV per new vertex (N, 2))."""
    corners_v = faces.reshape(-1).astype(np.int64)
    corners_uv = np.ascontiguousarray(uvs.reshape(-1, 2).astype(np.float32))
    keys = np.column_stack([corners_v, corners_uv.view(np.int32).astype(np.int64)])
    unique, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    return unique[:, 0], inverse.reshape(faces.shape).astype(np.uint32), corners_uv[first]


def _vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted smooth normals on the unsplit mesh (so seams do not shade)."""
    import trimesh

    return np.asarray(trimesh.Trimesh(vertices, faces, process=False).vertex_normals, dtype=np.float32)


def _local_trs(world: np.ndarray, parents: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(translation, quaternion x, y, z, w as glTF orders it) of each joint relative to its parent."""
    out = []
    for j, parent in enumerate(parents):
        local = world[j] if parent < 0 else np.linalg.inv(world[parent]) @ world[j]
        out.append((local[:3, 3], rot.wxyz_to_xyzw(rot.matrix_to_quat(local[:3, :3]))))
    return out


def _world_from_trs(trs: list[tuple[np.ndarray, np.ndarray]], parents: np.ndarray) -> np.ndarray:
    """Joint world matrices exactly as a glTF reader will compose them."""
    world = np.zeros((len(trs), 4, 4))
    for j, ((t, q), parent) in enumerate(zip(trs, parents)):
        local = np.eye(4)
        local[:3, :3] = rot.quat_to_matrix(rot.xyzw_to_wxyz(q))
        local[:3, 3] = t
        world[j] = local if parent < 0 else world[parent] @ local
    return world


def _extras(avatar: RiggedAvatar) -> dict[str, Any]:
    """Where the avatar came from, as JSON (anything not JSON becomes a string)."""
    info = {"body_model": avatar.body_model, "params": avatar.params, "provenance": avatar.provenance}
    return {"avatarforge": json.loads(json.dumps(info, default=str))}


def glb_from_avatar(avatar: RiggedAvatar) -> g.GLTF2:
    """The avatar as a pygltflib document with its binary chunk set."""
    skel = avatar.skeleton
    if len(skel) == 0:
        raise ValueError("the avatar has no joints; a skinned glTF needs at least one")
    gltf = g.GLTF2(asset=g.Asset(version="2.0", generator=f"AvatarForge {__version__}"))
    blob = _Blob(gltf)

    source, faces, uv = split_seams(avatar.faces, avatar.uvs)
    positions = z_up_to_y_up(avatar.vertices[source].astype(np.float32))
    normals = z_up_to_y_up(_vertex_normals(avatar.vertices, avatar.faces)[source])
    texcoords = np.column_stack([uv[:, 0], 1.0 - uv[:, 1]]).astype(np.float32)
    k = avatar.skin_indices.shape[1]
    sets = (k + 3) // 4
    joints = np.zeros((len(avatar.vertices), 4 * sets), np.uint16)
    weights = np.zeros((len(avatar.vertices), 4 * sets), np.float32)
    joints[:, :k] = avatar.skin_indices
    weights[:, :k] = avatar.skin_weights
    joints, weights = joints[source], weights[source]

    attributes = g.Attributes(
        POSITION=blob.accessor(positions, g.VEC3, g.FLOAT, g.ARRAY_BUFFER, with_bounds=True),
        NORMAL=blob.accessor(normals, g.VEC3, g.FLOAT, g.ARRAY_BUFFER),
        TEXCOORD_0=blob.accessor(texcoords, g.VEC2, g.FLOAT, g.ARRAY_BUFFER))
    for s in range(sets):
        setattr(attributes, f"JOINTS_{s}",
                blob.accessor(joints[:, 4 * s:4 * s + 4], g.VEC4, g.UNSIGNED_SHORT, g.ARRAY_BUFFER))
        setattr(attributes, f"WEIGHTS_{s}",
                blob.accessor(weights[:, 4 * s:4 * s + 4], g.VEC4, g.FLOAT, g.ARRAY_BUFFER))
    attributes._AVATARFORGE_VERTEX = blob.accessor(source.astype(np.float32), g.SCALAR, g.FLOAT, g.ARRAY_BUFFER)
    indices = blob.accessor(faces.reshape(-1), g.SCALAR, g.UNSIGNED_INT, g.ELEMENT_ARRAY_BUFFER)

    material = None
    base = next((m for m in avatar.materials if m.role == "base_color"), None)
    if base is not None:
        gltf.images.append(g.Image(bufferView=blob.view(bytes(base.png)), mimeType="image/png", name=base.name))
        gltf.samplers.append(g.Sampler(magFilter=g.LINEAR, minFilter=g.LINEAR_MIPMAP_LINEAR))
        gltf.textures.append(g.Texture(source=0, sampler=0))
        gltf.materials.append(g.Material(
            name=base.name, pbrMetallicRoughness=g.PbrMetallicRoughness(
                baseColorTexture=g.TextureInfo(index=0), metallicFactor=0.0,
                roughnessFactor=float(base.settings.get("roughness", 0.5)))))
        material = 0
    gltf.meshes.append(g.Mesh(name=avatar.name, primitives=[
        g.Primitive(attributes=attributes, indices=indices, material=material, mode=g.TRIANGLES)]))

    # Joints: nodes 0..J-1 in skeleton order, nested by parent.
    trs = _local_trs(frames_z_up_to_y_up(skel.rest_matrices.astype(np.float64)), skel.parents)
    for name, (t, q) in zip(skel.joint_names, trs):
        gltf.nodes.append(g.Node(name=name, translation=t.tolist(), rotation=q.tolist()))
    for j, parent in enumerate(skel.parents):
        if parent >= 0:
            gltf.nodes[parent].children.append(j)
    inverse_bind = np.linalg.inv(_world_from_trs(trs, skel.parents)).astype(np.float32)
    gltf.skins.append(g.Skin(name=f"{avatar.name}_skeleton", joints=list(range(len(skel))), skeleton=0,
                             inverseBindMatrices=blob.accessor(inverse_bind.transpose(0, 2, 1).reshape(-1, 16),
                                                               g.MAT4, g.FLOAT)))
    gltf.nodes.append(g.Node(name=avatar.name, mesh=0, skin=0))
    roots = [j for j, p in enumerate(skel.parents) if p < 0] + [len(gltf.nodes) - 1]
    gltf.scenes.append(g.Scene(name=avatar.name, nodes=roots, extras=_extras(avatar)))
    gltf.scene = 0

    blob.data += b"\0" * (-len(blob.data) % _ALIGN)
    gltf.buffers.append(g.Buffer(byteLength=len(blob.data)))
    gltf.set_binary_blob(bytes(blob.data))
    return gltf


def write_glb(avatar: RiggedAvatar, path: str | Path) -> Path:
    """Write `avatar` as a .glb file at `path` (folders are created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    glb_from_avatar(avatar).save_binary(str(path))
    return path
