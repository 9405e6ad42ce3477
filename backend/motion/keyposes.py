"""The authored key-pose codebook of text -> motion (AvatarCLIP M1).

AvatarCLIP retrieves candidate key poses for a prompt from a codebook of poses
and then optimises a motion through them (M2, synthesis.py). Its codebook is a
clustering of AMASS poses ranked by CLIP renders; ours is authored by hand
(plus poses sampled from a user's motion library, library.py): each pose is a
set of SMPL-24 local rotations with several text descriptions that the text
encoder ranks against the prompt, and says which feet are planted.

Poses are written with body-axis rotations in degrees, authored once for the
body's left side and mirrored for the right. In every SMPL joint frame
x = the body's left, y = up, z = forward (skeleton.py), so:

    shoulder (left)  ("z", +a) raises the arm from the T-pose, ("z", -a) lowers it;
                     ("y", -a) swings the horizontal arm forward; ("x", a) twists it
    elbow (left)     ("y", -a) bends the forearm forward (in the T-pose)
    hip              ("x", -a) lifts the leg forward; ("z", +a) spreads the left leg out
    knee             ("x", +a) bends;  ankle ("x", +a) points the toes
    spine/neck/head  ("x", +a) bends forward; ("z", -a) leans to the body's left;
                     ("y", +a) turns towards the left
    pelvis           ("x", +a) tips the whole body forward (bow: pelvis +a with hips -a)

Mirroring a rotation across the body's sagittal plane keeps its x component
and negates y and z. Standing height is not authored: `grounded_trans` puts the
lowest point of the posed body on the floor.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

from ..core import rotations
from .skeleton import FOOT_JOINTS, J, NUM_JOINTS, forward_kinematics, height_above_soles, rest_trans

Step = tuple[str, float]          # (body axis "x"|"y"|"z", degrees), applied in order

# How far below each joint the body's surface reaches (m), for putting poses on
# the floor: the sole under the ankle and ball joints (the skeleton's own heights),
# a knee or hip rests ~5 cm above its joint.
SURFACE_BELOW = np.full(NUM_JOINTS, 0.06)
SURFACE_BELOW[[J[j] for j in FOOT_JOINTS]] = [height_above_soles(j) for j in FOOT_JOINTS]
SURFACE_BELOW[[J["left_hand"], J["right_hand"], J["left_wrist"], J["right_wrist"]]] = 0.03
SURFACE_BELOW[[J["left_knee"], J["right_knee"]]] = 0.05
SURFACE_BELOW[J["pelvis"]] = 0.1
SURFACE_BELOW[[J["spine1"], J["spine2"], J["spine3"]]] = 0.1
SURFACE_BELOW[[J["head"], J["neck"]]] = 0.1


@dataclass(frozen=True)
class KeyPose:
    """One codebook entry: local axis-angle rotations (24, 3) in SMPL joint
    frames, descriptions the encoder ranks, and which feet stand on the floor
    (left, right); `airborne` poses are held in the air by the action using them.
    A sided pose names its `side` ("left" | "right": the side of the limb that
    acts or, when `directional`, where the body leans, looks or steps) and its
    `mirror`, the same pose for the other side."""
    name: str
    rotations: np.ndarray
    descriptions: tuple[str, ...]
    planted: tuple[bool, bool] = (True, True)
    airborne: bool = False
    source: str = "authored"
    side: str | None = None
    mirror: str | None = None
    directional: bool = False


def rotation_from_steps(steps: Sequence[Step]) -> np.ndarray:
    """Axis-angle (3,) of rotating about body axes in sequence (each step about
    the parent frame's fixed axes, first step first)."""
    if not steps:
        return np.zeros(3)
    # Extrinsic steps s1..sn equal the intrinsic rotation in reverse order: Rn···R1.
    order = "".join(axis.upper() for axis, _ in reversed(steps))
    angles = [deg for _, deg in reversed(steps)]
    return rotations.matrix_to_axis_angle(rotations.euler_to_matrix(order, np.asarray(angles, np.float64)))


def mirror_steps(steps: Sequence[Step]) -> list[Step]:
    """The same motion for the other side: rotations about x keep their sign, about y and z flip."""
    return [(axis, deg if axis == "x" else -deg) for axis, deg in steps]


def other_side(joint: str) -> str:
    if joint.startswith("left_"):
        return "right_" + joint[5:]
    if joint.startswith("right_"):
        return "left_" + joint[6:]
    return joint


def pose(spec: dict[str, Sequence[Step]], mirrored: bool = False) -> np.ndarray:
    """(24, 3) rotations from {joint name: steps}; `mirrored` swaps sides."""
    out = np.zeros((NUM_JOINTS, 3))
    for joint, steps in spec.items():
        if joint not in J:
            raise KeyError(f"unknown SMPL joint {joint!r}")
        if mirrored:
            joint, steps = other_side(joint), mirror_steps(steps)
        out[J[joint]] = rotation_from_steps(steps)
    return out


def both(joint: str, steps: Sequence[Step]) -> dict[str, list[Step]]:
    """A symmetric pair: `steps` for the left joint named `joint` ("shoulder")
    and their mirror for the right one."""
    return {f"left_{joint}": list(steps), f"right_{joint}": mirror_steps(steps)}


def grounded_trans(rotations_: np.ndarray, lift: float = 0.0) -> np.ndarray:
    """The pelvis position (3,) that puts the posed body's lowest surface point
    on the floor (z = 0), `lift` metres higher, standing at the origin."""
    trans = rest_trans()
    joints = forward_kinematics(np.asarray(rotations_, np.float64), trans)
    lowest = float(np.min(joints[:, 2] - SURFACE_BELOW))
    trans[2] += lift - lowest
    return trans


def with_heading(rotations_: np.ndarray, yaw: float) -> np.ndarray:
    """Poses (..., 24, 3) turned by `yaw` radians about the world's up axis
    (positive: towards the body's left). Only the pelvis changes: a world yaw
    R0·L -> Rz·R0·L is, in SMPL's joint frame, a rotation about its up axis (y)."""
    out = np.array(rotations_, dtype=np.float64, copy=True)
    if yaw == 0.0:
        return out
    turn = rotations.axis_angle_to_matrix(np.array([0.0, yaw, 0.0]))
    out[..., 0, :] = rotations.matrix_to_axis_angle(turn @ rotations.axis_angle_to_matrix(out[..., 0, :]))
    return out


def turn_clip(rotations_: np.ndarray, trans: np.ndarray, yaw: float) -> tuple[np.ndarray, np.ndarray]:
    """A clip (T, 24, 3), (T, 3) turned by `yaw` about the vertical through its first pelvis position."""
    c, s = np.cos(yaw), np.sin(yaw)
    t = np.array(trans, dtype=np.float64, copy=True)
    d = t[:, :2] - t[:1, :2]
    t[:, 0] = t[0, 0] + c * d[:, 0] - s * d[:, 1]
    t[:, 1] = t[0, 1] + s * d[:, 0] + c * d[:, 1]
    return with_heading(rotations_, yaw).astype(np.float32), t.astype(np.float32)


# --- the authored poses ------------------------------------------------------------------------
ARMS_DOWN = both("shoulder", [("z", -72)]) | both("elbow", [("y", -8)])
ARMS_DOWN_LEFT = {"left_shoulder": [("z", -72)], "left_elbow": [("y", -8)]}
ARMS_DOWN_RIGHT = {k: v for k, v in both("shoulder", [("z", -72)]).items() if k.startswith("right")} | \
    {"right_elbow": mirror_steps([("y", -8)])}


def _spec(*parts: dict[str, Sequence[Step]]) -> dict[str, list[Step]]:
    out: dict[str, list[Step]] = {}
    for part in parts:
        out.update({k: list(v) for k, v in part.items()})
    return out


# Each entry: name, spec (authored on the body's left where sided), descriptions,
# planted feet (left, right), airborne, and for sided poses the mirrored name.
_WAVE_SHOULDER = [("x", -90), ("z", 25)]     # twist so the elbow bends upwards, upper arm a little raised
_PUNCH = {"left_shoulder": [("y", -88), ("z", 5)], "left_elbow": [("y", -5)],
          "right_shoulder": mirror_steps([("z", -55), ("y", -50)]), "right_elbow": mirror_steps([("y", -125)]),
          "spine2": [("y", -15)], "spine3": [("y", -10)]}
_KICK = {"left_hip": [("x", -80)], "left_knee": [("x", 8)], "left_ankle": [("x", 20)],
         "spine1": [("x", -8)], "right_knee": [("x", 8)],
         **both("shoulder", [("z", -35)])}
_LUNGE = {"left_hip": [("x", -85)], "left_knee": [("x", 90)], "left_ankle": [("x", -5)],
          "right_hip": [("x", 25)], "right_knee": [("x", 75)], "right_ankle": [("x", 35)],
          "spine1": [("x", -5)], **ARMS_DOWN}
_KNEE_UP = {"left_hip": [("x", -95)], "left_knee": [("x", 100)], "left_ankle": [("x", 15)],
            **both("shoulder", [("z", -40)])}
_ARM_UP = {"left_shoulder": [("z", 82)], "left_elbow": [("y", -5)], **ARMS_DOWN_RIGHT}
_POINT = {"left_shoulder": [("y", -85), ("z", 8)], "left_elbow": [("y", 0)], "left_wrist": [("z", 5)],
          **ARMS_DOWN_RIGHT}
_LEAN = {"spine1": [("z", -12)], "spine2": [("z", -10)], "spine3": [("z", -8)], "neck": [("z", -5)],
         **ARMS_DOWN}
_HEAD_TURN = {"neck": [("y", 35)], "head": [("y", 25)], **ARMS_DOWN}
# Upper arm out and forward at shoulder height, forearm folded up so the hand meets the forehead.
_SALUTE = {"left_shoulder": [("z", 20), ("y", -60)], "left_elbow": [("z", 40), ("y", -110)], "left_wrist": [("z", 15)],
           **ARMS_DOWN_RIGHT}
_SIDE_STEP = {"left_hip": [("z", 25)], "right_hip": mirror_steps([("z", 5)]), **ARMS_DOWN}
_THROW_WINDUP = {"left_shoulder": [("x", 60), ("z", 70), ("y", 40)], "left_elbow": [("y", -90)],
                 "right_shoulder": mirror_steps([("y", -60), ("z", 10)]),
                 "spine2": [("y", 25)], "spine3": [("y", 15)], "spine1": [("x", -8)]}
_THROW_RELEASE = {"left_shoulder": [("y", -80), ("z", 25)], "left_elbow": [("y", -10)],
                  "right_shoulder": mirror_steps([("z", -70), ("x", 30)]),
                  "spine2": [("y", -20), ("x", 15)], "spine3": [("y", -10)], "spine1": [("x", 10)]}

_POSES: list[tuple[str, dict, tuple[str, ...], tuple[bool, bool], bool, str | None]] = [
    ("stand", ARMS_DOWN,
     ("a person stands still", "standing in a neutral pose with the arms relaxed at the sides",
      "idle, standing upright", "stays still and does nothing", "stands"), (True, True), False, None),
    ("t_pose", {},
     ("a person in a T-pose", "stands with both arms stretched straight out to the sides",
      "arms held out horizontally like a letter T"), (True, True), False, None),
    ("a_pose", both("shoulder", [("z", -40)]),
     ("a person in an A-pose", "stands with the arms angled down and away from the body"), (True, True), False, None),
    ("arms_up", both("shoulder", [("z", 82)]) | both("elbow", [("y", -5)]),
     ("raises both arms above the head", "both hands up in the air", "hands up, arms straight overhead",
      "lifts both arms up high", "puts his hands up", "with both arms raised high"), (True, True), False, None),
    ("arm_up_left", _ARM_UP,
     ("raises the left arm", "lifts the left hand up above the head", "left hand raised in the air",
      "puts up the left hand"), (True, True), False, "arm_up_right"),
    ("wave_left_a", {"left_shoulder": _WAVE_SHOULDER, "left_elbow": [("y", -65)], **ARMS_DOWN_RIGHT},
     ("waves with the left hand", "left hand raised waving hello", "waving goodbye with the left hand"),
     (True, True), False, "wave_right_a"),
    ("wave_left_b", {"left_shoulder": _WAVE_SHOULDER, "left_elbow": [("y", -120)], **ARMS_DOWN_RIGHT},
     ("waves with the left hand", "left hand up, swaying in a greeting wave"), (True, True), False, "wave_right_b"),
    ("squat", {**both("hip", [("x", -112), ("z", 12)]), **both("knee", [("x", 128)]), **both("ankle", [("x", -18)]),
               "spine1": [("x", 22)], "spine2": [("x", 8)], **both("shoulder", [("y", -80), ("z", -10)])},
     ("a person squats down", "a deep squat with bent knees and hips low", "squatting with the arms forward",
      "bends the knees and lowers the body"), (True, True), False, None),
    ("half_squat", {**both("hip", [("x", -70), ("z", 8)]), **both("knee", [("x", 85)]), **both("ankle", [("x", -18)]),
                    "spine1": [("x", 15)], **both("shoulder", [("y", -75), ("z", -10)])},
     ("a half squat with the knees bent", "bends the knees a little, crouching slightly"), (True, True), False, None),
    ("crouch", {**both("hip", [("x", -120), ("z", 15)]), **both("knee", [("x", 140)]), **both("ankle", [("x", -25)]),
                "spine1": [("x", 30)], "spine2": [("x", 15)], "neck": [("x", -15)],
                **both("shoulder", [("z", -65), ("y", -35)]), **both("elbow", [("y", -40)])},
     ("crouches low to the ground", "crouching down, hiding", "ducks down low"), (True, True), False, None),
    ("lunge_left", _LUNGE,
     ("a lunge with the left leg forward", "lunges forward", "steps forward into a deep lunge"),
     (True, True), False, "lunge_right"),
    ("kick_left", _KICK,
     ("kicks forward with the left leg", "a front kick with the left foot", "kicking the left leg up high"),
     (False, True), False, "kick_right"),
    ("knee_up_left", _KNEE_UP,
     ("stands on the right leg with the left knee raised", "balances on one leg", "lifts the left knee up high"),
     (False, True), False, "knee_up_right"),
    ("sit", {**both("hip", [("x", -90), ("z", 6)]), **both("knee", [("x", 90)]),
             **both("shoulder", [("z", -72), ("y", -25)]), **both("elbow", [("y", -45)]), "spine1": [("x", 5)]},
     ("sits on a chair", "a person sitting down on a seat", "seated with the knees bent at a right angle",
      "sits down"), (True, True), False, None),
    ("kneel", {**both("hip", [("x", -5)]), **both("knee", [("x", 92)]), **both("ankle", [("x", 30)]), **ARMS_DOWN},
     ("kneels on both knees", "kneeling on the floor", "a person on their knees"), (True, True), False, None),
    ("kneel_one_left", {"left_hip": [("x", -90)], "left_knee": [("x", 90)], "right_hip": [("x", 5)],
                        "right_knee": [("x", 95)], "right_ankle": [("x", 30)], **ARMS_DOWN},
     ("kneels on one knee", "goes down on one knee, proposing", "genuflects"), (True, True), False, None),
    ("bow", {"pelvis": [("x", 45)], **both("hip", [("x", -45)]), "spine1": [("x", 12)], "spine2": [("x", 8)],
             "neck": [("x", 15)], **ARMS_DOWN},
     ("bows politely", "a person takes a bow, bending forward at the waist", "bowing to greet the audience"),
     (True, True), False, None),
    ("touch_toes", {"pelvis": [("x", 85)], **both("hip", [("x", -85)]), "spine1": [("x", 20)], "spine2": [("x", 15)],
                    "neck": [("x", 10)], **both("shoulder", [("y", -85), ("z", -15)])},
     ("bends down to touch the toes", "bending over forward, reaching for the floor", "picks something up from "
      "the ground"), (True, True), False, None),
    ("jump_crouch", {**both("hip", [("x", -65)]), **both("knee", [("x", 85)]), **both("ankle", [("x", -20)]),
                     "spine1": [("x", 25)], **both("shoulder", [("z", -75), ("x", 45)])},
     ("crouches ready to jump", "bends the knees before jumping, arms swung back"), (True, True), False, None),
    ("takeoff", {**both("shoulder", [("z", 45), ("y", -30)]), **both("ankle", [("x", 38)]), "spine1": [("x", -5)]},
     ("pushes off the ground on the toes to jump", "springs up onto the toes"), (True, True), False, None),
    ("airborne_stretch", {**both("shoulder", [("z", 75), ("y", -10)]), **both("ankle", [("x", 25)]),
                          **both("hip", [("x", -5)]), **both("knee", [("x", 10)])},
     ("jumps up into the air", "in mid-air with arms stretched up", "leaps high off the ground"),
     (False, False), True, None),
    ("airborne_tuck", {**both("hip", [("x", -80)]), **both("knee", [("x", 110)]), **both("ankle", [("x", 15)]),
                       **both("shoulder", [("z", -30), ("y", -40)])},
     ("a tuck jump, knees pulled up in the air", "jumps with the knees tucked to the chest"),
     (False, False), True, None),
    ("star_jump", {**both("shoulder", [("z", 60)]), **both("hip", [("z", 22)]), **both("ankle", [("x", 20)])},
     ("a star jump with arms and legs spread", "jumping jacks, arms up and legs apart"), (False, False), True, None),
    ("star_land", {**both("shoulder", [("z", 60)]), **both("hip", [("z", 20)]), **both("knee", [("x", 10)])},
     ("stands with arms and legs spread wide like a star",), (True, True), False, None),
    ("punch_left", _PUNCH,
     ("punches forward with the left fist", "throws a left jab", "boxing, striking with the left hand"),
     (True, True), False, "punch_right"),
    ("guard", {**both("shoulder", [("z", -55), ("y", -50)]), **both("elbow", [("y", -125)]),
               **both("hip", [("x", -15)]), **both("knee", [("x", 20)])},
     ("a boxing guard stance with fists up", "ready to fight, fists raised"), (True, True), False, None),
    ("clap_open", {**both("shoulder", [("z", -30), ("y", -55)]), **both("elbow", [("y", -45)])},
     ("claps the hands", "applauding, hands apart before a clap"), (True, True), False, None),
    ("clap_closed", {**both("shoulder", [("z", -30), ("y", -68)]), **both("elbow", [("y", -92)])},
     ("claps the hands together in front of the chest", "applause, palms together"), (True, True), False, None),
    ("hands_on_hips", {**both("shoulder", [("x", 90), ("z", -62), ("y", 15)]), **both("elbow", [("y", -65)])},
     ("stands with the hands on the hips", "hands on the waist, elbows out, confident"), (True, True), False, None),
    ("arms_crossed", {**both("shoulder", [("z", -62), ("y", -40)]), **both("elbow", [("y", -128)])},
     ("stands with the arms crossed over the chest", "folds the arms", "arms folded, waiting"),
     (True, True), False, None),
    ("point_left", _POINT,
     ("points forward with the left hand", "pointing at something ahead with the left arm"),
     (True, True), False, "point_right"),
    ("reach_up", {**both("shoulder", [("z", 85)]), **both("ankle", [("x", 30)]), "spine1": [("x", -8)]},
     ("reaches up high on tiptoes", "stretches up to grab something from a high shelf"), (True, True), False, None),
    ("look_up", {"neck": [("x", -25)], "head": [("x", -25)], "spine3": [("x", -5)], **ARMS_DOWN},
     ("looks up at the sky", "raises the head and gazes upwards"), (True, True), False, None),
    ("look_down", {"neck": [("x", 28)], "head": [("x", 22)], **ARMS_DOWN},
     ("looks down at the floor", "lowers the head, gazing down", "nods the head"), (True, True), False, None),
    ("head_turn_left", _HEAD_TURN,
     ("turns the head to the left", "looks over to the left side", "shakes the head"), (True, True), False,
     "head_turn_right"),
    ("lean_left", _LEAN,
     ("leans to the left", "tilts the upper body sideways to the left", "sways to the side"),
     (True, True), False, "lean_right"),
    ("stretch", {**both("shoulder", [("z", 80), ("y", 8)]), **both("elbow", [("y", -5)]), "spine1": [("x", -10)],
                 "spine2": [("x", -8)], "neck": [("x", -10)]},
     ("stretches the arms up and leans back", "a morning stretch, yawning with the arms overhead"),
     (True, True), False, None),
    ("side_stretch_left", {"left_shoulder": [("z", 80)], "spine1": [("z", 15)], "spine2": [("z", 12)],
                           "spine3": [("z", 10)], **ARMS_DOWN_RIGHT},
     ("a side stretch, leaning right with the left arm over the head",), (True, True), False, "side_stretch_right"),
    ("dance_a", {"left_shoulder": [("z", 55)], "right_shoulder": mirror_steps([("z", -20), ("y", -40)]),
                 "right_elbow": mirror_steps([("y", -90)]), "left_hip": [("z", 8)], "right_knee": [("x", 25)],
                 "right_hip": [("x", -15)], "spine1": [("z", -8)], "pelvis": [("y", 10)]},
     ("dances happily", "a dance move with one arm up", "disco dancing, grooving to music"), (True, True), False,
     "dance_b"),
    ("cheer", {**both("shoulder", [("z", 55), ("y", -15)]), **both("elbow", [("y", -20)]), "neck": [("x", -15)]},
     ("cheers with both arms up in a V", "celebrates a victory", "hooray, arms raised in triumph"),
     (True, True), False, None),
    ("salute_left", _SALUTE,
     ("salutes with the left hand at the forehead", "a military salute"), (True, True), False, "salute_right"),
    ("shrug", {**both("collar", [("z", 12)]), **both("shoulder", [("z", -70), ("y", -5)]),
               **both("elbow", [("y", -85)]), "neck": [("z", -6)]},
     ("shrugs the shoulders", "I don't know, palms up and shoulders raised"), (True, True), False, None),
    ("arms_forward", {**both("shoulder", [("y", -85)])},
     ("holds both arms straight out in front", "walks like a zombie with arms forward", "sleepwalking arms"),
     (True, True), False, None),
    ("lie_back", {"pelvis": [("x", -90)], **ARMS_DOWN},
     ("lies down on the back", "lying flat on the floor", "sleeping on the ground"), (False, False), False, None),
    ("plank", {"pelvis": [("x", 80)], **both("shoulder", [("y", -80), ("z", -8)]), **both("ankle", [("x", -30)])},
     ("a push-up plank position", "does push-ups on the floor"), (True, True), False, None),
    ("side_step_left", _SIDE_STEP,
     ("steps out to the left side",), (True, True), False, "side_step_right"),
    ("throw_windup_left", _THROW_WINDUP,
     ("winds up to throw a ball with the left arm",), (True, True), False, "throw_windup_right"),
    ("throw_release_left", _THROW_RELEASE,
     ("throws a ball with the left hand", "pitching a baseball"), (True, True), False, "throw_release_right"),
]


_SIDE_WORDS = {"left", "right"}
# Sided poses whose side is where the body goes, not which limb moves.
_DIRECTIONAL = {"lean_left", "head_turn_left", "side_step_left"}


def name_side(name: str) -> str | None:
    """The side a sided pose's or action's name says ("kick_left", "wave_left_a": "left"), or None."""
    return next((w for w in reversed(name.split("_")) if w in _SIDE_WORDS), None)


def mirror_text(text: str) -> str:
    """The words with "left" and "right" swapped."""
    swap = {"left": "right", "right": "left"}
    return " ".join(swap.get(word, word) for word in text.split(" "))


@lru_cache(maxsize=1)
def authored_keyposes() -> tuple[KeyPose, ...]:
    """Every authored key pose, sided ones on both sides."""
    out: list[KeyPose] = []
    for name, spec, texts, planted, airborne, mirror_name in _POSES:
        if not mirror_name:
            out.append(KeyPose(name, pose(spec), tuple(texts), planted, airborne))
            continue
        # A description that names no side goes to the right-handed variant only (most people's default).
        sided = tuple(t for t in texts if _SIDE_WORDS & set(t.split()))
        side, mirror_side = name_side(name), name_side(mirror_name)
        directional = name in _DIRECTIONAL
        out.append(KeyPose(name, pose(spec), sided or tuple(texts), planted, airborne, side=side, mirror=mirror_name,
                           directional=directional))
        out.append(KeyPose(mirror_name, pose(spec, mirrored=True), tuple(mirror_text(t) for t in texts),
                           (planted[1], planted[0]), airborne, side=mirror_side, mirror=name, directional=directional))
    return tuple(out)


def keypose(name: str) -> KeyPose:
    """The authored key pose called `name`."""
    for kp in authored_keyposes():
        if kp.name == name:
            return kp
    raise KeyError(f"no key pose named {name!r}")


__all__ = ["KeyPose", "authored_keyposes", "keypose", "grounded_trans", "rotation_from_steps", "pose", "both",
           "mirror_steps", "mirror_text", "name_side", "SURFACE_BELOW", "with_heading", "turn_clip"]
