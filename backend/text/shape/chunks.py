"""A prompt cut into CHUNKS: its words and n-grams up to CHUNK_WORDS long, never across a
clause mark, each said of a person in a neutral carrier ("a {chunk} person", "a person
{chunk}") the way the codebook's entries are said, so that a long prompt does not dilute
"tall" and a chunk about clothes scores on no body attribute."""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..prompt import NEUTRAL_PROMPT
from .codebook import article

CHUNK_WORDS = 4            # longest n-gram of the prompt scored on its own

# Words that cannot end a chunk (a chunk "old man in" says no more than "old man"), and
# words after which the chunk describes the person from behind ("a person in her eighties").
TRAILING = frozenset("a an the of in with and or to his her their its is are was who on at for by as "
                     "that which this from".split())
LEADING = frozenset("in with who of aged wearing expecting having whose over under nearly barely above below "
                    "at built carrying holding weighing standing".split())
_CLAUSE = re.compile(r"[,;.!?:()\[\]\"]+")
WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")


@dataclass(frozen=True)
class Chunk:
    """Words start..stop (exclusive) of one clause of the prompt. A gloss chunk stands for the
    word at start..stop and is said by its dictionary definition (`sentence`) instead."""
    text: str
    clause: int
    start: int
    stop: int
    sentence: str = ""          # what is embedded: carrier(text) unless set
    kind: str = "words"         # "words" (the prompt's own) or "gloss"

    @property
    def said(self) -> str:
        return self.sentence or carrier(self.text)

    @property
    def gloss(self) -> bool:
        return self.kind == "gloss"

    def within(self, other: "Chunk") -> bool:
        """True when this chunk is a strict part of `other`."""
        return (self.clause == other.clause and other.start <= self.start and self.stop <= other.stop
                and (other.start, other.stop) != (self.start, self.stop))


def prompt_chunks(prompt: str, max_words: int = CHUNK_WORDS) -> list[Chunk]:
    """The prompt's words and n-grams (up to max_words, never across a clause mark),
    without leading articles or trailing function words."""
    chunks: list[Chunk] = []
    for c, clause in enumerate(_CLAUSE.split(prompt.lower())):
        words = WORD.findall(clause)
        for n in range(1, max_words + 1):
            for start in range(len(words) - n + 1):
                gram = words[start:start + n]
                if gram[0] in ("a", "an", "the") or gram[-1] in TRAILING:
                    continue
                chunks.append(Chunk(" ".join(gram), c, start, start + n))
    return chunks


def carrier(chunk: str) -> str:
    """The chunk said of a person, the way the codebook's entries are said."""
    words = chunk.split()
    if words[0] in LEADING:
        return f"{NEUTRAL_PROMPT} {chunk}"
    if any(w in LEADING for w in words[1:]):
        return article(chunk)
    return article(f"{chunk} person")
