"""Numbers said in English words, for every reader of prompts: ages ("seventy-five
years old") and counts ("three times", "a dozen squats", "twice")."""
from __future__ import annotations

import re

# Cardinals below a hundred are made of these: "seventy-five" = seventy + five.
UNITS: dict[str, int] = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())}
TENS: dict[str, int] = {w: 10 * i for i, w in enumerate(
    "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if w != "_"}
# Words that say how many times, or how many things, without a cardinal.
MULTIPLICATIVES: dict[str, int] = {"once": 1, "twice": 2, "thrice": 3}
QUANTITIES: dict[str, int] = {"a dozen": 12, "a couple of": 2, "a couple": 2}
NUMBER_WORDS: dict[str, int] = {**UNITS, **TENS, **MULTIPLICATIVES, **QUANTITIES}
WORD_OF_NUMBER: dict[int, str] = {n: w for w, n in {**TENS, **UNITS}.items()}

# A count before a noun or "times": digits, a cardinal word or a quantity ("a couple of" before "a couple").
COUNT_WORD = r"(?:\d{1,3}|%s)" % "|".join(sorted((w for w in {**UNITS, **TENS, **QUANTITIES} if w != "zero"),
                                                   key=len, reverse=True))
MULTIPLICATIVE_WORD = r"(?:%s)" % "|".join(MULTIPLICATIVES)

_SPOKEN = re.compile(r"\b(?:(%s)(?:[\s-](%s))?|(%s)|a hundred(?: and (%s))?)\b" % (
    "|".join(TENS), "|".join(w for w in UNITS if 0 < UNITS[w] < 10), "|".join(UNITS), "|".join(UNITS)))


def number_value(word: str) -> int | None:
    """The number a count word says ("7", "seven", "a dozen", "twice"), or None."""
    key = " ".join(word.lower().split())
    if key.isdigit():
        return int(key)
    return NUMBER_WORDS.get(key)


def digits_for_spoken_numbers(text: str) -> str:
    """The text with numbers below 120 said in lower-case English words written in digits
    ("seventy-five-year-old" -> "75-year-old", "a hundred and two" -> "102")."""
    def digits(m: re.Match) -> str:
        tens, unit, alone, hundred_unit = m.groups()
        if tens:
            return str(TENS[tens] + (UNITS[unit] if unit else 0))
        if alone:
            return str(UNITS[alone])
        return str(100 + (UNITS[hundred_unit] if hundred_unit else 0))
    return _SPOKEN.sub(digits, text)
