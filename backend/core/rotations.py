"""The one place for rotation conversions (brief: axis-angle, quaternion,
matrix, Euler, slerp), as numpy-in / numpy-out wrappers around roma.

Quaternion convention: **(w, x, y, z)** everywhere in AvatarForge (the wire,
Blender's `rotation_quaternion`, RetargetedTracks). roma, scipy and glTF use
**(x, y, z, w)**; the conversion happens here and nowhere else (wxyz_to_xyzw). Functions take arrays of any
leading shape (..., 3) / (..., 4) / (..., 3, 3) and compute in float64 (the
result has the input's float dtype, float64 for integer input).

Rotation matrices act on column vectors (v' = R v); a joint frame "local ->
world" is a matrix whose columns are the local axes in world coordinates.
"""
from __future__ import annotations

from typing import Any

import numpy as np

EULER_AXES = frozenset("XYZ")


def _torch(a: Any) -> Any:
    import torch

    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def _out(t: Any, like: Any) -> np.ndarray:
    arr = np.asarray(like)
    dtype = arr.dtype if arr.dtype.kind == "f" else np.float64
    return t.detach().cpu().numpy().astype(dtype, copy=False)


def _check(a: Any, tail: tuple[int, ...], what: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.shape[arr.ndim - len(tail):] != tail or arr.ndim < len(tail):
        raise ValueError(f"{what}: expected shape (..., {', '.join(map(str, tail))}), got {arr.shape}")
    return arr


# -- quaternion layout ------------------------------------------------------------
def wxyz_to_xyzw(q: Any) -> np.ndarray:
    """(..., 4) w,x,y,z (ours) -> x,y,z,w (roma, scipy)."""
    q = _check(q, (4,), "quaternion")
    return np.concatenate([q[..., 1:], q[..., :1]], axis=-1)


def xyzw_to_wxyz(q: Any) -> np.ndarray:
    """(..., 4) x,y,z,w (roma, scipy) -> w,x,y,z (ours)."""
    q = _check(q, (4,), "quaternion")
    return np.concatenate([q[..., 3:], q[..., :3]], axis=-1)


# -- conversions (w, x, y, z quaternions) -----------------------------------------------
def axis_angle_to_quat(rotvec: Any) -> np.ndarray:
    """(..., 3) axis * angle (radians) -> (..., 4) unit quaternions w, x, y, z."""
    import roma

    rotvec = _check(rotvec, (3,), "axis-angle")
    return xyzw_to_wxyz(_out(roma.rotvec_to_unitquat(_torch(rotvec)), rotvec))


def quat_to_axis_angle(quat: Any) -> np.ndarray:
    """(..., 4) quaternions w, x, y, z (normalised here) -> (..., 3) axis * angle, angle in [0, pi]."""
    import roma

    quat = _check(quat, (4,), "quaternion")
    q = roma.quat_normalize(_torch(wxyz_to_xyzw(quat)))
    return _out(roma.unitquat_to_rotvec(q), quat)


def axis_angle_to_matrix(rotvec: Any) -> np.ndarray:
    """(..., 3) axis * angle -> (..., 3, 3) rotation matrices."""
    import roma

    rotvec = _check(rotvec, (3,), "axis-angle")
    return _out(roma.rotvec_to_rotmat(_torch(rotvec)), rotvec)


def matrix_to_axis_angle(matrix: Any) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 3) axis * angle."""
    import roma

    matrix = _check(matrix, (3, 3), "rotation matrix")
    return _out(roma.rotmat_to_rotvec(_torch(matrix)), matrix)


def quat_to_matrix(quat: Any) -> np.ndarray:
    """(..., 4) quaternions w, x, y, z (normalised here) -> (..., 3, 3)."""
    import roma

    quat = _check(quat, (4,), "quaternion")
    q = roma.quat_normalize(_torch(wxyz_to_xyzw(quat)))
    return _out(roma.unitquat_to_rotmat(q), quat)


def matrix_to_quat(matrix: Any) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 4) unit quaternions w, x, y, z."""
    import roma

    matrix = _check(matrix, (3, 3), "rotation matrix")
    return xyzw_to_wxyz(_out(roma.rotmat_to_unitquat(_torch(matrix)), matrix))


def orthonormalise(matrix: Any) -> np.ndarray:
    """(..., 3, 3) nearly-rotation matrices (scaled, sheared, noisy) -> the nearest rotations."""
    import roma

    matrix = _check(matrix, (3, 3), "rotation matrix")
    return _out(roma.special_procrustes(_torch(matrix)), matrix)


def euler_to_matrix(order: str, angles: Any, degrees: bool = True) -> np.ndarray:
    """Intrinsic Euler angles -> (..., 3, 3).

    `order` is the rotation channels' order as a BVH file lists them, e.g. "ZXY"
    for "Zrotation Xrotation Yrotation": R = Rz · Rx · Ry (each rotation about
    the axis of the frame rotated by the previous ones). `angles` is (..., len(order))."""
    import roma

    if not order or set(order) - EULER_AXES:
        raise ValueError(f"Euler order must be letters from XYZ, got {order!r}")
    angles = _check(angles, (len(order),), "Euler angles")
    return _out(roma.euler_to_rotmat(order.upper(), _torch(angles), degrees=degrees), angles)


def matrix_to_euler(order: str, matrix: Any, degrees: bool = True) -> np.ndarray:
    """(..., 3, 3) -> intrinsic Euler angles (..., 3) in `order` (3 distinct axes; the inverse of euler_to_matrix)."""
    import roma

    if len(order) != 3 or set(order) != EULER_AXES:
        raise ValueError(f"Euler order must be a permutation of XYZ, got {order!r}")
    matrix = _check(matrix, (3, 3), "rotation matrix")
    return _out(roma.rotmat_to_euler(order.upper(), _torch(matrix), degrees=degrees), matrix)


# -- quaternion algebra (w, x, y, z) ---------------------------------------------------------
def quat_multiply(a: Any, b: Any) -> np.ndarray:
    """Hamilton product a * b (apply b, then a), broadcasting."""
    import roma

    a, b = _check(a, (4,), "quaternion"), _check(b, (4,), "quaternion")
    import torch

    ta, tb = torch.broadcast_tensors(_torch(wxyz_to_xyzw(a)), _torch(wxyz_to_xyzw(b)))
    return xyzw_to_wxyz(_out(roma.quat_product(ta.contiguous(), tb.contiguous()), a))


def quat_conjugate(q: Any) -> np.ndarray:
    """The inverse of unit quaternions (w, -x, -y, -z)."""
    q = _check(q, (4,), "quaternion")
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quat_continuous(quat: Any, axis: int = 0) -> np.ndarray:
    """Flip signs along `axis` (time) so consecutive quaternions lie in one
    hemisphere: q and -q are the same rotation, but keyframe interpolation
    between a q and a -q neighbour would spin the long way round."""
    q = np.array(_check(quat, (4,), "quaternion"), dtype=np.float64, copy=True)
    q = np.moveaxis(q, axis, 0)
    if len(q) > 1:
        dots = np.sum(q[1:] * q[:-1], axis=-1)
        flips = np.cumprod(np.where(dots < 0, -1.0, 1.0), axis=0)
        q[1:] *= flips[..., None]
    return np.moveaxis(q, 0, axis)


def slerp_quat(q0: Any, q1: Any, fraction: Any) -> np.ndarray:
    """Elementwise spherical interpolation (shortest arc) between unit
    quaternions (..., 4) w, x, y, z; `fraction` broadcasts against (...)."""
    rel = quat_multiply(quat_conjugate(q0), q1)
    step = quat_to_axis_angle(rel) * np.asarray(fraction, dtype=np.float64)[..., None]   # angle <= pi: shortest
    return quat_multiply(q0, axis_angle_to_quat(step))


def slerp_axis_angle(r0: Any, r1: Any, fraction: Any) -> np.ndarray:
    """Elementwise slerp between axis-angle rotations (..., 3)."""
    return quat_to_axis_angle(slerp_quat(axis_angle_to_quat(r0), axis_angle_to_quat(r1), fraction))


def swing_between(src: Any, dst: Any) -> np.ndarray:
    """(..., 3, 3) the smallest rotation taking direction `src` onto `dst`
    (..., 3), neither needing unit length; antiparallel pairs turn about an axis
    perpendicular to `src`."""
    import roma

    a = np.asarray(src, dtype=np.float64)
    b = np.asarray(dst, dtype=np.float64)
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    axis = np.cross(a, b)
    sin = np.linalg.norm(axis, axis=-1)
    cos = np.sum(a * b, axis=-1)
    angle = np.arctan2(sin, cos)
    # Antiparallel: any perpendicular axis; pick one from the least-aligned world axis.
    helper = np.eye(3)[np.argmin(np.abs(a), axis=-1)]
    perp = np.cross(a, helper)
    axis = np.where((sin < 1e-9)[..., None], perp, axis)
    axis = axis / np.maximum(np.linalg.norm(axis, axis=-1, keepdims=True), 1e-300)
    return roma.rotvec_to_rotmat(_torch(axis * angle[..., None])).numpy()


def angle_between_matrices(a: Any, b: Any) -> np.ndarray:
    """Geodesic angle (radians) between rotation matrices (..., 3, 3)."""
    import roma

    return roma.rotmat_geodesic_distance(_torch(a), _torch(b)).numpy()
