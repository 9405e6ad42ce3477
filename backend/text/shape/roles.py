"""World knowledge of roles: what a prompt's role or occupation says about a body when the
prompt says nothing more ("a jockey" is short and light, "a nun" a woman).

A role is read through what it IS: the WordNet hypernyms of the noun (text/lexicon.py) are
walked, nearest first, to the first class with a curated build below, so a role never listed
here is read through its class ("a linebacker" -> football player, "a discus thrower" ->
athlete). Its sex comes from the curated class, WordNet's classes (woman, man), the words of its
gloss ("a female ballet dancer", "a male religious") or its form ("businessman", "chairwoman").

What a role implies yields to what the prompt says: it only sets attributes the prompt's own
words leave at their defaults (a "tall jockey" is tall)."""
from __future__ import annotations

from dataclasses import dataclass

from ..lexicon import Lexicon
from .chunks import Chunk


@dataclass(frozen=True)
class RoleBuild:
    levels: dict[str, str]     # attribute -> level name (shape_vocabulary's levels)
    why: str                   # the common knowledge it stands for


# Typical builds, kept to the traits that general references state about the people in each role
# (encyclopedia articles on the sport or occupation, e.g. English Wikipedia "Jockey": riding
# weights of about 50-57 kg in flat racing; "Sumo": wrestlers' mass is part of the sport; "Model
# (person)": fashion agencies' height and size requirements). One or two traits each, no more
# than that knowledge supports; keyed by WordNet 3.0 synset.
ROLE_BUILDS: dict[str, RoleBuild] = {
    "athlete.n.01": RoleBuild({"muscle": "muscular"}, "athletes train: fit and muscular"),
    "jockey.n.01": RoleBuild({"height": "short", "weight": "thin"}, "riding weight limits: small and light"),
    "gymnast.n.01": RoleBuild({"height": "short", "muscle": "muscular"}, "gymnasts are short and strong"),
    "football_player.n.01": RoleBuild({"muscle": "muscular"}, "American football players train for power"),
    "linebacker.n.01": RoleBuild({"weight": "heavy", "muscle": "very muscular"}, "big, strong defenders"),
    "lineman.n.01": RoleBuild({"weight": "obese", "muscle": "muscular"}, "the heaviest football players"),
    "shot_putter.n.01": RoleBuild({"weight": "heavy", "muscle": "very muscular"}, "throwers are big and strong"),
    "weightlifter.n.01": RoleBuild({"muscle": "very muscular"}, "strength sport"),
    "bodybuilder.n.01": RoleBuild({"muscle": "very muscular"}, "muscle is the sport"),
    "strongman.n.01": RoleBuild({"muscle": "very muscular", "weight": "heavy"}, "feats of strength: big and strong"),
    "sumo_wrestler.n.01": RoleBuild({"weight": "obese"}, "sumo wrestlers build mass"),
    "wrestler.n.01": RoleBuild({"muscle": "muscular"}, "grappling sport"),
    "boxer.n.01": RoleBuild({"muscle": "muscular"}, "combat sport"),
    "runner.n.06": RoleBuild({"weight": "thin"}, "distance runners are lean"),
    "marathoner.n.01": RoleBuild({"weight": "thin"}, "marathon runners are lean"),
    "sprinter.n.01": RoleBuild({"muscle": "muscular"}, "sprinters are muscular"),
    "basketball_player.n.01": RoleBuild({"height": "tall"}, "basketball favours height"),
    "volleyball_player.n.01": RoleBuild({"height": "tall"}, "volleyball favours height"),
    "mannequin.n.01": RoleBuild({"height": "tall", "weight": "thin", "gender": "female"},
                                "fashion models: tall and slim (agency requirements); WordNet: a woman"),
    "ballet_dancer.n.01": RoleBuild({"weight": "thin"}, "ballet dancers are slim"),
    "soldier.n.01": RoleBuild({"muscle": "muscular"}, "armies' fitness standards"),
    "bouncer.n.01": RoleBuild({"muscle": "muscular", "weight": "heavy"}, "hired for size and strength"),
    "laborer.n.01": RoleBuild({"muscle": "muscular"}, "manual work builds muscle"),
    "nun.n.01": RoleBuild({"gender": "female"}, "nuns are women"),
    "monk.n.01": RoleBuild({"gender": "male"}, "monks are men"),
    "priest.n.01": RoleBuild({"gender": "male"}, "Christian priests are mostly men"),
    "small_person.n.01": RoleBuild({"height": "short"}, "a person of below average size"),
    "dwarf.n.01": RoleBuild({"height": "very short"}, "a person who is markedly small"),
    "weakling.n.01": RoleBuild({"muscle": "weak"}, "physically weak"),
    "fat_person.n.01": RoleBuild({"weight": "obese"}, "a rotund individual"),
    "thin_person.n.01": RoleBuild({"weight": "thin"}, "unusually thin"),
}
# WordNet classes that say a sex (a "widow" is a woman, whatever else it is).
SEX_CLASSES = {"woman.n.01": "female", "female.n.02": "female", "man.n.01": "male", "male.n.02": "male"}
# Words opening a gloss that say the sex of what it defines ("a female ballet dancer").
FEMALE_WORDS = frozenset("woman women female girl lady mother wife daughter sister widow queen princess".split())
MALE_WORDS = frozenset("man men male boy gentleman father husband son brother king prince".split())
GLOSS_OPENING = 5          # words of a gloss read for a sex


@dataclass(frozen=True)
class WordReading:
    """What WordNet knowledge reads from some words of the prompt (a role, an adjective)."""
    chunk: Chunk                # the prompt's words
    kind: str                   # the WordNet sense they were read as
    levels: dict[str, str]      # attribute -> level name
    via: str                    # the class (or clue) each level came from, for details

    @property
    def text(self) -> str:
        return f"{self.chunk.text}: {self.via}"


def role_levels(words: str, lexicon: Lexicon) -> tuple[str, dict[str, str], str] | None:
    """(sense, levels, via) for words whose commonest sense is a person: the build of the nearest
    curated class among its hypernyms and its sex; None for words that name no person."""
    kinds = lexicon.person_kinds(words)
    if not kinds:
        return None
    levels: dict[str, str] = {}
    via = []
    build = next((k for k in kinds if k in ROLE_BUILDS), None)
    if build is not None:
        levels.update(ROLE_BUILDS[build].levels)
        via.append(build)
    sex = levels.get("gender") or _sex(words, kinds, lexicon)
    if sex:
        levels["gender"] = sex
        via.append(sex)
    return kinds[0], levels, " ".join(via)


def _sex(words: str, kinds: tuple[str, ...], lexicon: Lexicon) -> str | None:
    """The sex a person noun names: from a class that says it, its gloss's opening or its form."""
    for k in kinds:
        if k in SEX_CLASSES:
            return SEX_CLASSES[k]
    gloss = next((g.text for g in lexicon.glosses(words) if g.noun), "")
    opening = set(gloss.lower().replace(",", " ").split()[:GLOSS_OPENING])
    female, male = bool(opening & FEMALE_WORDS), bool(opening & MALE_WORDS)
    if female != male:
        return "female" if female else "male"
    return lexicon.sex_in_form(words)


def read_roles(chunks: list[Chunk], lexicon: Lexicon, vetoed: list[bool]) -> list[WordReading]:
    """The roles the prompt names (the longest chunk wins where roles overlap: "shot putter" over
    "putter"), skipping chunks a longer chunk about something else vetoes ("a model airplane")."""
    found = []
    for c, veto in sorted(zip(chunks, vetoed), key=lambda cv: -(cv[0].stop - cv[0].start)):
        if veto or c.kind != "words" or any(c.clause == r.chunk.clause and c.start < r.chunk.stop
                                            and r.chunk.start < c.stop for r in found):
            continue
        read = role_levels(c.text, lexicon)
        if read is not None and read[1]:
            found.append(WordReading(c, *read))
    return found
