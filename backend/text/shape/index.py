"""The codebook embedded by one encoder, once per process; on disk once per machine, under a key
derived from the codebook's sentences and the encoder's weights and code."""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np

from ...core.sources import digest_of
from ...models.text_encoder import TextEncoder, differential
from ..prompt import NEUTRAL_PROMPT
from .attributes import ATTR, ATTRIBUTES
from .cache import cached_arrays, encoder_identity
from .codebook import Codebook, build_codebook

log = logging.getLogger(__name__)


@dataclass
class TextIndex:
    """The codebook embedded by one encoder: differential entry rows and, per
    attribute and level, which entries say that level."""
    codebook: Codebook
    neutral: np.ndarray                      # (D,)
    rows: np.ndarray                         # (E, D) differential, unit (the neutral entry's row is 0)
    level_masks: list[np.ndarray]            # [attribute] -> (L, E) bool: entries saying that level
    default_masks: list[np.ndarray]          # [attribute] -> (E,) bool: entries leaving it at its default


def _default_masks(codebook: Codebook) -> list[np.ndarray]:
    """[attribute] -> (E,) bool: entries that leave the attribute at its default level. A local
    change that only an adult (or a woman) can have does not: "a person expecting a baby" says
    an adult, so it is no reference against "baby" meaning a baby."""
    masks = [codebook.levels[:, i] == a.default for i, a in enumerate(ATTRIBUTES)]
    for attr in ATTRIBUTES:
        change = attr.local_change
        if change is None:
            continue
        present = codebook.levels[:, ATTR[attr.name]] != attr.default
        if change.adults_only:
            masks[ATTR["age"]] &= ~present
        if change.female_only:
            masks[ATTR["gender"]] &= ~present
    return masks


_lock = threading.Lock()
_indexes: dict[str, TextIndex] = {}


def text_index(encoder: TextEncoder) -> TextIndex:
    """The codebook embedded by `encoder` (computed once per machine, loaded once per process)."""
    identity = encoder_identity(encoder)
    with _lock:
        if identity not in _indexes:
            _indexes[identity] = _build_index(encoder, identity)
        return _indexes[identity]


def _build_index(encoder: TextEncoder, identity: str) -> TextIndex:
    codebook = build_codebook()

    def embed() -> dict[str, np.ndarray]:
        log.info("embedding %d codebook sentences with %s (once)", len(codebook.sentences), encoder.name)
        return {"sentences": encoder.encode(codebook.sentences), "neutral": encoder.encode(NEUTRAL_PROMPT)[0]}

    key = digest_of(identity, NEUTRAL_PROMPT, *codebook.sentences)
    arrays = cached_arrays(f"shape-{encoder.name}", key, embed)
    masks = [np.stack([codebook.said[:, i] & (codebook.levels[:, i] == k) for k in range(len(a.values))])
             for i, a in enumerate(ATTRIBUTES)]
    return TextIndex(codebook, arrays["neutral"], differential(arrays["sentences"], arrays["neutral"]), masks,
                     _default_masks(codebook))
