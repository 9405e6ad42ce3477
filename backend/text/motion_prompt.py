"""Reading a motion prompt: what its words say, before anything is matched to a
motion (motion/vocabulary.py does that).

The prompt is cut at sequencing words ("then", "after that", commas...) into
phrases; each phrase is also cut where it may join two simultaneous actions
("while", "as", "and", "with", a participle: "strolls along waving") and at each
"and" (the matcher decides which cut, if any, the words mean). Every piece is a
Clause (core/phrases.py) carrying:

  - its repetition count ("three times", "twice", "does 5 squats"), read with
    text/numbers.py, and its words without it;
  - the pace it asks for: the closest speed description by the text encoder,
    by how much more it matches than "normal" (AvatarCLIP's differential form);
  - the sides it names, read from the words, never from embeddings (an encoder
    hardly tells "left" from "right"): which side, and whether it names the
    limb that acts ("her left arm", "with the right hand", "left-handed"), the
    one that supports ("on the right leg", "balancing on her left foot": the
    other one lifts) or the direction the body goes ("turns left", "to his right").
"""
from __future__ import annotations

import re

import numpy as np

from ..core.phrases import BOTH, PACES, Clause, Phrase, SideMention
from ..models.text_encoder import TextEncoder, differential
from .numbers import COUNT_WORD, MULTIPLICATIVE_WORD, number_value
from .prompt import NEUTRAL_PROMPT

# Sequencing words and punctuation between actions; "and" alone joins actions
# done together ("walks and waves") unless both halves are actions on their own.
_SPLIT = re.compile(r"\s*(?:,|;|\.(?:\s|$)|\band then\b|\bthen\b|\bafter that\b|\bafterwards\b|\bfollowed by\b|"
                    r"\bnext\b|\bfinally\b|\bbefore\b)\s*", re.IGNORECASE)
_LEADING = re.compile(r"^(?:and|first|firstly|at first|and finally|a person|the person|someone|he|she|they)\b\s*",
                      re.IGNORECASE)
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)
# Where a phrase may join two things done at once: a connective, or before a participle ("runs waving").
_TOGETHER = re.compile(r"\s+(?:while|whilst|as|and|with|all the while)\s+|\s+(?=\w{3,}ing\b)", re.IGNORECASE)
_TIMES = re.compile(r"\s*\b(?:(" + COUNT_WORD + r")\s+times|(" + MULTIPLICATIVE_WORD + r"))\b(?:\s+in\s+a\s+row)?",
                    re.IGNORECASE)
# "does 5 squats", "three jumps": a number before a plural noun that is not a body part or a unit.
_COUNTED = re.compile(r"\b(" + COUNT_WORD + r")\s+(?!(?:hands|arms|feet|legs|knees|fingers|steps|meters|metres|"
                      r"seconds|minutes|people|friends|times)\b)([a-z]+s)\b", re.IGNORECASE)

# -- sides ---------------------------------------------------------------------------------------
_SIDE = r"(left|right)"
_OWNER = r"(?:(?:the|his|her|their|its|one's|my|your|[a-z]+'s)\s+)?"
_LIMB = (r"(arms?|hands?|fists?|palms?|elbows?|shoulders?|wrists?|legs?|feet|foot|knees?|thighs?|hips?|heels?|toes?|"
         r"ankles?)")
_SUPPORT_LIMB = r"(legs?|foot|feet|heels?|toes?)"
# The body's turning, leaning, stepping and looking verbs, before a bare side ("turns left").
_HEADING_VERB = (r"(?:turn|rotat|spin|pivot|lean|tilt|look|glanc|step|twist|veer|sway|head|bend|swivel|shift)"
                 r"[a-z]*")
_SIDE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # "on the right leg", "balancing on her left foot", "standing on his left leg only"
    ("supporting", re.compile(r"\b(?:on|upon|onto)\s+" + _OWNER + _SIDE + r"[\s-]+" + _SUPPORT_LIMB + r"\b")),
    # "left-handed", "right footed"
    ("acting", re.compile(r"\b" + _SIDE + r"[\s-]?(hand|foot)ed\b")),
    # "her left arm", "the right hand", "left knee up"
    ("acting", re.compile(r"\b" + _SIDE + r"[\s-]+" + _LIMB + r"\b")),
    # "the arm on the right (side)"
    ("acting", re.compile(r"\b" + _LIMB + r"\s+on\s+(?:the|his|her|their|its)\s+" + _SIDE + r"\b")),
    # "punches with the left", "using his right"
    ("acting", re.compile(r"\b(?:with|using|by)\s+" + _OWNER + _SIDE + r"\b")),
    # "turns left", "leans right", "a left turn", "to his right", "towards the left", "leftwards"
    ("direction", re.compile(r"\b" + _HEADING_VERB + r"(?:\s+(?:around|round|back|over|away|sharply|slightly|"
                             r"quickly|slowly))?\s+" + _SIDE + r"\b(?![\s-]+" + _LIMB + r"\b)")),
    ("direction", re.compile(r"\b" + _SIDE + r"\s+turn\b")),
    ("direction", re.compile(r"\b(?:to|towards|toward)\s+" + _OWNER + _SIDE + r"\b(?![\s-]+" + _LIMB + r"\b)")),
    ("direction", re.compile(r"\b" + _SIDE + r"wards?\b")),
    # "both arms", "with both hands"
    ("acting", re.compile(r"\b(both)\s+" + _LIMB + r"\b")),
)
_SIDE_WORDS = ("left", "right", BOTH)
# A piece that only names a side or a limb ("his left", "using the right hand", "both arms"): no action of its own.
_ONLY_A_SIDE = re.compile(r"^(?:(?:with|using|by)\s+)?" + _OWNER + r"(?:(left|right|both)(?:[\s-]+" + _LIMB + r")?|"
                          + _LIMB + r")$")
# Seen from above, turning to one's left is counter-clockwise.
_ROTATION_SENSE = re.compile(r"\b(counter[\s-]?clockwise|anti[\s-]?clockwise|clockwise)\b")

# -- pace ---------------------------------------------------------------------------------------
PACE_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "slow": ("slowly", "moves slowly and leisurely", "a slow, careful, relaxed pace", "sluggishly",
             "tired, dragging along"),
    "normal": ("at a normal pace", "moves", "steadily"),
    "fast": ("quickly", "moves fast and briskly", "hurries in a rush", "rapidly, at high speed", "energetically"),
}
PACE_MARGIN = 0.05          # a pace other than "normal" must match this much better than "normal"


def extract_count(phrase: str) -> tuple[str, int | None]:
    """The phrase without its repetition count, and the count ("jumps three
    times" -> ("jumps", 3); "does 5 squats" -> ("does squats", 5)); None when
    it names none."""
    m = _TIMES.search(phrase)
    if m:
        count = number_value(m.group(1) or m.group(2))
        return (phrase[:m.start()] + phrase[m.end():]).strip(" ,"), count
    m = _COUNTED.search(phrase)
    if m:
        count = number_value(m.group(1))
        if count is not None and count >= 2:
            return (phrase[:m.start()] + m.group(2) + phrase[m.end():]).strip(" ,"), count
    return phrase, None


def split_phrases(prompt: str) -> list[str]:
    """The prompt cut at sequencing words, in order, without empty pieces; a piece
    that only says which side or limb ("using her left hand, she waves") stays
    with the action after it (before it, when it comes last)."""
    pieces = []
    for piece in _SPLIT.split(prompt):
        piece = piece.strip(" .!?")
        while True:
            stripped = _LEADING.sub("", piece).strip()
            if stripped == piece:
                break
            piece = stripped
        if piece:
            pieces.append(piece)
    merged: list[str] = []
    for i, piece in enumerate(pieces):
        if i > 0 and _ONLY_A_SIDE.match(merged[-1].lower()) and not _ONLY_A_SIDE.match(piece.lower()):
            merged[-1] = f"{merged[-1]}, {piece}"
        elif merged and _ONLY_A_SIDE.match(piece.lower()) and i == len(pieces) - 1:
            merged[-1] = f"{merged[-1]}, {piece}"
        else:
            merged.append(piece)
    return merged or [prompt.strip()]


def read_sides(text: str) -> tuple[SideMention, ...]:
    """The sides `text` names, in the order written, each with its role (see
    core.phrases.SideMention). Words already read by an earlier pattern are not
    read again ("on the right leg" is a support, not also an acting "right leg")."""
    lowered = text.lower()
    taken = np.zeros(len(lowered), bool)
    found: list[tuple[int, SideMention]] = []
    for role, pattern in _SIDE_PATTERNS:
        for m in pattern.finditer(lowered):
            if taken[m.start():m.end()].any():
                continue
            taken[m.start():m.end()] = True
            side = next(g for g in m.groups() if g in _SIDE_WORDS)
            limb = next((g for g in m.groups() if g and g not in _SIDE_WORDS), None)
            found.append((m.start(), SideMention(side, role, limb)))
    for m in _ROTATION_SENSE.finditer(lowered):
        side = "right" if m.group(1) == "clockwise" else "left"
        found.append((m.start(), SideMention(side, "direction")))
    return tuple(mention for _, mention in sorted(found, key=lambda f: f[0]))


def together_halves(phrase: str) -> list[tuple[str, str]]:
    """Every way of cutting `phrase` in two at a connective or before a participle,
    but not before words that only say which side or limb ("waves with | his left")."""
    out = []
    for m in _TOGETHER.finditer(phrase):
        a, b = phrase[:m.start()].strip(" ,"), phrase[m.end():].strip(" ,")
        if a and b and not any(_ONLY_A_SIDE.match(h.lower()) for h in (a, b)):
            out.append((a, b))
    return out


def and_parts(phrase: str) -> list[str]:
    """The phrase cut at each "and" (one piece when it has none)."""
    return [h.strip() for h in _AND.split(phrase) if h.strip()]


class PaceReader:
    """The pace (core.phrases.PACES) a text asks for, by the text encoder: the
    pace descriptions are embedded once per encoder."""

    def __init__(self, encoder: TextEncoder) -> None:
        self.encoder = encoder
        self.names = [name for name in PACES for _ in PACE_DESCRIPTIONS[name]]
        self.neutral = encoder.encode([NEUTRAL_PROMPT])[0]
        self.keys = differential(encoder.encode([t for name in PACES for t in PACE_DESCRIPTIONS[name]]),
                                 self.neutral)

    def paces(self, texts: list[str]) -> list[str]:
        """The pace of each text: the best-matching pace, when it matches PACE_MARGIN
        better than "normal"; otherwise "normal" (the motion's own pace)."""
        if not texts:
            return []
        sims = differential(self.encoder.encode(texts), self.neutral) @ self.keys.T
        out = []
        for row in sims:
            best = {name: max(float(s) for s, n in zip(row, self.names) if n == name) for name in PACES}
            name = max(best, key=best.get)
            out.append(name if name == "normal" or best[name] - best["normal"] >= PACE_MARGIN else "normal")
        return out


_pace_readers: dict[tuple[str, str, int], PaceReader] = {}


def pace_reader(encoder: TextEncoder) -> PaceReader:
    """The (cached) pace reader of an encoder."""
    key = (encoder.name, encoder.version, id(encoder))
    if key not in _pace_readers:
        _pace_readers[key] = PaceReader(encoder)
    return _pace_readers[key]


def read_motion_prompt(prompt: str, encoder: TextEncoder) -> list[Phrase]:
    """The (clean) prompt as phrases in order, each with the ways it may be cut,
    every piece read into a Clause (count, pace, sides)."""
    cuts = [(p, together_halves(p), and_parts(p)) for p in split_phrases(prompt)]
    texts = list(dict.fromkeys(t for p, pairs, parts in cuts
                               for t in [p, *(parts if len(parts) > 1 else []), *(h for pair in pairs for h in pair)]))
    words = {t: extract_count(t) for t in texts}
    paces = dict(zip(texts, pace_reader(encoder).paces([words[t][0] or t for t in texts])))

    def clause(text: str) -> Clause:
        clean, count = words[text]
        return Clause(text, clean or text, count, paces[text], read_sides(text))

    return [Phrase(clause(p), tuple((clause(a), clause(b)) for a, b in pairs),
                   tuple(clause(t) for t in parts) if len(parts) > 1 else ()) for p, pairs, parts in cuts]
