"""Rendering styles a prompt asks for (after StyleAvatar3D), as material presets.

A style word ("cartoon", "anime", "claymation", "metallic robot"...) does not
change the texture's layout; it changes how Blender shades the avatar. The
preset is recorded on the avatar's Material.settings and the add-on's importer
applies it. Keys of a preset (all present in every preset):

    style        preset name: "realistic" | "toon" | "anime" | "clay" | "metal" | "plastic" | "marble"
    shading      "principled" (Principled BSDF) | "toon" (banded cel shading with `toon_steps`
                 constant bands over the base colour; the add-on builds it from nodes that render
                 in EEVEE and Cycles alike: importers/common.py)
    roughness    Principled roughness, 0..1
    metallic     Principled metallic, 0..1
    specular     Principled "Specular IOR Level", 0..1 (0.5 = default dielectric)
    subsurface   Principled subsurface weight, 0..1 (skin-like translucency)
    coat         Principled coat weight, 0..1 (clear lacquer)
    outline      bool: add an inverted-hull outline (Solidify modifier, flipped normals,
                 black emission material) of `outline_width` metres
    outline_width  metres (0 when outline is False)
    toon_steps   number of shading bands for shading = "toon" (0 otherwise)
    saturation   multiplier for the base colour's saturation (Hue/Saturation node), 1 = unchanged
    colorspace   "sRGB": the texture holds sRGB base colour

The style is chosen by encoder similarity: each preset has a few descriptions;
the prompt's phrases (n-grams) are ranked against them and a preset is picked
only when its best phrase beats both a threshold and the same score for a
neutral phrase ("a person"), so prompts that name no style get "realistic".
"""
from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..models.text_encoder import TextEncoder
from .prompt import NEUTRAL_PROMPT

DEFAULT_STYLE = "realistic"
# A phrase must be at least this similar to a style description, and this much
# more similar than the neutral phrase is (calibrated on MiniLM: unrelated words
# score 0.2-0.45 against these descriptions, style words 0.6-1.0).
STYLE_THRESHOLD = 0.62
STYLE_MARGIN = 0.2

_BASE = {"shading": "principled", "roughness": 0.55, "metallic": 0.0, "specular": 0.5, "subsurface": 0.0,
         "coat": 0.0, "outline": False, "outline_width": 0.0, "toon_steps": 0, "saturation": 1.0,
         "colorspace": "sRGB"}

PRESETS: dict[str, dict[str, Any]] = {
    "realistic": {**_BASE, "roughness": 0.55, "subsurface": 0.08},
    "toon": {**_BASE, "shading": "toon", "roughness": 0.9, "specular": 0.2, "outline": True,
             "outline_width": 0.004, "toon_steps": 3, "saturation": 1.25},
    "anime": {**_BASE, "shading": "toon", "roughness": 0.8, "specular": 0.3, "outline": True,
              "outline_width": 0.0025, "toon_steps": 2, "saturation": 1.15},
    "clay": {**_BASE, "roughness": 0.95, "specular": 0.15, "subsurface": 0.15, "saturation": 0.9},
    "metal": {**_BASE, "roughness": 0.25, "metallic": 1.0, "specular": 0.8, "saturation": 0.6},
    "plastic": {**_BASE, "roughness": 0.3, "specular": 0.6, "coat": 0.5, "saturation": 1.2},
    "marble": {**_BASE, "roughness": 0.2, "specular": 0.6, "subsurface": 0.3, "coat": 0.3, "saturation": 0.2},
}

# Descriptions the prompt's phrases are ranked against (several per preset:
# sentence encoders match a short phrase best to a short phrase).
DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "realistic": ("realistic", "photorealistic", "lifelike"),
    "toon": ("cartoon", "cartoon character", "toon", "cel-shaded", "comic book style", "pixar style"),
    "anime": ("anime", "anime character", "manga", "japanese animation style"),
    "clay": ("claymation", "clay figure", "plasticine", "stop-motion clay"),
    "metal": ("metallic robot", "robot", "chrome", "cyborg", "android robot", "made of metal"),
    "plastic": ("plastic toy", "action figure", "vinyl figurine", "lego figure"),
    "marble": ("marble statue", "stone statue", "sculpture"),
}


@dataclass
class StyleChoice:
    name: str                   # a key of PRESETS
    score: float                # similarity of the deciding phrase (0 when the default was kept)
    phrase: str | None          # the prompt phrase that chose it
    matched: str | None         # the description it matched
    explicit: bool              # False: nothing in the prompt named a style

    @property
    def preset(self) -> dict[str, Any]:
        return style_preset(self.name)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "score": round(self.score, 4), "phrase": self.phrase, "matched": self.matched,
                "explicit": self.explicit}


def style_preset(name: str) -> dict[str, Any]:
    """The material settings of preset `name`, with "style" set (a fresh dict)."""
    return {"style": name, **PRESETS[name]}


_cache_lock = threading.Lock()
_description_cache: "weakref.WeakKeyDictionary[TextEncoder, tuple[list[str], list[str], np.ndarray, np.ndarray]]" = \
    weakref.WeakKeyDictionary()


def _descriptions(encoder: TextEncoder) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """(preset of each description, descriptions, their embeddings, neutral phrase's
    similarity to each), computed once per encoder."""
    with _cache_lock:
        hit = _description_cache.get(encoder)
    if hit is None:
        names = [name for name, texts in DESCRIPTIONS.items() for _ in texts]
        texts = [t for ts in DESCRIPTIONS.values() for t in ts]
        emb = encoder.encode(texts)
        neutral = (encoder.encode(NEUTRAL_PROMPT) @ emb.T)[0]
        hit = (names, texts, emb, neutral)
        with _cache_lock:
            _description_cache[encoder] = hit
    return hit


def choose_style(phrases: Sequence[str], embeddings: np.ndarray, encoder: TextEncoder) -> StyleChoice:
    """The style preset named by any of the prompt's `phrases` (their unit
    `embeddings` from `encoder`), or the realistic default."""
    if len(phrases) == 0:
        return StyleChoice(DEFAULT_STYLE, 0.0, None, None, False)
    names, texts, emb, neutral = _descriptions(encoder)
    sim = np.asarray(embeddings, np.float32) @ emb.T                     # (P, D)
    ok = (sim >= STYLE_THRESHOLD) & (sim - neutral[None, :] >= STYLE_MARGIN)
    if not ok.any():
        return StyleChoice(DEFAULT_STYLE, 0.0, None, None, False)
    p, d = np.unravel_index(np.argmax(np.where(ok, sim, -np.inf)), sim.shape)
    return StyleChoice(names[d], float(sim[p, d]), phrases[p], texts[d], True)
