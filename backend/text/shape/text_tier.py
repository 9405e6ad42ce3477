"""The text tier (MiniLM, or any encoder other than CLIP): the prompt's chunks, and the glosses
of its words, scored against the codebook's sentences (AvatarCLIP's differential similarity:
cos(e(x) - e(neutral), e(entry) - e(neutral))) in one batched encoder call; then per attribute
the level its evidence says, ages in numbers, and what WordNet knows of the adjectives the
encoder does not place and of the roles the prompt names."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...models.anny_model import default_phenotypes
from ...models.text_encoder import TextEncoder, differential
from ..lexicon import Lexicon, load_lexicon
from .ages import numeric_age
from .attributes import ATTR, ATTRIBUTES, valid_change
from .cache import shape_cache_dir
from .chunks import Chunk, prompt_chunks
from .adjectives import read_adjectives
from .evidence import AttributeChoice, chunk_evidence, chunk_relations, choose_level, confidence, misread_words, \
    said_choice, unplaced_words, vetoed_chunks
from .glosses import gloss_chunks
from .index import TextIndex, text_index
from .roles import WordReading, read_roles


@dataclass
class TextReading:
    phenotypes: dict[str, float]
    local_changes: dict[str, float]
    confidence: float
    details: dict[str, Any]


def rank_text(prompt: str, encoder: TextEncoder) -> TextReading:
    """The body a prompt describes, read through the codebook's sentences."""
    index = text_index(encoder)
    lexicon = load_lexicon(shape_cache_dir())
    chunks, scores = prompt_scores(encoder, prompt, index, lexicon)
    if not chunks:
        return TextReading(default_phenotypes(), {}, 0.0, {"attributes": {}, "adjectives": [], "roles": [], "chunks": []})
    relations = chunk_relations(chunks, lexicon)
    misread = misread_words(chunks, scores, index, lexicon)
    evidence = chunk_evidence(scores, chunks, index, relations, misread)
    choices = {attr.name: choose_level(attr, evidence[i], chunks) for i, attr in enumerate(ATTRIBUTES)}
    said_age = numeric_age(prompt)
    if said_age is not None:
        attr = ATTRIBUTES[ATTR["age"]]
        level = int(np.argmin(np.abs(np.asarray(attr.values) - said_age.value)))
        choices["age"] = said_choice(attr, level, said_age.value, said_age.text, f"{said_age.years:g} years")
    # What WordNet knows, for what the encoder left at the defaults: the prompt's own unplaced
    # adjectives first, then what its roles imply.
    vetoed = vetoed_chunks(scores, relations, index)
    adjectives = read_adjectives(chunks, unplaced_words(scores, misread), vetoed, lexicon)
    roles = read_roles(chunks, lexicon, list(vetoed))
    _apply_readings(choices, adjectives + roles)
    phenotypes = _phenotypes(choices)
    local_changes = _local_changes(choices, phenotypes)
    details = {"attributes": _attribute_details(choices), "adjectives": [r.text for r in adjectives],
               "roles": [r.text for r in roles],
               "chunks": [{"text": c.text, "best": index.codebook.sentences[int(np.argmax(s))],
                           "score": round(float(s.max()), 4)} for c, s in zip(chunks, scores)]}
    excess = [c.evidence - ATTRIBUTES[ATTR[name]].margin for name, c in choices.items() if _changed(name, c)]
    return TextReading(phenotypes, local_changes, confidence(excess), details)


def prompt_scores(encoder: TextEncoder, prompt: str, index: TextIndex,
                  lexicon: Lexicon) -> tuple[list[Chunk], np.ndarray]:
    """The prompt's chunks (its n-grams, then the glosses of its words) and their (C, E)
    differential scores against the codebook."""
    chunks = prompt_chunks(prompt)
    if not chunks:
        return [], np.zeros((0, len(index.rows)), np.float32)
    chunks += gloss_chunks(chunks, lexicon)
    texts = sorted({c.said for c in chunks})
    emb = differential(encoder.encode(texts), index.neutral)     # one batched call
    row = {t: i for i, t in enumerate(texts)}
    return chunks, (emb @ index.rows.T)[[row[c.said] for c in chunks]]


def _apply_readings(choices: dict[str, AttributeChoice], readings: list[WordReading]) -> None:
    """The readings' levels, in order, for the attributes nothing before them moved."""
    for reading in readings:
        for name, level_name in reading.levels.items():
            attr = ATTRIBUTES[ATTR[name]]
            if not choices[name].moved:
                level = attr.level_names.index(level_name)
                choices[name] = said_choice(attr, level, attr.values[level], reading.text, level_name)


def _phenotypes(choices: dict[str, AttributeChoice]) -> dict[str, float]:
    """Default phenotypes, with those that moved set (an unmoved one keeps the exact default)."""
    phenotypes = default_phenotypes()
    for attr in ATTRIBUTES:
        if attr.phenotype is not None and choices[attr.name].moved:
            phenotypes[attr.phenotype] = round(choices[attr.name].value, 4)
    return phenotypes


def _local_changes(choices: dict[str, AttributeChoice], phenotypes: dict[str, float]) -> dict[str, float]:
    """Anny local changes of the changes present and valid for the body (a pregnant body is a
    female body: it sets the gender when nothing else did; no pregnancy for a boy)."""
    out: dict[str, float] = {}
    for attr in ATTRIBUTES:
        choice, change = choices[attr.name], attr.local_change
        if change is None or choice.value <= 0:
            continue
        if change.female_only and not choices["gender"].moved:
            phenotypes["gender"] = 1.0
        if not valid_change(change, phenotypes):
            choices[attr.name] = AttributeChoice(0.0, 0, choice.evidence, choice.chunk, {"absent": 1.0})
            continue
        for name, amount in change.modifiers.items():
            out[name] = round(float(np.clip(out.get(name, 0.0) + choice.value * amount, -1.0, 1.0)), 4)
    return out


def _changed(name: str, choice: AttributeChoice) -> bool:
    attr = ATTRIBUTES[ATTR[name]]
    return choice.level != attr.default and choice.value != attr.values[attr.default]


def _attribute_details(choices: dict[str, AttributeChoice]) -> dict[str, Any]:
    return {name: {"value": round(c.value, 4), "evidence": round(c.evidence, 4), "moved": _changed(name, c),
                   "chunk": c.chunk, "levels": c.weights} for name, c in choices.items()}
