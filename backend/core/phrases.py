"""What a motion prompt says, as plain data (DESIGN §2: two domain areas share
data types through the core). text/motion_prompt.py reads a prompt into these;
motion/vocabulary.py matches them against actions, gaits and key poses."""
from __future__ import annotations

from dataclasses import dataclass

SIDES = ("left", "right")
BOTH = "both"
PACES = ("slow", "normal", "fast")      # how fast a clause asks a motion to go


def other_side(side: str) -> str:
    """"left" <-> "right"."""
    return SIDES[1 - SIDES.index(side)]


@dataclass(frozen=True)
class SideMention:
    """A body side a clause names, and what for. `role`: "acting" (the named limb
    moves: "her left arm", "with the right hand", "left-handed"), "supporting" (it
    bears the weight: "on the right leg", "balancing on her left foot"; the other
    one moves) or "direction" (where the body goes: "turns left", "to his right").
    `side` is "left", "right" or "both"; `limb` the limb named, if any."""
    side: str
    role: str
    limb: str | None = None


@dataclass(frozen=True)
class Clause:
    """The words of one action: as written, without their repetition count (what
    the encoder reads), the count ("three times": 3; None when none is named), the
    pace asked for (one of PACES) and the sides named, in order."""
    text: str
    words: str
    count: int | None = None
    pace: str = "normal"
    sides: tuple[SideMention, ...] = ()

    def limb_side(self) -> str | None:
        """The side whose limb moves: the one named as acting, else the other of a
        named supporting one ("stands on the right leg": the left); None if neither."""
        acting = next((m.side for m in self.sides if m.role == "acting"), None)
        if acting is not None:
            return acting
        support = next((m.side for m in self.sides if m.role == "supporting" and m.side != BOTH), None)
        return None if support is None else other_side(support)

    def direction(self) -> str | None:
        """The side the body turns, leans, steps or looks to, if one is named."""
        return next((m.side for m in self.sides if m.role == "direction"), None)


@dataclass(frozen=True)
class Phrase:
    """A piece of the prompt between sequencing words ("then", commas...), and the
    ways it may be cut: `pairs`, two halves that may be done at once ("walks |
    while waving"), at every connective or participle; `parts`, the actions it
    lists when cut at each "and" (empty when it has none)."""
    whole: Clause
    pairs: tuple[tuple[Clause, Clause], ...] = ()
    parts: tuple[Clause, ...] = ()

    def clauses(self) -> list[Clause]:
        """Every clause of the phrase, the whole first."""
        return [self.whole, *self.parts, *(c for pair in self.pairs for c in pair)]
