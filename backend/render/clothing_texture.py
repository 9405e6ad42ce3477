"""Clothes, hair and skin painted into Anny's UV space from a parsed Appearance
(the embedded "attributes" painter of the text->avatar job).

The skin comes first, from skin_texture (same rasteriser, skin, eyes, brows).
Anny's UV segmentation is coarse (body, head, hands, feet...), so where a
garment goes is decided per texel from the body itself:
- the texel's body group (torso, arm, hand, leg, foot, neck, head) is the group
  of the dominant skinning bone of its triangle's nearest corner (the rig says
  which texels move with the forearm, the shin...);
- its rest-pose 3D position (the rest vertices interpolated with the raster's
  barycentrics) gives lengths: along the arm from shoulder to wrist for sleeves,
  the height between hip and ankle for trouser legs and hems, heights on the
  head for the hairline and hats.
Fabric shading (folds near elbows and knees, weave, hems) and patterns
(stripes, checks, dots...) are functions of the 3D position, so they run
continuously across UV seams; at the end every texel outside the UV islands
takes the colour of the nearest island texel (dilation across island borders),
so filtering never shows background at seams. Deterministic for a seed.
"""
from __future__ import annotations

import hashlib
import threading
import weakref
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..models.body_model import BodyMesh
from ..core.appearance import Appearance, Coverage, Garment
from .skin_texture import SkinLayers, encode_png, fill_gutters, paint_anny_skin_layers, smooth_noise

GROUPS = ("torso", "arm", "hand", "leg", "foot", "neck", "head")
SKIN_PARTS = ("body", "head", "hand.L", "hand.R", "foot.L", "foot.R")
DEFAULT_HAIR_LENGTH = 0.35       # short hair when the prompt does not say
HEM_WIDTH_M = 0.012
PNG_COMPRESS_LEVEL = 3           # texture PNGs are large; level 6 costs ~0.1 s more at 1024 px for ~5% size


def bone_group(name: str) -> str:
    """Which body group an Anny bone moves (by the rig's naming)."""
    for prefix, group in (("upperleg", "leg"), ("lowerleg", "leg"), ("foot", "foot"), ("toe", "foot"),
                          ("shoulder", "arm"), ("upperarm", "arm"), ("lowerarm", "arm"), ("wrist", "hand"),
                          ("finger", "hand"), ("metacarpal", "hand"), ("neck", "neck"), ("head", "head"),
                          ("eye", "head")):
        if name.startswith(prefix):
            return group
    return "torso"            # root, pelvis, spine, clavicle


@dataclass
class Landmarks:
    """Rest-pose joint positions (metres, Z up) the coverage rules measure from."""
    shoulder: dict[int, np.ndarray]    # side (+1 left, -1 right) -> (3,)
    wrist: dict[int, np.ndarray]
    elbow: dict[int, np.ndarray]
    knee: dict[int, np.ndarray]
    hip_z: float
    knee_z: float
    ankle_z: float
    waist_z: float
    neck: np.ndarray
    eye: np.ndarray                    # midpoint of the eyes
    head_top_z: float

    @classmethod
    def of(cls, mesh: BodyMesh) -> "Landmarks":
        heads = mesh.rest_matrices[:, :3, 3].astype(np.float64)
        index = {n: i for i, n in enumerate(mesh.joint_names)}

        def at(name: str) -> np.ndarray:
            if name not in index:
                raise ValueError(f"the clothing painter needs Anny's rig; joint {name!r} is missing")
            return heads[index[name]]

        sides = {1: "L", -1: "R"}
        return cls(shoulder={s: at(f"upperarm01.{n}") for s, n in sides.items()},
                   wrist={s: at(f"wrist.{n}") for s, n in sides.items()},
                   elbow={s: at(f"lowerarm01.{n}") for s, n in sides.items()},
                   knee={s: at(f"lowerleg01.{n}") for s, n in sides.items()},
                   hip_z=float(at("upperleg01.L")[2]), knee_z=float(at("lowerleg01.L")[2]),
                   ankle_z=float(at("foot.L")[2]), waist_z=float(at("spine04")[2]), neck=at("neck01"),
                   eye=(at("eye.L") + at("eye.R")) / 2, head_top_z=float(mesh.vertices[:, 2].max()))


@dataclass
class TexelBody:
    """Per covered skin texel (flattened, `rows`/`cols` in the image): body
    group, side, rest position and the position along the arm."""
    rows: np.ndarray
    cols: np.ndarray
    group: np.ndarray       # (N,) int8 index into GROUPS
    side: np.ndarray        # (N,) +1 left (+X), -1 right
    pos: np.ndarray         # (N, 3) float32 rest-pose position
    arm_t: np.ndarray       # (N,) 0 at the shoulder joint, 1 at the wrist (own side)
    part: np.ndarray        # (N,) int16 segmentation code of each texel (index into part_names)
    part_names: list[str]
    marks: Landmarks

    def is_group(self, *names: str) -> np.ndarray:
        out = np.zeros(len(self.group), bool)
        for n in names:
            out |= self.group == GROUPS.index(n)
        return out

    def in_part(self, *names: str) -> np.ndarray:
        out = np.zeros(len(self.part), bool)
        for n in names:
            if n in self.part_names:
                out |= self.part == self.part_names.index(n)
        return out


_layout_lock = threading.Lock()
_layouts: dict[int, tuple[weakref.ref, bytes, tuple[np.ndarray, ...]]] = {}


def _texel_layout(mesh: BodyMesh, skin: SkinLayers) -> tuple[np.ndarray, ...]:
    """(rows, cols, nearest corner's vertex, segmentation code) of the skin texels.
    It depends only on the UV raster and the topology, which every Anny body
    shares, so it is kept per (cached) raster."""
    raster = skin.raster
    topology = hashlib.blake2b(np.ascontiguousarray(mesh.faces).tobytes() +
                               np.ascontiguousarray(skin.parts.codes).tobytes(), digest_size=16).digest()
    with _layout_lock:
        hit = _layouts.get(id(raster))
    if hit is not None and hit[0]() is raster and hit[1] == topology:
        return hit[2]
    rows, cols = np.nonzero(skin.parts.mask(*SKIN_PARTS))
    faces = raster.face_ids[rows, cols]
    nearest_corner = mesh.faces[faces, np.argmax(raster.bary[rows, cols], axis=1)]
    layout = (rows, cols, nearest_corner, skin.parts.codes[rows, cols].astype(np.int16))
    with _layout_lock:
        for key in [k for k, v in _layouts.items() if v[0]() is None]:
            del _layouts[key]
        _layouts[id(raster)] = (weakref.ref(raster), topology, layout)
    return layout


def texel_body(mesh: BodyMesh, skin: SkinLayers) -> TexelBody:
    """Where on the body each painted texel lies (see module doc)."""
    marks = Landmarks.of(mesh)
    rows, cols, nearest_corner, part = _texel_layout(mesh, skin)
    group_of_joint = np.array([GROUPS.index(bone_group(n)) for n in mesh.joint_names], dtype=np.int8)
    dominant = mesh.skin_indices[np.arange(len(mesh.skin_indices)), np.argmax(mesh.skin_weights, axis=1)]
    group = group_of_joint[dominant][nearest_corner]
    pos = skin.positions[rows, cols]
    side = np.where(pos[:, 0] >= 0, 1, -1).astype(np.int8)
    arm_t = np.zeros(len(rows), dtype=np.float32)
    for s in (1, -1):
        a, b = marks.shoulder[s], marks.wrist[s]
        on = side == s
        arm_t[on] = (pos[on] - a) @ (b - a) / float((b - a) @ (b - a))
    return TexelBody(rows, cols, group, side, pos, arm_t, part, list(skin.parts.names), marks)


# -- coverage: which texels a garment covers, and how far inside its edge --------

def garment_coverage(body: TexelBody, g: Garment) -> tuple[np.ndarray, np.ndarray]:
    """(covered (N,) bool, depth (N,) metres from the nearest hem, for hem shading)."""
    m, c = body.marks, g.coverage
    n = len(body.pos)
    z = body.pos[:, 2]
    covered = np.zeros(n, bool)
    depth = np.full(n, np.inf, dtype=np.float32)

    def add(mask: np.ndarray, d: np.ndarray | float) -> None:
        nonlocal covered
        d = np.broadcast_to(np.asarray(d, np.float32), mask.shape)
        depth[mask] = np.minimum(depth[mask], d[mask])
        covered |= mask

    if g.slot in ("top", "outer", "dress", "bottom"):
        torso = body.is_group("torso")
        trunk = torso | body.is_group("leg")     # a shirt's hem runs across the top of the thighs too
        top_hem = m.hip_z - 0.03
        long_body = c.leg is not None and c.leg > 0     # a dress or coat runs on down the legs: no hem here
        if c.torso == "full":
            add(trunk & (z >= top_hem) & ~_neckline(body, c), np.inf if long_body else z - top_hem)
        elif c.torso == "upper":
            hem = m.waist_z + 0.45 * (m.neck[2] - m.waist_z)
            add(trunk & (z >= hem) & ~_neckline(body, c), z - hem)
        elif c.torso == "lower":
            add(torso & (z <= m.waist_z), m.waist_z - z)
        if c.neck:
            add(body.is_group("neck"), np.inf)
        if c.sleeve is not None:
            arm_len = np.linalg.norm(m.wrist[1] - m.shoulder[1])
            reach = max(c.sleeve, 0.0)
            add(body.is_group("arm") & (body.arm_t <= reach), (reach - body.arm_t) * arm_len)
        if c.leg is not None and c.leg > 0:
            hem = m.hip_z - c.leg * (m.hip_z - m.ankle_z)
            legs = body.is_group("leg") | (body.is_group("torso") & (z < m.hip_z))
            add(legs & (z >= hem), z - hem)
    elif g.slot == "shoes":
        feet = body.is_group("foot") | body.in_part("foot.L", "foot.R")
        top = m.ankle_z + (c.shaft or 0.0) * (m.knee_z - m.ankle_z)
        shoe = feet & (z <= max(top, m.ankle_z + 0.02)) if (c.shaft or 0) > 0.04 else feet.copy()
        if g.kind == "sandals":   # a sole and straps across the foot
            shoe = feet & ((z < 0.012) | (np.abs(np.sin(body.pos[:, 1] * 90.0)) > 0.8))
        add(shoe | (body.is_group("leg") & (z <= top)), top - z)
    elif g.slot == "hat":
        chin_z = m.neck[2] + 0.04
        hem = m.head_top_z - (c.crown or 0.4) * (m.head_top_z - chin_z)
        add(body.in_part("head") & (z >= hem), z - hem)
    elif g.slot == "gloves":
        add(body.is_group("hand") | body.in_part("hand.L", "hand.R"), np.inf)
    elif g.slot == "scarf":
        add(body.is_group("neck"), np.inf)
    return covered, depth


def _neckline(body: TexelBody, c: Coverage) -> np.ndarray:
    """Torso texels a neckline leaves bare: a round neck for shirts, a wider
    scoop for sleeveless tops and dresses, nothing for turtlenecks and hoodies."""
    if c.neck:
        return np.zeros(len(body.pos), bool)
    radius = 0.13 if (c.sleeve is not None and c.sleeve <= 0.0) else 0.085
    centre = (body.marks.neck + np.array([0.0, -0.04, -0.01])).astype(np.float32)   # necklines dip at the front
    return _within(body.pos, centre, radius)


def _within(p: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """(N,) bool: points within `radius` of `centre` (a box test first: most are far)."""
    near = np.all(np.abs(p - centre) < radius, axis=1)
    out = np.zeros(len(p), bool)
    d = p[near] - centre
    out[near] = np.einsum("nd,nd->n", d, d) < radius * radius
    return out


def hair_coverage(body: TexelBody, length: float) -> np.ndarray:
    """Scalp texels for hair of `length` (0 bald, 0.35 short, 1 long): above a
    hairline that is high at the forehead and falls behind the ears to the nape;
    long hair also runs down the back of the neck and between the shoulders."""
    if length <= 0.0:
        return np.zeros(len(body.pos), bool)
    m = body.marks
    p = body.pos
    behind = p[:, 1] - (m.eye[1] + 0.05)                       # metres behind the temples (+Y is back)
    hairline = m.eye[2] + 0.055 - 1.0 * np.clip(behind, 0.0, None)
    hairline = np.maximum(hairline, m.neck[2] + 0.05 - 0.1 * max(length - 0.35, 0.0))
    scalp = body.in_part("head") & (p[:, 2] >= hairline)
    if length > 0.5:     # longer hair: the back of the neck and the upper back
        back = p[:, 1] > m.neck[1] + 0.01
        reach = m.neck[2] - 0.35 * (length - 0.5)
        scalp |= body.is_group("neck", "torso", "head") & back & (p[:, 2] >= reach) & \
            (np.abs(p[:, 0]) < 0.09 + 0.05 * length)
    return scalp


# -- fabric and patterns --------------------------------------------------------------

def fabric_colour(body: TexelBody, sel: np.ndarray, g: Garment, depth: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """(M, 3) sRGB colour of garment `g` on the selected texels: base colour and
    pattern, weave, folds near joints, and darker hems."""
    p = body.pos[sel].astype(np.float32)
    fabric = g.coverage.fabric
    base = np.asarray(g.colour, np.float32)
    if fabric == "denim":   # dyed cotton twill: any named colour comes out muted and darker
        base = 0.8 * (0.7 * base + 0.3 * float(base.mean()))
    rgb = np.broadcast_to(base, (len(p), 3)).copy()
    if g.pattern != "solid" and g.pattern_colour is not None:
        alpha = pattern_alpha(g.pattern, p, rng)
        rgb += alpha[:, None] * (np.asarray(g.pattern_colour, np.float32) - rgb)
    shade = 1.0 + 0.03 * smooth_noise(p, rng, (6.0, 25.0), waves=6)
    if fabric == "denim":   # diagonal twill and lighter wear on the front of the thighs
        shade += 0.05 * np.sin((p[:, 2] + 0.6 * p[:, 0]) * (2 * np.pi / 0.004))
        shade += 0.10 * np.clip(-(p[:, 1] - body.marks.knee[1][1]) / 0.08, 0.0, 1.0) * \
            (p[:, 2] > body.marks.knee_z)
    elif fabric == "knit":  # vertical ribs
        shade += 0.04 * np.sin((p[:, 0] + 0.5 * p[:, 1]) * (2 * np.pi / 0.006))
    elif fabric in ("leather", "synthetic", "silk"):
        shade += 0.025 * smooth_noise(p, rng, (20.0, 60.0), waves=4)
    shade *= _fold_shading(body, p)
    hem = np.clip(depth[sel] / HEM_WIDTH_M, 0.0, 1.0)
    shade *= 0.82 + 0.18 * hem
    return rgb * shade[:, None]


def _fold_shading(body: TexelBody, p: np.ndarray) -> np.ndarray:
    """Soft creases around elbows and knees (rings of darker cloth)."""
    out = np.ones(len(p), np.float32)
    reach = 0.15     # beyond this the crease weight exp(-(d/0.07)^2) is < 1%
    for joints in (body.marks.elbow, body.marks.knee):
        for centre in joints.values():
            c = centre.astype(np.float32)
            near = np.nonzero(_within(p, c, reach))[0]
            d = np.sqrt(np.einsum("nd,nd->n", p[near] - c, p[near] - c))
            ring = np.clip(np.sin(d * (2 * np.pi / 0.025)), 0.0, 1.0)
            out[near] *= 1.0 - 0.08 * ring * np.exp(-(d / 0.07) ** 2)
    return out


def pattern_alpha(pattern: str, p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(M,) weight of the pattern colour at positions p (metres): patterns live
    in 3D so they continue across UV seams."""
    def band(x: np.ndarray, period: float, duty: float) -> np.ndarray:
        return (np.mod(x / period, 1.0) < duty).astype(np.float32)

    if pattern == "striped":
        return band(p[:, 2], 0.04, 0.45)
    if pattern == "checked":
        a, b = band(p[:, 2], 0.06, 0.35), band(p[:, 0] + p[:, 1], 0.06, 0.35)
        return np.clip(0.55 * a + 0.55 * b, 0.0, 1.0)
    if pattern in ("dotted", "floral"):
        spacing, radius = (0.035, 0.009) if pattern == "dotted" else (0.05, 0.016)
        offset = rng.uniform(0, spacing, 3).astype(np.float32)
        cell = np.mod(p + offset, spacing) - spacing / 2
        return (np.linalg.norm(cell, axis=1) < radius).astype(np.float32)
    if pattern == "camouflage":
        n = smooth_noise(p, rng, (4.0, 12.0), waves=10)
        return np.where(n > 0.35, 1.0, np.where(n < -0.45, 0.5, 0.0)).astype(np.float32)
    return np.zeros(len(p), np.float32)


def hair_colour_texels(p: np.ndarray, colour: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Streaky hair: noise stretched along the vertical (strands run down)."""
    streaks = smooth_noise(p * np.array([1.0, 1.0, 0.08], np.float32), rng, (60.0, 200.0), waves=8)
    shade = 1.0 + 0.12 * streaks + 0.05 * smooth_noise(p, rng, (5.0, 15.0), waves=4)
    return colour[None, :] * shade[:, None]


# -- the painter ----------------------------------------------------------------------

@dataclass
class PaintedAvatar:
    rgb: np.ndarray                          # (H, W, 3) float32 sRGB, gutters filled
    body: TexelBody
    coverage: dict[str, np.ndarray]          # slot (and "hair") -> (N,) bool over body's texels
    skin: SkinLayers


def paint_avatar_layers(mesh: BodyMesh, appearance: Appearance, size: int, seed: int,
                        progress: Callable[[float], None] | None = None) -> PaintedAvatar:
    """The avatar's base colour as arrays (see paint_avatar_texture)."""
    report = progress or (lambda _: None)
    skin = paint_anny_skin_layers(mesh, size, seed, progress=lambda f: report(0.6 * f),
                                  tone=appearance.skin_tone, hair=appearance.hair.colour)
    body = texel_body(mesh, skin)
    rgb = skin.rgb
    rng = np.random.default_rng([seed, 0xC107])    # its own stream: the skin's draws stay as they were
    coverage: dict[str, np.ndarray] = {}

    length = DEFAULT_HAIR_LENGTH if appearance.hair.length is None else appearance.hair.length
    hair = hair_coverage(body, length)
    if hair.any():
        colour = np.asarray(skin.hair, np.float32)
        texels = hair_colour_texels(body.pos[hair], colour, rng)
        if length < 0.2:   # a buzz cut shows scalp through it
            texels = 0.55 * texels + 0.45 * rgb[body.rows[hair], body.cols[hair]]
        rgb[body.rows[hair], body.cols[hair]] = texels
    coverage["hair"] = hair
    report(0.7)

    for i, g in enumerate(appearance.garments):     # Appearance keeps painting order (bottoms first)
        covered, depth = garment_coverage(body, g)
        if g.slot == "outer" and appearance.garment("top") is not None:   # worn open over the top
            covered &= ~((np.abs(body.pos[:, 0]) < 0.035) & (body.pos[:, 1] < body.marks.neck[1]) &
                         body.is_group("torso"))
        if g.slot == "hat":
            covered &= ~_face(body)
        coverage[g.slot] = covered
        if covered.any():
            rgb[body.rows[covered], body.cols[covered]] = fabric_colour(body, covered, g, depth, rng)
        report(0.7 + 0.25 * (i + 1) / max(len(appearance.garments), 1))
    out = fill_gutters(np.clip(rgb, 0.0, 1.0).astype(np.float32), skin.raster.covered, skin.raster)
    return PaintedAvatar(out, body, coverage, skin)


def _face(body: TexelBody) -> np.ndarray:
    """Face texels below the brows stay visible under a hat brim."""
    m = body.marks
    return (body.pos[:, 1] < m.eye[1] + 0.03) & (body.pos[:, 2] < m.eye[2] + 0.035)


def paint_avatar_texture(mesh: BodyMesh, appearance: Appearance, size: int, seed: int,
                         progress: Callable[[float], None] | None = None) -> bytes:
    """Base-colour PNG of an Anny body dressed as `appearance` says (module doc)."""
    painted = paint_avatar_layers(mesh, appearance, size, seed, progress)
    return encode_png(painted.rgb, compress_level=PNG_COMPRESS_LEVEL)
