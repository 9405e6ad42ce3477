"""Words the encoder does not place ("lanky", "stocky", "octogenarian"), said instead by their
WordNet glosses and synonyms (text/lexicon.py), cut at conjunctions into phrases in the same
carriers as the prompt's chunks ("a tall person", "a thin person", "a thickset person")."""
from __future__ import annotations

import re

from ..lexicon import Lexicon
from ..prompt import NEUTRAL_PROMPT
from .chunks import LEADING, WORD, Chunk, carrier
from .codebook import article

_PARENTHESES = re.compile(r"\([^)]*\)")
_CONJUNCTION = re.compile(r"\s*(?:;|,|\band\b|\bas e\.g\.)\s*")
GLOSS_PARTS = 4            # at most this many phrases per gloss


def gloss_phrases(gloss: str) -> list[str]:
    """An adjective gloss cut at its conjunctions into the phrases it joins ("tall and thin and having
    long slender limbs" -> "tall", "thin", "having long slender limbs"): each said alone, as the
    codebook's entries say one attribute each, so "thin" is not weighed against "tall"."""
    text = _PARENTHESES.sub(" ", gloss.lower())
    parts = [" ".join(WORD.findall(p)) for p in _CONJUNCTION.split(text)]
    return [p for p in parts if p][:GLOSS_PARTS]


def _gloss_sentence(phrase: str) -> str:
    """A gloss phrase said of a person: "a thin person", "a heavily built person", "a person having
    long slender limbs", "a person who is lacking bodily or muscular strength"."""
    words = phrase.split()
    if words[0] in LEADING or words[0] in ("having", "being", "whose"):
        return f"{NEUTRAL_PROMPT} {phrase}"
    if len(words) <= 2:
        return article(f"{phrase} person")
    return f"{NEUTRAL_PROMPT} who is {phrase}"


def gloss_chunks(chunks: list[Chunk], lexicon: Lexicon) -> list[Chunk]:
    """For each word of the prompt, chunks saying its first WordNet senses that can describe a person
    ("lanky" -> "a tall person", "a thin person", "a person having long slender limbs"; "octogenarian"
    -> "someone whose age is in the eighties"). They cover the word's span, so the longer chunks
    around the word veto them as they veto the word."""
    out = []
    for c in chunks:
        if c.stop - c.start != 1:
            continue
        for g in lexicon.glosses(c.text):
            if g.noun:      # a noun gloss defines a person as a whole: "someone whose age is in the eighties"
                sentences = [" ".join(_PARENTHESES.sub(" ", g.text).split())]
            else:
                sentences = [_gloss_sentence(p) for p in gloss_phrases(g.text)]
            sentences += [carrier(w) for w in g.synonyms]      # "stocky" -> "a thickset person"
            out += [Chunk(f"{c.text}: {g.text}", c.clause, c.start, c.stop, s, "gloss") for s in sentences]
    return out
