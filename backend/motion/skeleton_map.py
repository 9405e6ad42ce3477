"""Which joints of an unknown humanoid skeleton are SMPL-24's, found from its
topology and rest-pose geometry; joint names are only a hint (end markers,
the left/right words when the geometry cannot tell the facing).

The search, in the skeleton's own axes and units (Y up or Z up, any facing,
T- or A-pose rest, extra twist/roll bones, fingers, toes, eyes, props):

1. body: a pelvis P (a joint with two or more child branches) and a chest C
   inside one of them (three or more branches) such that, with up = P->C,
   two other branches of P (or of the one pelvis bone under it) reach well
   below P (the legs, about as deep as each other) and C has two long
   branches on opposite sides (the arms) plus the most upright branch (neck
   and head). Of several such readings the one with the longest limbs wins
   (a head with two eyes is not a chest with arms). Leaf joints that only
   mark a bone's end (named ...End/Nub/Top/Tip, or with a stub End Site) are
   never mapped.
2. each limb follows its longest path (side twist bones and fingers are left
   aside): a leg's ankle is where the chain turns forward (the foot), its hip
   the top of the long downward part (a short pelvis-to-thigh bone stays
   unmapped), its knee the joint nearest SMPL's thigh/shin split; an arm's
   wrist is where short branches fan out (fingers), its shoulder and elbow the
   pair whose upper arm and forearm lengths best match SMPL's proportions
   (scaled by the leg length), so a collar bone in line with the arm is not
   taken for the shoulder, and in-chain twist bones are skipped.
3. left/right: the feet point forward; left = up x forward (the person's left).
   Without feet that point anywhere, the side words in the names decide; the
   evidence says which.

`map_humanoid` returns the mapping with the evidence for each part, or raises
NotHumanoid saying what it could not find.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Sequence

import numpy as np

from .skeleton import J, reference_rest_positions

# Leaf joints named like these are end markers (exporters that write the end
# of a chain as a joint: "HeadTop_End", "Bip01 HeadNub", "head_end", "LeftToe_tip").
_END_MARKER = re.compile(r"(end|nub|top|tip)[\W_\d]*$", re.IGNORECASE)
_LEFT_WORD = re.compile(r"left|links|gauche|izquierd|sinistr|esquerd|hidari|左", re.IGNORECASE)
_RIGHT_WORD = re.compile(r"right|rechts|droit|derech|destr|direit|migi|右", re.IGNORECASE)
# Single-letter side marks: "lCollar", "L_Thigh", "Bip01 L Thigh", "thigh_l", "upperarm.L".
_LEFT_LETTER = re.compile(r"(^l(?=[A-Z_.\s-]))|(^L(?=[A-Z_.\s-]|$))|([_.\s-][lL]([_.\s-]|$))")
_RIGHT_LETTER = re.compile(r"(^r(?=[A-Z_.\s-]))|(^R(?=[A-Z_.\s-]|$))|([_.\s-][rR]([_.\s-]|$))")

# Tolerances of the body search (ratios, so any unit works).
LEG_DEPTH_OVER_TORSO = 1.0     # a leg reaches at least as far below the pelvis as the pelvis is below the chest
PAIR_SIMILARITY = 0.7          # the shorter of two paired limbs is at least 70 % of the longer
ARM_REACH_OVER_LEG = 0.4       # an arm (from the chest) reaches at least 40 % of a leg's depth
HIP_DROP_FRACTION = 0.9        # the hip is the last leg joint with >= 90 % of the leg's drop still below it
FINGER_REACH_FRACTION = 0.5    # branches at the wrist reach at most half of the arm before it
END_STUB_FRACTION = 0.25       # a leaf whose End Sites are shorter than a quarter of its bone is an end marker
MAX_FORKS = 16                 # forks tried as pelvis (and as chest under each): bounds the work


class NotHumanoid(ValueError):
    """The skeleton could not be read as a humanoid; `missing` names the parts not found."""

    def __init__(self, message: str, missing: list[str]) -> None:
        super().__init__(message)
        self.missing = missing


@dataclass
class SkeletonMapping:
    mapping: dict[int, str]                 # joint index -> SMPL-24 joint name
    up: np.ndarray                          # (3,) unit, the skeleton's axes
    forward: np.ndarray                     # (3,) unit, where the body faces
    evidence: dict[str, str] = field(default_factory=dict)   # part -> what decided it

    def by_name(self, names: Sequence[str]) -> dict[str, str]:
        """{joint name: SMPL joint}, in the skeleton's joint order."""
        return {names[i]: j for i, j in sorted(self.mapping.items())}


@lru_cache(maxsize=1)
def _smpl_proportions() -> dict[str, float]:
    """SMPL's reference limb proportions (one fact, one place: skeleton.py's geometry)."""
    r = reference_rest_positions()

    def d(a: str, b: str) -> float:
        return float(np.linalg.norm(r[J[a]] - r[J[b]]))

    thigh, shin = d("left_hip", "left_knee"), d("left_knee", "left_ankle")
    upper, fore = d("left_shoulder", "left_elbow"), d("left_elbow", "left_wrist")
    return {"knee_split": thigh / (thigh + shin), "elbow_split": upper / (upper + fore),
            "upper_arm_over_leg": upper / (thigh + shin), "forearm_over_leg": fore / (thigh + shin)}


class _Tree:
    """Children, positions, end points and reaches of a skeleton."""

    def __init__(self, names: Sequence[str], parents: Sequence[int], rest: np.ndarray,
                 end_points: Sequence[Sequence[np.ndarray]]) -> None:
        self.names = list(names)
        self.parents = [int(p) for p in parents]
        self.pos = np.asarray(rest, dtype=np.float64)
        n = len(self.names)
        self.children: list[list[int]] = [[] for _ in range(n)]
        for i, p in enumerate(self.parents):
            if p >= 0:
                self.children[p].append(i)
        self.ends = [[np.asarray(e, np.float64) for e in end_points[i]] for i in range(n)]
        self.marker = [self._is_marker(i) for i in range(n)]
        self._points: dict[int, np.ndarray] = {}
        self.reach = np.zeros(n)                # longest path from a joint down to anything below it
        for i in reversed(self._order()):
            cands = [float(np.linalg.norm(e - self.pos[i])) for e in self.ends[i]]
            cands += [self.bone(c) + self.reach[c] for c in self.children[i]]
            self.reach[i] = max(cands, default=0.0)

    def _is_marker(self, i: int) -> bool:
        """A leaf joint that only marks where its parent's bone ends: named so, or
        its End Sites are stubs (Mixamo's HeadTop_End, LeftToe_End)."""
        if self.children[i]:
            return False
        if _END_MARKER.search(self.names[i]):
            return True
        stubs = [float(np.linalg.norm(e - self.pos[i])) for e in self.ends[i]]
        return bool(stubs) and max(stubs) < END_STUB_FRACTION * self.bone(i)

    def _order(self) -> list[int]:
        """Parents before children."""
        roots = [i for i, p in enumerate(self.parents) if p < 0]
        out, stack = [], list(reversed(roots))
        while stack:
            i = stack.pop()
            out.append(i)
            stack.extend(reversed(self.children[i]))
        return out

    def bone(self, i: int) -> float:
        p = self.parents[i]
        return float(np.linalg.norm(self.pos[i] - self.pos[p])) if p >= 0 else 0.0

    def branch_reach(self, child: int) -> float:
        return self.bone(child) + self.reach[child]

    def joints(self, i: int) -> list[int]:
        """Children that are joints proper (end markers aside)."""
        return [c for c in self.children[i] if not self.marker[c]]

    def subtree(self, i: int) -> list[int]:
        out, stack = [], [i]
        while stack:
            k = stack.pop()
            out.append(k)
            stack.extend(self.children[k])
        return out

    def points(self, i: int) -> np.ndarray:
        """Positions of a subtree's joints and end points (cached)."""
        if i not in self._points:
            sub = self.subtree(i)
            self._points[i] = np.array([self.pos[k] for k in sub] + [e for k in sub for e in self.ends[k]])
        return self._points[i]

    def chain(self, start: int) -> tuple[list[int], np.ndarray | None]:
        """The longest path down from `start`: its joints (end markers excluded)
        and the point it ends at (an End Site, a marker or its last joint)."""
        out, i = [start], start
        while True:
            best_end = max((float(np.linalg.norm(e - self.pos[i])), e) for e in self.ends[i]) \
                if self.ends[i] else (-1.0, None)
            kids = self.children[i]
            if not kids or (best_end[0] >= max(self.branch_reach(c) for c in kids)):
                return out, (best_end[1] if best_end[1] is not None else None)
            nxt = max(kids, key=self.branch_reach)
            if self.marker[nxt]:
                return out, self.pos[nxt]
            out.append(nxt)
            i = nxt


@dataclass
class _Body:
    pelvis: int
    chest: int
    up: np.ndarray
    legs: tuple[int, int]          # first joints of the two leg branches (under the pelvis)
    arms: tuple[int, int]          # first joints of the two arm branches (under the chest)
    head: int                      # first joint of the head branch
    score: float


def _lateral(v: np.ndarray, up: np.ndarray) -> np.ndarray:
    return v - up * float(np.dot(v, up))


def _bodies(tree: _Tree) -> tuple[list[_Body], list[str]]:
    """Readings of the skeleton as pelvis + legs + chest + arms + head, and why
    the rejected ones failed (for the error message). Only the forks with the
    longest branches are tried, so a skeleton of a thousand joints costs little."""
    found: list[_Body] = []
    why: list[str] = []
    for p in _widest_forks(tree, range(len(tree.names)), 2):
        for t in tree.children[p]:
            for c in _widest_forks(tree, tree.subtree(t), 3):
                body = _body_at(tree, p, t, c, why)
                if body is not None:
                    found.append(body)
    return found, why


def _widest_forks(tree: _Tree, nodes, branches: int) -> list[int]:
    """Up to MAX_FORKS joints with at least `branches` children, longest third branch first."""
    def third(i: int) -> float:
        reach = sorted((tree.branch_reach(c) for c in tree.children[i]), reverse=True)
        return reach[min(2, len(reach) - 1)]
    forks = [i for i in nodes if len(tree.children[i]) >= branches]
    return sorted(forks, key=third, reverse=True)[:MAX_FORKS]


def _leg_candidates(tree: _Tree, p: int, t: int) -> list[int]:
    """P's branches other than the torso; a single one (a pelvis bone carrying
    both thighs, as in DAZ Genesis) is followed down to where it forks."""
    out = [b for b in tree.children[p] if b != t]
    while len(out) == 1:
        out = tree.children[out[0]]
    return out


def _body_at(tree: _Tree, p: int, t: int, c: int, why: list[str]) -> _Body | None:
    name = tree.names
    torso = tree.pos[c] - tree.pos[p]
    torso_len = float(np.linalg.norm(torso))
    if torso_len <= 1e-9:
        return None
    up = torso / torso_len
    others = _leg_candidates(tree, p, t)
    depth = {b: float(np.max((tree.pos[p] - tree.points(b)) @ up)) for b in others}
    legs = sorted(others, key=lambda b: -depth[b])[:2]
    if len(legs) < 2 or depth[legs[1]] < LEG_DEPTH_OVER_TORSO * torso_len:
        why.append(f"legs: from {name[p]!r}, away from the spine towards {name[c]!r}, no two branches reach at "
                   "least as far as that spine is long")
        return None
    if depth[legs[1]] < PAIR_SIMILARITY * depth[legs[0]]:
        why.append(f"legs: from {name[p]!r} the two deepest branches ({name[legs[0]]!r}, {name[legs[1]]!r}) "
                   "differ too much in length")
        return None
    # The head: the most upright branch (rise over reach), so arms raised above it in the rest still read as arms.
    upright = {}
    for b in tree.children[c]:
        pts = tree.points(b) - tree.pos[c]
        upright[b] = float(np.max(pts @ up)) / max(float(np.max(np.linalg.norm(pts, axis=1))), 1e-12)
    head = max(tree.children[c], key=lambda b: upright[b])
    rest = [b for b in tree.children[c] if b != head]
    arms = sorted(rest, key=lambda b: -tree.branch_reach(b))[:2]
    reach = [tree.branch_reach(b) for b in arms]
    if len(arms) < 2 or reach[1] < PAIR_SIMILARITY * reach[0]:
        why.append(f"arms: at {name[c]!r} there are no two branches of similar length besides the head")
        return None
    if reach[1] < ARM_REACH_OVER_LEG * depth[legs[1]]:
        why.append(f"arms: the branches at {name[c]!r} are too short for arms")
        return None
    far = []
    for b in arms:
        pts = tree.points(b) - tree.pos[c]
        far.append(_lateral(pts[int(np.argmax(np.linalg.norm(pts, axis=1)))], up))
    if float(np.dot(far[0], far[1])) >= 0:
        why.append(f"arms: the two long branches at {name[c]!r} do not point to opposite sides")
        return None
    score = depth[legs[0]] + depth[legs[1]] + reach[0] + reach[1]
    return _Body(p, c, up, (legs[0], legs[1]), (arms[0], arms[1]), head, score)


# -- limbs ------------------------------------------------------------------------------------------
@dataclass
class _Leg:
    hip: int
    knee: int
    ankle: int
    foot: int | None
    toe_direction: np.ndarray | None     # ankle -> end of the foot, lateral to up
    why: str


def _leg(tree: _Tree, start: int, up: np.ndarray) -> _Leg:
    chain, end = tree.chain(start)
    name = tree.names
    pts = [tree.pos[k] for k in chain] + ([end] if end is not None else [])
    ankle_at = None
    for i in range(2, len(chain)):
        if i + 1 < len(pts):
            d = pts[i + 1] - pts[i]
            if np.linalg.norm(_lateral(d, up)) > abs(float(np.dot(d, up))):
                ankle_at = i
                turn = "the chain turns forward there, into the foot"
                break
    if ankle_at is None:
        if len(chain) < 3:
            raise NotHumanoid(f"the leg from {name[start]!r} has {len(chain)} joints; a leg needs hip, knee and "
                              "ankle", ["legs"])
        ankle_at = len(chain) - 1
        turn = "the last joint of the chain (no foot bone points forward)"
    h = np.array([float(np.dot(tree.pos[k], up)) for k in chain])
    drop = h[:ankle_at - 1] - h[ankle_at]
    if not drop.max() > 0:
        raise NotHumanoid(f"the leg from {name[start]!r} does not go down to its ankle", ["legs"])
    hip_at = int(np.flatnonzero(drop >= HIP_DROP_FRACTION * drop.max())[-1])
    split = _smpl_proportions()["knee_split"]
    knee_at = _split_joint(tree, chain, hip_at, ankle_at, split)
    foot = chain[ankle_at + 1] if ankle_at + 1 < len(chain) else None
    # The foot's direction tells the facing only when the chain really turns forward at the ankle.
    toe_end = pts[-1] if len(pts) > ankle_at + 1 and turn.startswith("the chain turns") else None
    toe = None if toe_end is None else _lateral(toe_end - tree.pos[chain[ankle_at]], up)
    skipped = [name[k] for k in chain[:hip_at]]
    why = (f"hip {name[chain[hip_at]]!r} (top of the long downward part"
           f"{'; ' + ', '.join(map(repr, skipped)) + ' above it left unmapped' if skipped else ''}), "
           f"knee {name[chain[knee_at]]!r} (nearest SMPL's thigh/shin split), "
           f"ankle {name[chain[ankle_at]]!r} ({turn})")
    return _Leg(chain[hip_at], chain[knee_at], chain[ankle_at], foot, toe, why)


def _split_joint(tree: _Tree, chain: list[int], a: int, b: int, fraction: float) -> int:
    """Index (a < i < b) of the joint nearest `fraction` of the path from chain[a] to chain[b]."""
    along = np.concatenate([[0.0], np.cumsum([tree.bone(k) for k in chain[a + 1:b + 1]])])
    target = fraction * along[-1]
    inner = range(1, b - a)
    return a + min(inner, key=lambda i: abs(along[i] - target))


@dataclass
class _Arm:
    collar: int | None
    shoulder: int
    elbow: int
    wrist: int
    why: str


def _arm(tree: _Tree, start: int, leg_length: float) -> _Arm:
    chain, _ = tree.chain(start)
    name = tree.names
    along = np.concatenate([[0.0], np.cumsum([tree.bone(k) for k in chain[1:]])])
    wrist_at, wrist_why = None, ""
    for i in range(2, len(chain)):
        kids = tree.joints(chain[i])
        if len(kids) >= 2 and max(tree.branch_reach(k) for k in kids) <= FINGER_REACH_FRACTION * (
                along[i] + tree.bone(chain[0])):
            wrist_at, wrist_why = i, f"{len(kids)} short branches (fingers) start there"
            break
    if wrist_at is None:
        if len(chain) < 3:
            raise NotHumanoid(f"the arm from {name[start]!r} has {len(chain)} joints; an arm needs shoulder, "
                              "elbow and wrist", ["arms"])
        wrist_at, wrist_why = len(chain) - 1, "the last joint of the chain"
        if wrist_at >= 3 and tree.bone(chain[wrist_at]) < 0.5 * tree.bone(chain[wrist_at - 1]):
            wrist_at, wrist_why = wrist_at - 1, "the chain's last long bone ends there (a short hand bone follows)"
    prop = _smpl_proportions()
    want_u, want_f = prop["upper_arm_over_leg"] * leg_length, prop["forearm_over_leg"] * leg_length
    best: tuple[float, int, int] | None = None
    for s in range(0, wrist_at - 1):
        e = _split_joint(tree, chain, s, wrist_at, prop["elbow_split"])
        u = float(np.linalg.norm(tree.pos[chain[e]] - tree.pos[chain[s]]))
        f = float(np.linalg.norm(tree.pos[chain[wrist_at]] - tree.pos[chain[e]]))
        if u <= 0 or f <= 0:
            continue
        err = abs(np.log(u / want_u)) + abs(np.log(f / want_f))
        if best is None or err < best[0]:
            best = (err, s, e)
    if best is None:
        raise NotHumanoid(f"the arm from {name[start]!r} has no upper arm and forearm", ["arms"])
    err, s, e = best
    collar = chain[s - 1] if s >= 1 else None
    u = np.linalg.norm(tree.pos[chain[e]] - tree.pos[chain[s]])
    f = np.linalg.norm(tree.pos[chain[wrist_at]] - tree.pos[chain[e]])
    why = (f"wrist {name[chain[wrist_at]]!r} ({wrist_why}), shoulder {name[chain[s]]!r} and elbow "
           f"{name[chain[e]]!r} (upper arm {u / leg_length:.2f} and forearm {f / leg_length:.2f} of the leg "
           f"length; SMPL {prop['upper_arm_over_leg']:.2f}, {prop['forearm_over_leg']:.2f})"
           + (f", collar {name[collar]!r}" if collar is not None else ", no collar"))
    return _Arm(collar, chain[s], chain[e], chain[wrist_at], why)


def _head(tree: _Tree, start: int) -> tuple[int | None, int, str]:
    """(neck, head, why) along the head branch: the head is the first joint that
    forks (eyes, jaw) or else the chain's last joint."""
    chain, _ = tree.chain(start)
    at = next((i for i, k in enumerate(chain) if len(tree.joints(k)) >= 2), None)
    why = "forks there (eyes, jaw)" if at is not None else "the last joint of the neck/head chain"
    at = len(chain) - 1 if at is None else at
    neck = chain[0] if at > 0 else None
    return neck, chain[at], why


# -- sides --------------------------------------------------------------------------------------------
def side_hint(name: str) -> str | None:
    """"left" / "right" when a joint's name says so (words in several languages, or L/R marks)."""
    left = bool(_LEFT_WORD.search(name) or _LEFT_LETTER.search(name))
    right = bool(_RIGHT_WORD.search(name) or _RIGHT_LETTER.search(name))
    return "left" if left and not right else "right" if right and not left else None


def _named_side(tree: _Tree, start: int) -> str | None:
    votes = [side_hint(tree.names[k]) for k in tree.subtree(start)]
    left, right = votes.count("left"), votes.count("right")
    return "left" if left > right else "right" if right > left else None


def _facing(legs: list[_Leg]) -> tuple[np.ndarray | None, str]:
    """Forward from the feet (ankle -> toes, across up), when both point the same way."""
    toes = [leg.toe_direction for leg in legs if leg.toe_direction is not None]
    units = [t / n for t in toes if (n := np.linalg.norm(t)) > 1e-9]
    if len(units) == 2 and float(np.dot(units[0], units[1])) > 0.5:
        f = units[0] + units[1]
        return f / np.linalg.norm(f), "the feet point forward"
    return None, ""


def _order_pair(tree: _Tree, pair: tuple[int, int], anchor: np.ndarray, left: np.ndarray | None,
                what: str) -> tuple[tuple[int, int], str]:
    """(left, right) of two limb branches, and the evidence."""
    names = [_named_side(tree, b) for b in pair]
    if left is not None:
        side = [float(np.dot(tree.points(b).mean(axis=0) - anchor, left)) for b in pair]
        ordered = pair if side[0] > side[1] else (pair[1], pair[0])
        agree = [_named_side(tree, b) for b in ordered]
        note = "names agree" if agree == ["left", "right"] else \
            "names disagree; geometry kept" if agree == ["right", "left"] else "names say nothing"
        return ordered, f"{what}: left = up x forward ({note})"
    if sorted(map(str, names)) == ["left", "right"]:
        ordered = pair if names[0] == "left" else (pair[1], pair[0])
        return ordered, f"{what}: from the side words in the joint names (no forward direction in the geometry)"
    raise NotHumanoid(f"cannot tell the left {what} from the right: the feet do not point forward in the rest "
                      "pose and the joint names carry no left/right words", [what])


# -- the mapping -----------------------------------------------------------------------------------
def map_humanoid(names: Sequence[str], parents: Sequence[int], rest: np.ndarray,
                 end_points: Sequence[Sequence[np.ndarray]] | None = None) -> SkeletonMapping:
    """The SMPL-24 joints of a humanoid skeleton from its hierarchy and rest
    pose: `rest` (K, 3) joint positions, `end_points` per joint the positions
    of its End Sites (or bone tails). Raises NotHumanoid naming what is missing."""
    tree = _Tree(names, parents, rest, end_points if end_points is not None else [[] for _ in names])
    bodies, why = _bodies(tree)
    if not bodies:
        if not any(len(ch) >= 2 for ch in tree.children):
            raise NotHumanoid("the skeleton is a single chain: it has no pelvis where two legs and a spine meet "
                              "and no chest with two arms", ["legs", "arms"])
        missing = sorted({w.split(":")[0] for w in why}) or ["legs", "arms"]
        raise NotHumanoid("; ".join(dict.fromkeys(why))[:600], missing)
    body = max(bodies, key=lambda b: b.score)
    up = body.up
    legs = [_leg(tree, b, up) for b in body.legs]
    leg_length = float(np.mean([np.linalg.norm(tree.pos[leg.knee] - tree.pos[leg.hip]) +
                                np.linalg.norm(tree.pos[leg.ankle] - tree.pos[leg.knee]) for leg in legs]))
    if not leg_length > 0:
        raise NotHumanoid("the legs have no length", ["legs"])
    forward, facing_why = _facing(legs)
    left = None if forward is None else np.cross(up, forward)
    (l_leg, r_leg), legs_side = _order_pair(tree, body.legs, tree.pos[body.pelvis], left, "legs")
    (l_arm, r_arm), arms_side = _order_pair(tree, body.arms, tree.pos[body.chest], left, "arms")
    if forward is None:      # the names said which leg is left: forward follows
        lat = tree.pos[legs[body.legs.index(l_leg)].hip] - tree.pos[legs[body.legs.index(r_leg)].hip]
        forward = np.cross(_lateral(lat, up) / max(np.linalg.norm(_lateral(lat, up)), 1e-12), up)
        facing_why = "from the left/right words in the leg names"
    mapping: dict[int, str] = {body.pelvis: "pelvis", body.chest: "spine3"}
    spine = []
    k = tree.parents[body.chest]
    while k != body.pelvis:
        spine.append(k)
        k = tree.parents[k]
    spine.reverse()
    if spine:
        mapping[spine[0]] = "spine1"
    if len(spine) >= 2:
        mapping[spine[-1]] = "spine2"
    neck, head, head_why = _head(tree, body.head)
    if neck is not None:
        mapping[neck] = "neck"
    mapping[head] = "head"
    evidence = {
        "pelvis": f"{names[body.pelvis]!r}: where the two legs and the spine branch",
        "spine": f"{names[body.chest]!r} = spine3: where the arms and the neck branch"
                 + (f"; between: {', '.join(repr(names[s]) for s in spine)}" if spine else ""),
        "head": f"head {names[head]!r} ({head_why})" + (f", neck {names[neck]!r}" if neck is not None else ""),
        "facing": facing_why, "sides": f"{legs_side}; {arms_side}"}
    for side, branch in (("left", l_leg), ("right", r_leg)):
        leg = legs[body.legs.index(branch)]
        mapping.update({leg.hip: f"{side}_hip", leg.knee: f"{side}_knee", leg.ankle: f"{side}_ankle"})
        if leg.foot is not None:
            mapping[leg.foot] = f"{side}_foot"
        evidence[f"{side}_leg"] = leg.why
    for side, branch in (("left", l_arm), ("right", r_arm)):
        arm = _arm(tree, branch, leg_length)
        mapping.update({arm.shoulder: f"{side}_shoulder", arm.elbow: f"{side}_elbow", arm.wrist: f"{side}_wrist"})
        if arm.collar is not None:
            mapping[arm.collar] = f"{side}_collar"
        evidence[f"{side}_arm"] = arm.why
    return SkeletonMapping(mapping, up, forward / np.linalg.norm(forward), evidence)


def rig_end_points(parents: Sequence[int], rest_matrices: np.ndarray) -> list[list[np.ndarray]]:
    """End points for an armature's leaf bones (a rig has heads, not End Sites):
    half the parent bone's length along the bone's own +Y axis (Blender's bone axis)."""
    heads = np.asarray(rest_matrices, np.float64)[:, :3, 3]
    has_child = {int(p) for p in parents if p >= 0}
    out: list[list[np.ndarray]] = []
    for i, p in enumerate(parents):
        if i in has_child or p < 0:
            out.append([])
            continue
        length = 0.5 * float(np.linalg.norm(heads[i] - heads[p]))
        out.append([heads[i] + length * np.asarray(rest_matrices)[i, :3, 1]])
    return out


def map_rig(bone_names: Sequence[str], parents: Sequence[int], rest_matrices: np.ndarray) -> SkeletonMapping:
    """map_humanoid for an armature (target rigs): bone heads (rest_matrices
    (B, 4, 4), armature space) are the joints, leaf bones end along their +Y."""
    rest = np.asarray(rest_matrices, np.float64)
    return map_humanoid(bone_names, parents, rest[:, :3, 3], rig_end_points(parents, rest))
