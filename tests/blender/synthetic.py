"""A small RiggedAvatar built by hand, with known answers, for importer tests.

A vertical tube (rings of vertices along Z) rigged with a three-joint chain
root -> spine -> head whose frames are rotated (Y along +Z, as a Blender bone
pointing up) plus a side joint with a twisted frame, so a wrong frame
convention shows up. Vertices blend between the two nearest joints by height
(k = 3 with a zero-padded column); UVs are per corner; the texture is a real PNG.
"""
from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np


def png_rgba(width: int, height: int, rgba: tuple[int, int, int, int]) -> bytes:
    raw = b"".join(b"\x00" + bytes(rgba) * width for _ in range(height))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def rotation(axis: str, degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def frame(rot: np.ndarray, head: tuple[float, float, float]) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = rot
    m[:3, 3] = head
    return m


def tube_avatar(protocol: Any, rings: int = 9, segments: int = 12, height: float = 1.8,
                radius: float = 0.15) -> Any:
    """A RiggedAvatar of the add-on's vendored protocol module."""
    z = np.linspace(0.0, height, rings)
    ang = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    verts = np.stack([np.repeat(radius * np.cos(ang)[None], rings, 0),
                      np.repeat(radius * np.sin(ang)[None], rings, 0),
                      np.repeat(z[:, None], segments, 1)], -1).reshape(-1, 3).astype(np.float32)
    faces = []
    for r in range(rings - 1):
        for s in range(segments):
            a, b = r * segments + s, r * segments + (s + 1) % segments
            c, d = a + segments, b + segments
            faces += [(a, b, d), (a, d, c)]
    faces = np.array(faces, np.int32)
    uv_v = np.stack([np.repeat((np.arange(segments) / segments)[None], rings, 0),
                     np.repeat((z / height)[:, None], segments, 1)], -1).reshape(-1, 2)
    uvs = uv_v[faces].astype(np.float32)

    up = rotation("x", 90.0)                # bone Y axis -> world +Z
    names = ["root", "spine", "head", "arm"]
    parents = np.array([-1, 0, 1, 1], np.int32)
    rest = np.stack([
        frame(up, (0, 0, 0)),
        frame(up @ rotation("y", 30.0), (0, 0, 0.6)),          # twisted about its own Y
        frame(up, (0, 0, 1.4)),
        frame(rotation("z", 90.0) @ rotation("x", 10.0), (0.1, 0, 1.2)),
    ]).astype(np.float32)

    # Blend by height between the chain joints at z = 0, 0.6, 1.4.
    heights = np.array([0.0, 0.6, 1.4])
    vz = verts[:, 2]
    upper = np.clip(np.searchsorted(heights, vz, side="right"), 1, 2)
    lower = upper - 1
    t = np.clip((vz - heights[lower]) / (heights[upper] - heights[lower]), 0.0, 1.0)
    idx = np.stack([lower, upper, np.full_like(lower, 3)], 1).astype(np.int32)
    w = np.stack([1.0 - t, t, np.zeros_like(t)], 1).astype(np.float32)
    return protocol.RiggedAvatar(
        name="tube", vertices=verts, faces=faces, uvs=uvs,
        skeleton=protocol.Skeleton(names, parents, rest),
        skin_indices=idx, skin_weights=w,
        materials=[protocol.Material("skin", "base_color", png_rgba(8, 8, (200, 150, 120, 255)),
                                    {"roughness": 0.55})],
        body_model="synthetic", params={"phenotypes": {"height": 0.5}, "rings": rings},
        provenance={"request": {"job": "synthetic"}, "seed": 7, "models": {"tube": "1"}})
