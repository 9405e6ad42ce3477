"""Artifacts are validated on arrival so an importer can trust them."""
from __future__ import annotations

import numpy as np
import pytest

from avatarforge.protocol import ErrorCode, ProtocolError, RiggedAvatar, artifact_from_wire, decode, encode
from tests.support.pipelines import tetra_avatar


def wire(**changes):
    d = tetra_avatar().to_wire()
    for key, value in changes.items():
        target = d
        *path, last = key.split(".")
        for p in path:
            target = target[p]
        target[last] = value
    return d


def test_round_trip_through_the_codec():
    avatar = tetra_avatar(extra_vertices=50_000)
    back = artifact_from_wire(decode(encode({"v": 1, "a": avatar.to_wire()}))["a"])
    assert isinstance(back, RiggedAvatar)
    np.testing.assert_array_equal(back.vertices, avatar.vertices)
    np.testing.assert_array_equal(back.skeleton.rest_matrices, avatar.skeleton.rest_matrices)
    assert back.skeleton.joint_names == avatar.skeleton.joint_names
    assert back.materials[0].png == avatar.materials[0].png


@pytest.mark.parametrize("changes, field", [
    (dict(vertices=np.zeros((4, 2), np.float32)), "rigged_avatar.vertices"),
    (dict(vertices=np.full((4, 3), np.nan, np.float32)), "rigged_avatar.vertices"),
    (dict(faces=np.array([[0, 1, 9]] * 4, np.int32)), "rigged_avatar.faces"),
    (dict(uvs=np.zeros((3, 3, 2), np.float32)), "rigged_avatar.uvs"),
    (dict(skin_weights=np.full((4, 1), 0.5, np.float32)), "rigged_avatar.skin_weights"),
    (dict(skin_indices=np.full((4, 1), 7, np.int32)), "rigged_avatar.skin_indices"),
    ({"skeleton.parents": np.array([1, -1], np.int32)}, "rigged_avatar.skeleton.parents"),
    ({"skeleton.joint_names": ["a", "a"]}, "rigged_avatar.skeleton.joint_names"),
    ({"skeleton.rest_matrices": np.zeros((2, 3, 3), np.float32)}, "rigged_avatar.skeleton.rest_matrices"),
    (dict(materials=[{"role": "base_color", "png": b"GIF89a"}]), "rigged_avatar.materials[0].png"),
    (dict(materials=[{"role": "sparkle", "png": b""}]), "rigged_avatar.materials[0].role"),
])
def test_each_broken_part_is_named(changes, field):
    with pytest.raises(ProtocolError) as err:
        artifact_from_wire(wire(**changes))
    assert err.value.code == ErrorCode.BAD_REQUEST and err.value.field == field


def test_unknown_kind_is_unsupported():
    with pytest.raises(ProtocolError) as err:
        artifact_from_wire({"kind": "hologram"})
    assert err.value.code == ErrorCode.UNSUPPORTED and "Update" in err.value.message
