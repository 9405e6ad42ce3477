"""What every body model gives the pipelines: a rest-pose mesh with a skeleton.

One module per model family implements `BodyModel` (anny_model, smpl_model);
models/bodies.py picks one by name. Every `BodyMesh` is already in our frame
(metres, Z up, facing -Y, feet on z = 0): conversions happen inside the family
module, through `axes`, and nowhere else.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.sources import digest_of, loaded_module_identity

MAX_SKIN_WEIGHTS_K = 8


@dataclass
class BodyMesh:
    """A body in its rest pose, in armature space (metres, Z up).

    rest_matrices[j] maps joint j's local frame to armature space: the rotation
    columns are the joint's axes, the translation its head. These are the model's
    own joint frames, so the model's local joint rotations apply to them verbatim.
    """
    vertices: np.ndarray         # (V, 3) float32
    faces: np.ndarray            # (F, 3) int32, triangles
    uvs: np.ndarray              # (F, 3, 2) float32, per corner, in [0, 1], v up
    joint_names: list[str]
    parents: np.ndarray          # (J,) int32, -1 for the root, parents first
    rest_matrices: np.ndarray    # (J, 4, 4) float32
    skin_indices: np.ndarray     # (V, k) int32
    skin_weights: np.ndarray     # (V, k) float32, rows sum to 1
    params: dict[str, Any]       # the model parameters that made it, complete
    uv_source: str = "model"     # "model", or how the UVs were made when the model has none
    face_regions: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (F,) bool


class BodyModel(ABC):
    """A parametric body family loaded once per process (loading is the slow part)."""

    name: str

    @property
    @abstractmethod
    def version(self) -> str:
        """Version of the model data and code (part of the result-store key)."""

    @property
    @abstractmethod
    def joint_names(self) -> list[str]:
        """Joint names in skeleton order."""

    @property
    @abstractmethod
    def parents(self) -> np.ndarray:
        """(J,) int32 parent index of each joint, -1 for the root."""

    @abstractmethod
    def build(self, params: dict[str, Any], skin_weights_k: int = 4) -> BodyMesh:
        """The rest-pose body for validated, complete model parameters."""

    @property
    def adapter_identity(self) -> str:
        """The identity of our code around the model family (its module and all it imports)."""
        return digest_of(loaded_module_identity(type(self).__module__) or type(self).__qualname__)


# -- helpers shared by the model families -------------------------------------

def top_k_skin_weights(indices: np.ndarray, weights: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k strongest influences of each vertex, renormalised to sum to 1.

    `indices`/`weights` are (V, m) sparse influences; pass indices=None with
    dense (V, J) weights. Rows come back strongest first, padded with joint 0 at
    weight 0 when a vertex has fewer than k influences. A vertex with no weight
    at all is a broken model file, so it raises rather than inventing one.
    """
    if not 1 <= k <= MAX_SKIN_WEIGHTS_K:
        raise ValueError(f"skin weights k must be in [1, {MAX_SKIN_WEIGHTS_K}], got {k}")
    weights = np.asarray(weights, dtype=np.float64)
    if indices is None:
        indices = np.broadcast_to(np.arange(weights.shape[1]), weights.shape)
    indices = np.asarray(indices, dtype=np.int64)
    weights = np.where(weights > 0, weights, 0.0)   # negative round-off is no influence
    if weights.shape[1] < k:                        # fewer influences than asked: pad
        pad = k - weights.shape[1]
        weights = np.pad(weights, ((0, 0), (0, pad)))
        indices = np.pad(indices, ((0, 0), (0, pad)))
    order = np.argsort(-weights, axis=1, kind="stable")[:, :k]
    top_w = np.take_along_axis(weights, order, axis=1)
    top_i = np.take_along_axis(indices, order, axis=1)
    total = top_w.sum(axis=1, keepdims=True)
    if np.any(total <= 0):
        bad = np.flatnonzero(total[:, 0] <= 0)
        raise ValueError(f"{len(bad)} vertices have no skin weight (first: vertex {bad[0]})")
    top_i = np.where(top_w > 0, top_i, 0)
    return top_i.astype(np.int32), (top_w / total).astype(np.float32)


def triangles_with_corner_uvs(faces: np.ndarray, face_uv_indices: np.ndarray,
                              uv_coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Triangles (F', 3) and their per-corner UVs (F', 3, 2) from polygon faces.

    Faces are (F, n) with n = 3 or 4 (quads may be padded with -1 to mix in
    triangles); quads are split along their 0-2 diagonal and each triangle keeps
    the UVs of its own corners, so seams stay where the model put them."""
    faces = np.asarray(faces, dtype=np.int64)
    face_uv_indices = np.asarray(face_uv_indices, dtype=np.int64)
    if faces.shape != face_uv_indices.shape or faces.ndim != 2 or faces.shape[1] not in (3, 4):
        raise ValueError(f"faces {faces.shape} and UV indices {face_uv_indices.shape} must be matching (F, 3|4)")
    if faces.shape[1] == 3:
        tri, tri_uv = faces, face_uv_indices
    else:
        first = [0, 1, 2]
        second = [0, 2, 3]
        is_quad = faces[:, 3] >= 0
        tri = np.concatenate([faces[:, first], faces[is_quad][:, second]])
        tri_uv = np.concatenate([face_uv_indices[:, first], face_uv_indices[is_quad][:, second]])
    uvs = np.asarray(uv_coords, dtype=np.float32)[tri_uv]
    return tri.astype(np.int32), uvs


def ground_translation(vertices: np.ndarray) -> np.ndarray:
    """The (3,) translation that puts the lowest vertex on z = 0 (feet on the floor)."""
    return np.array([0.0, 0.0, -float(np.min(vertices[:, 2]))])


def translate_frames(frames: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """Joint frames (J, 4, 4) moved by `translation` in armature space."""
    out = np.array(frames, dtype=np.float64, copy=True)
    out[:, :3, 3] += translation
    return out
