"""The one place where coordinate frames are converted (DESIGN §6).

On the wire and in Blender: metres, right-handed, Z up, the body facing -Y,
its left side towards +X. SMPL and glTF are Y up, facing +Z, left towards +X.
The rotation between them is -90° / +90° about X:

    Y-up (x, y, z)  ->  Z-up (x, -z, y)
    Z-up (x, y, z)  ->  Y-up (x, z, -y)

Points and directions convert with `y_up_to_z_up` / `z_up_to_y_up`; joint frames
(4x4 armature-space matrices, local -> world) convert by rotating the world only,
`frames_y_up_to_z_up`, so that a joint's local axes stay the same physical axes:
a local rotation authored for the Y-up model applies verbatim to the converted
frame (that is what lets SMPL motion go straight into Blender bones).
"""
from __future__ import annotations

import numpy as np

# Columns: where the Y-up basis vectors x, y, z land in Z-up space.
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0],
                         [0.0, 0.0, -1.0],
                         [0.0, 1.0, 0.0]])
Z_UP_TO_Y_UP = Y_UP_TO_Z_UP.T


def _rotate(rotation: np.ndarray, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points)
    if points.shape[-1] != 3:
        raise ValueError(f"expected (..., 3) points, got shape {points.shape}")
    dtype = points.dtype if points.dtype.kind == "f" else np.float64
    return (points @ rotation.T).astype(dtype, copy=False)


def y_up_to_z_up(points: np.ndarray) -> np.ndarray:
    """Points or directions (..., 3) from a Y-up frame (SMPL, glTF) to ours."""
    return _rotate(Y_UP_TO_Z_UP, points)


def z_up_to_y_up(points: np.ndarray) -> np.ndarray:
    """Points or directions (..., 3) from our Z-up frame to a Y-up one (glTF)."""
    return _rotate(Z_UP_TO_Y_UP, points)


def _homogeneous(rotation: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = rotation
    return out


def frames_y_up_to_z_up(frames: np.ndarray) -> np.ndarray:
    """Joint frames (..., 4, 4), local -> Y-up world, as local -> Z-up world."""
    frames = np.asarray(frames)
    return (_homogeneous(Y_UP_TO_Z_UP) @ frames).astype(frames.dtype, copy=False)


def frames_z_up_to_y_up(frames: np.ndarray) -> np.ndarray:
    """Joint frames (..., 4, 4), local -> Z-up world, as local -> Y-up world."""
    frames = np.asarray(frames)
    return (_homogeneous(Z_UP_TO_Y_UP) @ frames).astype(frames.dtype, copy=False)
