"""BVH files: a parser (any hierarchy, channel order and count) and the
conversion of a BVH clip onto SMPL-24 through a joint mapping and rest-pose-aware
retargeting (to_smpl.source_to_smpl). The mapping comes from the joint names
when a known naming scheme covers the body (CMU, DAZ/Poser, Mixamo, Biovision,
SMPL), else from the skeleton's topology and rest geometry (skeleton_map), with
the user's `joint_map` on top; it is reported (info: joint_mapping,
mapping_method, mapping_evidence).

Written by hand: the BVH parsers on PyPI are either unmaintained or drop line
numbers, and a user needs "line 57: ..." to fix a file.

Conventions handled here:
- Each joint's local transform is a translation (its position channels where
  present, else its OFFSET) then its rotation channels as intrinsic Euler
  angles in the order they are listed (degrees): "Zrotation Xrotation
  Yrotation" is R = Rz·Rx·Ry.
- Up axis: read from the rest pose (hips -> head); Y-up files (CMU, Mixamo,
  most exports) are converted to our Z-up frame through models/axes.py.
- Units: guessed from the rest skeleton's height (metres, centimetres,
  millimetres, inches, or the CMU/ASF unit of 1/0.45 inch), or given as
  `scale` (file units -> metres). The motion's root travel is normalised by
  leg length onto SMPL's reference skeleton, so the unit only enters the
  reported source size and the plausibility check.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from avatarforge.protocol import ErrorCode, ProtocolError
from avatarforge.protocol.artifacts import MAX_MOTION_FRAMES, SMPL24_JOINTS

from ..core import rotations as rot
from ..core.axes import Y_UP_TO_Z_UP
from .skeleton_map import NotHumanoid, map_humanoid
from .to_smpl import SourceSkeleton, grounded, source_to_smpl

MAX_JOINTS = 1024
MAX_DEPTH = 256            # joints nested in one chain (a body is ~10 deep; the parser recurses per level)
# Largest |value| of an OFFSET or a frame channel (file units or degrees: 10 km in mm,
# ~28,000 turns): past it sums and products downstream overflow to inf/NaN.
MAX_ABS_VALUE = 1e7
MAX_CHANNELS = 6 * MAX_JOINTS
CHANNEL_NAMES = ("Xposition", "Yposition", "Zposition", "Xrotation", "Yrotation", "Zrotation")
# Unit candidates (metres per file unit) and the body height they are judged against.
UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001, "inch": 0.0254, "cmu": 0.0254 / 0.45}
TYPICAL_HEIGHT_M = 1.7
HEIGHT_RANGE_M = (0.3, 3.0)

# Name maps (BVH joint -> SMPL joint). CMU's 31-joint skeleton (cgspeed conversions):
# LHipJoint/RHipJoint, Neck1, fingers and thumbs stay unmapped.
_SIDES = (("left", "Left", "L"), ("right", "Right", "R"))


def _sided(template: dict[str, str]) -> dict[str, str]:
    return {b.format(Side=w, S=s): j.format(side=side) for side, w, s in _SIDES for b, j in template.items()}


CMU = {"Hips": "pelvis", "LowerBack": "spine1", "Spine": "spine2", "Spine1": "spine3", "Neck": "neck",
       "Head": "head", **_sided({"{Side}UpLeg": "{side}_hip", "{Side}Leg": "{side}_knee",
                                 "{Side}Foot": "{side}_ankle", "{Side}ToeBase": "{side}_foot",
                                 "{Side}Shoulder": "{side}_collar", "{Side}Arm": "{side}_shoulder",
                                 "{Side}ForeArm": "{side}_elbow", "{Side}Hand": "{side}_wrist"})}
MIXAMO = {"Hips": "pelvis", "Spine": "spine1", "Spine1": "spine2", "Spine2": "spine3", "Neck": "neck",
          "Head": "head", **_sided({"{Side}UpLeg": "{side}_hip", "{Side}Leg": "{side}_knee",
                                    "{Side}Foot": "{side}_ankle", "{Side}ToeBase": "{side}_foot",
                                    "{Side}Shoulder": "{side}_collar", "{Side}Arm": "{side}_shoulder",
                                    "{Side}ForeArm": "{side}_elbow", "{Side}Hand": "{side}_wrist"})}
# Biovision's classic names (Hips, Chest, LeftCollar, LeftUpArm...).
BIOVISION = {"Hips": "pelvis", "Chest": "spine2", "Chest2": "spine3", "Neck": "neck", "Head": "head",
             **_sided({"{Side}Hip": "{side}_hip", "{Side}UpLeg": "{side}_hip", "{Side}LowLeg": "{side}_knee",
                       "{Side}Knee": "{side}_knee", "{Side}Ankle": "{side}_ankle",
                       "{Side}Foot": "{side}_ankle", "{Side}Collar": "{side}_collar",
                       "{Side}UpArm": "{side}_shoulder", "{Side}Shoulder": "{side}_shoulder",
                       "{Side}LowArm": "{side}_elbow", "{Side}Elbow": "{side}_elbow",
                       "{Side}Hand": "{side}_wrist", "{Side}Wrist": "{side}_wrist"})}
# SMPL joint names (BVH exports of SMPL motions) map to themselves.
SMPL_NAMES = {n: n for n in ("pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
                             "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
                             "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
                             "left_elbow", "right_elbow", "left_wrist", "right_wrist")}
# DAZ/Poser names: the widely distributed "Daz-friendly" conversion of the CMU database (hip, abdomen,
# chest, neck, head, lCollar, lShldr, lForeArm, lHand, lButtock, lThigh, lShin, lFoot, fingers lThumb1..,
# eyes) and DAZ Genesis figures (abdomenLower..chestUpper, lShldrBend, lThighBend, lToe...). Spine joints
# follow the topology mapper's rule: the first above the hip is spine1, the last below the chest spine2.
# lButtock, the Bend/Twist halves' Twist bones, fingers and eyes stay unmapped.
DAZ = {"hip": "pelvis", "abdomen": "spine1", "abdomenLower": "spine1", "chestLower": "spine2",
       "chest": "spine3", "chestUpper": "spine3", "neck": "neck", "neckLower": "neck", "head": "head",
       **{f"{s}{part}": f"{side}_{joint}" for s, side in (("l", "left"), ("r", "right")) for part, joint in (
           ("Thigh", "hip"), ("ThighBend", "hip"), ("Shin", "knee"), ("Foot", "ankle"), ("Toe", "foot"),
           ("Collar", "collar"), ("Shldr", "shoulder"), ("ShldrBend", "shoulder"), ("ForeArm", "elbow"),
           ("ForearmBend", "elbow"), ("Hand", "wrist"))}}
NAME_MAPS = {"cmu": CMU, "mixamo": MIXAMO, "biovision": BIOVISION, "smpl": SMPL_NAMES, "daz": DAZ}
# The SMPL joints a mapping must cover to be usable (two of the limb joints may be missing).
CORE_JOINTS = ("pelvis", "left_hip", "right_hip", "left_knee", "right_knee", "left_shoulder", "right_shoulder",
               "left_elbow", "right_elbow")


def _bad(message: str, line: int | None = None, field: str = "data", **details: Any) -> ProtocolError:
    where = f"line {line}: " if line is not None else ""
    extra = {"line": line} if line is not None else {}
    return ProtocolError(ErrorCode.BAD_REQUEST, f"{field}: BVH {where}{message}", field=field, **extra, **details)


# -- parsing ----------------------------------------------------------------------------------------
@dataclass
class BvhJoint:
    name: str
    parent: int
    offset: np.ndarray                 # (3,) file units, file axes
    channels: list[str]                # as listed, e.g. ["Xposition", ..., "Zrotation"]
    first_channel: int                 # column of its first channel in a frame line
    end_offsets: list[np.ndarray] = field(default_factory=list)   # End Site offsets below it


@dataclass
class BvhClip:
    joints: list[BvhJoint]
    frame_time: float                  # seconds
    frames: np.ndarray                 # (T, C) float64 channel values

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    @property
    def names(self) -> list[str]:
        return [j.name for j in self.joints]


class _Lines:
    """Tokens with their line numbers."""

    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, int]] = []
        self.lines = text.splitlines()
        self.motion_line: int | None = None
        for no, line in enumerate(self.lines, start=1):
            words = line.split()
            if words and words[0] == "MOTION":
                self.motion_line = no
                self.tokens.append(("MOTION", no))
                break
            self.tokens.extend((w, no) for w in words)
        self.pos = 0

    def next(self, what: str) -> tuple[str, int]:
        if self.pos >= len(self.tokens):
            last = self.tokens[-1][1] if self.tokens else 1
            raise _bad(f"file ends early: expected {what}", last)
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def expect(self, word: str) -> int:
        tok, line = self.next(repr(word))
        if tok != word:
            raise _bad(f"expected {word!r}, found {tok!r}", line)
        return line

    def number(self, what: str) -> float:
        tok, line = self.next(what)
        try:
            value = float(tok)
        except ValueError:
            raise _bad(f"{what} must be a number, found {tok!r}", line) from None
        if not abs(value) <= MAX_ABS_VALUE:          # NaN fails this too
            raise _bad(f"{what} must be finite and within ±{MAX_ABS_VALUE:g}, found {tok!r}", line)
        return value


def parse_bvh(text: str) -> BvhClip:
    """Parse BVH text; ProtocolError(BAD_REQUEST) with the line number on any error."""
    lines = _Lines(text)
    tok, line = lines.next("HIERARCHY")
    if tok != "HIERARCHY":
        raise _bad(f"a BVH file starts with HIERARCHY, found {tok!r}", line)
    tok, line = lines.next("ROOT")
    if tok != "ROOT":
        raise _bad(f"expected ROOT, found {tok!r}", line)
    joints: list[BvhJoint] = []
    _parse_joint(lines, joints, -1, 1)
    tok, line = lines.next("MOTION")
    if tok != "MOTION":
        raise _bad(f"expected JOINT, End Site, '}}' or MOTION, found {tok!r}" if tok not in ("ROOT",) else
                   "only one ROOT per file is supported", line)
    return BvhClip(joints, *_parse_motion(lines, sum(len(j.channels) for j in joints)))


def _parse_joint(lines: _Lines, joints: list[BvhJoint], parent: int, depth: int) -> None:
    """One joint and, recursively, its children; `depth` is 1 for the root."""
    name, name_line = lines.next("a joint name")
    if name in ("{", "}"):
        raise _bad("joint has no name", name_line)
    if depth > MAX_DEPTH:
        raise _bad(f"joint {name!r} is nested {depth} deep; at most {MAX_DEPTH} levels are supported", name_line)
    if any(j.name == name for j in joints):
        raise _bad(f"joint name {name!r} is used twice", name_line)
    if len(joints) >= MAX_JOINTS:
        raise _bad(f"more than {MAX_JOINTS} joints", name_line)
    lines.expect("{")
    lines.expect("OFFSET")
    offset = np.array([lines.number(f"OFFSET {a} of {name}") for a in "xyz"])
    channels: list[str] = []
    index = len(joints)
    first = sum(len(j.channels) for j in joints)
    tok, ch_line = lines.next("CHANNELS")
    if tok != "CHANNELS":
        raise _bad(f"expected CHANNELS for joint {name!r}, found {tok!r}", ch_line)
    count_tok, count_line = lines.next("channel count")
    if not count_tok.isdigit() or not 0 <= int(count_tok) <= 6:
        raise _bad(f"CHANNELS count must be 0..6, found {count_tok!r}", count_line)
    for _ in range(int(count_tok)):
        ch, cl = lines.next("a channel name")
        if ch not in CHANNEL_NAMES:
            raise _bad(f"unknown channel {ch!r}; channels are {', '.join(CHANNEL_NAMES)}", cl)
        if ch in channels:
            raise _bad(f"channel {ch!r} listed twice for joint {name!r}", cl)
        channels.append(ch)
    joints.append(BvhJoint(name, parent, offset, channels, first))
    while True:
        tok, tl = lines.next("JOINT, End Site or '}'")
        if tok == "}":
            return
        if tok == "JOINT":
            _parse_joint(lines, joints, index, depth + 1)
        elif tok == "End":
            lines.expect("Site")
            lines.expect("{")
            lines.expect("OFFSET")
            joints[index].end_offsets.append(np.array([lines.number(f"End Site OFFSET {a}") for a in "xyz"]))
            lines.expect("}")
        else:
            raise _bad(f"expected JOINT, End Site or '}}' in joint {name!r}, found {tok!r}", tl)


def _parse_motion(lines: _Lines, channels: int) -> tuple[float, np.ndarray]:
    start = lines.motion_line or len(lines.lines)
    body = lines.lines[start:]
    no = start
    header: dict[str, tuple[str, int]] = {}
    rows_start = None
    for k, raw in enumerate(body):
        no = start + k + 1
        text = raw.strip()
        if not text:
            continue
        m = re.match(r"^(Frames|Frame Time)\s*:\s*(\S+)\s*$", text)
        if m:
            header[m.group(1)] = (m.group(2), no)
            if "Frames" in header and "Frame Time" in header:
                rows_start = start + k + 1
                break
            continue
        raise _bad(f"expected 'Frames: N' and 'Frame Time: seconds', found {text[:40]!r}", no)
    for key in ("Frames", "Frame Time"):
        if key not in header:
            raise _bad(f"MOTION section lacks '{key}:'", no)
    n_text, n_line = header["Frames"]
    if not n_text.isdigit() or not 1 <= int(n_text) <= MAX_MOTION_FRAMES:
        raise _bad(f"Frames must be an integer in 1..{MAX_MOTION_FRAMES}, found {n_text!r}", n_line)
    dt_text, dt_line = header["Frame Time"]
    try:
        dt = float(dt_text)
    except ValueError:
        raise _bad(f"Frame Time must be a number of seconds, found {dt_text!r}", dt_line) from None
    if not (math.isfinite(dt) and 1.0 / 1000.0 <= dt <= 1.0):
        raise _bad(f"Frame Time must be in [0.001, 1] s (1..1000 fps), found {dt_text}", dt_line)
    n = int(n_text)
    rows = [(i, r) for i, r in enumerate(lines.lines[rows_start:], start=rows_start + 1) if r.strip()]
    if len(rows) < n:
        raise _bad(f"Frames says {n} but the file has {len(rows)} frame lines", n_line)
    rows = rows[:n]
    values = np.empty((n, channels))
    for f, (no, r) in enumerate(rows):
        parts = r.split()
        if len(parts) != channels:
            raise _bad(f"frame {f + 1} has {len(parts)} values; the hierarchy has {channels} channels", no)
        try:
            values[f] = np.array(parts, dtype=np.float64)
        except ValueError:
            bad = next(p for p in parts if not _is_number(p))
            raise _bad(f"frame {f + 1}: {bad!r} is not a number", no) from None
    out_of_range = ~np.all(np.abs(values) <= MAX_ABS_VALUE, axis=1)      # NaN is out of range too
    if out_of_range.any():
        f = int(np.flatnonzero(out_of_range)[0])
        no, row = rows[f]
        token = next(p for p in row.split() if not abs(float(p)) <= MAX_ABS_VALUE)
        raise _bad(f"frame {f + 1}: values must be finite and within ±{MAX_ABS_VALUE:g}, found {token!r}", no)
    return dt, values


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


# -- forward kinematics ----------------------------------------------------------------------------
def bvh_forward_kinematics(clip: BvhClip, frames: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """World rotations (T, K, 3, 3) and positions (T, K, 3) in the file's axes
    and units. `frames` (T, C) defaults to the clip's; all-zero channels give
    the rest pose (offsets only)."""
    values = clip.frames if frames is None else frames
    n, k = len(values), len(clip.joints)
    world_r = np.empty((n, k, 3, 3))
    world_p = np.empty((n, k, 3))
    locals_ = _local_rotations(clip, values)
    for i, j in enumerate(clip.joints):
        cols = {c: j.first_channel + m for m, c in enumerate(j.channels)}
        t = np.broadcast_to(j.offset, (n, 3)).copy()
        for a, axis in enumerate("XYZ"):
            if f"{axis}position" in cols:
                t[:, a] = values[:, cols[f"{axis}position"]]
        local = locals_[:, i]
        if j.parent < 0:
            world_r[:, i], world_p[:, i] = local, t
        else:
            world_r[:, i] = world_r[:, j.parent] @ local
            world_p[:, i] = world_p[:, j.parent] + np.einsum("tab,tb->ta", world_r[:, j.parent], t)
    return world_r, world_p


def _local_rotations(clip: BvhClip, values: np.ndarray) -> np.ndarray:
    """(T, K, 3, 3) every joint's local rotation, one conversion per distinct channel order."""
    out = np.broadcast_to(np.eye(3), (len(values), len(clip.joints), 3, 3)).copy()
    groups: dict[str, list[tuple[int, list[int]]]] = {}
    for i, j in enumerate(clip.joints):
        order = "".join(c[0] for c in j.channels if c.endswith("rotation"))
        if order:
            groups.setdefault(order, []).append((i, [j.first_channel + j.channels.index(f"{a}rotation")
                                                     for a in order]))
    for order, members in groups.items():
        idx = [i for i, _ in members]
        cols = np.array([c for _, c in members])                        # (k, len(order))
        out[:, idx] = rot.euler_to_matrix(order, values[:, cols])
    return out


def rest_positions(clip: BvhClip) -> np.ndarray:
    """(K, 3) joint positions of the rest pose (offsets only; the root at its OFFSET)."""
    out = np.zeros((len(clip.joints), 3))
    for i, j in enumerate(clip.joints):
        out[i] = j.offset if j.parent < 0 else out[j.parent] + j.offset
    return out


# -- onto SMPL ---------------------------------------------------------------------------------------
def _strip(name: str) -> str:
    return name.rsplit(":", 1)[-1]


def bvh_name_map(names: list[str]) -> tuple[str, dict[int, str]]:
    """The name map covering most SMPL joints ({joint index: SMPL joint}) and its name."""
    best: tuple[str, dict[int, str]] = ("", {})
    for label, table in NAME_MAPS.items():
        mapping = {i: table[_strip(n)] for i, n in enumerate(names) if _strip(n) in table}
        if len(set(mapping.values())) > len(set(best[1].values())):
            best = (label, mapping)
    return best


def normalise_joint_map(value: Any, field: str = "joint_map") -> dict[str, str | None] | None:
    """The `joint_map` param checked on its own: {BVH joint name: SMPL-24 joint
    name, or null to leave that joint unmapped}, each SMPL joint named once.
    Whether the BVH names exist is checked against the file (apply_joint_map)."""
    if value is None:
        return None
    if not isinstance(value, dict) or not value:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"{field}: must be a non-empty map {{BVH joint name: SMPL "
                            "joint name (or null to leave that joint unmapped)}", field=field)
    if len(value) > MAX_JOINTS:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"{field}: at most {MAX_JOINTS} entries, got {len(value)}",
                            field=field)
    out: dict[str, str | None] = {}
    for bvh_name, joint in value.items():
        if not isinstance(bvh_name, str) or not bvh_name.strip():
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{field}: keys must be BVH joint names, got {bvh_name!r}",
                                field=field)
        if joint is not None and joint not in SMPL24_JOINTS:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{field}[{bvh_name!r}]: {joint!r} is not an SMPL-24 "
                                f"joint; use one of {', '.join(SMPL24_JOINTS)} (or null)", field=field)
        out[bvh_name] = joint
    targets = [j for j in out.values() if j is not None]
    twice = sorted({j for j in targets if targets.count(j) > 1})
    if twice:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"{field}: each SMPL joint can come from one BVH joint; "
                            f"{', '.join(twice)} named more than once", field=field, joints=twice)
    return out


def apply_joint_map(names: list[str], mapping: dict[int, str], joint_map: dict[str, str | None],
                    field: str = "joint_map") -> dict[int, str]:
    """`mapping` ({joint index: SMPL joint}, from the names or the skeleton's shape) with the
    explicit map on top: its entries replace any automatic one for the same
    BVH joint or the same SMPL joint; null entries drop a joint."""
    index = {n: i for i, n in enumerate(names)}
    absent = [n for n in joint_map if n not in index]
    if absent:
        shown = ", ".join(names[:40]) + (f" and {len(names) - 40} more" if len(names) > 40 else "")
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"{field}: no joint named {', '.join(map(repr, absent))} in the "
                            f"BVH file; its joints are {shown}", field=field, absent=absent)
    explicit = {j for j in joint_map.values() if j is not None}
    out = {i: j for i, j in mapping.items() if names[i] not in joint_map and j not in explicit}
    out.update({index[n]: j for n, j in joint_map.items() if j is not None})
    return out


@dataclass
class BvhImport:
    rotations: np.ndarray      # (T, 24, 3)
    trans: np.ndarray          # (T, 3)
    fps: float
    info: dict[str, Any]


@dataclass
class JointMapping:
    """How a BVH skeleton's joints were matched to SMPL-24's, for the report."""
    mapping: dict[int, str]            # joint index -> SMPL joint
    label: str                         # "cmu", "daz", "topology", "joint_map", "cmu+joint_map", ...
    method: str                        # "names:cmu", "topology", "topology+joint_map", "joint_map", ...
    evidence: dict[str, str]           # part -> what decided it (topology), else {}
    warnings: list[str] = field(default_factory=list)   # names vs shape disagreements, for the user to check


def missing_core(mapping: dict[int, str]) -> list[str]:
    """The core SMPL joints a mapping lacks, when that is too many to import (else [])."""
    missing = sorted(set(CORE_JOINTS) - set(mapping.values()))
    fatal = len(missing) > 2 or any(j in missing for j in ("pelvis", "left_hip", "right_hip"))
    return missing if fatal else []


def bvh_joint_mapping(clip: BvhClip, joint_map: dict[str, str | None] | None = None) -> JointMapping:
    """The naming scheme that covers the skeleton, else the topology/geometry
    mapper (skeleton_map), with `joint_map` on top; BAD_REQUEST when neither
    finds legs and arms, naming what is missing and how to pass joint_map."""
    names = clip.names
    label, mapping = bvh_name_map(names)
    method, evidence = (f"names:{label}" if label else "none"), {}
    topology_failed: NotHumanoid | None = None
    warnings: list[str] = []
    try:
        found = map_humanoid(names, [j.parent for j in clip.joints], rest_positions(clip), end_points(clip))
    except NotHumanoid as exc:
        found, topology_failed = None, exc
    if missing_core(mapping):
        if found is not None:
            label, mapping, method, evidence = "topology", found.mapping, "topology", found.evidence
    elif found is not None:
        warnings = side_disagreements(names, mapping, found.mapping)
    if joint_map:
        automatic = bool(mapping)
        mapping = apply_joint_map(names, mapping, joint_map)
        label = f"{label}+joint_map" if automatic else "joint_map"
        method = f"{method}+joint_map" if automatic else "joint_map"
    missing = missing_core(mapping)
    if missing:
        unmapped = [n for i, n in enumerate(names) if i not in mapping]
        shape = f" By its shape: {topology_failed}." if topology_failed is not None else ""
        raise _bad(f"cannot map this skeleton's joints to SMPL (no joint for {', '.join(missing)}).{shape} "
                   "Known naming schemes: CMU (Hips, LeftUpLeg, LeftLeg, LeftArm...), DAZ/Poser (hip, lThigh, "
                   "lShin, lShldr...), Mixamo, Biovision (Hips, LeftHip, LeftUpArm...), SMPL; any other humanoid "
                   "is mapped from its shape when it has a pelvis with two legs and a chest with two arms and a "
                   "head. Give joint_map {BVH joint name: SMPL joint name} for the missing joints (CLI: "
                   "--joint-map map.json), e.g. {\"MyLeftThigh\": \"left_hip\"}; this file's unmapped joints: "
                   f"{_listed(unmapped)}", unmapped=unmapped, missing_joints=missing,
                   not_found=topology_failed.missing if topology_failed is not None else [])
    return JointMapping(mapping, label, method, evidence, warnings)


def side_disagreements(names: list[str], by_name: dict[int, str], by_shape: dict[int, str]) -> list[str]:
    """Joints the names call left and the rest geometry right (or the other way):
    a mirrored file, or a rig whose feet point backwards; reported, names kept."""
    out = []
    for i, joint in sorted(by_name.items()):
        other = by_shape.get(i)
        if other and joint.split("_")[0] in ("left", "right") and other.split("_")[0] in ("left", "right") \
                and joint.split("_")[0] != other.split("_")[0]:
            out.append(f"{names[i]!r} is named {joint.split('_')[0]} but sits on the body's "
                       f"{other.split('_')[0]} side (facing from the feet)")
    return out


def end_points(clip: BvhClip) -> list[list[np.ndarray]]:
    """Per joint, the rest positions of its End Sites."""
    rest = rest_positions(clip)
    return [[rest[i] + e for e in j.end_offsets] for i, j in enumerate(clip.joints)]


def bvh_to_smpl(text: str, scale: float | None = None,
                joint_map: dict[str, str | None] | None = None) -> BvhImport:
    """A BVH file's motion on SMPL-24 (grounded, Z up, leg-length normalised).
    Joints are matched by name (CMU, DAZ, Mixamo, Biovision, SMPL) or else by
    the skeleton's shape (skeleton_map); `joint_map` ({BVH joint: SMPL joint},
    see normalise_joint_map) overrides and extends that. info reports the
    mapping chosen (joint_mapping, mapping_method, mapping_evidence)."""
    clip = parse_bvh(text)
    names = clip.names
    chosen = bvh_joint_mapping(clip, joint_map)
    mapping = chosen.mapping
    rest = rest_positions(clip)
    by_joint = {j: i for i, j in sorted(mapping.items(), reverse=True)}
    top = next((by_joint[n] for n in ("head", "neck", "spine3", "spine2", "spine1") if n in by_joint), None)
    if top is None:
        raise _bad("the skeleton has no spine, neck or head joint to tell which way is up")
    up_vec = rest[top] - rest[by_joint["pelvis"]]
    up_axis = int(np.argmax(np.abs(up_vec)))
    if up_axis == 0 or up_vec[up_axis] <= 0:
        raise _bad(f"the rest pose's head is not above its hips along +Y or +Z (hips -> head = "
                   f"{np.round(up_vec, 3).tolist()}); only Y-up and Z-up files are supported")
    to_world = Y_UP_TO_Z_UP if up_axis == 1 else np.eye(3)
    height = float(np.ptp(np.concatenate([rest, [rest[i] + e for i, j in enumerate(clip.joints)
                                                 for e in j.end_offsets]]) @ to_world.T, axis=0)[2])
    unit, metres = _units(height, scale)
    world_r, world_p = bvh_forward_kinematics(clip)
    world_r = to_world @ world_r
    world_p = world_p @ to_world.T
    rest_z = rest @ to_world.T
    src = SourceSkeleton(names=names, parents=np.array([j.parent for j in clip.joints]), rest_positions=rest_z,
                         rest_rotations=np.broadcast_to(to_world, (len(names), 3, 3)),
                         world_rotations=world_r, world_positions=world_p, mapping=mapping,
                         bone_directions=_bone_directions(clip) @ to_world.T)
    try:
        rotations, trans = source_to_smpl(src)
    except ValueError as exc:      # a skeleton we cannot stand up (e.g. pelvis below the feet at rest)
        raise _bad(str(exc)) from None
    trans = grounded(rotations, trans)
    info = {"format": "bvh", "skeleton": chosen.label, "joints": len(names), "frames": len(clip.frames),
            "source_fps": clip.fps, "up_axis": "Y" if up_axis == 1 else "Z", "unit": unit,
            "scale": metres, "source_height_m": round(height * metres, 4),
            "unmapped": [n for i, n in enumerate(names) if i not in mapping],
            "mapping_method": chosen.method, "joint_mapping": {names[i]: j for i, j in sorted(mapping.items())},
            "mapping_evidence": chosen.evidence, "mapping_warnings": chosen.warnings}
    return BvhImport(rotations, trans, clip.fps, info)


def _listed(names: list[str], limit: int = 30) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "") or "none"


def _bone_directions(clip: BvhClip) -> np.ndarray:
    """(K, 3) each joint's rest bone direction: the mean of its children's offsets (End Sites included)."""
    out = np.zeros((len(clip.joints), 3))
    kids: dict[int, list[np.ndarray]] = {i: list(j.end_offsets) for i, j in enumerate(clip.joints)}
    for j in clip.joints:
        if j.parent >= 0:
            kids[j.parent].append(j.offset)
    for i, offs in kids.items():
        if offs:
            unit = [o / n for o in offs if (n := np.linalg.norm(o)) > 1e-9]
            if unit:
                out[i] = np.mean(unit, axis=0)
    return out


def _units(height: float, scale: float | None) -> tuple[str, float]:
    """(unit name, metres per unit): the given scale, or the unit that makes the body about 1.7 m tall."""
    if scale is not None:
        metres = height * scale
        if not HEIGHT_RANGE_M[0] <= metres <= HEIGHT_RANGE_M[1]:
            raise _bad(f"with scale {scale:g} the skeleton is {metres:.3g} m tall; expected "
                       f"{HEIGHT_RANGE_M[0]:g}..{HEIGHT_RANGE_M[1]:g} m. Check the scale (file units -> metres)",
                       field="scale")
        return "given", float(scale)
    if not height > 0:
        raise _bad("the rest skeleton has no height")
    name = min(UNITS, key=lambda u: abs(math.log(height * UNITS[u] / TYPICAL_HEIGHT_M)))
    metres = height * UNITS[name]
    if not HEIGHT_RANGE_M[0] <= metres <= HEIGHT_RANGE_M[1]:
        raise _bad(f"cannot tell the units of a skeleton {height:.4g} units tall; give scale (file units -> "
                   "metres)", field="scale")
    return name, UNITS[name]
