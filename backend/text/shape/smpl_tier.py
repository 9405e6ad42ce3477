"""SMPL (`model="smpl"`): entries are SMPL shape vectors; each is built with the user's model
file and described from what was MEASURED on it (height and waist girth relative to the mean
shape), never from assumed meanings of the betas. The text tier ranks those descriptions; CLIP
ranks the rendered bodies (clip_tier)."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ...config import BackendConfig
from ...core.numeric import softmax
from ...core.sources import digest_of, files_digest
from ...models.smpl_model import SmplBodyModel, find_model_file, load_smpl_model, missing_model_error
from ...models.text_encoder import TextEncoder, differential, unit_rows
from .. import shape_vocabulary as vocab
from ..prompt import NEUTRAL_PROMPT
from .cache import cached_arrays, code_identity, encoder_identity
from .clip_tier import IMAGE_TOP_K, RenderBody, image_embeddings, rank_images
from .codebook import CODEBOOK_SEED, article
from .evidence import BLEND_TEMPERATURE, EVIDENCE_SCALE

HEIGHT_CUTS = (0.90, 0.965, 1.035, 1.10)   # height / mean shape's height -> HEIGHT levels
GIRTH_CUTS = (0.80, 0.93, 1.07, 1.25)      # (girth/height) / mean shape's -> WEIGHT levels


@dataclass
class SmplReading:
    betas: list[float]
    confidence: float
    details: dict[str, Any]


def smpl_codebook_betas(num_betas: int) -> np.ndarray:
    """Shape vectors to try: the mean shape first, a grid over the first two betas and random ones
    (fixed seed), without repeats, simplest first."""
    n = min(10, num_betas)
    grid = [[a, b] + [0.0] * (n - 2) for a in (-2.5, -1.25, 0.0, 1.25, 2.5) for b in (-2.5, -1.25, 0.0, 1.25, 2.5)]
    rng = np.random.default_rng(CODEBOOK_SEED)
    random = np.clip(rng.normal(0.0, 1.0, (40, n)), -2.5, 2.5)
    betas = np.unique(np.round(np.concatenate([np.zeros((1, n)), np.array(grid)[:, :n], random]), 4), axis=0)
    return betas[np.argsort(np.abs(betas).sum(1), kind="stable")]


def body_measurements(vertices: np.ndarray) -> dict[str, float]:
    """Height (m) and waist girth (m, convex hull of a slice at 60 % of the height) of a Z-up body."""
    from scipy.spatial import ConvexHull

    z = vertices[:, 2]
    height = float(z.max() - z.min())
    level = z.min() + 0.6 * height
    band = vertices[np.abs(z - level) < 0.03 * height][:, :2]
    girth = float(ConvexHull(band).area) if len(band) >= 3 else 0.0   # a 2-D hull's "area" is its perimeter
    return {"height": height, "girth": girth}


def _measured_level(ratio: float, cuts: Sequence[float]) -> int:
    """Level index of a ratio against ascending cut points (len(cuts)+1 levels)."""
    return int(np.searchsorted(np.asarray(cuts), ratio))


def _sentence(noun: str, adjectives: list[str], phrases: list[str], form: int) -> str:
    """A sentence from a noun, adjectives before it and phrases after it, in one of five forms."""
    tail = (" " + " and ".join(phrases)) if phrases else ""
    if form == 0 or not adjectives:
        lead = ", ".join(adjectives[:-1]) + (", " if len(adjectives) > 1 else "") + \
            (adjectives[-1] + " " if adjectives else "")
        return article(lead + noun) + tail
    if form == 1:
        return article(noun) + " who is " + " and ".join(adjectives) + ("," + tail if tail else "")
    if form == 2:
        return "They are " + article(" ".join(adjectives) + " " + noun) + tail
    if form == 3:
        return " ".join(adjectives) + " " + noun + tail
    return article(noun) + ", " + " and ".join(adjectives) + ("," + tail if tail else "")


def describe_measured(height_ratio: float, girth_ratio: float, rng: np.random.Generator, count: int = 3) -> list[str]:
    """Sentences for a body from its measured height and girth (relative to the mean shape)."""
    h = vocab.HEIGHT[_measured_level(height_ratio, HEIGHT_CUTS)]
    w = vocab.WEIGHT[_measured_level(girth_ratio, GIRTH_CUTS)]
    out: set[str] = set()
    for _ in range(count * 4):
        if len(out) == count:
            break
        noun = str(rng.choice(vocab.NOUNS[(vocab.DEFAULT_AGE, "unspecified")][:4]))
        adjectives, phrases = [], []
        for level in (h, w):
            if level.adjectives and rng.random() < 0.7:
                adjectives.append(str(rng.choice(level.adjectives)))
            elif level.adjectives or rng.random() < 0.3:
                phrases.append(str(rng.choice(level.phrases)))
        out.add(_sentence(noun, adjectives, phrases, int(rng.integers(0, 5))))
    return sorted(out)


def _smpl_model_for(config: BackendConfig, gender_value: float) -> SmplBodyModel:
    preferred = ["neutral", "female" if gender_value > 0.5 else "male", "male" if gender_value > 0.5 else "female"]
    for g in preferred:
        if find_model_file(config, "smpl", g) is not None:
            return load_smpl_model("smpl", config, g)
    raise missing_model_error(config, "smpl", "neutral")


def _body_identity(model: SmplBodyModel) -> str:
    """The user's model file, its gender and the code that builds it."""
    return digest_of(files_digest([model.path]), model.gender, code_identity(model))


_lock = threading.Lock()
_indexes: dict[str, dict[str, Any]] = {}


def _smpl_text_index(encoder: TextEncoder, model: SmplBodyModel) -> dict[str, Any]:
    betas = smpl_codebook_betas(model.num_betas)
    key = digest_of(encoder_identity(encoder), _body_identity(model), code_identity(describe_measured),
                    NEUTRAL_PROMPT, betas.tobytes().hex())
    with _lock:
        if key in _indexes:
            return _indexes[key]

    def compute() -> dict[str, np.ndarray]:
        measures = [body_measurements(model.build({"betas": list(b)}).vertices) for b in betas]
        h0, g0 = measures[0]["height"], measures[0]["girth"] / measures[0]["height"]   # row 0: the mean shape
        rng = np.random.default_rng(CODEBOOK_SEED)
        sentences, entry_of = [], []
        for e, m in enumerate(measures):
            said = describe_measured(m["height"] / h0, (m["girth"] / m["height"]) / g0, rng)
            sentences += said
            entry_of += [e] * len(said)
        return {"sentences": encoder.encode(sentences), "entry_of": np.array(entry_of, np.int32),
                "heights": np.array([m["height"] for m in measures]),
                "girths": np.array([m["girth"] for m in measures]),
                "text": np.array(sentences), "neutral": encoder.encode(NEUTRAL_PROMPT)[0]}

    arrays = cached_arrays("shape-smpl", key, compute)
    index = {"betas": betas, **arrays, "rows": differential(arrays["sentences"], arrays["neutral"])}
    with _lock:
        _indexes[key] = index
    return index


def _prompt_differential(encoder: TextEncoder, prompt: str, neutral: np.ndarray) -> np.ndarray | None:
    """The whole prompt's differential embedding, or None when it says nothing beyond the neutral prompt."""
    raw = encoder.encode(prompt)[0] - neutral
    if np.linalg.norm(raw) < 1e-4:
        return None
    return unit_rows(raw[None])[0]


def _rank_descriptions(prompt: str, encoder: TextEncoder, model: SmplBodyModel,
                       betas: np.ndarray) -> tuple[np.ndarray, float, dict[str, Any]]:
    """Weights over the betas from the best measured-description matches of the whole prompt."""
    index = _smpl_text_index(encoder, model)
    d = _prompt_differential(encoder, prompt, index["neutral"])
    entry_scores = np.full(len(betas), -1.0)
    if d is not None:
        np.maximum.at(entry_scores, index["entry_of"], index["rows"] @ d)
    weights = np.zeros(len(betas))
    # The mean shape (entry 0) stands for "nothing said"; others must beat it.
    top = np.argsort(-entry_scores)[:IMAGE_TOP_K]
    if d is None or top[0] == 0:
        weights[0], confidence = 1.0, 0.0
    else:
        top = [k for k in top if entry_scores[k] > entry_scores[0]]
        weights[top] = softmax(entry_scores[top], BLEND_TEMPERATURE)
        confidence = round(float(np.tanh((entry_scores[top[0]] - entry_scores[0]) / EVIDENCE_SCALE)), 4)
    details = {"top_matches": [{"betas_entry": int(k), "score": round(float(entry_scores[k]), 4),
                                "weight": round(float(weights[k]), 4),
                                "text": [str(t) for t, e in zip(index["text"], index["entry_of"]) if e == k]}
                               for k in np.argsort(-entry_scores)[:IMAGE_TOP_K]]}
    return weights, confidence, details


def rank_smpl(prompt: str, encoder: TextEncoder, config: BackendConfig, gender_value: float,
              render_body: RenderBody | None) -> SmplReading:
    """Betas blended from the best measured-description matches (text), or rendered bodies (CLIP)."""
    model = _smpl_model_for(config, gender_value)
    betas = smpl_codebook_betas(model.num_betas)
    if encoder.name == "clip":
        emb = image_embeddings(encoder, "smpl", [list(map(float, b)) for b in betas],
                               lambda b: model.build({"betas": b}), _body_identity(model), render_body)
        ranking = rank_images(prompt, encoder, emb)
        weights, confidence, details = ranking.weights, ranking.confidence, ranking.details
    else:
        weights, confidence, details = _rank_descriptions(prompt, encoder, model, betas)
    blended = (weights[:, None] * betas).sum(0)
    details.update(smpl_file=model.path.name, smpl_gender=model.gender)
    return SmplReading([round(float(b), 4) for b in blended], confidence, details)
