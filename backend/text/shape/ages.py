"""Ages said in numbers ("a 70-year-old man", "aged 8", "in his 40s", "a man of 45",
"seventy-five years old"), read explicitly and put on Anny's age scale.

Numbers carry no meaning a sentence encoder can be trusted with ("a 70-year-old man" lands near
young adults in MiniLM), so an age given in numbers is read here. This reads numbers only; every
word-level cue (nouns, "elderly", "in her eighties") still goes through the embeddings."""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..numbers import digits_for_spoken_numbers

# Anny's age scale is MakeHuman's: 1, 11, 25 and 90 years at 0, 1/3, 2/3 and 1, linear between.
AGE_YEARS = (1.0, 11.0, 25.0, 90.0)
AGE_VALUES = (0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0)
MAX_AGE_YEARS = 125

_PER_YEAR = {"year": 1.0, "yr": 1.0, "month": 12.0, "week": 52.0, "day": 365.0}
_NOT_AGE_AFTER = r"(?!\s*(?:%|cm|mm|m|km|kg|g|lb|lbs|pounds?|feet|foot|ft|inch|inches|in\b|meters?|metres?|percent))"
_AGE_PATTERNS = (
    # "a 70-year-old man", "70 years old", "a 6-month-old baby", "aged 30 years old"
    re.compile(r"\b(\d{1,3})\s*[- ]?\s*(year|yr|month|week|day)s?\s*[- ]?\s*old\b"),
    re.compile(r"\b(\d{1,3})\s*(?:years?|yrs?)\s+of\s+age\b"),
    re.compile(r"\b(\d{1,3})\s*(?:yo|y/o|y\.o\.)(?![a-z])"),
    # "aged 8", "age 45", "at age 30", "of age 60"
    re.compile(r"\bage[ds]?\s*(?:of\s+)?(\d{1,3})\b" + _NOT_AGE_AFTER),
    # "a man of 45" (a bare number after "of", ending the phrase)
    re.compile(r"\bof\s+(\d{1,3})(?=\s*(?:$|[,;.!?)]|and\b|with\b|in\b|wearing\b|who\b|dressed\b))"),
    # "a woman, 62, in a coat"
    re.compile(r"(?:^|,)\s*(\d{1,3})\s*(?=,|$)"),
)
# "in his 40s", "in her early 30s", "in their mid-70's"
_DECADE = re.compile(r"\bin\s+(?:his|her|their|my|your|the|its)\s+(?:(early|mid|late)[\s-]*)?(\d)0\s*'?s\b")
_DECADE_OFFSET = {"early": 2.0, "mid": 5.0, "late": 8.0, None: 5.0}


@dataclass(frozen=True)
class NumericAge:
    years: float
    value: float          # on Anny's scale
    text: str             # the words that said it


def years_to_anny_age(years: float) -> float:
    """Anny's age value for an age in years (MakeHuman's piecewise-linear scale, clamped to [0, 1])."""
    return float(np.interp(years, AGE_YEARS, AGE_VALUES))


def numeric_age(prompt: str) -> NumericAge | None:
    """The age a prompt gives in numbers (digits or number words), or None. The first one wins."""
    text = digits_for_spoken_numbers(prompt.lower())
    found: list[tuple[int, NumericAge]] = []
    for pattern in _AGE_PATTERNS:
        for m in pattern.finditer(text):
            unit = m.group(2) if pattern.groups >= 2 else "year"
            years = float(m.group(1)) / _PER_YEAR[unit]
            if 0 <= years <= MAX_AGE_YEARS:
                found.append((m.start(), NumericAge(years, years_to_anny_age(years), m.group(0).strip(" ,"))))
    for m in _DECADE.finditer(text):
        decade = 10.0 * int(m.group(2))
        if decade >= 10:
            years = decade + _DECADE_OFFSET[m.group(1)]
            found.append((m.start(), NumericAge(years, years_to_anny_age(years), m.group(0))))
    return min(found, key=lambda f: f[0])[1] if found else None
