"""The .glb the CLI writes is a skinned, textured, upright body other tools can read."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pygltflib
import pytest
import trimesh

from avatarforge.backend.export_gltf import write_glb
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
