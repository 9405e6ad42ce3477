"""Understanding a motion prompt: an ordered list of actions, each either a
locomotion cycle (gait + speed) or a key-pose action (AvatarCLIP M1's ranked
candidate poses, played in order).

Meaning comes from the text encoder: every segment of the prompt is compared
with descriptions of the actions, gaits and key poses, and with descriptions of
speeds. The hand-written language rules are light phrase structure only: the
splitter that cuts a prompt at sequencing words ("then", "after that",
commas...), the places where a phrase may join two simultaneous actions
("while", "as", "and", "with", a participle: "strolls along waving"; the
encoder decides whether the halves really are a base motion plus an upper-body
action), and repetition counts ("three times", "twice", "does 5 squats").
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..models.text_encoder import TextEncoder, differential
from ..motion.keyposes import KeyPose

NEUTRAL_PROMPT = "a person"
MIN_SCORE = 0.3            # below this cosine similarity no action is taken to be meant

# Sequencing words and punctuation between actions; "and" alone joins actions
# done together ("walks and waves") unless both halves are actions on their own.
_SPLIT = re.compile(r"\s*(?:,|;|\.(?:\s|$)|\band then\b|\bthen\b|\bafter that\b|\bafterwards\b|\bfollowed by\b|"
                    r"\bnext\b|\bfinally\b|\bbefore\b)\s*", re.IGNORECASE)
_LEADING = re.compile(r"^(?:and|first|firstly|at first|and finally|a person|the person|someone|he|she|they)\b\s*",
                      re.IGNORECASE)
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)
# Where a phrase may join two things done at once: a connective, or before a participle ("runs waving").
_TOGETHER = re.compile(r"\s+(?:while|whilst|as|and|with|all the while)\s+|\s+(?=\w{3,}ing\b)", re.IGNORECASE)
_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
            "ten": 10, "eleven": 11, "twelve": 12, "a dozen": 12, "once": 1, "twice": 2, "thrice": 3,
            "a couple of": 2, "a couple": 2}
_NUMBER = r"(\d{1,3}|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|a dozen|a couple of|a couple)"
_TIMES = re.compile(r"\s*\b(?:" + _NUMBER + r"\s+times|(once|twice|thrice))\b(?:\s+in\s+a\s+row)?", re.IGNORECASE)
# "does 5 squats", "three jumps": a number before a plural noun that is not a body part or a unit.
_COUNTED = re.compile(r"\b" + _NUMBER + r"\s+(?!(?:hands|arms|feet|legs|knees|fingers|steps|meters|metres|"
                      r"seconds|minutes|people|friends|times)\b)([a-z]+s)\b", re.IGNORECASE)
MAX_REPEATS = 10           # repetition counts are capped here (a bounded amount of work per segment)
TOGETHER_SCORE = 0.45      # both halves of a simultaneous phrase must match this well


@dataclass(frozen=True)
class Action:
    """Something a person does over a segment of the motion.

    kind "poses": play the key poses `keys` (names in the codebook) in order,
    `period` seconds apart, repeated over the segment when `cycle`, else spread
    over it (with the last one held: AvatarCLIP's progress towards the target).
    kind "gait": a locomotion cycle (locomotion.py) named `gait`."""
    name: str
    descriptions: tuple[str, ...]
    kind: str = "poses"
    keys: tuple[str, ...] = ()
    cycle: bool = False
    period: float = 0.5
    gait: str | None = None
    seconds: float = 2.0          # how long the action naturally takes (segment weights)
    turn: float = 0.0             # degrees the body turns over the action (+: to its left)
    upper: bool = False           # an upper-body action: can be layered on a gait or a lower-body base


ACTIONS: tuple[Action, ...] = (
    Action("wave_right", upper=True,
           descriptions=("waves hello", "waves with the right hand", "waving goodbye with the right hand",
                          "greets someone with a friendly wave of the hand", "says hi and waves", "is waving"),
           keys=("wave_right_a", "wave_right_b"), cycle=True, period=0.32),
    Action("wave_left", upper=True,
           descriptions=("waves with the left hand", "waving goodbye with the left hand", "left hand waving hello"),
           keys=("wave_left_a", "wave_left_b"), cycle=True, period=0.32),
    Action("wave_both", upper=True,
           descriptions=("waves both arms over the head", "waving both hands in the air"),
           keys=("arms_up", "cheer"), cycle=True, period=0.35),
    Action("jump", ("jumps", "jumps up and down", "jumps into the air", "leaps up high", "jumps for joy",
                    "does a vertical jump", "bounces up in a jump"),
           keys=("jump_crouch", "takeoff", "airborne_stretch", "takeoff", "jump_crouch", "stand"), cycle=True,
           period=0.2, seconds=1.6),
    Action("tuck_jump", ("does a tuck jump", "jumps pulling the knees to the chest"),
           keys=("jump_crouch", "takeoff", "airborne_tuck", "takeoff", "jump_crouch", "stand"), cycle=True,
           period=0.2, seconds=1.6),
    Action("jumping_jacks", ("does jumping jacks", "star jumps, spreading arms and legs"),
           keys=("stand", "star_jump", "star_land", "star_jump"), cycle=True, period=0.18),
    Action("squat", ("squats", "does squats", "squats down and stands back up", "performs a squat exercise",
                     "bends the knees deeply and comes back up"),
           keys=("stand", "squat", "squat", "stand"), cycle=True, period=0.55, seconds=2.4),
    Action("sit_down", ("sits down", "sits down on a chair", "takes a seat"), keys=("stand", "sit", "sit"),
           period=0.8),
    Action("stand_up", ("stands up from a chair", "gets up from sitting", "rises to his feet"),
           keys=("sit", "stand", "stand"), period=0.8),
    Action("kneel_down", ("kneels down", "goes down on the knees"), keys=("stand", "kneel", "kneel"), period=0.8),
    Action("clap", upper=True,
           descriptions=("claps", "claps the hands", "applauds", "gives a round of applause"),
           keys=("clap_open", "clap_closed", "clap_closed"), cycle=True, period=0.16),
    Action("box", upper=True,
           descriptions=("punches", "boxing", "throws punches", "shadow boxing, jabbing with both fists", "fights"),
           keys=("guard", "punch_left", "guard", "punch_right"), cycle=True, period=0.28),
    Action("punch_right", upper=True,
           descriptions=("punches with the right fist", "throws a right punch", "hits with the right hand"),
           keys=("guard", "punch_right"), cycle=True, period=0.35),
    Action("punch_left", upper=True,
           descriptions=("punches with the left fist", "throws a left punch", "hits with the left hand"),
           keys=("guard", "punch_left"), cycle=True, period=0.35),
    Action("kick_right", ("kicks", "kicks with the right leg", "kicks a ball with the right foot",
                          "does a front kick"), keys=("stand", "kick_right", "kick_right", "stand"), cycle=True, period=0.3),
    Action("kick_left", ("kicks with the left leg", "kicks a ball with the left foot"),
           keys=("stand", "kick_left", "kick_left", "stand"), cycle=True, period=0.3),
    Action("bow", ("bows", "takes a bow", "bows politely to the audience", "bends forward in a bow"),
           keys=("stand", "bow", "bow", "stand"), period=0.6),
    Action("dance", ("dances", "dancing to the music", "does a little dance", "grooves and dances happily"),
           keys=("dance_a", "dance_b"), cycle=True, period=0.5),
    Action("nod", upper=True,
           descriptions=("nods the head", "nods yes"), keys=("stand", "look_down"), cycle=True, period=0.3),
    Action("shake_head", upper=True,
           descriptions=("shakes the head", "shakes the head no", "looks around left and right"),
           keys=("head_turn_left", "head_turn_right"), cycle=True, period=0.4),
    Action("throw", upper=True,
           descriptions=("throws a ball", "throws something with the right arm", "pitches a baseball"),
           keys=("stand", "throw_windup_right", "throw_release_right", "stand"), period=0.45),
    Action("lunges", ("does lunges", "alternating forward lunges", "lunge exercise"),
           keys=("stand", "lunge_left", "stand", "lunge_right"), cycle=True, period=0.7, seconds=2.8),
    Action("pick_up", ("picks something up from the floor", "bends down to pick up an object"),
           keys=("stand", "touch_toes", "touch_toes", "stand"), period=0.7),
    Action("stretch", ("stretches", "stretches the arms", "warms up by stretching"),
           keys=("stand", "stretch", "side_stretch_left", "side_stretch_right", "stand"), period=0.7),
    Action("turn_around", ("turns around", "turns to face the other way", "turns back", "about-face"),
           keys=("stand",), turn=180.0, seconds=1.5),
    Action("turn_left", ("turns to the left", "turns left", "rotates the body to the left"), keys=("stand",),
           turn=90.0, seconds=1.2),
    Action("turn_right", ("turns to the right", "turns right", "rotates the body to the right"), keys=("stand",),
           turn=-90.0, seconds=1.2),
    Action("spin", ("spins around", "spins in a full circle", "twirls around", "pirouettes"), keys=("stand",),
           turn=360.0, seconds=1.5),
    Action("walk", ("walks", "walks forward", "a person walking", "strolls along", "takes a walk"),
           kind="gait", gait="walk", seconds=3.0),
    Action("run", ("runs", "runs forward", "sprints", "running fast", "races ahead"), kind="gait", gait="run",
           seconds=3.0),
    Action("jog", ("jogs", "jogging", "a light run", "jogs forward at an easy pace"), kind="gait", gait="jog",
           seconds=3.0),
    Action("march", ("marches", "marching like a soldier", "marches with the knees high"), kind="gait",
           gait="march", seconds=3.0),
    Action("hop", ("hops forward", "hops on one leg", "hopping along", "bunny hops forward"), kind="gait",
           gait="hop", seconds=3.0),
    Action("walk_backward", ("walks backwards", "steps back", "backs away", "walks in reverse"), kind="gait",
           gait="walk_backward", seconds=3.0),
)

SPEEDS: dict[str, tuple[float, tuple[str, ...]]] = {
    "slow": (0.65, ("slowly", "moves slowly and leisurely", "a slow, careful, relaxed pace", "sluggishly",
                    "tired, dragging along")),
    "normal": (1.0, ("at a normal pace", "moves", "steadily")),
    "fast": (1.45, ("quickly", "moves fast and briskly", "hurries in a rush", "rapidly, at high speed",
                    "energetically")),
}


@dataclass
class Candidate:
    """A scored action or key pose."""
    name: str
    kind: str            # "action" | "gait" | "pose" | "clip"
    score: float
    text: str            # the best-matching description


@dataclass
class Segment:
    """One part of the prompt and what it was understood as."""
    text: str
    choice: Candidate
    ranked: list[Candidate] = field(default_factory=list)     # top candidates, best first
    speed: float = 1.0
    speed_name: str = "normal"
    weight: float = 2.0                                       # relative share of the duration
    matched: bool = True                                      # False: nothing matched, standing idle
    count: int | None = None                                  # repetitions asked for ("three times"), capped
    count_requested: int | None = None                        # the number as written, before the cap
    overlay: Segment | None = None                            # an upper-body action done at the same time

    def summary(self) -> dict[str, Any]:
        out = {"text": self.text, "action": self.choice.name, "kind": self.choice.kind,
               "score": round(self.choice.score, 4), "speed": self.speed_name, "matched": self.matched,
               "candidates": [{"name": c.name, "kind": c.kind, "score": round(c.score, 4)} for c in self.ranked]}
        if self.count is not None:
            out["repetitions"] = {"requested": self.count_requested, "played": self.count,
                                  "capped": self.count_requested != self.count}
        if self.overlay is not None:
            out["overlay"] = self.overlay.summary()
        return out


def extract_count(phrase: str) -> tuple[str, int | None]:
    """The phrase without its repetition count, and the count ("jumps three
    times" -> ("jumps", 3); "does 5 squats" -> ("does squats", 5)); None when
    it names none."""
    m = _TIMES.search(phrase)
    if m:
        word = (m.group(1) or m.group(2)).lower()
        count = int(word) if word.isdigit() else _NUMBERS[word]
        return (phrase[:m.start()] + phrase[m.end():]).strip(" ,"), count
    m = _COUNTED.search(phrase)
    if m:
        word = m.group(1).lower()
        count = int(word) if word.isdigit() else _NUMBERS[word]
        if count >= 2:
            return (phrase[:m.start()] + m.group(2) + phrase[m.end():]).strip(" ,"), count
    return phrase, None


def split_phrases(prompt: str) -> list[str]:
    """The prompt cut at sequencing words, in order, without empty pieces."""
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
    return pieces or [prompt.strip()]


_description_cache: dict[tuple[str, str, str], np.ndarray] = {}


def _encode_cached(encoder: TextEncoder, texts: list[str]) -> np.ndarray:
    """Embeddings of the (fixed) descriptions, computed once per encoder and text:
    vocabularies with library poses share the authored ones'."""
    key = (encoder.name, encoder.version)
    todo = [t for t in dict.fromkeys(texts) if key + (t,) not in _description_cache]
    if todo:
        for t, e in zip(todo, encoder.encode(todo)):
            _description_cache[key + (t,)] = e
    return np.stack([_description_cache[key + (t,)] for t in texts]) if texts else np.zeros((0, encoder.dim),
                                                                                              np.float32)


class MotionVocabulary:
    """Embeddings of every action, gait, key pose and speed description for one
    encoder (computed once and reused)."""

    def __init__(self, encoder: TextEncoder, keyposes: Sequence[KeyPose], extra: Sequence[Candidate] = ()) -> None:
        self.encoder = encoder
        self.keyposes = list(keyposes)
        self.items: list[tuple[str, str]] = []        # (name, kind) per entry
        texts: list[str] = []
        owner: list[int] = []
        for a in ACTIONS:
            self.items.append((a.name, "gait" if a.kind == "gait" else "action"))
            for t in a.descriptions:
                texts.append(t)
                owner.append(len(self.items) - 1)
        for kp in self.keyposes:
            self.items.append((kp.name, "pose"))
            for t in kp.descriptions:
                texts.append(t)
                owner.append(len(self.items) - 1)
        self.texts = texts
        self.owner = np.asarray(owner)
        self.text_emb = _encode_cached(encoder, texts)
        self.neutral = _encode_cached(encoder, [NEUTRAL_PROMPT])[0]
        speed_texts = [(name, t) for name, (_, ts) in SPEEDS.items() for t in ts]
        self.speed_names = [n for n, _ in speed_texts]
        self.speed_emb = _encode_cached(encoder, [t for _, t in speed_texts])
        self._cache: dict[str, np.ndarray] = {}
        self._upper_poses = {kp.name for kp in self.keyposes if _is_upper_body_pose(kp.rotations)}

    def is_upper(self, c: Candidate) -> bool:
        """An upper-body action or pose: its arms/head can be layered on another motion."""
        if c.kind == "action":
            return action_by_name(c.name).upper
        return c.kind == "pose" and c.name in self._upper_poses

    def is_base(self, c: Candidate) -> bool:
        """A motion that carries the legs (a gait, a whole- or lower-body action or pose)."""
        return c.kind == "gait" or (c.kind in ("action", "pose") and not self.is_upper(c))

    def embed(self, texts: Sequence[str]) -> None:
        """Encode `texts` in one batch (one forward pass) and remember them for rank/speed_of."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if todo:
            for t, e in zip(todo, self.encoder.encode(todo)):
                self._cache[t] = e
            while len(self._cache) > 4096:              # bounded: a server sees many prompts
                self._cache.pop(next(iter(self._cache)))

    def _query(self, phrase: str) -> np.ndarray:
        self.embed([phrase])
        return self._cache[phrase]

    def rank(self, phrase: str, top: int = 5) -> list[Candidate]:
        """Every action / gait / pose scored by its best description's cosine
        similarity to `phrase`, best first."""
        q = self._query(phrase)
        sims = self.text_emb @ q
        best = np.full(len(self.items), -np.inf)
        best_text = [""] * len(self.items)
        for i, (s, o) in enumerate(zip(sims, self.owner)):
            if s > best[o]:
                best[o] = s
                best_text[o] = self.texts[i]
        order = np.argsort(-best)[:top]
        return [Candidate(self.items[i][0], self.items[i][1], float(best[i]), best_text[i]) for i in order]

    def rank_poses(self, phrase: str, top: int = 5) -> list[Candidate]:
        """Key poses alone, by AvatarCLIP's differential score (prompt minus a neutral prompt)."""
        q = differential(self._query(phrase)[None], self.neutral)[0]
        keys = differential(self.text_emb, self.neutral)
        sims = keys @ q
        scores: dict[int, tuple[float, str]] = {}
        for i, (s, o) in enumerate(zip(sims, self.owner)):
            if self.items[o][1] == "pose" and (o not in scores or s > scores[o][0]):
                scores[o] = (float(s), self.texts[i])
        order = sorted(scores, key=lambda o: -scores[o][0])[:top]
        return [Candidate(self.items[o][0], "pose", scores[o][0], scores[o][1]) for o in order]

    def speed_of(self, phrase: str) -> tuple[str, float]:
        """The speed a phrase asks for: the closest speed description, by how
        much more it matches than "normal" (differential against the neutral prompt)."""
        q = differential(self._query(phrase)[None], self.neutral)[0]
        sims = differential(self.speed_emb, self.neutral) @ q
        per = {name: max(float(s) for s, n in zip(sims, self.speed_names) if n == name) for name in SPEEDS}
        name = max(per, key=per.get)
        # A speed word must stand out; otherwise the gait's own pace.
        if name != "normal" and per[name] - per["normal"] < 0.05:
            name = "normal"
        return name, SPEEDS[name][0]


_LOWER_JOINTS = ("pelvis", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
                 "left_foot", "right_foot", "spine1", "spine2")


def _is_upper_body_pose(rot: np.ndarray) -> bool:
    """A pose whose legs, pelvis and lower spine stand as in "stand" (within 3
    degrees) and whose arms or head do something else (more than 10 degrees)."""
    from ..motion.keyposes import keypose
    from ..motion.skeleton import J

    diff = np.degrees(np.linalg.norm(np.asarray(rot) - keypose("stand").rotations, axis=-1))
    lower = np.array([J[n] for n in _LOWER_JOINTS])
    upper = np.setdiff1d(np.arange(len(diff)), lower)
    return bool(diff[lower].max() < 3.0 and diff[upper].max() > 10.0)


def action_by_name(name: str) -> Action:
    for a in ACTIONS:
        if a.name == name:
            return a
    raise KeyError(name)


def understand(prompt: str, vocabulary: MotionVocabulary, top: int = 5) -> list[Segment]:
    """The prompt as an ordered list of segments, each with its chosen action,
    gait or key pose (the best-scoring one), its ranked candidates, its
    repetition count and, for "walks while waving", the upper-body action
    layered on it."""
    segments = []
    phrases = split_phrases(prompt)
    texts = []
    for p in phrases:
        texts += [p, extract_count(p)[0]] + [extract_count(h.strip())[0] for h in _AND.split(p) if h.strip()]
        texts += [extract_count(h)[0] for pair in _together_halves(p) for h in pair]
    vocabulary.embed([t for t in texts if t])
    for phrase in phrases:
        layered = _layered_segment(phrase, vocabulary, top)
        if layered is not None:
            segments.append(layered)
            continue
        for part in _split_and(phrase, vocabulary):
            segments.append(_segment(part, vocabulary, top))
    return segments


def _segment(text: str, vocabulary: MotionVocabulary, top: int, ranked: list[Candidate] | None = None) -> Segment:
    """One action: the best candidate for `text` (without its count), its speed, count and weight."""
    clean, requested = extract_count(text)
    ranked = ranked if ranked is not None else vocabulary.rank(clean or text, top)
    choice = ranked[0]
    if choice.score < MIN_SCORE:
        # Nothing in the vocabulary resembles this phrase (gibberish, an unknown
        # language): stand idle rather than act out a random match; recorded as such.
        choice = Candidate("stand", "pose", choice.score, "(no action matched; standing)")
    speed_name, speed = vocabulary.speed_of(clean or text) if choice.kind == "gait" else ("normal", 1.0)
    count = None if requested is None else max(1, min(requested, MAX_REPEATS))
    weight = _natural_seconds(choice, count, speed)
    return Segment(text, choice, ranked, speed, speed_name, weight, choice is ranked[0], count, requested)


def _natural_seconds(choice: Candidate, count: int | None, speed: float) -> float:
    """How long an action takes (its share of a multi-action prompt): longer when repeated."""
    if choice.kind not in ("action", "gait"):
        return 2.0
    action = action_by_name(choice.name)
    if count is None:
        return action.seconds
    if choice.kind == "gait":
        from ..motion.locomotion import cycle_period

        return count * cycle_period(action.gait or "walk", speed) + 1.0
    if action.cycle:
        return max(1.0, count * len(action.keys) * action.period + action.period)
    return action.seconds * count


def _together_halves(phrase: str) -> list[tuple[str, str]]:
    """Every way of cutting `phrase` in two at a connective or before a participle."""
    out = []
    for m in _TOGETHER.finditer(phrase):
        a, b = phrase[:m.start()].strip(" ,"), phrase[m.end():].strip(" ,")
        if a and b:
            out.append((a, b))
    return out


def _layered_segment(phrase: str, vocabulary: MotionVocabulary, top: int) -> Segment | None:
    """"walks while waving", "jogs with both arms raised", "waves while sitting":
    a base motion (gait, lower- or whole-body action) with an upper-body action
    over the same time, when one half of the phrase clearly means each (the
    encoder decides); None when the phrase is not such a pair."""
    best: tuple[float, str, list[Candidate], str, list[Candidate]] | None = None
    for a, b in _together_halves(phrase):
        ra = vocabulary.rank(extract_count(a)[0] or a, top)
        rb = vocabulary.rank(extract_count(b)[0] or b, top)
        for base_text, base_r, up_text, up_r in ((a, ra, b, rb), (b, rb, a, ra)):
            score = min(base_r[0].score, up_r[0].score)
            if score >= TOGETHER_SCORE and vocabulary.is_base(base_r[0]) and vocabulary.is_upper(up_r[0]) \
                    and (best is None or score > best[0]):
                best = (score, base_text, base_r, up_text, up_r)
    if best is None:
        return None
    _, base_text, base_r, up_text, up_r = best
    segment = _segment(base_text, vocabulary, top, base_r)
    segment.overlay = _segment(up_text, vocabulary, top, up_r)
    if segment.count is None and segment.overlay.count is not None:
        segment.weight = max(segment.weight, segment.overlay.weight)
    return segment


def _split_and(phrase: str, vocabulary: MotionVocabulary, threshold: float = 0.55) -> list[str]:
    """"X and Y" as two actions when each half alone matches an action or pose
    clearly better than the whole does; else the phrase as one."""
    halves = _AND.split(phrase)
    if len(halves) < 2:
        return [phrase]
    whole = vocabulary.rank(extract_count(phrase)[0] or phrase, 1)[0].score
    parts = [h.strip() for h in halves if h.strip()]
    scores = [vocabulary.rank(extract_count(h)[0] or h, 1)[0].score for h in parts]
    if min(scores) >= threshold and min(scores) > whole:
        return parts
    return [phrase]
