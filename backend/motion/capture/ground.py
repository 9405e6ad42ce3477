"""The ground plane under the actor and the Z-up world it defines.

The solve runs in a working frame: the camera's axes turned so that a level
camera's "up" is +Z (WORK_TO_CAMERA). The ground is fitted to the sole points of
planted feet there: a plane z = a x + b y + c whose tilt (a, b) is pulled towards
level (a ridge prior), so that a walk along one line, which says nothing about the
tilt across it, keeps the camera's own level there, while a walk towards the
camera reveals its pitch. The world then has +Z along the plane's normal, the
ground at z = 0, the camera's view direction along +Y (a person facing the
camera faces -Y, SMPL's forward), and the origin under the actor's first pelvis.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Z-up working frame -> OpenCV camera axes for a level camera looking along +Y:
# camera x = world x, camera y (down) = -world z, camera z (forward) = world y.
WORK_TO_CAMERA = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
# Ridge on the plane's slope: the variance (m²) of the contact points' spread at which
# the data and "the camera is level" weigh the same (about 0.55 m of spread).
TILT_PRIOR = 0.3
MAX_TILT = np.tan(np.radians(35.0))


@dataclass(frozen=True)
class Ground:
    """normal (3,) unit up vector and point (3,) on the plane, in the working frame."""
    normal: np.ndarray
    point: np.ndarray

    def height(self, p: np.ndarray) -> np.ndarray:
        """Signed height of points (..., 3) above the plane."""
        return (np.asarray(p) - self.point) @ self.normal


def fit_ground(points: np.ndarray, weights: np.ndarray | None = None) -> Ground:
    """A plane through sole points (K, 3) of planted feet (working frame), tilt
    regularised towards level; weights (K,) optional."""
    p = np.asarray(points, np.float64).reshape(-1, 3)
    w = np.ones(len(p)) if weights is None else np.asarray(weights, np.float64).reshape(-1)
    c0 = np.average(p, axis=0, weights=w)
    d = p - c0
    sw = np.sqrt(w)
    a_mat = np.column_stack([d[:, 0], d[:, 1], np.ones(len(p))]) * sw[:, None]
    rhs = d[:, 2] * sw
    reg = np.diag([TILT_PRIOR * w.sum(), TILT_PRIOR * w.sum(), 0.0])
    sol = np.linalg.solve(a_mat.T @ a_mat + reg, a_mat.T @ rhs)
    a, b = np.clip(sol[:2], -MAX_TILT, MAX_TILT)
    normal = np.array([-a, -b, 1.0])
    normal /= np.linalg.norm(normal)
    return Ground(normal, c0 + np.array([0.0, 0.0, sol[2]]))


@dataclass(frozen=True)
class WorldFrame:
    """Working frame -> the Z-up world: p_world = rotation @ (p_work - origin)."""
    rotation: np.ndarray
    origin: np.ndarray

    def points(self, p: np.ndarray) -> np.ndarray:
        return (np.asarray(p) - self.origin) @ self.rotation.T

    def world_to_camera(self) -> np.ndarray:
        """(4, 4) OpenCV world -> camera: x_cam = R x_world + t."""
        r = WORK_TO_CAMERA @ self.rotation.T
        out = np.eye(4)
        out[:3, :3] = r
        out[:3, 3] = WORK_TO_CAMERA @ self.origin
        return out


def world_frame(ground: Ground, start_pelvis: np.ndarray) -> WorldFrame:
    """The world whose ground is z = 0, +Z up, the camera looking along +Y, the
    origin on the ground under `start_pelvis` (working frame)."""
    ez = ground.normal
    view = np.array([0.0, 1.0, 0.0])                 # the camera's z axis in the working frame
    ey = view - (view @ ez) * ez
    ey /= np.linalg.norm(ey)
    ex = np.cross(ey, ez)
    rotation = np.stack([ex, ey, ez])
    origin = start_pelvis - ground.height(start_pelvis) * ez
    return WorldFrame(rotation, origin)
