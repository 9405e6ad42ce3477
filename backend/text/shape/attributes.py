"""The axes the text reader moves: Anny phenotypes and local changes, each with ordered levels."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ...models.anny_model import local_change_names
from .. import shape_vocabulary as vocab

PHENOTYPE_MARGIN = 0.12    # evidence (cosine over background/default) a phenotype needs to move
LOCAL_MARGIN = 0.2         # ... and a local change to appear


@dataclass(frozen=True)
class Attribute:
    """A codebook axis: an Anny phenotype or a local change, with ordered levels."""
    name: str
    level_names: tuple[str, ...]
    values: tuple[float, ...]
    default: int                      # index of the level a prompt means when it says nothing
    phenotype: str | None = None      # the Anny phenotype it sets, or None for a local change
    local_change: vocab.LocalChange | None = None

    def side(self, index: int) -> int:
        """-1 below the default level, +1 above, 0 the default itself."""
        return int(np.sign(index - self.default))

    @property
    def margin(self) -> float:
        """The evidence it needs to leave its default (chosen on the dev prompts, bench/text_to_shape.py)."""
        return PHENOTYPE_MARGIN if self.phenotype is not None else LOCAL_MARGIN


def _levels_attribute(name: str, levels: Sequence[vocab.Level]) -> Attribute:
    default = next(i for i, lv in enumerate(levels) if not lv.adjectives)
    return Attribute(name, tuple(lv.name for lv in levels), tuple(lv.value for lv in levels), default, name)


def _attributes() -> tuple[Attribute, ...]:
    gender = Attribute("gender", tuple(n for n, _ in vocab.GENDER_LEVELS), tuple(v for _, v in vocab.GENDER_LEVELS),
                       1, "gender")
    ages = [a[0] for a in vocab.AGE_LEVELS]
    age = Attribute("age", tuple(ages), tuple(a[1] for a in vocab.AGE_LEVELS), ages.index(vocab.DEFAULT_AGE), "age")
    attrs = [gender, age, _levels_attribute("height", vocab.HEIGHT), _levels_attribute("weight", vocab.WEIGHT),
             _levels_attribute("muscle", vocab.MUSCLE), _levels_attribute("proportions", vocab.PROPORTIONS)]
    known = set(local_change_names())
    for change in vocab.LOCAL_CHANGES:
        missing = set(change.modifiers) - known
        if missing:
            raise RuntimeError(f"Anny has no local change {sorted(missing)}: update text/shape_vocabulary.py")
        attrs.append(Attribute(change.name, ("absent", "present"), (0.0, 1.0), 0, None, change))
    return tuple(attrs)


ATTRIBUTES = _attributes()
ATTR = {a.name: i for i, a in enumerate(ATTRIBUTES)}


def valid_change(change: vocab.LocalChange, phenotypes: dict[str, float]) -> bool:
    """No pregnancy for a male body, no adult-only change for a child (below Anny's teen age)."""
    if change.female_only and phenotypes["gender"] < 0.5:
        return False
    if change.adults_only and phenotypes["age"] < vocab.ADULT_AGE:
        return False
    return True
