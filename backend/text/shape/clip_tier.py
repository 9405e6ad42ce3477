"""The image tier (CLIP, as AvatarCLIP S1): every entry of a small image codebook is rendered
once (neutral grey, front) by the renderer the caller passes in, the image embeddings are cached,
and entries are ranked by image minus neutral image against text minus neutral text; the top
entries are blended by softmax weights."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ...core.numeric import softmax
from ...core.sources import digest_of
from ...models.anny_model import default_phenotypes, load_anny_model, phenotype_names
from ...models.body_model import BodyMesh
from ...models.text_encoder import unit_rows
from .. import shape_vocabulary as vocab
from ..prompt import NEUTRAL_PROMPT
from .cache import cached_arrays, code_identity, encoder_identity

log = logging.getLogger(__name__)

IMAGE_TOP_K = 5
IMAGE_TEMPERATURE = 0.01
IMAGE_TEXT_TEMPLATE = "a 3D rendering of {} in unreal engine"   # AvatarCLIP's prompt template
RENDER_BATCH = 32

RenderBody = Callable[[BodyMesh], np.ndarray]     # a body -> (H, W, 3) uint8 image


@dataclass
class ImageRanking:
    weights: np.ndarray          # (E,) softmax weights over the entries
    confidence: float
    details: dict[str, Any]


def image_codebook_entries() -> list[dict[str, Any]]:
    """The bodies CLIP sees: a grid over gender, age, weight, muscle and height, plus
    pregnant and pot-bellied adults. Entry 0 is the neutral body."""
    entries: list[dict[str, Any]] = [{"phenotypes": default_phenotypes(), "local_changes": {}}]
    for gender in (0.0, 1.0):
        for age in (0.0, 0.33, 0.5, 2.0 / 3.0, 0.93):
            for weight in (0.15, 0.5, 0.9):
                for muscle in (0.15, 0.5, 0.9):
                    for height in (0.15, 0.5, 0.9):
                        if age < 0.3 and (weight, muscle, height) != (0.5, 0.5, 0.5):
                            continue       # babies: one body each
                        p = {**default_phenotypes(), "gender": gender, "age": age, "weight": weight,
                             "muscle": muscle, "height": height}
                        entries.append({"phenotypes": p, "local_changes": {}})
    for change in vocab.LOCAL_CHANGES:
        for gender in ((1.0,) if change.female_only else (0.0, 1.0)):
            for weight in (0.15, 0.5, 0.9):
                p = {**default_phenotypes(), "gender": gender, "weight": weight}
                entries.append({"phenotypes": p, "local_changes": dict(change.modifiers)})
    return entries


def image_embeddings(encoder: Any, kind: str, entries: list[Any], build_mesh: Callable[[Any], BodyMesh],
                     body_identity: str, render_body: RenderBody) -> np.ndarray:
    """(E, D) CLIP image embeddings of the rendered entries, cached on disk under the identities of
    the encoder, the body model, the renderer and the entries."""
    key = digest_of(encoder_identity(encoder), body_identity, code_identity(render_body),
                    json.dumps(entries, sort_keys=True, default=str))

    def compute() -> dict[str, np.ndarray]:
        log.info("rendering and embedding %d %s bodies for CLIP (once)", len(entries), kind)
        batches = [np.stack([render_body(build_mesh(e)) for e in entries[start:start + RENDER_BATCH]])
                   for start in range(0, len(entries), RENDER_BATCH)]
        return {"images": np.concatenate([encoder.encode_images(b) for b in batches])}

    return cached_arrays(f"shape-images-{kind}", key, compute)["images"]


def rank_images(prompt: str, encoder: Any, image_emb: np.ndarray) -> ImageRanking:
    """AvatarCLIP S1: softmax weights over the top entries, a confidence, details.

    Row 0 of image_emb is the neutral body (its differential is zero)."""
    texts = encoder.encode([IMAGE_TEXT_TEMPLATE.format(prompt), IMAGE_TEXT_TEMPLATE.format(NEUTRAL_PROMPT)])
    t = unit_rows((texts[0] - texts[1])[None])[0]
    raw = image_emb - image_emb[0:1]
    norms = np.linalg.norm(raw, axis=1)
    scores = np.where(norms > 1e-6, (raw @ t) / np.maximum(norms, 1e-12), 0.0)
    top = np.argsort(-scores)[:IMAGE_TOP_K]
    weights = np.zeros(len(scores))
    if scores[top[0]] <= 0.0:      # nothing beats the neutral body: keep it
        weights[0] = 1.0
        confidence = 0.0
    else:
        weights[top] = softmax(scores[top], IMAGE_TEMPERATURE)
        confidence = float(np.tanh(scores[top[0]] / 0.1))
    details = {"top_matches": [{"entry": int(i), "score": round(float(scores[i]), 4),
                                "weight": round(float(weights[i]), 4)} for i in top]}
    return ImageRanking(weights, round(confidence, 4), details)


def _blend_entries(entries: list[dict[str, Any]], weights: np.ndarray) -> tuple[dict[str, float], dict[str, float]]:
    phenotypes = {n: 0.0 for n in phenotype_names()}
    changes: dict[str, float] = {}
    for e, w in zip(entries, weights):
        if w <= 0:
            continue
        for n in phenotypes:
            phenotypes[n] += float(w) * e["phenotypes"][n]
        for n, v in e["local_changes"].items():
            changes[n] = changes.get(n, 0.0) + float(w) * v
    return ({n: round(v, 4) for n, v in phenotypes.items()},
            {n: round(v, 4) for n, v in changes.items() if abs(v) > 1e-3})


def rank_anny_images(prompt: str, encoder: Any,
                     render_body: RenderBody) -> tuple[dict[str, float], dict[str, float], float, dict[str, Any]]:
    """(phenotypes, local changes, confidence, details) blended from the best-ranked Anny renders."""
    entries = image_codebook_entries()
    model = load_anny_model()
    emb = image_embeddings(encoder, "anny", entries, model.build, digest_of(model.version, code_identity(model)),
                           render_body)
    ranking = rank_images(prompt, encoder, emb)
    phenotypes, changes = _blend_entries(entries, ranking.weights)
    return phenotypes, changes, ranking.confidence, ranking.details
