"""The .glb the CLI writes is a skinned, textured, upright body other tools can read."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pygltflib
import pytest
import trimesh

from avatarforge.backend.formats.gltf import write_glb
from tests.support.pipelines import tetra_avatar
from tests.support.server import BACKEND_PYTHON, REPO


@pytest.fixture(scope="module")
def cli_glb(tmp_path_factory):
    """`avatarforge generate body ... --out x.glb --format json`, as a user runs it."""
    out = tmp_path_factory.mktemp("glb") / "avatar.glb"
    python = BACKEND_PYTHON if BACKEND_PYTHON.exists() else sys.executable
    proc = subprocess.run([str(python), "-m", "avatarforge.backend.cli", "generate", "body",
                           "--phenotype", "gender=0.2", "--phenotype", "height=0.8", "--texture-size", "256",
                           "--out", str(out), "--format", "json"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out, json.loads(proc.stdout)


def test_cli_prints_parameters_and_counts(cli_glb):
    _, summary = cli_glb
    assert summary["model"] == "anny" and summary["counts"]["joints"] == 104
    assert summary["params"]["phenotypes"]["height"] == pytest.approx(0.8)
    assert summary["params"]["phenotypes"]["gender"] == pytest.approx(0.2)


def test_glb_is_skinned_textured_and_y_up(cli_glb):
    path, summary = cli_glb
    doc = pygltflib.GLTF2().load(str(path))
    (skin,) = doc.skins
    assert len(skin.joints) == 104
    prim = doc.meshes[0].primitives[0]
    assert prim.attributes.JOINTS_0 is not None and prim.attributes.WEIGHTS_0 is not None
    assert doc.images and doc.images[0].mimeType == "image/png" and doc.materials[0].pbrMetallicRoughness.baseColorTexture
    lo, hi = doc.accessors[prim.attributes.POSITION].min, doc.accessors[prim.attributes.POSITION].max
    assert hi[1] - lo[1] == pytest.approx(summary["height_m"], abs=1e-3)   # glTF is Y up: height along +Y
    assert abs(lo[1]) < 0.01                                              # feet on the ground
    scene = trimesh.load(str(path))
    mesh = next(iter(scene.geometry.values()))
    assert mesh.visual.uv is not None and len(mesh.faces) == summary["counts"]["faces"]


def test_inverse_bind_matrices_undo_the_rest_pose(tmp_path):
    avatar = tetra_avatar(scale=2.0)
    doc = pygltflib.GLTF2().load(str(write_glb(avatar, tmp_path / "t.glb")))
    acc = doc.accessors[doc.skins[0].inverseBindMatrices]
    view = doc.bufferViews[acc.bufferView]
    data = doc.binary_blob()[view.byteOffset + (acc.byteOffset or 0):][:acc.count * 64]
    inverse_bind = np.frombuffer(data, np.float32).reshape(-1, 4, 4).transpose(0, 2, 1)
    # The tip joint sits 0.5 m above the root in Z-up, so 0.5 m along +Y in glTF.
    np.testing.assert_allclose(np.linalg.inv(inverse_bind[1])[:3, 3], [0, 0.5, 0], atol=1e-6)
    np.testing.assert_allclose(np.linalg.inv(inverse_bind[0])[:3, 3], [0, 0, 0], atol=1e-6)
    assert doc.nodes[0].children == [1]


def _read(doc: pygltflib.GLTF2, index: int, dtype, width: int) -> np.ndarray:
    acc = doc.accessors[index]
    view = doc.bufferViews[acc.bufferView]
    start = view.byteOffset + (acc.byteOffset or 0)
    count = acc.count * width
    return np.frombuffer(doc.binary_blob()[start:start + count * np.dtype(dtype).itemsize], dtype).reshape(-1, width)


def test_split_vertices_keep_their_position_uv_and_skin(tmp_path):
    """glTF vertices are split at UV seams; each must still carry its source
    vertex's position (converted to Y up), its corner's UV (v flipped) and all
    k > 4 skin influences (JOINTS_1 / WEIGHTS_1)."""
    from avatarforge.backend.config import BackendConfig
    from avatarforge.backend.pipelines import JobContext
    from avatarforge.backend.pipelines.body import BodyPipeline
    from tests.support.synthetic_smpl import write_synthetic_model

    write_synthetic_model(tmp_path, "smpl", "neutral")
    config = BackendConfig(models_dir=tmp_path)
    pipeline = BodyPipeline()
    (avatar,) = pipeline.run(pipeline.normalise({"model": "smpl", "skin_weights_k": 6, "texture_size": 256}, config),
                             JobContext(config=config))
    doc = pygltflib.GLTF2().load(str(write_glb(avatar, tmp_path / "smpl.glb")))
    attrs = doc.meshes[0].primitives[0].attributes
    source = _read(doc, attrs._AVATARFORGE_VERTEX, np.float32, 1)[:, 0].astype(int)
    assert len(source) > len(avatar.vertices) and set(source) == set(range(len(avatar.vertices)))
    pos = _read(doc, attrs.POSITION, np.float32, 3)
    x, y, z = avatar.vertices[source].T
    np.testing.assert_allclose(pos, np.column_stack([x, z, -y]), atol=1e-6)
    joints = np.hstack([_read(doc, attrs.JOINTS_0, np.uint16, 4), _read(doc, attrs.JOINTS_1, np.uint16, 4)])
    weights = np.hstack([_read(doc, attrs.WEIGHTS_0, np.float32, 4), _read(doc, attrs.WEIGHTS_1, np.float32, 4)])
    np.testing.assert_array_equal(joints[:, :6], avatar.skin_indices[source])
    np.testing.assert_allclose(weights[:, :6], avatar.skin_weights[source])
    assert (weights[:, 6:] == 0).all()
    uv = _read(doc, attrs.TEXCOORD_0, np.float32, 2)
    faces = _read(doc, doc.meshes[0].primitives[0].indices, np.uint32, 1).reshape(-1, 3)
    np.testing.assert_allclose(uv[faces][..., 1], 1.0 - avatar.uvs[..., 1], atol=1e-6)
    np.testing.assert_array_equal(source[faces], avatar.faces)
