"""Text -> body shape (AvatarCLIP stage S1): rank a codebook of bodies against a prompt.

The codebook (`build_codebook`) is a set of Anny bodies, each with a text
written from its parameters (shape_vocabulary.py draws the words): a noun for
every age and gender ("an old man", "a teenage girl"), ages said in years ("a
woman in her fifties", "a 70-year-old man"), every level of height, weight,
muscle and proportions ("a tall person", "a person of average height"), local
changes ("a person with a pregnant belly", "a broad-shouldered person"), and
BACKGROUND entries: the neutral body said with words about something else
(clothes, things, scenes, actions, roles).

Scores are AvatarCLIP's differential similarity: cos(e(x) - e(neutral),
e(entry) - e(neutral)), with e(neutral) the embedding of "a person". Two tiers:

- Text tier (MiniLM, or any encoder other than CLIP): the prompt is cut into
  CHUNKS (its words and n-grams up to CHUNK_WORDS long, never across a comma),
  each embedded in a neutral carrier ("a {chunk} person", "a person {chunk}")
  in one batched encoder call, so a long prompt does not dilute "tall" and a
  chunk about clothes scores on no body attribute. A chunk speaks for an
  attribute only when that attribute's best entry is (nearly) the chunk's best
  entry overall; its evidence for a level is that level's best score minus the
  best of the background and the attribute's default level. A longer chunk
  vetoes the words inside it when it matches a background entry (closely, or
  clearly better than any level of the attribute: "old oak tree" is a tree, "fat
  cat" a cat), unless those words are its head and the rest a phrase about them
  ("man | with a beard"); it overrides their level only when it clearly says
  another level itself ("teenage boy" over "boy"). An attribute moves
  only when its evidence beats a margin (`PHENOTYPE_MARGIN`, `LOCAL_MARGIN`, chosen on the dev prompts of
  bench/data/text_to_shape_dev.json and checked once on the hold-out set), then the best
  levels on that side are blended by softmax weights. Local changes need
  stronger evidence and must be valid for the body (no pregnancy for men or
  children). Confidence comes from the evidence above the margins and is 0
  when nothing moved: a prompt about a red car keeps the neutral body.
  Words the encoder does not place ("lanky", "stocky", "octogenarian": their
  own chunk matches no entry well, WORD_KNOWN) are also said by their WordNet
  glosses and synonyms (text/lexicon.py), cut at conjunctions into phrases
  in the same carriers ("a tall person", "a thin person", "a thickset
  person") and scored in the same batched call; a phrase that matches no entry
  well (GLOSS_MATCH) says nothing, and the longer chunks around the word veto
  its glosses as they veto the word. Multi-word WordNet nouns for things other
  than people ("short story", "heavy metal", "giant panda") veto the words
  inside them.
  Ages given in NUMBERS ("a 70-year-old man", "aged 8", "in his 40s", "a man
  of 45", "seventy-five years old") are read explicitly (`numeric_age`) and
  mapped onto Anny's age scale: a sentence encoder does not know what a number
  means. Only numbers are read this way; words go through the embeddings.
- Image tier (CLIP): every entry of a smaller image codebook is rendered once
  (neutral grey, front, render/body_render.py), the image embeddings are cached,
  and entries are ranked exactly as AvatarCLIP S1 (image minus neutral image vs
  text minus neutral text); the top entries are blended by softmax weights.

SMPL (`model="smpl"`): entries are SMPL shape vectors; each is built with the
user's model file and described from what was MEASURED on it (height and waist
girth relative to the mean shape), never from assumed meanings of the betas.

Embeddings of the codebook are computed once per encoder version and codebook
version and kept on disk (`shape_cache_dir`); a warm prompt costs one batched
encoder call over its chunks and a matrix product.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from avatarforge.protocol import ErrorCode, ProtocolError

from ..config import BackendConfig
from ..models.anny_model import default_phenotypes, local_change_names, phenotype_names
from .lexicon import LEXICON_VERSION, Lexicon, load_lexicon
from ..models.text_encoder import TextEncoder, differential, unit_rows
from . import shape_vocabulary as vocab
from .prompt import clean_prompt

log = logging.getLogger(__name__)

SHAPE_VERSION = "4"        # bump when the same prompt would give a different shape
CODEBOOK_VERSION = "3"     # bump when the codebook's entries or sentences change
IMAGE_CODEBOOK_VERSION = "1"
CODEBOOK_SEED = 20240
NEUTRAL_TEXT = "a person"
MODELS = ("anny", "smpl")

# Ranking constants (the same for every prompt; chosen on generated text and the dev set,
# see bench/text_to_shape.py).
CHUNK_WORDS = 4            # longest n-gram of the prompt scored on its own
SUPERSEDE_SCORE = 0.85     # a longer chunk this close to an entry overrides the chunks inside it
VETO_SCORE = 0.6           # a chunk matching a background entry this well ...
VETO_GAP = 0.03             # ... and this far above its best entry on an attribute vetoes the words inside
ABOUT_DELTA = 0.06         # a chunk speaks for an attribute whose best entry is this close to its best overall
PHENOTYPE_MARGIN = 0.12    # evidence (cosine over background/default) an attribute needs to move
LOCAL_MARGIN = 0.2         # ... and a local change to appear
BLEND_TEMPERATURE = 0.02   # softmax temperature over level evidence (cosines)
WORD_KNOWN = 0.75          # a word whose own chunk matches an entry this well is read by the encoder, not WordNet
GLOSS_MATCH = 0.65         # a gloss phrase must match some codebook entry this well to say anything
EVIDENCE_SCALE = 0.08      # evidence above the margin that counts as clear (confidence tanh scale)
IMAGE_TOP_K = 5
IMAGE_TEMPERATURE = 0.01
IMAGE_TEXT_TEMPLATE = "a 3D rendering of {} in unreal engine"   # AvatarCLIP's prompt template




# -- the attributes and their levels ---------------------------------------------

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


def _levels_attribute(name: str, levels: Sequence[vocab.Level], phenotype: str) -> Attribute:
    default = next(i for i, lv in enumerate(levels) if not lv.adjectives)
    return Attribute(name, tuple(lv.name for lv in levels), tuple(lv.value for lv in levels), default, phenotype)


def _attributes() -> tuple[Attribute, ...]:
    gender = Attribute("gender", tuple(n for n, _ in vocab.GENDER_LEVELS), tuple(v for _, v in vocab.GENDER_LEVELS),
                       1, "gender")
    ages = [a[0] for a in vocab.AGE_LEVELS]
    age = Attribute("age", tuple(ages), tuple(a[1] for a in vocab.AGE_LEVELS), ages.index(vocab.DEFAULT_AGE), "age")
    attrs = [gender, age, _levels_attribute("height", vocab.HEIGHT, "height"),
             _levels_attribute("weight", vocab.WEIGHT, "weight"), _levels_attribute("muscle", vocab.MUSCLE, "muscle"),
             _levels_attribute("proportions", vocab.PROPORTIONS, "proportions")]
    known = set(local_change_names())
    for change in vocab.LOCAL_CHANGES:
        missing = set(change.modifiers) - known
        if missing:
            raise RuntimeError(f"Anny has no local change {sorted(missing)}: update text/shape_vocabulary.py")
        attrs.append(Attribute(change.name, ("absent", "present"), (0.0, 1.0), 0, None, change))
    return tuple(attrs)


ATTRIBUTES = _attributes()
ATTR = {a.name: i for i, a in enumerate(ATTRIBUTES)}


# -- results ------------------------------------------------------------------------

@dataclass
class ShapeEstimate:
    model: str
    phenotypes: dict[str, float]
    local_changes: dict[str, float]
    betas: list[float]
    confidence: float
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "phenotypes": dict(self.phenotypes),
                               "local_changes": dict(self.local_changes), "confidence": self.confidence}
        if self.model == "smpl":
            out["betas"] = list(self.betas)
        return out



# -- the codebook -------------------------------------------------------------------

@dataclass
class Codebook:
    """Bodies and the texts that describe them. An entry sets the attributes its text
    says (`said`); every other attribute stays at its default level. Background entries
    are the neutral body said with words about something else."""
    levels: np.ndarray            # (E, A) int: level index of each attribute, per entry
    said: np.ndarray              # (E, A) bool: the entry's text says this attribute (maybe its default)
    background: np.ndarray        # (E,) bool
    sentences: list[str]          # (E,)


def _article(phrase: str) -> str:
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def _pick(options: Sequence[str], u: float) -> str:
    """The option a uniform draw u in [0, 1) selects."""
    return str(options[min(int(u * len(options)), len(options) - 1)])


class _Entries:
    """Collects codebook entries: a body (attribute -> level name) and its text."""

    def __init__(self) -> None:
        self.levels: list[np.ndarray] = []
        self.said: list[np.ndarray] = []
        self.background: list[bool] = []
        self.sentences: list[str] = []
        self._seen: set[str] = set()

    def add(self, text: str, body: dict[str, str], background: bool = False) -> None:
        if text in self._seen:
            return
        self._seen.add(text)
        levels = np.array([a.default for a in ATTRIBUTES], dtype=np.int16)
        said = np.zeros(len(ATTRIBUTES), dtype=bool)
        for name, level in body.items():
            a = ATTRIBUTES[ATTR[name]]
            levels[ATTR[name]] = a.level_names.index(level)
            said[ATTR[name]] = True
        self.levels.append(levels)
        self.said.append(said)
        self.background.append(background)
        self.sentences.append(text)

    def codebook(self) -> Codebook:
        return Codebook(np.array(self.levels), np.array(self.said), np.array(self.background), self.sentences)


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
            out.add(_article(noun), _noun_body(age, gender, noun))


def _add_years(out: _Entries, rng: np.random.Generator) -> None:
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
                out.add(f"{_article(noun)} aged {n}", body)
                spoken = vocab.NUMBER_WORDS.get(n, str(n))
                out.add(f"{_article(noun)} who is {spoken} years old", body)
                if n >= 20:
                    decade = vocab.DECADE_WORDS[min(n // 10 * 10, 90)]
                    out.add(f"{_article(noun)} in {pronoun} {decade}", body)
                    half = "late" if n % 10 >= 5 else "early"
                    out.add(f"{_article(noun)} in {pronoun} {half} {decade}", body)


def _add_levels(out: _Entries) -> None:
    """Every level of height, weight, muscle, proportions (defaults said out loud too)."""
    for table, name in ((vocab.HEIGHT, "height"), (vocab.WEIGHT, "weight"), (vocab.MUSCLE, "muscle"),
                        (vocab.PROPORTIONS, "proportions")):
        for level in table:
            for adjective in level.adjectives:
                for noun in ("person", "man", "woman"):
                    gender = {"man": {"gender": "male"}, "woman": {"gender": "female"}}.get(noun, {})
                    out.add(_article(f"{adjective} {noun}"), {name: level.name, **gender})
            for phrase in level.phrases:
                out.add(f"a person {phrase}", {name: level.name})


def _add_local_changes(out: _Entries) -> None:
    for change in vocab.LOCAL_CHANGES:
        for adjective in change.adjectives:
            out.add(_article(f"{adjective} person"), {change.name: "present"})
        for phrase in change.phrases:
            out.add(f"a person {phrase}", {change.name: "present"})


def _add_background(out: _Entries, rng: np.random.Generator) -> None:
    """The neutral body said with words about something else."""
    for thing in vocab.THINGS:
        out.add(_article(thing), {}, background=True)
        out.add(f"a person with {_article(thing)}", {}, background=True)
    for scene in vocab.SCENES:
        out.add(f"a person {scene}", {}, background=True)
    for action in vocab.ACTIONS:
        out.add(f"a person {action}", {}, background=True)
    for role in vocab.ROLES:
        out.add(_article(role), {}, background=True)
    for extra in vocab.EXTRAS:
        out.add(f"a person {extra}", {}, background=True)
    for garment in vocab.GARMENTS:
        out.add(f"a person in {_article(garment)}", {}, background=True)
        for colour in rng.choice(vocab.COLOURS, 2, replace=False):
            out.add(f"a person wearing {_article(f'{colour} {garment}')}", {}, background=True)
    for colour in vocab.COLOURS:
        out.add(_article(colour), {}, background=True)


def build_codebook(seed: int = CODEBOOK_SEED) -> Codebook:
    """Every entry the text tier ranks, in a fixed order (a fixed seed draws colours)."""
    rng = np.random.default_rng(seed)
    out = _Entries()
    out.add(NEUTRAL_TEXT, {}, background=True)
    _add_nouns(out)
    _add_years(out, rng)
    _add_levels(out)
    _add_local_changes(out)
    _add_background(out, rng)
    return out.codebook()


def _sentence(noun: str, adjectives: list[str], phrases: list[str], gender: str, form: int) -> str:
    """A sentence from a noun, adjectives before it and phrases after it (SMPL descriptions)."""
    pronoun = vocab.GENDER_PRONOUNS[gender][0]
    tail = (" " + " and ".join(phrases)) if phrases else ""
    if form == 0 or not adjectives:
        lead = ", ".join(adjectives[:-1]) + (", " if len(adjectives) > 1 else "") + \
            (adjectives[-1] + " " if adjectives else "")
        return _article(lead + noun) + tail
    if form == 1:
        return _article(noun) + " who is " + " and ".join(adjectives) + ("," + tail if tail else "")
    if form == 2:
        verb = "are" if pronoun == "they" else "is"
        return f"{pronoun.capitalize()} {verb} " + _article(" ".join(adjectives) + " " + noun) + tail
    if form == 3:
        return " ".join(adjectives) + " " + noun + tail
    return _article(noun) + ", " + " and ".join(adjectives) + ("," + tail if tail else "")




# -- caching ------------------------------------------------------------------------

def shape_cache_dir() -> Path:
    """Where codebook embeddings live: env AVATARFORGE_TEXT_CACHE, else ~/.cache/avatarforge/text."""
    value = os.environ.get("AVATARFORGE_TEXT_CACHE")
    return Path(value) if value else Path.home() / ".cache" / "avatarforge" / "text"


def _cache_key(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:20]


def _cached_arrays(name: str, key: str, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Arrays from <cache>/<name>-<key>.npz, computed and written (atomically) when absent."""
    path = shape_cache_dir() / f"{name}-{key}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError) as exc:      # a truncated file from a killed process: rebuild it
            log.warning("rebuilding %s (%s)", path, exc)
    arrays = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return arrays


@dataclass
class _TextIndex:
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
_text_indexes: dict[tuple[str, str], _TextIndex] = {}


def _text_index(encoder: TextEncoder) -> _TextIndex:
    key = (encoder.name, encoder.version)
    with _lock:
        if key not in _text_indexes:
            codebook = build_codebook()
            digest = _cache_key(CODEBOOK_VERSION, encoder.name, encoder.version, *codebook.sentences)

            def embed() -> dict[str, np.ndarray]:
                log.info("embedding %d codebook sentences with %s (once)", len(codebook.sentences), encoder.name)
                return {"sentences": encoder.encode(codebook.sentences), "neutral": encoder.encode(NEUTRAL_TEXT)[0]}

            arrays = _cached_arrays(f"shape-{encoder.name}", digest, embed)
            masks = [np.stack([codebook.said[:, i] & (codebook.levels[:, i] == k) for k in range(len(a.values))])
                     for i, a in enumerate(ATTRIBUTES)]
            _text_indexes[key] = _TextIndex(codebook, arrays["neutral"],
                                            differential(arrays["sentences"], arrays["neutral"]), masks,
                                            _default_masks(codebook))
        return _text_indexes[key]


# -- ranking (text tier) --------------------------------------------------------------

# Words that cannot end a chunk (a chunk "old man in" says no more than "old man"), and
# words after which the chunk describes the person from behind ("a person in her eighties").
_TRAILING = frozenset("a an the of in with and or to his her their its is are was who on at for by as "
                      "that which this from".split())
_LEADING = frozenset("in with who of aged wearing expecting having whose over under nearly barely above below "
                     "at built carrying holding weighing standing".split())
_CLAUSE = re.compile(r"[,;.!?:()\[\]\"]+")
_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")


@dataclass(frozen=True)
class Chunk:
    """Words start..stop (exclusive) of one clause of the prompt. A GLOSS chunk stands for the word
    at start..stop and is said by its dictionary definition (`sentence`) instead of the word."""
    text: str
    clause: int
    start: int
    stop: int
    sentence: str = ""          # what is embedded: carrier(text) unless set (gloss chunks)

    @property
    def said(self) -> str:
        return self.sentence or carrier(self.text)

    @property
    def gloss(self) -> bool:
        return bool(self.sentence)

    def within(self, other: "Chunk") -> bool:
        """True when this chunk is a strict part of `other`."""
        return (self.clause == other.clause and other.start <= self.start and self.stop <= other.stop
                and (other.start, other.stop) != (self.start, self.stop))


def prompt_chunks(prompt: str, max_words: int = CHUNK_WORDS) -> list[Chunk]:
    """The prompt's words and n-grams (up to max_words, never across a clause mark),
    without leading articles or trailing function words."""
    chunks: list[Chunk] = []
    for c, clause in enumerate(_CLAUSE.split(prompt.lower())):
        words = _WORD.findall(clause)
        for n in range(1, max_words + 1):
            for start in range(len(words) - n + 1):
                gram = words[start:start + n]
                if gram[0] in ("a", "an", "the") or gram[-1] in _TRAILING:
                    continue
                chunks.append(Chunk(" ".join(gram), c, start, start + n))
    return chunks


_PARENTHESES = re.compile(r"\([^)]*\)")
_CONJUNCTION = re.compile(r"\s*(?:;|,|\band\b|\bas e\.g\.)\s*")
GLOSS_PARTS = 4            # at most this many phrases per gloss


def gloss_phrases(gloss: str) -> list[str]:
    """An adjective gloss cut at its conjunctions into the phrases it joins ("tall and thin and having
    long slender limbs" -> "tall", "thin", "having long slender limbs"): each said alone, as the
    codebook's entries say one attribute each, so "thin" is not weighed against "tall"."""
    text = _PARENTHESES.sub(" ", gloss.lower())
    parts = [" ".join(_WORD.findall(p)) for p in _CONJUNCTION.split(text)]
    return [p for p in parts if p][:GLOSS_PARTS]


def _gloss_sentence(phrase: str) -> str:
    """A gloss phrase said of a person: "a thin person", "a heavily built person", "a person having
    long slender limbs", "a person who is lacking bodily or muscular strength"."""
    words = phrase.split()
    if words[0] in _LEADING or words[0] in ("having", "being", "whose"):
        return f"{NEUTRAL_TEXT} {phrase}"
    if len(words) <= 2:
        return _article(f"{phrase} person")
    return f"{NEUTRAL_TEXT} who is {phrase}"


def gloss_chunks(chunks: list[Chunk], lexicon: Lexicon) -> list[Chunk]:
    """For each word of the prompt, chunks saying its first WordNet senses that can describe a person,
    in the same neutral carriers ("lanky" -> "a tall person", "a thin person", "a person having long
    slender limbs"; "octogenarian" -> "someone whose age is in the eighties"). They cover the word's
    span, so the longer chunks around the word veto them as they veto the word."""
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
            out += [Chunk(f"{c.text}: {g.text}", c.clause, c.start, c.stop, s) for s in sentences]
    return out


def carrier(chunk: str) -> str:
    """The chunk said of a person, the way the codebook's entries are said."""
    words = chunk.split()
    if words[0] in _LEADING:
        return f"{NEUTRAL_TEXT} {chunk}"
    if any(w in _LEADING for w in words[1:]):
        return _article(chunk)
    return _article(f"{chunk} person")


# -- ages said in numbers ----------------------------------------------------------------
# Numbers carry no meaning a sentence encoder can be trusted with ("a 70-year-old man" lands near
# young adults in MiniLM), so an age given in numbers is read explicitly. This reads numbers only;
# every word-level cue (nouns, "elderly", "in her eighties") still goes through the embeddings.

# Anny's age scale is MakeHuman's: 1, 11, 25 and 90 years at 0, 1/3, 2/3 and 1, linear between.
AGE_YEARS = (1.0, 11.0, 25.0, 90.0)
AGE_VALUES = (0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0)
MAX_AGE_YEARS = 125

_UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                                     "fourteen fifteen sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split())
         if w != "_"}
_SPOKEN = re.compile(r"\b(?:(%s)(?:[\s-](%s))?|(%s)|a hundred(?: and (%s))?)\b" % (
    "|".join(_TENS), "|".join(w for w in _UNITS if 0 < _UNITS[w] < 10), "|".join(_UNITS),
    "|".join(_UNITS)))
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


def _digits_for_spoken_numbers(text: str) -> str:
    """'seventy-five-year-old' -> '75-year-old' (numbers below 120 said in English words)."""
    def number(m: re.Match) -> str:
        tens, unit, alone, hundred_unit = m.groups()
        if tens:
            return str(_TENS[tens] + (_UNITS[unit] if unit else 0))
        if alone:
            return str(_UNITS[alone])
        return str(100 + (_UNITS[hundred_unit] if hundred_unit else 0))
    return _SPOKEN.sub(number, text)


def numeric_age(prompt: str) -> NumericAge | None:
    """The age a prompt gives in numbers (digits or number words), or None. The first one wins."""
    text = _digits_for_spoken_numbers(prompt.lower())
    found: list[tuple[int, NumericAge]] = []
    for pattern in _AGE_PATTERNS:
        for m in pattern.finditer(text):
            n = float(m.group(1))
            unit = m.group(2) if pattern.groups >= 2 else "year"
            years = n / _PER_YEAR[unit]
            if 0 <= years <= MAX_AGE_YEARS:
                found.append((m.start(), NumericAge(years, years_to_anny_age(years), m.group(0).strip(" ,"))))
    for m in _DECADE.finditer(text):
        decade = 10.0 * int(m.group(2))
        if decade >= 10:
            years = decade + _DECADE_OFFSET[m.group(1)]
            found.append((m.start(), NumericAge(years, years_to_anny_age(years), m.group(0))))
    return min(found, key=lambda f: f[0])[1] if found else None


@dataclass
class _AttributeChoice:
    value: float
    level: int                      # the best level (the default when it did not move)
    evidence: float                 # best level's evidence over the margin's reference (<= margin: nothing)
    chunk: str | None               # the chunk that gave it
    weights: dict[str, float]       # blended levels and their weights


def _containment(chunks: list[Chunk]) -> np.ndarray:
    """(C, C) bool: chunk i lies within chunk j."""
    return np.array([[a.within(b) for b in chunks] for a in chunks], dtype=bool).reshape(len(chunks), len(chunks))


def _heads(chunks: list[Chunk]) -> np.ndarray:
    """(C, C) bool: chunk i is all the words of chunk j before a phrase-opening word ("man" in "man
    with a beard"): j says i and then something more about it, so j being about clothes does not
    unsay i. ("tall" in "tall glass of lemonade" is not: the head there is "tall glass".)"""
    opens = [[k for k, w in enumerate(c.text.split()) if k > 0 and w in _LEADING] for c in chunks]
    return np.array([[bool(opens[j]) and a.within(b) and a.start == b.start and a.stop == b.start + opens[j][0]
                      for j, b in enumerate(chunks)] for a in chunks], dtype=bool).reshape(len(chunks), len(chunks))


def _names_a_thing(chunks: list[Chunk], lexicon: Lexicon) -> np.ndarray:
    """(C,) bool: the chunk opens with words that WordNet knows as a noun for something other than
    a person or the body ("short story", "heavy metal", "giant panda"): the chunk is about that
    thing, and the words inside the thing's name say nothing about a person."""
    out = np.zeros(len(chunks), dtype=bool)
    for i, c in enumerate(chunks):
        words = c.text.split()
        out[i] = not c.gloss and any(lexicon.names_a_thing(words[:k]) for k in range(2, len(words) + 1))
    return out


def _word_chunk_of(chunks: list[Chunk]) -> np.ndarray:
    """(C,) int: for a gloss chunk, the index of the word chunk it stands for; -1 for the others."""
    word = {(c.clause, c.start): i for i, c in enumerate(chunks) if not c.gloss and c.stop - c.start == 1}
    return np.array([word[(c.clause, c.start)] if c.gloss else -1 for c in chunks], dtype=int)


def _chunk_evidence(scores: np.ndarray, chunks: list[Chunk], index: _TextIndex,
                    lexicon: Lexicon) -> list[np.ndarray]:
    """Per attribute, (C, L) evidence of each chunk for each level: the level's best entry
    minus the best entry that leaves the attribute at its default, counted only
    when the chunk is about this attribute (its best entry here is within ABOUT_DELTA
    of its best entry overall) and no longer chunk around it matches an entry closely;
    -inf otherwise. A word's glosses count only when the encoder does not know the word
    (its own chunk matches no entry well: "lanky", "stocky"): a word it places ("short",
    "old", "little" in "a little girl") means what the encoder reads, not any of its
    dictionary senses ("short: primarily temporal sense", "little: small")."""
    best_any = scores.max(axis=1)
    inside = _containment(chunks)
    head = _heads(chunks)
    confident = best_any >= SUPERSEDE_SCORE
    nothing = index.codebook.background[scores.argmax(axis=1)]     # its best entry is a background one
    thing = _names_a_thing(chunks, lexicon)
    word_of = _word_chunk_of(chunks)
    is_gloss = word_of >= 0     # vague senses ("very: precisely as stated") match no body description well
    out = []
    for i, attr in enumerate(ATTRIBUTES):
        masks = index.level_masks[i]
        level_best = np.stack([np.where(m[None], scores, -np.inf).max(axis=1) if m.any()
                               else np.full(len(scores), -np.inf) for m in masks], axis=1)
        # What the chunk matches when this attribute stays at its default (background, other attributes).
        reference = np.where(index.default_masks[i][None], scores, -np.inf).max(axis=1)
        about = (level_best.max(axis=1) >= best_any - ABOUT_DELTA) & ~thing & ~(is_gloss & (best_any < GLOSS_MATCH))
        level = level_best.argmax(axis=1)
        raw = level_best - reference[:, None]
        clear = about & (raw[np.arange(len(chunks)), level] > _margin(attr)) & (level != attr.default)
        # A longer chunk that matches an entry closely decides for the words inside it when it is
        # about no body at all ("short brown hair" vetoes "short") or itself clearly says another
        # level of this ("teenage boy" overrides "boy"; "tiny old woman", which leans to no age
        # level, does not unsay "old"). A chunk about something else whose best body entry on this
        # attribute lies far below it vetoes too ("old oak tree" is a tree), and so does one that
        # names a thing ("short story"), unless the words inside are its head and the rest a phrase
        # about them ("man | with a beard").
        non_default = np.delete(level_best, attr.default, axis=1).max(axis=1)
        unrelated = (nothing & (best_any >= VETO_SCORE) & (best_any - non_default >= VETO_GAP)) | thing
        decides = (confident[None, :] & (nothing[None, :] | (clear[None, :] & (level[None, :] != level[:, None])))) \
            | unrelated[None, :]
        about &= ~(inside & decides & ~head).any(axis=1)
        evidence = np.where(about[:, None], raw, -np.inf)
        evidence[:, attr.default] = -np.inf
        out.append(evidence)
    known_word = is_gloss & (best_any[np.maximum(word_of, 0)] >= WORD_KNOWN)
    for evidence in out:
        evidence[known_word] = -np.inf
    return out


def _choose_level(attr: Attribute, evidence: np.ndarray, chunks: list[Chunk], margin: float) -> _AttributeChoice:
    """Default unless a level's evidence beats the margin; then blend the best levels on that side."""
    per_level = evidence.max(axis=0)                      # (L,)
    best = int(np.argmax(per_level))
    top_evidence = float(per_level[best])
    if not np.isfinite(top_evidence) or top_evidence <= margin:
        return _AttributeChoice(attr.values[attr.default], attr.default, max(top_evidence, -1.0), None,
                                {attr.level_names[attr.default]: 1.0})
    side = [k for k in range(len(attr.values)) if attr.side(k) == attr.side(best) and np.isfinite(per_level[k])]
    top = sorted(side, key=lambda k: -per_level[k])[:2]
    logits = np.array([per_level[k] for k in top]) / BLEND_TEMPERATURE
    w = np.exp(logits - logits.max())
    w /= w.sum()
    value = float(sum(wi * attr.values[k] for wi, k in zip(w, top)))
    chunk = chunks[int(np.argmax(evidence[:, best]))].text
    return _AttributeChoice(value, best, top_evidence, chunk,
                            {attr.level_names[k]: round(float(wi), 3) for wi, k in zip(w, top)})


def _numeric_age_choice(age: NumericAge) -> _AttributeChoice:
    """An age read from numbers is as clear as evidence gets (confidence: one EVIDENCE_SCALE above the margin)."""
    attr = ATTRIBUTES[ATTR["age"]]
    level = int(np.argmin(np.abs(np.asarray(attr.values) - age.value)))
    return _AttributeChoice(round(age.value, 4), level, PHENOTYPE_MARGIN + EVIDENCE_SCALE, age.text,
                            {f"{age.years:g} years": 1.0})


def _confidence(excess: Sequence[float]) -> float:
    """1 - prod(1 - tanh(evidence above margin / scale)) over what moved; 0 when nothing moved."""
    miss = 1.0
    for e in excess:
        if e > 0:
            miss *= 1.0 - float(np.tanh(e / EVIDENCE_SCALE))
    return round(1.0 - miss, 4)


def _margin(attr: Attribute) -> float:
    return PHENOTYPE_MARGIN if attr.phenotype is not None else LOCAL_MARGIN


def _valid_change(change: vocab.LocalChange, phenotypes: dict[str, float]) -> bool:
    """No pregnancy for a male body, no adult-only change for a child (below Anny's teen age)."""
    if change.female_only and phenotypes["gender"] < 0.5:
        return False
    if change.adults_only and phenotypes["age"] < vocab.ADULT_AGE:
        return False
    return True


def _prompt_scores(encoder: TextEncoder, prompt: str, index: _TextIndex,
                   lexicon: Lexicon) -> tuple[list[Chunk], np.ndarray]:
    """The prompt's chunks (its n-grams, then the glosses of its words) and their (C, E)
    differential scores against the codebook."""
    chunks = prompt_chunks(prompt)
    if not chunks:
        return [], np.zeros((0, len(index.rows)), np.float32)
    chunks += gloss_chunks(chunks, lexicon)
    texts = sorted({c.said for c in chunks})
    emb = differential(encoder.encode(texts), index.neutral)     # one batched call
    row = {t: i for i, t in enumerate(texts)}
    return chunks, (emb @ index.rows.T)[[row[c.said] for c in chunks]]


def _rank_text(prompt: str, encoder: TextEncoder) -> tuple[dict[str, float], dict[str, float], float, dict[str, Any]]:
    index = _text_index(encoder)
    phenotypes = default_phenotypes()
    local_changes: dict[str, float] = {}
    lexicon = load_lexicon(shape_cache_dir())
    chunks, scores = _prompt_scores(encoder, prompt, index, lexicon)
    if not chunks:
        return phenotypes, local_changes, 0.0, {"attributes": {}, "chunks": []}
    evidence = _chunk_evidence(scores, chunks, index, lexicon)
    attributes, excess = {}, []
    choices = {attr.name: _choose_level(attr, evidence[i], chunks, _margin(attr)) for i, attr in enumerate(ATTRIBUTES)}
    said_age = numeric_age(prompt)
    if said_age is not None:
        choices["age"] = _numeric_age_choice(said_age)
    for attr in ATTRIBUTES:
        if attr.phenotype is not None and _moved(choices[attr.name]):     # unmoved: the exact default
            phenotypes[attr.phenotype] = round(choices[attr.name].value, 4)
    for attr in ATTRIBUTES:
        choice = choices[attr.name]
        change = attr.local_change
        if change is not None and choice.value > 0:
            if change.female_only and not _moved(choices["gender"]):
                phenotypes["gender"] = 1.0        # a pregnant body is a female body
            if not _valid_change(change, phenotypes):
                choices[attr.name] = _AttributeChoice(0.0, 0, choice.evidence, choice.chunk, {"absent": 1.0})
                continue
            for name, amount in change.modifiers.items():
                local_changes[name] = round(float(np.clip(local_changes.get(name, 0.0) + choice.value * amount,
                                                          -1.0, 1.0)), 4)
    for attr in ATTRIBUTES:
        choice = choices[attr.name]
        moved = choice.level != attr.default and choice.value != attr.values[attr.default]
        if moved:
            excess.append(choice.evidence - _margin(attr))
        attributes[attr.name] = {"value": round(choice.value, 4), "evidence": round(choice.evidence, 4),
                                 "moved": bool(moved), "chunk": choice.chunk, "levels": choice.weights}
    best = scores.max(axis=1)
    details = {"attributes": attributes,
               "chunks": [{"text": c.text, "best": index.codebook.sentences[int(np.argmax(s))], "score": round(float(b), 4)}
                          for c, s, b in zip(chunks, scores, best)]}
    return phenotypes, local_changes, _confidence(excess), details


def _moved(choice: _AttributeChoice) -> bool:
    return choice.chunk is not None


def _prompt_differential(encoder: TextEncoder, prompt: str, neutral: np.ndarray) -> np.ndarray | None:
    """The whole prompt's differential embedding (SMPL tier), or None when it says nothing beyond the neutral prompt."""
    raw = encoder.encode(prompt)[0] - neutral
    if np.linalg.norm(raw) < 1e-4:
        return None
    return unit_rows(raw[None])[0]


# -- ranking (image tier, CLIP) ---------------------------------------------------------

def image_codebook_entries() -> list[dict[str, Any]]:
    """The bodies CLIP sees: a grid over gender, age, weight, muscle and height, plus
    pregnant and pot-bellied adults. Entry 0 is the neutral body."""
    entries: list[dict[str, Any]] = [{"phenotypes": default_phenotypes(), "local_changes": {}}]
    for gender in (0.0, 1.0):
        for age in (0.0, 0.33, 0.5, 2.0 / 3.0, 0.93):
            for weight in (0.15, 0.5, 0.9):
                for muscle in (0.15, 0.5, 0.9):
                    for height in (0.15, 0.5, 0.9):
                        if age < 0.3 and (weight, muscle, height) != (0.5, 0.5, 0.5):
                            continue       # babies: one body each
                        p = {**default_phenotypes(), "gender": gender, "age": age, "weight": weight,
                             "muscle": muscle, "height": height}
                        entries.append({"phenotypes": p, "local_changes": {}})
    for change in vocab.LOCAL_CHANGES:
        for gender in ((1.0,) if change.female_only else (0.0, 1.0)):
            for weight in (0.15, 0.5, 0.9):
                p = {**default_phenotypes(), "gender": gender, "weight": weight}
                entries.append({"phenotypes": p, "local_changes": dict(change.modifiers)})
    return entries


def _image_embeddings(encoder: Any, kind: str, entries: list[Any], build_mesh: Callable[[Any], Any],
                      extra_key: str) -> np.ndarray:
    """(E, D) CLIP image embeddings of the rendered entries, cached on disk."""
    from ..render.body_render import RENDERER_VERSION, render_front

    key = _cache_key(IMAGE_CODEBOOK_VERSION, RENDERER_VERSION, encoder.version, kind, extra_key,
                     json.dumps(entries, sort_keys=True, default=str))

    def compute() -> dict[str, np.ndarray]:
        log.info("rendering and embedding %d %s bodies for CLIP (once)", len(entries), kind)
        chunks = []
        for start in range(0, len(entries), 32):
            images = np.stack([render_front(build_mesh(e)) for e in entries[start:start + 32]])
            chunks.append(encoder.encode_images(images))
        return {"images": np.concatenate(chunks)}

    return _cached_arrays(f"shape-images-{kind}", key, compute)["images"]


def _rank_images(prompt: str, encoder: Any, image_emb: np.ndarray) -> tuple[np.ndarray, float, dict[str, Any]]:
    """AvatarCLIP S1: softmax weights over the top entries, a confidence, details.

    Row 0 of image_emb is the neutral body (its differential is zero)."""
    texts = encoder.encode([IMAGE_TEXT_TEMPLATE.format(prompt), IMAGE_TEXT_TEMPLATE.format(NEUTRAL_TEXT)])
    t = unit_rows((texts[0] - texts[1])[None])[0]
    raw = image_emb - image_emb[0:1]
    norms = np.linalg.norm(raw, axis=1)
    scores = np.where(norms > 1e-6, (raw @ t) / np.maximum(norms, 1e-12), 0.0)
    top = np.argsort(-scores)[:IMAGE_TOP_K]
    weights = np.zeros(len(scores))
    if scores[top[0]] <= 0.0:      # nothing beats the neutral body: keep it
        weights[0] = 1.0
        confidence = 0.0
    else:
        logits = scores[top] / IMAGE_TEMPERATURE
        w = np.exp(logits - logits.max())
        weights[top] = w / w.sum()
        confidence = float(np.tanh(scores[top[0]] / 0.1))
    details = {"top_matches": [{"entry": int(i), "score": round(float(scores[i]), 4),
                                "weight": round(float(weights[i]), 4)} for i in top]}
    return weights, round(confidence, 4), details


def _blend_entries(entries: list[dict[str, Any]], weights: np.ndarray) -> tuple[dict[str, float], dict[str, float]]:
    phenotypes = {n: 0.0 for n in phenotype_names()}
    changes: dict[str, float] = {}
    for e, w in zip(entries, weights):
        if w <= 0:
            continue
        for n in phenotypes:
            phenotypes[n] += float(w) * e["phenotypes"][n]
        for n, v in e["local_changes"].items():
            changes[n] = changes.get(n, 0.0) + float(w) * v
    return ({n: round(v, 4) for n, v in phenotypes.items()},
            {n: round(v, 4) for n, v in changes.items() if abs(v) > 1e-3})


def _rank_anny_images(prompt: str, encoder: Any) -> tuple[dict[str, float], dict[str, float], float, dict[str, Any]]:
    from ..models.anny_model import load_anny_model

    entries = image_codebook_entries()
    model = load_anny_model()
    emb = _image_embeddings(encoder, "anny", entries, model.build, model.version)
    weights, confidence, details = _rank_images(prompt, encoder, emb)
    phenotypes, changes = _blend_entries(entries, weights)
    return phenotypes, changes, confidence, details


# -- SMPL tier ---------------------------------------------------------------------------

def smpl_codebook_betas(num_betas: int) -> np.ndarray:
    """Shape vectors to try: a grid over the first two betas plus random ones (fixed seed)."""
    n = min(10, num_betas)
    grid = [[a, b] + [0.0] * (n - 2) for a in (-2.5, -1.25, 0.0, 1.25, 2.5) for b in (-2.5, -1.25, 0.0, 1.25, 2.5)]
    rng = np.random.default_rng(CODEBOOK_SEED)
    random = np.clip(rng.normal(0.0, 1.0, (40, n)), -2.5, 2.5)
    betas = np.concatenate([np.zeros((1, n)), np.array(grid)[:, :n], random])
    return np.unique(np.round(betas, 4), axis=0)[np.argsort(np.abs(np.unique(np.round(betas, 4), axis=0)).sum(1),
                                                             kind="stable")]


def body_measurements(vertices: np.ndarray) -> dict[str, float]:
    """Height (m) and waist girth (m, convex hull of a slice at 60 % of the height) of a Z-up body."""
    from scipy.spatial import ConvexHull

    z = vertices[:, 2]
    height = float(z.max() - z.min())
    level = z.min() + 0.6 * height
    band = vertices[np.abs(z - level) < 0.03 * height][:, :2]
    girth = float(ConvexHull(band).area) if len(band) >= 3 else 0.0   # a 2-D hull's "area" is its perimeter
    return {"height": height, "girth": girth}


def _measured_level(ratio: float, cuts: Sequence[float]) -> int:
    """Level index of a ratio against ascending cut points (len(cuts)+1 levels)."""
    return int(np.searchsorted(np.asarray(cuts), ratio))


HEIGHT_CUTS = (0.90, 0.965, 1.035, 1.10)   # height / mean shape's height -> HEIGHT levels
GIRTH_CUTS = (0.80, 0.93, 1.07, 1.25)      # (girth/height) / mean shape's -> WEIGHT levels


def describe_measured(height_ratio: float, girth_ratio: float, rng: np.random.Generator, count: int = 3) -> list[str]:
    """Sentences for a body from its measured height and girth (relative to the mean shape)."""
    h = vocab.HEIGHT[_measured_level(height_ratio, HEIGHT_CUTS)]
    w = vocab.WEIGHT[_measured_level(girth_ratio, GIRTH_CUTS)]
    out: set[str] = set()
    for _ in range(count * 4):
        if len(out) == count:
            break
        noun = str(rng.choice(vocab.NOUNS[(vocab.DEFAULT_AGE, "unspecified")][:4]))
        adjectives, phrases = [], []
        for level in (h, w):
            if level.adjectives and rng.random() < 0.7:
                adjectives.append(str(rng.choice(level.adjectives)))
            elif level.adjectives or rng.random() < 0.3:
                phrases.append(str(rng.choice(level.phrases)))
        out.add(_sentence(noun, adjectives, phrases, "unspecified", int(rng.integers(0, 5))))
    return sorted(out)


def _smpl_model_for(config: BackendConfig, gender_value: float) -> Any:
    from ..models.smpl_model import find_model_file, load_smpl_model, missing_model_error

    preferred = ["neutral", "female" if gender_value > 0.5 else "male", "male" if gender_value > 0.5 else "female"]
    for g in preferred:
        if find_model_file(config, "smpl", g) is not None:
            return load_smpl_model("smpl", config, g)
    raise missing_model_error(config, "smpl", "neutral")


def _file_key(path: Path) -> str:
    st = path.stat()
    return f"{path.name}:{st.st_size}:{int(st.st_mtime)}"


def _smpl_text_index(encoder: TextEncoder, model: Any) -> dict[str, Any]:
    betas = smpl_codebook_betas(model.num_betas)
    key = _cache_key(CODEBOOK_VERSION, "smpl", encoder.version, _file_key(model.path), model.gender,
                     betas.tobytes().hex())
    with _lock:
        cache_key = ("smpl", key)
        if cache_key in _smpl_indexes:
            return _smpl_indexes[cache_key]

    def compute() -> dict[str, np.ndarray]:
        measures = [body_measurements(model.build({"betas": list(b)}).vertices) for b in betas]
        h0, g0 = measures[0]["height"], measures[0]["girth"] / measures[0]["height"]   # row 0: the mean shape
        rng = np.random.default_rng(CODEBOOK_SEED)
        sentences, entry_of = [], []
        for e, m in enumerate(measures):
            said = describe_measured(m["height"] / h0, (m["girth"] / m["height"]) / g0, rng)
            sentences += said
            entry_of += [e] * len(said)
        emb = encoder.encode(sentences)
        return {"sentences": emb, "entry_of": np.array(entry_of, np.int32),
                "heights": np.array([m["height"] for m in measures]),
                "girths": np.array([m["girth"] for m in measures]),
                "text": np.array(sentences), "neutral": encoder.encode(NEUTRAL_TEXT)[0]}

    arrays = _cached_arrays("shape-smpl", key, compute)
    index = {"betas": betas, **arrays, "rows": differential(arrays["sentences"], arrays["neutral"])}
    with _lock:
        _smpl_indexes[("smpl", key)] = index
    return index


_smpl_indexes: dict[tuple[str, str], dict[str, Any]] = {}


def _rank_smpl(prompt: str, encoder: TextEncoder, config: BackendConfig,
               gender_value: float) -> tuple[list[float], float, dict[str, Any]]:
    """Betas blended from the best measured-description matches (text), or rendered bodies (CLIP)."""
    model = _smpl_model_for(config, gender_value)
    betas = smpl_codebook_betas(model.num_betas)
    if encoder.name == "clip":
        emb = _image_embeddings(encoder, "smpl", [list(map(float, b)) for b in betas],
                                lambda b: model.build({"betas": b}), _file_key(model.path) + model.gender)
        weights, confidence, details = _rank_images(prompt, encoder, emb)
    else:
        index = _smpl_text_index(encoder, model)
        d = _prompt_differential(encoder, prompt, index["neutral"])
        entry_scores = np.full(len(betas), -1.0)
        if d is not None:
            np.maximum.at(entry_scores, index["entry_of"], index["rows"] @ d)
        weights = np.zeros(len(betas))
        # The mean shape (entry 0) stands for "nothing said"; others must beat it.
        top = np.argsort(-entry_scores)[:IMAGE_TOP_K]
        if d is None or top[0] == 0:
            weights[0], confidence = 1.0, 0.0
        else:
            top = [k for k in top if entry_scores[k] > entry_scores[0]]
            logits = entry_scores[top] / BLEND_TEMPERATURE
            w = np.exp(logits - logits.max())
            weights[top] = w / w.sum()
            confidence = round(float(np.tanh((entry_scores[top[0]] - entry_scores[0]) / EVIDENCE_SCALE)), 4)
        details = {"top_matches": [{"betas_entry": int(k), "score": round(float(entry_scores[k]), 4),
                                    "weight": round(float(weights[k]), 4),
                                    "text": [str(t) for t, e in zip(index["text"], index["entry_of"]) if e == k]}
                                   for k in np.argsort(-entry_scores)[:IMAGE_TOP_K]]}
    blended = (weights[:, None] * betas).sum(0)
    details["smpl_file"] = model.path.name
    details["smpl_gender"] = model.gender
    return [round(float(b), 4) for b in blended], confidence, details


# -- the public entry point ----------------------------------------------------------------

def estimate_shape(prompt: str, encoder: TextEncoder, config: BackendConfig | None = None,
                   model: str = "anny") -> ShapeEstimate:
    """The body shape a prompt describes (AvatarCLIP S1), on Anny or on the user's SMPL.

    CLIP encoders rank rendered bodies (image tier); others rank the codebook's sentences."""
    prompt = clean_prompt(prompt)
    if model not in MODELS:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"model: one of {', '.join(MODELS)}, got {model!r}", field="model")
    config = config or BackendConfig()
    image_tier = encoder.name == "clip"
    if image_tier and model == "anny":
        phenotypes, changes, confidence, details = _rank_anny_images(prompt, encoder)
    else:
        phenotypes, changes, confidence, details = _rank_text(prompt, encoder)
    betas: list[float] = []
    if model == "smpl":
        betas, confidence, smpl_details = _rank_smpl(prompt, encoder, config, phenotypes["gender"])
        details["smpl"] = smpl_details
    details.update({"encoder": {"name": encoder.name, "version": encoder.version},
                    "tier": "image" if image_tier else "text",
                    "codebook_version": IMAGE_CODEBOOK_VERSION if image_tier else CODEBOOK_VERSION,
                    "shape_version": SHAPE_VERSION, **({} if image_tier else {"lexicon_version": LEXICON_VERSION})})
    complete = {**default_phenotypes(), **phenotypes}
    return ShapeEstimate(model=model, phenotypes={k: float(complete[k]) for k in phenotype_names()},
                         local_changes=changes, betas=betas, confidence=float(np.clip(confidence, 0.0, 1.0)),
                         details=details)
