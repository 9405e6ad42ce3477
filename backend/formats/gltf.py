"""A RiggedAvatar as a skinned, textured glTF 2.0 binary (.glb); a motion on a
skeleton as an animated armature (.glb / .gltf), with the avatar's mesh when given.

glTF is Y up, facing +Z; we are Z up, facing -Y: positions, normals and joint
frames go through `core.axes` (the one place frames are converted). glTF has
per-vertex attributes only, so vertices are split where UV seams cut them; the
extra `_AVATARFORGE_VERTEX` attribute (application-specific, per the spec's
underscore rule) gives each glTF vertex its index in the avatar.

Layout: the scene holds the skeleton's root joint node (its joints nested by
parent, local TRS from the rest matrices) and the mesh node that uses the skin.
Texture coordinates are flipped to glTF's top-left origin (v' = 1 - v).

Animation: one glTF animation, times i / fps, LINEAR keys on every frame: a
rotation channel per driven joint node and a translation channel on the
root-motion joint (glb_from_animation). It takes protocol types (Skeleton,
RetargetedTracks): making the tracks for a rig is motion/export.py's job.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pygltflib as g

from avatarforge.protocol import ErrorCode, ProtocolError, RetargetedTracks, RiggedAvatar, Skeleton
from avatarforge.protocol.artifacts import FPS_RANGE

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
            acc.min = np.atleast_1d(array.min(axis=0)).tolist()      # a list even for SCALAR accessors
            acc.max = np.atleast_1d(array.max(axis=0)).tolist()
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


def _add_avatar_mesh(gltf: g.GLTF2, blob: _Blob, avatar: RiggedAvatar) -> int:
    """The avatar's skinned, textured mesh (skin 0 must be its skeleton's); returns the mesh index."""
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
        gltf.textures.append(g.Texture(source=len(gltf.images) - 1, sampler=len(gltf.samplers) - 1))
        gltf.materials.append(g.Material(
            name=base.name, pbrMetallicRoughness=g.PbrMetallicRoughness(
                baseColorTexture=g.TextureInfo(index=len(gltf.textures) - 1), metallicFactor=0.0,
                roughnessFactor=float(base.settings.get("roughness", 0.5)))))
        material = len(gltf.materials) - 1
    gltf.meshes.append(g.Mesh(name=avatar.name, primitives=[
        g.Primitive(attributes=attributes, indices=indices, material=material, mode=g.TRIANGLES)]))
    return len(gltf.meshes) - 1


def _add_skeleton(gltf: g.GLTF2, blob: _Blob, skel: Skeleton, name: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """Joint nodes 0..J-1 in skeleton order, nested by parent, at their rest TRS
    (Y up), and skin 0 over them with inverse bind matrices; returns the rest TRS."""
    if len(skel) == 0:
        raise ValueError("the skeleton has no joints; a skinned glTF needs at least one")
    trs = _local_trs(frames_z_up_to_y_up(skel.rest_matrices.astype(np.float64)), skel.parents)
    for joint, (t, q) in zip(skel.joint_names, trs):
        gltf.nodes.append(g.Node(name=joint, translation=t.tolist(), rotation=q.tolist()))
    for j, parent in enumerate(skel.parents):
        if parent >= 0:
            gltf.nodes[parent].children.append(j)
    inverse_bind = np.linalg.inv(_world_from_trs(trs, skel.parents)).astype(np.float32)
    roots = [j for j, p in enumerate(skel.parents) if p < 0]
    gltf.skins.append(g.Skin(name=f"{name}_skeleton", joints=list(range(len(skel))), skeleton=roots[0],
                             inverseBindMatrices=blob.accessor(inverse_bind.transpose(0, 2, 1).reshape(-1, 16),
                                                               g.MAT4, g.FLOAT)))
    return trs


def _finish(gltf: g.GLTF2, blob: _Blob) -> g.GLTF2:
    blob.data += b"\0" * (-len(blob.data) % _ALIGN)
    gltf.buffers.append(g.Buffer(byteLength=len(blob.data)))
    gltf.set_binary_blob(bytes(blob.data))
    return gltf


def glb_from_avatar(avatar: RiggedAvatar) -> g.GLTF2:
    """The avatar as a pygltflib document with its binary chunk set."""
    if len(avatar.skeleton) == 0:
        raise ValueError("the avatar has no joints; a skinned glTF needs at least one")
    gltf = g.GLTF2(asset=g.Asset(version="2.0", generator=f"AvatarForge {__version__}"))
    blob = _Blob(gltf)
    _add_skeleton(gltf, blob, avatar.skeleton, avatar.name)
    mesh = _add_avatar_mesh(gltf, blob, avatar)
    gltf.nodes.append(g.Node(name=avatar.name, mesh=mesh, skin=0))
    roots = [j for j, p in enumerate(avatar.skeleton.parents) if p < 0] + [len(gltf.nodes) - 1]
    gltf.scenes.append(g.Scene(name=avatar.name, nodes=roots, extras=_extras(avatar)))
    gltf.scene = 0
    return _finish(gltf, blob)


# -- a motion on a skeleton: an animated armature -------------------------------------------------------
def _bad(field: str, message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_REQUEST, f"{field}: {message}", field=field)


def _check_tracks(skel: Skeleton, tracks: RetargetedTracks, fps: float) -> list[int]:
    """Each track's joint index in `skel`; BAD_REQUEST when they do not fit."""
    index = {n: i for i, n in enumerate(skel.joint_names)}
    absent = [n for n in tracks.bone_names if n not in index]
    if absent or tracks.root_bone not in index:
        raise _bad("tracks.bone_names", f"bones {', '.join((absent or [tracks.root_bone])[:10])} are not joints of "
                   f"the skeleton ({len(skel)} joints); export the tracks on the rig they were retargeted to")
    n = len(tracks.rotations)
    if n == 0 or tracks.rotations.shape != (n, len(tracks.bone_names), 4) or tracks.root_locations.shape != (n, 3):
        raise _bad("tracks.rotations", f"must be (T, {len(tracks.bone_names)}, 4) with T >= 1 and root_locations "
                   f"(T, 3); got {tracks.rotations.shape} and {tracks.root_locations.shape}")
    if not (np.all(np.isfinite(tracks.rotations)) and np.all(np.isfinite(tracks.root_locations))):
        raise _bad("tracks", "rotations and root_locations must be finite")
    if not (isinstance(fps, (int, float)) and FPS_RANGE[0] <= fps <= FPS_RANGE[1]):
        raise _bad("fps", f"must be in [{FPS_RANGE[0]:g}, {FPS_RANGE[1]:g}], got {fps!r}")
    return [index[n] for n in tracks.bone_names]


def _add_animation(gltf: g.GLTF2, blob: _Blob, trs: list[tuple[np.ndarray, np.ndarray]], skel: Skeleton,
                   tracks: RetargetedTracks, fps: float, name: str) -> None:
    """Rotation channels on every driven joint and a translation channel on the
    root-motion joint, one LINEAR key per frame. A pose bone's quaternion Q and
    location l are relative to its rest frame (Blender's pose bone), so the
    node's local transform is rest_local · Translation(l) · Rotation(Q):
    rotation rest_q·Q, translation rest_t + rest_R·l."""
    joints = _check_tracks(skel, tracks, fps)
    n = len(tracks.rotations)
    times = (np.arange(n, dtype=np.float64) / fps).astype(np.float32)
    time_acc = blob.accessor(times, g.SCALAR, g.FLOAT, with_bounds=True)
    # Keep a node's sampled quaternions in one hemisphere: glTF interpolates the stored values.
    pose = rot.quat_continuous(np.asarray(tracks.rotations, np.float64), axis=0)
    rest_q = rot.xyzw_to_wxyz(np.array([trs[j][1] for j in joints]))                 # (K, 4) w, x, y, z
    local_q = rot.wxyz_to_xyzw(rot.quat_multiply(rest_q[None], pose)).astype(np.float32)   # (T, K, 4)
    samplers: list[g.AnimationSampler] = []
    channels: list[g.AnimationChannel] = []
    for k, j in enumerate(joints):
        out = blob.accessor(local_q[:, k], g.VEC4, g.FLOAT)
        samplers.append(g.AnimationSampler(input=time_acc, output=out, interpolation=g.ANIM_LINEAR))
        channels.append(g.AnimationChannel(sampler=len(samplers) - 1,
                                           target=g.AnimationChannelTarget(node=j, path=g.ROTATION)))
    root = skel.joint_names.index(tracks.root_bone)
    rest_t, rest_xyzw = trs[root]
    rest_r = rot.quat_to_matrix(rot.xyzw_to_wxyz(rest_xyzw))
    translation = (rest_t + np.asarray(tracks.root_locations, np.float64) @ rest_r.T).astype(np.float32)
    samplers.append(g.AnimationSampler(input=time_acc, output=blob.accessor(translation, g.VEC3, g.FLOAT),
                                       interpolation=g.ANIM_LINEAR))
    channels.append(g.AnimationChannel(sampler=len(samplers) - 1,
                                       target=g.AnimationChannelTarget(node=root, path=g.TRANSLATION)))
    gltf.animations.append(g.Animation(name=name, samplers=samplers, channels=channels,
                                       extras={"avatarforge": {"fps": float(fps), "frames": n, "rig": tracks.rig,
                                                               "root_bone": tracks.root_bone}}))


def glb_from_animation(skeleton: Skeleton, tracks: RetargetedTracks, fps: float, name: str = "motion",
                       avatar: RiggedAvatar | None = None, extras: dict[str, Any] | None = None) -> g.GLTF2:
    """An animated armature: joint nodes of `skeleton` (Z up, converted to
    glTF's Y up) with a skin and inverse bind matrices, and one animation
    sampled at `fps` from `tracks` (pose-bone quaternions and the root bone's
    location, as RetargetedTracks means them). With `avatar` (whose skeleton
    must be `skeleton`: the avatar's rig), its skinned mesh is included and the
    animation moves it."""
    if avatar is not None:
        if list(avatar.skeleton.joint_names) != list(skeleton.joint_names) or \
                not np.array_equal(avatar.skeleton.parents, skeleton.parents):
            raise _bad("avatar", "the avatar's skeleton is not the rig the motion is on; retarget the motion onto "
                       "the avatar's skeleton (its bone names, parents and rest matrices) first")
        skeleton = avatar.skeleton
    gltf = g.GLTF2(asset=g.Asset(version="2.0", generator=f"AvatarForge {__version__}"))
    blob = _Blob(gltf)
    trs = _add_skeleton(gltf, blob, skeleton, name)
    roots = [j for j, p in enumerate(skeleton.parents) if p < 0]
    if avatar is not None:
        gltf.nodes.append(g.Node(name=avatar.name, mesh=_add_avatar_mesh(gltf, blob, avatar), skin=0))
        roots.append(len(gltf.nodes) - 1)
    _add_animation(gltf, blob, trs, skeleton, tracks, fps, name)
    info = json.loads(json.dumps({"avatarforge": {"motion": name, "fps": float(fps), **(extras or {})}},
                                 default=str))
    gltf.scenes.append(g.Scene(name=name, nodes=roots, extras=info))
    gltf.scene = 0
    return _finish(gltf, blob)


def write_animation_glb(skeleton: Skeleton, tracks: RetargetedTracks, fps: float, path: str | Path,
                        name: str = "motion", avatar: RiggedAvatar | None = None,
                        extras: dict[str, Any] | None = None) -> Path:
    """Write `glb_from_animation(...)` at `path`: binary .glb, or .gltf (JSON with the
    buffer embedded as a data URI: one self-contained file). Returns the path."""
    path = Path(path)
    if path.suffix.lower() not in (".glb", ".gltf"):
        raise _bad("path", f"a glTF file ends in .glb or .gltf, got {path.name!r}")
    doc = glb_from_animation(skeleton, tracks, fps, name, avatar, extras)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() == ".gltf":
            doc.convert_buffers(g.BufferFormat.DATAURI)
            doc.save_json(str(path))
        else:
            doc.save_binary(str(path))
    except OSError as exc:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"path: cannot write {str(path)!r}: {exc.strerror or exc}; "
                            "choose a folder you can write to", field="path") from None
    return path


def write_glb(avatar: RiggedAvatar, path: str | Path) -> Path:
    """Write `avatar` as a .glb file at `path` (folders are created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    glb_from_avatar(avatar).save_binary(str(path))
    return path
