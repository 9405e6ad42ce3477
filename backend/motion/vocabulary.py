"""What a motion prompt's clauses are matched to (AvatarCLIP M1's retrieval): the
actions (key-pose sequences and gaits) and the key poses, each with descriptions
that the text encoder ranks against a clause's words.

The prompt's words are read by text/motion_prompt.py into phrases and clauses
(core/phrases.py); here every clause becomes a Segment: its best action, gait
or key pose, its ranked candidates, its repetition count and, for "walks while
waving", the upper-body action layered on it.

Sides are never ranked by the encoder: of a sided action or pose and its mirror
image the clause gets the one on the side it names (the acting limb's side, the
other of a supporting one, or the direction it turns to), else DEFAULT_SIDE.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np

from ..core.phrases import BOTH, SIDES, Clause, Phrase, other_side
from ..models.text_encoder import TextEncoder
from .keyposes import KeyPose, authored_keyposes, keypose, mirror_text
from .locomotion import PACE_SPEED, cycle_period
from .skeleton import J

MIN_SCORE = 0.3            # below this cosine similarity no action is taken to be meant
MAX_REPEATS = 10           # repetition counts are capped here (a bounded amount of work per segment)
TOGETHER_SCORE = 0.45      # both halves of a simultaneous phrase must match this well
AND_SCORE = 0.55           # each half of "X and Y" must match this well to be an action of its own
DEFAULT_SIDE = "right"     # the side of a sided action when the prompt names none (most people's)
SIDED_MARGIN = 0.06        # a one-sided action this close to a two-sided best wins when one limb's side is named


@dataclass(frozen=True)
class Action:
    """Something a person does over a segment of the motion.

    kind "poses": play the key poses `keys` (names in the codebook) in order,
    `period` seconds apart, repeated over the segment when `cycle`, else spread
    over it (with the last one held: AvatarCLIP's progress towards the target).
    kind "gait": a locomotion cycle (locomotion.py) named `gait`.
    A sided action names its `side` (its acting limb's, or for a turn the way
    it turns); its mirror image is made from it (mirrored_action)."""
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
    side: str | None = None

    @property
    def directional(self) -> bool:
        """Its side is where the body turns, not which limb moves."""
        return self.turn != 0.0


# Sided actions are authored for one side; mirrored_action makes the other.
_AUTHORED: tuple[Action, ...] = (
    Action("wave_right", upper=True, side="right",
           descriptions=("waves hello", "waves with the right hand", "waving goodbye with the right hand",
                         "greets someone with a friendly wave of the hand", "says hi and waves", "is waving"),
           keys=("wave_right_a", "wave_right_b"), cycle=True, period=0.32),
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
    Action("punch_right", upper=True, side="right",
           descriptions=("punches with the right fist", "throws a right punch", "hits with the right hand"),
           keys=("guard", "punch_right"), cycle=True, period=0.35),
    Action("kick_right", ("kicks", "kicks with the right leg", "kicks a ball with the right foot",
                          "does a front kick"), side="right",
           keys=("stand", "kick_right", "kick_right", "stand"), cycle=True, period=0.3),
    Action("bow", ("bows", "takes a bow", "bows politely to the audience", "bends forward in a bow"),
           keys=("stand", "bow", "bow", "stand"), period=0.6),
    Action("dance", ("dances", "dancing to the music", "does a little dance", "grooves and dances happily"),
           keys=("dance_a", "dance_b"), cycle=True, period=0.5),
    Action("nod", upper=True,
           descriptions=("nods the head", "nods yes"), keys=("stand", "look_down"), cycle=True, period=0.3),
    Action("shake_head", upper=True,
           descriptions=("shakes the head", "shakes the head no", "looks around left and right"),
           keys=("head_turn_left", "head_turn_right"), cycle=True, period=0.4),
    Action("throw_right", upper=True, side="right",
           descriptions=("throws a ball", "throws something with the right arm", "pitches a baseball"),
           keys=("stand", "throw_windup_right", "throw_release_right", "stand"), period=0.45),
    Action("lunges", ("does lunges", "alternating forward lunges", "lunge exercise"),
           keys=("stand", "lunge_left", "stand", "lunge_right"), cycle=True, period=0.7, seconds=2.8),
    Action("pick_up", ("picks something up from the floor", "bends down to pick up an object"),
           keys=("stand", "touch_toes", "touch_toes", "stand"), period=0.7),
    Action("stretch", ("stretches", "stretches the arms", "warms up by stretching"),
           keys=("stand", "stretch", "side_stretch_left", "side_stretch_right", "stand"), period=0.7),
    Action("turn_around", ("turns around", "turns to face the other way", "turns back", "about-face",
                           "turns around to the left", "turns around to the right", "does a half turn"),
           keys=("stand",), turn=180.0, seconds=1.5),
    Action("turn_left", ("turns to the left", "turns left", "rotates the body to the left",
                         "makes a quarter turn to the left"), keys=("stand",),
           turn=90.0, seconds=1.2, side="left"),
    Action("spin", ("spins around", "spins in a full circle", "twirls around", "pirouettes", "does a full turn"),
           keys=("stand",),
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


def mirrored_name(name: str) -> str:
    """A sided name for the other side ("kick_right" -> "kick_left")."""
    return "_".join(other_side(w) if w in SIDES else w for w in name.split("_"))


def mirrored_action(action: Action) -> Action:
    """A sided action for the other side: mirrored key poses and sided descriptions, the opposite turn."""
    assert action.side is not None
    sided = tuple(t for t in action.descriptions if set(SIDES) & set(t.split())) or action.descriptions
    keys = tuple(keypose(k).mirror if keypose(k).side else k for k in action.keys)
    return replace(action, name=mirrored_name(action.name), descriptions=tuple(mirror_text(t) for t in sided),
                   keys=keys, turn=-action.turn, side=other_side(action.side))


ACTIONS: tuple[Action, ...] = _AUTHORED + tuple(mirrored_action(a) for a in _AUTHORED if a.side)
_ACTIONS_BY_NAME = {a.name: a for a in ACTIONS}


def action_by_name(name: str) -> Action:
    return _ACTIONS_BY_NAME[name]


def vocabulary_texts() -> list[str]:
    """Every action and authored key-pose description: the texts prompts are matched against."""
    texts = [t for a in ACTIONS for t in a.descriptions] + [t for kp in authored_keyposes() for t in kp.descriptions]
    return list(dict.fromkeys(texts))


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
    turn: float = 0.0                                         # degrees one repetition turns (+: to the left)
    side: str | None = None                                   # the side of a sided choice

    def summary(self) -> dict[str, Any]:
        out = {"text": self.text, "action": self.choice.name, "kind": self.choice.kind,
               "score": round(self.choice.score, 4), "speed": self.speed_name, "matched": self.matched,
               "candidates": [{"name": c.name, "kind": c.kind, "score": round(c.score, 4)} for c in self.ranked]}
        if self.side is not None:
            out["side"] = self.side
        if self.count is not None:
            out["repetitions"] = {"requested": self.count_requested, "played": self.count,
                                  "capped": self.count_requested != self.count}
        if self.overlay is not None:
            out["overlay"] = self.overlay.summary()
        return out


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


@dataclass(frozen=True)
class _Sided:
    side: str
    mirror: str
    directional: bool


class MotionVocabulary:
    """Embeddings of every action, gait and key pose description for one encoder
    (computed once and reused); `neutral` is the prompt that says nothing
    (AvatarCLIP's differential scores subtract it)."""

    def __init__(self, encoder: TextEncoder, keyposes: Sequence[KeyPose], neutral: str) -> None:
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
        self.neutral = _encode_cached(encoder, [neutral])[0]
        self._cache: dict[str, np.ndarray] = {}
        self._upper_poses = {kp.name for kp in self.keyposes if _is_upper_body_pose(kp.rotations)}
        self._sided = {a.name: _Sided(a.side, mirrored_name(a.name), a.directional) for a in ACTIONS if a.side}
        self._sided |= {kp.name: _Sided(kp.side, kp.mirror, kp.directional) for kp in self.keyposes
                        if kp.side and kp.mirror}

    def is_upper(self, c: Candidate) -> bool:
        """An upper-body action or pose: its arms/head can be layered on another motion."""
        if c.kind == "action":
            return action_by_name(c.name).upper
        return c.kind == "pose" and c.name in self._upper_poses

    def is_base(self, c: Candidate) -> bool:
        """A motion that carries the legs (a gait, a whole- or lower-body action or pose)."""
        return c.kind == "gait" or (c.kind in ("action", "pose") and not self.is_upper(c))

    def embed(self, texts: Sequence[str]) -> None:
        """Encode `texts` in one batch (one forward pass) and remember them for `rank`."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if todo:
            for t, e in zip(todo, self.encoder.encode(todo)):
                self._cache[t] = e
            while len(self._cache) > 4096:              # bounded: a server sees many prompts
                self._cache.pop(next(iter(self._cache)))

    def query(self, phrase: str) -> np.ndarray:
        """The embedding of `phrase` (encoded now unless `embed` saw it)."""
        self.embed([phrase])
        return self._cache[phrase]

    def rank(self, phrase: str, top: int = 5) -> list[Candidate]:
        """Every action / gait / pose scored by its best description's cosine
        similarity to `phrase`, best first."""
        sims = self.text_emb @ self.query(phrase)
        best = np.full(len(self.items), -np.inf)
        best_text = [""] * len(self.items)
        for i, (s, o) in enumerate(zip(sims, self.owner)):
            if s > best[o]:
                best[o] = s
                best_text[o] = self.texts[i]
        # Ties (a pose and an action described by the same words, "sits down") go to the
        # action, then to the earlier entry: never to whatever order a sort leaves them in.
        kinds = np.array([TIE_ORDER.get(kind, len(TIE_ORDER)) for _, kind in self.items])
        order = np.lexsort((np.arange(len(best)), kinds, -best))[:top]
        return [Candidate(self.items[i][0], self.items[i][1], float(best[i]), best_text[i]) for i in order]

    def side_of(self, name: str) -> str | None:
        """The side of a sided action or pose, None for the others."""
        sided = self._sided.get(name)
        return None if sided is None else sided.side

    def on_named_side(self, ranked: list[Candidate], clause: Clause) -> list[Candidate]:
        """The candidates with every sided one replaced by its mirror image when that
        is on the side the clause names (its score is the pair's best), duplicates
        dropped: the encoder ranks what is done, the words decide the side."""
        out: list[Candidate] = []
        for c in ranked:
            sided = self._sided.get(c.name)
            if sided is not None and wanted_side(clause, sided.directional) not in (sided.side, BOTH):
                c = Candidate(sided.mirror, c.kind, c.score, mirror_text(c.text))
            if all(o.name != c.name for o in out):
                out.append(c)
        return self._one_sided_first(out, clause)

    def _one_sided_first(self, ranked: list[Candidate], clause: Clause) -> list[Candidate]:
        """When the clause names the side of a limb that moves ("pulls his left knee
        up"), a sided action or pose nearly as good as a two-sided best (a tuck jump)
        goes first: the words say one side moves. Not for a supporting side ("jumps
        on the left foot" is still a jump), nor over a gait (hopping on one leg is a hop)."""
        acting = any(m.role == "acting" and m.side in SIDES for m in clause.sides)
        if not acting or not ranked or ranked[0].kind == "gait" or ranked[0].name in self._sided:
            return ranked
        sided = next((c for c in ranked if c.name in self._sided and c.score >= ranked[0].score - SIDED_MARGIN), None)
        return ranked if sided is None else [sided] + [c for c in ranked if c is not sided]


TIE_ORDER = {"action": 0, "gait": 1, "pose": 2}


def wanted_side(clause: Clause, directional: bool) -> str:
    """The side a clause asks of a sided action or pose: for one that turns or
    leans, the direction named, else the acting limb's; for the others the other
    way round; DEFAULT_SIDE when it names neither."""
    named = (clause.direction(), clause.limb_side()) if directional else (clause.limb_side(), clause.direction())
    return next((s for s in named if s is not None), DEFAULT_SIDE)


_LOWER_JOINTS = ("pelvis", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
                 "left_foot", "right_foot", "spine1", "spine2")


def _is_upper_body_pose(rot: np.ndarray) -> bool:
    """A pose whose legs, pelvis and lower spine stand as in "stand" (within 3
    degrees) and whose arms or head do something else (more than 10 degrees)."""
    diff = np.degrees(np.linalg.norm(np.asarray(rot) - keypose("stand").rotations, axis=-1))
    lower = np.array([J[n] for n in _LOWER_JOINTS])
    upper = np.setdiff1d(np.arange(len(diff)), lower)
    return bool(diff[lower].max() < 3.0 and diff[upper].max() > 10.0)


def understand(phrases: Sequence[Phrase], vocabulary: MotionVocabulary, top: int = 5) -> list[Segment]:
    """The prompt's phrases (text/motion_prompt.read_motion_prompt) as an ordered
    list of segments, each with its chosen action, gait or key pose (the
    best-scoring one, on the side named), its ranked candidates, its repetition
    count and, for "walks while waving", the upper-body action layered on it."""
    vocabulary.embed([c.words for p in phrases for c in p.clauses()])
    segments = []
    for phrase in phrases:
        layered = _layered_segment(phrase, vocabulary, top)
        if layered is not None:
            segments.append(layered)
            continue
        segments += [_segment(clause, vocabulary, top) for clause in _split_and(phrase, vocabulary)]
    return segments


def _segment(clause: Clause, vocabulary: MotionVocabulary, top: int,
             ranked: list[Candidate] | None = None) -> Segment:
    """One action: the best candidate for the clause's words, on its side, with its speed, count and weight."""
    ranked = vocabulary.on_named_side(ranked if ranked is not None else vocabulary.rank(clause.words, top), clause)
    choice = ranked[0]
    if choice.score < MIN_SCORE:
        # Nothing in the vocabulary resembles this phrase (gibberish, an unknown
        # language): stand idle rather than act out a random match; recorded as such.
        choice = Candidate("stand", "pose", choice.score, "(no action matched; standing)")
    speed_name, speed = (clause.pace, PACE_SPEED[clause.pace]) if choice.kind == "gait" else ("normal", 1.0)
    count = None if clause.count is None else max(1, min(clause.count, MAX_REPEATS))
    weight = _natural_seconds(choice, count, speed)
    return Segment(clause.text, choice, ranked, speed, speed_name, weight, choice is ranked[0], count, clause.count,
                   turn=_turn_degrees(choice, clause), side=vocabulary.side_of(choice.name))


def _turn_degrees(choice: Candidate, clause: Clause) -> float:
    """How far one repetition of the choice turns the body: a turn that names no
    side of its own ("turns around", "spins") goes the way the clause says."""
    if choice.kind != "action":
        return 0.0
    action = action_by_name(choice.name)
    direction = clause.direction()
    if action.side is None and direction in SIDES:
        return abs(action.turn) if direction == "left" else -abs(action.turn)
    return action.turn


def _natural_seconds(choice: Candidate, count: int | None, speed: float) -> float:
    """How long an action takes (its share of a multi-action prompt): longer when repeated."""
    if choice.kind not in ("action", "gait"):
        return 2.0
    action = action_by_name(choice.name)
    if count is None:
        return action.seconds
    if choice.kind == "gait":
        return count * cycle_period(action.gait or "walk", speed) + 1.0
    if action.cycle:
        return max(1.0, count * len(action.keys) * action.period + action.period)
    return action.seconds * count


def _layered_segment(phrase: Phrase, vocabulary: MotionVocabulary, top: int) -> Segment | None:
    """"walks while waving", "jogs with both arms raised", "waves while sitting":
    a base motion (gait, lower- or whole-body action) with an upper-body action
    over the same time, when one half of the phrase clearly means each (the
    encoder decides); None when the phrase is not such a pair."""
    best: tuple[float, Clause, list[Candidate], Clause, list[Candidate]] | None = None
    for a, b in phrase.pairs:
        ra, rb = vocabulary.rank(a.words, top), vocabulary.rank(b.words, top)
        for base, base_r, up, up_r in ((a, ra, b, rb), (b, rb, a, ra)):
            score = min(base_r[0].score, up_r[0].score)
            if score >= TOGETHER_SCORE and vocabulary.is_base(base_r[0]) and vocabulary.is_upper(up_r[0]) \
                    and (best is None or score > best[0]):
                best = (score, base, base_r, up, up_r)
    if best is None:
        return None
    _, base, base_r, up, up_r = best
    segment = _segment(base, vocabulary, top, base_r)
    segment.overlay = _segment(up, vocabulary, top, up_r)
    if segment.count is None and segment.overlay.count is not None:
        segment.weight = max(segment.weight, segment.overlay.weight)
    return segment


def _split_and(phrase: Phrase, vocabulary: MotionVocabulary) -> list[Clause]:
    """"X and Y" as two actions when each half alone matches an action or pose
    clearly better than the whole does; else the phrase as one."""
    if not phrase.parts:
        return [phrase.whole]
    whole = vocabulary.rank(phrase.whole.words, 1)[0].score
    scores = [vocabulary.rank(c.words, 1)[0].score for c in phrase.parts]
    if min(scores) >= AND_SCORE and min(scores) > whole:
        return list(phrase.parts)
    return [phrase.whole]
