"""Adjectives the encoder does not place ("lissome", "bulky", "scrawny" when it is misread),
read through WordNet's adjective clusters: a cluster that several of the codebook's level
adjectives belong to says that level ("lissome" and "willowy" and "svelte" are all "graceful":
thin). A cluster reached by one level adjective only is left out, as it is likely that word's
other sense ("fit: meeting a standard")."""
from __future__ import annotations

from collections import defaultdict
from functools import lru_cache

import numpy as np

from .. import shape_vocabulary as vocab
from ..lexicon import Lexicon
from .attributes import ATTR, ATTRIBUTES
from .chunks import Chunk
from .roles import WordReading

CLUSTER_SUPPORT = 2        # level adjectives a cluster must hold to say their level
LEVEL_TABLES = {"height": vocab.HEIGHT, "weight": vocab.WEIGHT, "muscle": vocab.MUSCLE}


@lru_cache(maxsize=4)
def cluster_levels(lexicon: Lexicon) -> dict[str, dict[str, str]]:
    """Cluster head -> {attribute: level name}: per attribute, the mildest level of the side its
    level adjectives in that cluster agree on (clusters split across sides say nothing of it)."""
    members: dict[str, dict[str, set[tuple[str, str]]]] = defaultdict(lambda: defaultdict(set))
    for name, table in LEVEL_TABLES.items():
        for level in table:
            for adjective in level.adjectives:
                for head in lexicon.adjective_clusters(adjective):
                    members[head][name].add((level.name, adjective))
    out: dict[str, dict[str, str]] = {}
    for head, by_attribute in members.items():
        if len({a for said in by_attribute.values() for _, a in said}) < CLUSTER_SUPPORT:
            continue
        levels = {name: _mildest(name, {lv for lv, _ in said}) for name, said in by_attribute.items()}
        out[head] = {name: lv for name, lv in levels.items() if lv is not None}
    return out


def _mildest(name: str, levels: set[str]) -> str | None:
    """The level nearest the default when all lie on one side of it, else None."""
    attr = ATTRIBUTES[ATTR[name]]
    index = [attr.level_names.index(lv) for lv in levels]
    sides = {attr.side(i) for i in index}
    if len(sides) != 1:
        return None
    return attr.level_names[min(index, key=lambda i: abs(i - attr.default))]


def read_adjectives(chunks: list[Chunk], unplaced: np.ndarray, vetoed: np.ndarray,
                    lexicon: Lexicon) -> list[WordReading]:
    """What the clusters of the prompt's unplaced, unvetoed one-word adjectives say."""
    table = cluster_levels(lexicon)
    out = []
    for c, free, veto in zip(chunks, unplaced, vetoed):
        if c.kind != "words" or c.stop - c.start != 1 or not free or veto:
            continue
        heads = sorted(h for h in lexicon.adjective_clusters(c.text) if h in table)
        levels: dict[str, str] = {}
        for h in heads:
            for name, lv in table[h].items():
                levels.setdefault(name, lv)
        if levels:
            out.append(WordReading(c, heads[0], levels, " ".join(heads)))
    return out
