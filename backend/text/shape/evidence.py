"""From the chunks' scores against the codebook to each attribute's level.

A chunk speaks for an attribute only when that attribute's best entry is (nearly) the chunk's
best entry overall; its evidence for a level is that level's best score minus the best of the
entries that leave the attribute at its default. A longer chunk vetoes the words inside it when
it matches a background entry (closely, or clearly better than any level of the attribute: "old
oak tree" is a tree, "fat cat" a cat) or names a thing WordNet knows ("short story"), unless
those words are its head and the rest a phrase about them ("man | with a beard"); it overrides
their level only when it clearly says another level itself ("teenage boy" over "boy"). An
attribute moves only when its evidence beats its margin; then the best levels on that side are
blended by softmax weights."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ...core.numeric import softmax
from ..lexicon import Lexicon
from .attributes import ATTRIBUTES, Attribute
from .chunks import LEADING, WORD, Chunk
from .index import TextIndex

SUPERSEDE_SCORE = 0.85     # a longer chunk this close to an entry overrides the chunks inside it
VETO_SCORE = 0.6           # a chunk matching a background entry this well ...
VETO_GAP = 0.03            # ... and this far above its best entry on an attribute vetoes the words inside
ABOUT_DELTA = 0.06         # a chunk speaks for an attribute whose best entry is this close to its best overall
BLEND_TEMPERATURE = 0.02   # softmax temperature over level evidence (cosines)
WORD_KNOWN = 0.75          # a word whose own chunk matches an entry this well is read by the encoder, not WordNet
GLOSS_MATCH = 0.65         # a gloss phrase must match some codebook entry this well to say anything
EVIDENCE_SCALE = 0.08      # evidence above the margin that counts as clear (confidence tanh scale)


@dataclass
class AttributeChoice:
    value: float
    level: int                      # the best level (the default when it did not move)
    evidence: float                 # best level's evidence over the margin's reference (<= margin: nothing)
    chunk: str | None               # the chunk that gave it (None: it did not move)
    weights: dict[str, float]       # blended levels and their weights

    @property
    def moved(self) -> bool:
        return self.chunk is not None


@dataclass
class ChunkRelations:
    """How the prompt's chunks relate, whatever the attribute."""
    inside: np.ndarray       # (C, C) bool: chunk i lies within chunk j
    head: np.ndarray         # (C, C) bool: chunk i is chunk j's head ("man" in "man with a beard")
    thing: np.ndarray        # (C,) bool: the chunk opens with a WordNet noun for a thing ("short story")
    word_of: np.ndarray      # (C,) int: for a gloss chunk, its word's chunk; -1 for the others


def chunk_relations(chunks: list[Chunk], lexicon: Lexicon) -> ChunkRelations:
    n = len(chunks)
    inside = np.array([[a.within(b) for b in chunks] for a in chunks], dtype=bool).reshape(n, n)
    # j says i and then something more about it ("man | with a beard"), so j being about clothes does
    # not unsay i. ("tall" in "tall glass of lemonade" is not: the head there is "tall glass".)
    opens = [[k for k, w in enumerate(c.text.split()) if k > 0 and w in LEADING] for c in chunks]
    head = np.array([[bool(opens[j]) and a.within(b) and a.start == b.start and a.stop == b.start + opens[j][0]
                      for j, b in enumerate(chunks)] for a in chunks], dtype=bool).reshape(n, n)
    thing = np.array([c.kind == "words" and any(lexicon.names_a_thing(c.text.split()[:k])
                                                for k in range(2, len(c.text.split()) + 1)) for c in chunks], bool)
    word = {(c.clause, c.start): i for i, c in enumerate(chunks) if c.kind == "words" and c.stop - c.start == 1}
    word_of = np.array([word[(c.clause, c.start)] if c.gloss else -1 for c in chunks], dtype=int)
    return ChunkRelations(inside, head, thing, word_of)


def unplaced_words(scores: np.ndarray, misread: np.ndarray) -> np.ndarray:
    """(C,) bool: chunks the encoder matches to no entry well (WORD_KNOWN), or misreads."""
    return (scores.max(axis=1) < WORD_KNOWN) | misread


def misread_words(chunks: list[Chunk], scores: np.ndarray, index: TextIndex, lexicon: Lexicon) -> np.ndarray:
    """(C,) bool: one-word chunks the encoder places (WORD_KNOWN) near an entry for another sense by
    their spelling ("scrawny" next to "a brawny person"): WordNet files the word and the entry's
    adjectives in different adjective clusters (similar-to links), so the word is read by its glosses
    instead."""
    out = np.zeros(len(chunks), dtype=bool)
    placed = scores.max(axis=1) >= WORD_KNOWN if len(chunks) else np.zeros(0, bool)
    for i, c in enumerate(chunks):
        clusters = lexicon.adjective_clusters(c.text) if c.kind == "words" and c.stop - c.start == 1 else None
        if not clusters or not placed[i]:
            continue
        entry_words = WORD.findall(index.codebook.sentences[int(scores[i].argmax())])
        if c.text in entry_words:
            continue
        entry_clusters = [lexicon.adjective_clusters(w) for w in entry_words]
        entry_clusters = [k for k in entry_clusters if k]
        out[i] = bool(entry_clusters) and not any(clusters & k for k in entry_clusters)
    return out


def containing_misread(chunks: list[Chunk], misread: np.ndarray) -> np.ndarray:
    """(C,) bool: word chunks holding a misread word ("scrawny kid" when "scrawny" is misread)."""
    spans = [(c.clause, c.start) for c, m in zip(chunks, misread) if m]
    return np.array([c.kind == "words" and any(cl == c.clause and c.start <= s < c.stop for cl, s in spans)
                     for c in chunks], dtype=bool)


def vetoed_chunks(scores: np.ndarray, relations: ChunkRelations, index: TextIndex) -> np.ndarray:
    """(C,) bool: chunks inside a longer chunk that names a thing ("short story") or is closely about
    no body, unless they are its head, or that matches a thing better than they match anything even
    as its head ("pitcher" in "pitcher of water")."""
    best_any = scores.max(axis=1)
    nothing = index.codebook.background[scores.argmax(axis=1)] & (best_any >= SUPERSEDE_SCORE)
    thing = index.codebook.things[scores.argmax(axis=1)] & (best_any >= VETO_SCORE)
    outscored = thing[None, :] & (best_any[None, :] > best_any[:, None])
    return (relations.inside & (((nothing | relations.thing)[None, :] & ~relations.head) | outscored)).any(axis=1)


def chunk_evidence(scores: np.ndarray, chunks: list[Chunk], index: TextIndex, relations: ChunkRelations,
                   misread: np.ndarray) -> list[np.ndarray]:
    """Per attribute, (C, L) evidence of each chunk for each level (-inf where it says nothing).
    A word's glosses count only when the encoder does not know the word (its own chunk matches no
    entry well: "lanky", "stocky") or misreads it (`misread`: "scrawny" as "brawny"); chunks holding
    a misread word say nothing. A word it places ("short",
    "old", "little" in "a little girl") means what the encoder reads, not any of its dictionary
    senses ("short: primarily temporal sense", "little: small")."""
    best_any = scores.max(axis=1)
    confident = best_any >= SUPERSEDE_SCORE
    nothing = index.codebook.background[scores.argmax(axis=1)]     # its best entry is a background one
    is_gloss = relations.word_of >= 0     # vague senses ("very: precisely as stated") match no body well
    unread = containing_misread(chunks, misread)      # neither speaks nor vetoes: its words' glosses do
    out = []
    for i, attr in enumerate(ATTRIBUTES):
        masks = index.level_masks[i]
        level_best = np.stack([np.where(m[None], scores, -np.inf).max(axis=1) if m.any()
                               else np.full(len(scores), -np.inf) for m in masks], axis=1)
        # What the chunk matches when this attribute stays at its default (background, other attributes).
        reference = np.where(index.default_masks[i][None], scores, -np.inf).max(axis=1)
        about = (level_best.max(axis=1) >= best_any - ABOUT_DELTA) & ~relations.thing & ~unread \
            & ~(is_gloss & (best_any < GLOSS_MATCH))
        level = level_best.argmax(axis=1)
        raw = level_best - reference[:, None]
        clear = about & (raw[np.arange(len(chunks)), level] > attr.margin) & (level != attr.default)
        # A longer chunk that matches an entry closely decides for the words inside it when it is
        # about no body at all ("short brown hair" vetoes "short") or itself clearly says another
        # level of this ("teenage boy" overrides "boy"; "tiny old woman", which leans to no age
        # level, does not unsay "old"). A chunk about something else whose best body entry on this
        # attribute lies far below it vetoes too ("old oak tree" is a tree), and so does one that
        # names a thing ("short story").
        non_default = np.delete(level_best, attr.default, axis=1).max(axis=1)
        unrelated = (nothing & (best_any >= VETO_SCORE) & (best_any - non_default >= VETO_GAP)) | relations.thing
        decides = ((confident[None, :] & (nothing[None, :] | (clear[None, :] & (level[None, :] != level[:, None]))))
                   | unrelated[None, :]) & ~unread[None, :]
        about &= ~(relations.inside & decides & ~relations.head).any(axis=1)
        evidence = np.where(about[:, None], raw, -np.inf)
        evidence[:, attr.default] = -np.inf
        out.append(evidence)
    word = np.maximum(relations.word_of, 0)
    known_word = is_gloss & (best_any[word] >= WORD_KNOWN) & ~misread[word]
    for evidence in out:
        evidence[known_word] = -np.inf
    return out


def choose_level(attr: Attribute, evidence: np.ndarray, chunks: list[Chunk]) -> AttributeChoice:
    """Default unless a level's evidence beats the margin; then blend the best levels on that side."""
    per_level = evidence.max(axis=0)                      # (L,)
    best = int(np.argmax(per_level))
    top_evidence = float(per_level[best])
    if not np.isfinite(top_evidence) or top_evidence <= attr.margin:
        return AttributeChoice(attr.values[attr.default], attr.default, max(top_evidence, -1.0), None,
                               {attr.level_names[attr.default]: 1.0})
    side = [k for k in range(len(attr.values)) if attr.side(k) == attr.side(best) and np.isfinite(per_level[k])]
    top = sorted(side, key=lambda k: -per_level[k])[:2]
    w = softmax(np.array([per_level[k] for k in top]), BLEND_TEMPERATURE)
    value = float(sum(wi * attr.values[k] for wi, k in zip(w, top)))
    chunk = chunks[int(np.argmax(evidence[:, best]))].text
    return AttributeChoice(value, best, top_evidence, chunk,
                           {attr.level_names[k]: round(float(wi), 3) for wi, k in zip(w, top)})


def said_choice(attr: Attribute, level: int, value: float, text: str, label: str) -> AttributeChoice:
    """A level said outright (an age in numbers, a role's build): as clear as evidence gets
    (confidence: one EVIDENCE_SCALE above the margin)."""
    return AttributeChoice(round(value, 4), level, attr.margin + EVIDENCE_SCALE, text, {label: 1.0})


def confidence(excess: Sequence[float]) -> float:
    """1 - prod(1 - tanh(evidence above margin / scale)) over what moved; 0 when nothing moved."""
    miss = 1.0
    for e in excess:
        if e > 0:
            miss *= 1.0 - float(np.tanh(e / EVIDENCE_SCALE))
    return round(1.0 - miss, 4)
