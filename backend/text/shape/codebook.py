"""The text tier's codebook: Anny bodies, each with a sentence written from its parameters.

Entries are said with shape_vocabulary.py's words: a noun for every age and gender ("an
old man", "a teenage girl"), ages in years ("a woman in her fifties"), every level of
height, weight, muscle and proportions, local changes ("a person with a pregnant belly"),
and BACKGROUND entries: the neutral body said with words about something else (clothes,
things, scenes, actions, roles)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import shape_vocabulary as vocab
from ..numbers import WORD_OF_NUMBER
from ..prompt import NEUTRAL_PROMPT
from .attributes import ATTR, ATTRIBUTES

CODEBOOK_SEED = 20240


@dataclass
class Codebook:
    """Bodies and the texts that describe them. An entry sets the attributes its text
    says (`said`); every other attribute stays at its default level. Background entries
    are the neutral body said with words about something else."""
    levels: np.ndarray            # (E, A) int: level index of each attribute, per entry
    said: np.ndarray              # (E, A) bool: the entry's text says this attribute (maybe its default)
    background: np.ndarray        # (E,) bool
    things: np.ndarray            # (E,) bool: background entries that name no person at all ("a car")
    sentences: list[str]          # (E,)


def article(phrase: str) -> str:
    """The phrase with "a" or "an" before it."""
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


class _Entries:
    """Collects codebook entries: a body (attribute -> level name) and its text."""

    def __init__(self) -> None:
        self.levels: list[np.ndarray] = []
        self.said: list[np.ndarray] = []
        self.background: list[bool] = []
        self.things: list[bool] = []
        self.sentences: list[str] = []
        self._seen: set[str] = set()

    def add(self, text: str, body: dict[str, str], background: bool = False, thing: bool = False) -> None:
        if text in self._seen:
            return
        self._seen.add(text)
        levels = np.array([a.default for a in ATTRIBUTES], dtype=np.int16)
        said = np.zeros(len(ATTRIBUTES), dtype=bool)
        for name, level in body.items():
            levels[ATTR[name]] = ATTRIBUTES[ATTR[name]].level_names.index(level)
            said[ATTR[name]] = True
        self.levels.append(levels)
        self.said.append(said)
        self.background.append(background or thing)
        self.things.append(thing)
        self.sentences.append(text)

    def codebook(self) -> Codebook:
        return Codebook(np.array(self.levels), np.array(self.said), np.array(self.background), np.array(self.things),
                        self.sentences)


def _noun_body(age: str, gender: str, noun: str) -> dict[str, str]:
    """What a noun says: its gender unless unspecified, its age unless it is the
    default-age noun that says no age ("a man"; but "a young man" says young adult)."""
    body: dict[str, str] = {}
    if gender != "unspecified":
        body["gender"] = gender
    if age != vocab.DEFAULT_AGE or "young" in noun or noun == "adult":
        body["age"] = age
    return body


def _add_nouns(out: _Entries) -> None:
    for (age, gender), nouns in vocab.NOUNS.items():
        for noun in nouns:
            out.add(article(noun), _noun_body(age, gender, noun))


def _add_years(out: _Entries) -> None:
    """Ages said in years ("a 52-year-old woman", "a man in his fifties"), a few years per level."""
    for age, _, (lo, hi) in vocab.AGE_LEVELS:
        if age == "baby":
            continue
        years = sorted(set(int(y) for y in np.linspace(lo, hi, 4).round()))
        for gender in ("male", "female", "unspecified"):
            pronoun = vocab.GENDER_PRONOUNS[gender][1]
            adult = vocab.NOUNS[(vocab.DEFAULT_AGE, gender)][0]
            for n in years:
                noun = adult if n >= 20 else vocab.NOUNS[(age, gender)][0]
                body = {"age": age, **({"gender": gender} if gender != "unspecified" else {})}
                out.add(f"a {n}-year-old {noun}", body)
                out.add(f"{article(noun)} aged {n}", body)
                out.add(f"{article(noun)} who is {WORD_OF_NUMBER.get(n, str(n))} years old", body)
                if n >= 20:
                    decade = vocab.DECADE_WORDS[min(n // 10 * 10, 90)]
                    out.add(f"{article(noun)} in {pronoun} {decade}", body)
                    half = "late" if n % 10 >= 5 else "early"
                    out.add(f"{article(noun)} in {pronoun} {half} {decade}", body)


def _add_levels(out: _Entries) -> None:
    """Every level of height, weight, muscle, proportions (defaults said out loud too)."""
    for table, name in ((vocab.HEIGHT, "height"), (vocab.WEIGHT, "weight"), (vocab.MUSCLE, "muscle"),
                        (vocab.PROPORTIONS, "proportions")):
        for level in table:
            for adjective in level.adjectives:
                for noun in ("person", "man", "woman"):
                    gender = {"man": {"gender": "male"}, "woman": {"gender": "female"}}.get(noun, {})
                    out.add(article(f"{adjective} {noun}"), {name: level.name, **gender})
            for phrase in level.phrases:
                out.add(f"a person {phrase}", {name: level.name})


def _add_local_changes(out: _Entries) -> None:
    for change in vocab.LOCAL_CHANGES:
        for adjective in change.adjectives:
            out.add(article(f"{adjective} person"), {change.name: "present"})
        for phrase in change.phrases:
            out.add(f"a person {phrase}", {change.name: "present"})


def _add_background(out: _Entries, rng: np.random.Generator) -> None:
    """The neutral body said with words about something else."""
    for thing in vocab.THINGS:
        out.add(article(thing), {}, thing=True)
        out.add(f"a person with {article(thing)}", {}, background=True)
    for scene in vocab.SCENES:
        out.add(f"a person {scene}", {}, background=True)
    for action in vocab.ACTIONS:
        out.add(f"a person {action}", {}, background=True)
    for role in vocab.ROLES:
        out.add(article(role), {}, background=True)
    for extra in vocab.EXTRAS:
        out.add(f"a person {extra}", {}, background=True)
    for garment in vocab.GARMENTS:
        out.add(f"a person in {article(garment)}", {}, background=True)
        for colour in rng.choice(vocab.COLOURS, 2, replace=False):
            out.add(f"a person wearing {article(f'{colour} {garment}')}", {}, background=True)
    for colour in vocab.COLOURS:
        out.add(article(colour), {}, background=True)


def build_codebook(seed: int = CODEBOOK_SEED) -> Codebook:
    """Every entry the text tier ranks, in a fixed order (a fixed seed draws colours)."""
    out = _Entries()
    out.add(NEUTRAL_PROMPT, {}, background=True)
    _add_nouns(out)
    _add_years(out)
    _add_levels(out)
    _add_local_changes(out)
    _add_background(out, np.random.default_rng(seed))
    return out.codebook()
