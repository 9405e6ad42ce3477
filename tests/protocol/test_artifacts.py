"""Artifacts are validated on arrival so an importer can trust them."""
from __future__ import annotations

import copy
import struct
import zlib

import numpy as np
import pytest

from avatarforge.protocol import (
    ErrorCode, Material, ProtocolError, RiggedAvatar, Skeleton, artifact_from_wire, decode, encode, make, validate)


def png(width: int = 1, height: int = 1) -> bytes:
    """A real RGB PNG (its signature is what the artifact checks)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    noise = np.random.default_rng(width).integers(0, 256, (height, 3 * width), np.uint8)   # does not compress
    rows = b"".join(b"\x00" + row.tobytes() for row in noise)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def avatar(extra_vertices: int = 0, texture: bytes | None = None) -> RiggedAvatar:
    """A tetrahedron on a three-joint chain, optionally padded to be large."""
    verts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
    if extra_vertices:
        verts = np.concatenate([verts, np.random.default_rng(0).random((extra_vertices, 3), dtype=np.float32)])
    n = len(verts)
    faces = np.array([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]], np.int32)
    uvs = np.random.default_rng(1).random((4, 3, 2), dtype=np.float32)
    rest = np.repeat(np.eye(4, dtype=np.float32)[None], 3, axis=0)
    rest[1:, 2, 3] = [0.5, 1.0]
    idx = np.stack([np.zeros(n, np.int32), np.full(n, 2, np.int32)], axis=1)
    w = np.tile(np.array([0.25, 0.75], np.float32), (n, 1))
    return RiggedAvatar(
        name="tetra", vertices=verts, faces=faces, uvs=uvs,
        skeleton=Skeleton(["root", "spine", "head"], np.array([-1, 0, 1], np.int32), rest),
        skin_indices=idx, skin_weights=w,
        materials=[Material("skin", "base_color", texture or png(), {"roughness": 0.5}),
                   Material("skin_n", "normal", png(2, 2))],
        body_model="anny", params={"height": 1.7, "betas": [0.1, 0.2]}, provenance={"seed": 3, "model": "anny-0.6"})


def assert_same_avatar(back: RiggedAvatar, want: RiggedAvatar) -> None:
    for name in ("vertices", "faces", "uvs", "skin_indices", "skin_weights"):
        got, ref = getattr(back, name), getattr(want, name)
        assert got.dtype == ref.dtype
        np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(back.skeleton.rest_matrices, want.skeleton.rest_matrices)
    np.testing.assert_array_equal(back.skeleton.parents, want.skeleton.parents)
    assert back.skeleton.joint_names == want.skeleton.joint_names
    assert back.materials == want.materials
    assert (back.name, back.body_model, back.params, back.provenance) == \
        (want.name, want.body_model, want.params, want.provenance)


@pytest.mark.parametrize("extra_vertices, texture", [(0, None), (50_000, png(200, 200))],
                         ids=["small, all inline", "large, arrays and texture as frames"])
def test_round_trip_through_a_result_message(extra_vertices, texture):
    want = avatar(extra_vertices, texture)
    frames = encode(make("result", job_id="j", artifacts=[want.to_wire()]))
    assert len(frames) == (1 if not extra_vertices else 1 + 4)   # vertices, indices, weights, texture
    msg = validate(decode(frames))
    back = artifact_from_wire(msg["artifacts"][0])
    assert isinstance(back, RiggedAvatar)
    assert_same_avatar(back, want)


def test_plain_lists_are_accepted_as_arrays():
    # A peer that sends nested lists instead of arrays is slow but correct.
    d = avatar().to_wire()
    for name in ("vertices", "faces", "uvs", "skin_indices", "skin_weights"):
        d[name] = d[name].tolist()
    d["skeleton"]["parents"] = d["skeleton"]["parents"].tolist()
    assert_same_avatar(artifact_from_wire(d), avatar())


def wire(**changes):
    """The wire form of a valid avatar with some values replaced ("a.b" reaches into maps)."""
    d = copy.deepcopy(avatar().to_wire())
    for key, value in changes.items():
        target = d
        *path, last = key.split(".")
        for p in path:
            target = target[p]
        if value is DELETE:
            del target[last]
        else:
            target[last] = value
    return d


DELETE = object()
F32, I32 = np.float32, np.int32


@pytest.mark.parametrize("changes, field", [
    # shapes
    (dict(vertices=np.zeros((4, 2), F32)), "vertices"),
    (dict(vertices=np.zeros(12, F32)), "vertices"),
    (dict(vertices=np.zeros((1, 4, 3), F32)), "vertices"),
    (dict(faces=np.zeros((4, 4), I32)), "faces"),
    (dict(uvs=np.zeros((3, 3, 2), F32)), "uvs"),                          # one face short
    (dict(uvs=np.zeros((4, 2), F32)), "uvs"),
    (dict(skin_indices=np.zeros((3, 2), I32)), "skin_indices"),           # one vertex short
    (dict(skin_weights=np.full((4, 3), 1 / 3, F32)), "skin_weights"),     # k differs from the indices
    ({"skeleton.rest_matrices": np.zeros((3, 3, 3), F32)}, "skeleton.rest_matrices"),
    ({"skeleton.rest_matrices": np.zeros((2, 4, 4), F32)}, "skeleton.rest_matrices"),
    ({"skeleton.parents": np.array([-1, 0], I32)}, "skeleton.parents"),
    # values
    (dict(vertices=np.full((4, 3), np.nan, F32)), "vertices"),
    (dict(vertices=np.array([[0, 0, 0], [1, 0, 0], [0, np.inf, 0], [0, 0, 1]], F32)), "vertices"),
    (dict(vertices=np.full((4, 3), 1e300)), "vertices"),                # finite as float64, not as float32
    (dict(uvs=np.full((4, 3, 2), np.nan, F32)), "uvs"),
    ({"skeleton.rest_matrices": np.full((3, 4, 4), np.nan, F32)}, "skeleton.rest_matrices"),
    (dict(faces=np.array([[0, 1, 9]] * 4, I32)), "faces"),
    (dict(faces=np.array([[0, 1, 4]] * 4, I32)), "faces"),                 # one past the end
    (dict(faces=np.array([[0, 1, -1]] * 4, I32)), "faces"),
    (dict(skin_weights=np.full((4, 2), 0.5, F32) * [1, 0.5]), "skin_weights"),   # rows sum to 0.75
    (dict(skin_weights=np.zeros((4, 2), F32)), "skin_weights"),
    (dict(skin_indices=np.full((4, 2), 3, I32)), "skin_indices"),         # joint 3 of 3
    (dict(skin_indices=np.full((4, 2), -1, I32)), "skin_indices"),
    ({"skeleton.parents": np.array([1, -1, 0], I32)}, "skeleton.parents"),    # child before parent
    ({"skeleton.parents": np.array([-1, 1, 1], I32)}, "skeleton.parents"),    # its own parent
    ({"skeleton.parents": np.array([-1, 0, -2], I32)}, "skeleton.parents"),
    ({"skeleton.joint_names": ["a", "b", "a"]}, "skeleton.joint_names"),
    ({"skeleton.joint_names": ["a", "", "c"]}, "skeleton.joint_names"),
    ({"skeleton.joint_names": ["a", 2, "c"]}, "skeleton.joint_names"),
    ({"skeleton.joint_names": "abc"}, "skeleton.joint_names"),
    # dtypes: never cast silently (an int64 index of 2**32 once wrapped to 0 and passed)
    (dict(faces=np.array([[0, 1, 2 + 2 ** 32]] * 4, np.int64)), "faces"),
    (dict(faces=np.array([[0, 1, 2.5]] * 4)), "faces"),
    (dict(skin_indices=np.zeros((4, 2), F32)), "skin_indices"),
    (dict(vertices=np.array([["a", "b", "c"]] * 4)), "vertices"),
    (dict(vertices=[[0, 0, 0], [1, 0], [0, 1, 0], [0, 0, 1]]), "vertices"),  # ragged
    (dict(vertices=[[None] * 3] * 4), "vertices"),
    ({"skeleton.parents": [None, None, None]}, "skeleton.parents"),
    (dict(vertices=np.zeros((4, 3), np.complex64)), "vertices"),
    # missing parts and parts of the wrong kind
    (dict(vertices=DELETE), "vertices"),
    (dict(skin_weights=DELETE), "skin_weights"),
    (dict(skeleton=DELETE), "skeleton"),
    (dict(skeleton=[1, 2]), "skeleton"),
    ({"skeleton.parents": DELETE}, "skeleton.parents"),
    (dict(materials={"role": "normal"}), "materials"),
    (dict(materials=[1]), "materials"),
    (dict(materials=np.zeros(3)), "materials"),
    (dict(params=[1]), "params"),
    (dict(name=5), "name"),
    (dict(name=np.zeros(2)), "name"),
    (dict(provenance="ab"), "provenance"),
    # materials
    (dict(materials=[{"role": "base_color", "png": b"GIF89a"}]), "materials[0].png"),
    (dict(materials=[{"role": "base_color", "png": png()[:7]}]), "materials[0].png"),
    (dict(materials=[{"role": "base_color", "png": "\x89PNG\r\n\x1a\n"}]), "materials[0].png"),
    (dict(materials=[{"role": "base_color"}]), "materials[0].png"),
    (dict(materials=[{"role": "sparkle", "png": png()}]), "materials[0].role"),
    (dict(materials=[{"role": ["normal"], "png": png()}]), "materials[0].role"),
    (dict(materials=[{"role": "normal", "png": png(), "name": ["n"]}]), "materials[0].name"),
    (dict(materials=[{"role": "base_color", "png": png()}, {"role": "normal", "png": png(), "settings": [1]}]),
     "materials[1].settings"),
])
def test_each_broken_part_is_named(changes, field):
    with pytest.raises(ProtocolError) as err:
        artifact_from_wire(wire(**changes))
    assert err.value.code == ErrorCode.BAD_REQUEST and err.value.field == f"rigged_avatar.{field}"
    assert field.split("[")[0].split(".")[-1] in err.value.message


def test_broken_parts_are_caught_after_a_trip_through_the_codec_too():
    d = wire(faces=np.array([[0, 1, 9]] * 4, I32))
    msg = decode(encode(make("result", job_id="j", artifacts=[d])))
    with pytest.raises(ProtocolError) as err:
        artifact_from_wire(msg["artifacts"][0])
    assert err.value.field == "rigged_avatar.faces"


def test_empty_avatar_is_valid():
    d = wire(vertices=np.zeros((0, 3), F32), faces=np.zeros((0, 3), I32), uvs=np.zeros((0, 3, 2), F32),
             skin_indices=np.zeros((0, 2), I32), skin_weights=np.zeros((0, 2), F32), materials=[])
    assert len(artifact_from_wire(d).vertices) == 0


@pytest.mark.parametrize("d", [{"kind": "hologram"}, {"kind": ["rigged_avatar"]}, {"kind": None}, {},
                               [1, 2], "rigged_avatar", None])
def test_unknown_kind_is_unsupported(d):
    with pytest.raises(ProtocolError) as err:
        artifact_from_wire(d)
    assert err.value.code == ErrorCode.UNSUPPORTED
    assert "rigged_avatar" in err.value.message and "Update" in err.value.message
