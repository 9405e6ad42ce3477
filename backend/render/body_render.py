"""Neutral-grey front views of a body, for CLIP to look at (AvatarCLIP S1's codebook renders).

A small z-buffer rasteriser written with numpy, because the machines this runs on
have no GL context and no pytorch3d/nvdiffrast on CPU; the images are small
(224 px) and one is made per codebook entry once, so vectorised numpy is enough.

Camera: orthographic, looking along +Y at the body's front (Anny and SMPL bodies
face -Y in our Z-up frame). The frame is a fixed WINDOW_M metres square with the
feet near the bottom and the body centred left-right, so a taller body looks
taller (the scale is the same for every body). Shading: Lambert on smooth vertex
normals with a light from the camera's upper left, plus ambient, on grey.
"""
from __future__ import annotations

import numpy as np

from ..models.body_model import BodyMesh

IMAGE_SIZE = 224
WINDOW_M = 2.3                 # metres shown top to bottom (and left to right)
FLOOR_MARGIN_M = 0.05
BACKGROUND = 255
ALBEDO = 0.72
AMBIENT = 0.25
LIGHT = np.array([-0.4, -1.0, 0.5])     # towards the light: camera side (-Y), above, to the left


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals."""
    tri = vertices[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    out = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(out, faces[:, k], n)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def _pixel_candidates(px: np.ndarray, py: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(triangle, x, y) for every pixel centre inside each triangle's bounding box."""
    x0 = np.clip(np.floor(px.min(1) - 0.5).astype(int) + 1, 0, size)
    x1 = np.clip(np.floor(px.max(1) - 0.5).astype(int) + 1, 0, size)
    y0 = np.clip(np.floor(py.min(1) - 0.5).astype(int) + 1, 0, size)
    y1 = np.clip(np.floor(py.max(1) - 0.5).astype(int) + 1, 0, size)
    w, h = np.maximum(x1 - x0, 0), np.maximum(y1 - y0, 0)
    counts = w * h
    tri = np.repeat(np.arange(len(px)), counts)
    local = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    wt = np.maximum(w[tri], 1)
    return tri, x0[tri] + local % wt, y0[tri] + local // wt


def render_front(mesh: BodyMesh | tuple[np.ndarray, np.ndarray], size: int = IMAGE_SIZE) -> np.ndarray:
    """(size, size, 3) uint8 front view of a Z-up body (a BodyMesh or (vertices, faces))."""
    vertices, faces = (mesh.vertices, mesh.faces) if isinstance(mesh, BodyMesh) else mesh
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    scale = size / WINDOW_M
    cx = 0.5 * (v[:, 0].min() + v[:, 0].max())
    sx = (v[:, 0] - cx) * scale + size / 2                       # image x: body's right on the left, as seen
    sy = size - (v[:, 2] - v[:, 2].min() + FLOOR_MARGIN_M) * scale   # image y: down
    px, py, depth = sx[f], sy[f], v[:, 1][f]
    tri, x, y = _pixel_candidates(px, py, size)
    # Barycentric coordinates of the pixel centres.
    ax, ay = px[tri, 0], py[tri, 0]
    e1x, e1y = px[tri, 1] - ax, py[tri, 1] - ay
    e2x, e2y = px[tri, 2] - ax, py[tri, 2] - ay
    det = e1x * e2y - e2x * e1y
    qx, qy = x + 0.5 - ax, y + 0.5 - ay
    ok = np.abs(det) > 1e-12
    safe = np.where(ok, det, 1.0)
    b1 = (qx * e2y - e2x * qy) / safe
    b2 = (e1x * qy - qx * e1y) / safe
    b0 = 1.0 - b1 - b2
    inside = ok & (b0 >= -1e-9) & (b1 >= -1e-9) & (b2 >= -1e-9)
    tri, x, y, b = tri[inside], x[inside], y[inside], np.stack([b0, b1, b2], 1)[inside]
    z = (b * depth[tri]).sum(1)
    pixel = y * size + x
    # z-buffer: the nearest (smallest y: towards the camera) sample per pixel.
    order = np.lexsort((z, pixel))
    first = order[np.r_[True, pixel[order][1:] != pixel[order][:-1]]]
    normals = vertex_normals(v, f)
    n = (b[first, :, None] * normals[f[tri[first]]]).sum(1)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    light = LIGHT / np.linalg.norm(LIGHT)
    shade = np.clip(AMBIENT + (1 - AMBIENT) * np.clip(n @ light, 0, 1), 0, 1) * ALBEDO
    image = np.full(size * size, BACKGROUND, np.uint8)
    image[pixel[first]] = np.round(shade * 255).astype(np.uint8)
    return np.repeat(image.reshape(size, size, 1), 3, axis=2)
