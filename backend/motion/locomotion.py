"""Procedural locomotion cycles: walk, run, jog, march, hop, walk backwards.

Text -> motion uses these for locomotion prompts (AvatarCLIP's key poses cannot
make a body travel). Each gait is a footstep plan: every foot alternates a
stance phase, where it stays exactly where it landed, and a swing phase, where
it arcs to its next landing spot; the pelvis travels at the gait's speed and
the legs reach the feet by two-bone inverse kinematics in the sagittal plane
(written here: it is a few lines of trigonometry that no library offers for
this skeleton). So planted feet do not slide by construction, and the stride
follows from the speed, the cadence and the leg lengths of the reference
skeleton. Arms swing against the opposite leg.

The body travels forward, towards -Y; every rotation here is about the body's
left axis (SMPL x = world X), which keeps each leg in its sagittal plane.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core import rotations
from .keyposes import rotation_from_steps
from .skeleton import J, NUM_JOINTS, forward_kinematics, height_above_soles, reference_rest_positions, rest_trans



@dataclass(frozen=True)
class Gait:
    """A locomotion cycle. `speed` m/s (negative: backwards), `period` s per
    cycle (two steps), `duty` fraction of the cycle a foot is planted, `lift`
    swing-foot clearance (m), `bob` pelvis vertical amplitude (m), `crouch`
    how much lower the pelvis rides than standing (m), `lean` forward tilt
    (degrees), `arm_swing` (degrees), `elbow` bend (degrees), `together`: both
    feet in the same phase (hopping)."""
    name: str
    speed: float
    period: float
    duty: float
    lift: float
    bob: float
    crouch: float
    lean: float
    arm_swing: float
    elbow: float
    together: bool = False


GAITS: dict[str, Gait] = {
    "walk": Gait("walk", 1.1, 1.05, 0.6, 0.09, 0.012, 0.03, 3.0, 18.0, 12.0),
    "walk_backward": Gait("walk_backward", -0.7, 1.15, 0.62, 0.08, 0.01, 0.035, -2.0, 12.0, 10.0),
    "march": Gait("march", 0.9, 1.0, 0.6, 0.28, 0.015, 0.03, 0.0, 35.0, 60.0),
    "jog": Gait("jog", 2.1, 0.8, 0.42, 0.16, 0.03, 0.06, 7.0, 30.0, 75.0),
    "run": Gait("run", 3.2, 0.7, 0.36, 0.24, 0.035, 0.07, 11.0, 45.0, 85.0),
    "hop": Gait("hop", 1.0, 0.55, 0.5, 0.12, 0.05, 0.1, 6.0, 20.0, 40.0, together=True),
}
GAIT_NAMES = tuple(GAITS)
# A gait's speed factor for each pace a prompt asks for (core.phrases.PACES).
PACE_SPEED = {"slow": 0.65, "normal": 1.0, "fast": 1.45}


def _leg_geometry() -> dict[str, float]:
    """Thigh and shin lengths and rest angles in the sagittal (Y, Z) plane."""
    rest = reference_rest_positions()
    out = {}
    for side in ("left", "right"):
        hip, knee, ankle = (rest[J[f"{side}_{n}"]] for n in ("hip", "knee", "ankle"))
        thigh, shin = (knee - hip)[1:], (ankle - knee)[1:]
        out[f"{side}_l1"], out[f"{side}_l2"] = float(np.hypot(*thigh)), float(np.hypot(*shin))
        out[f"{side}_phi1"] = math.atan2(thigh[1], thigh[0])
        out[f"{side}_phi2"] = math.atan2(shin[1], shin[0])
    return out


def _two_bone_ik(target_yz: np.ndarray, l1: float, l2: float) -> tuple[np.ndarray, np.ndarray]:
    """Polar angles (in the Y, Z plane) of thigh and shin reaching `target_yz`
    (N, 2) from the hip, the knee in front (-Y). Unreachable targets are
    reached as far as a nearly straight leg allows."""
    dist = np.linalg.norm(target_yz, axis=-1)
    dist = np.clip(dist, abs(l1 - l2) + 1e-4, (l1 + l2) * 0.999)
    base = np.arctan2(target_yz[:, 1], target_yz[:, 0])
    gamma = np.arccos(np.clip((l1 ** 2 + dist ** 2 - l2 ** 2) / (2 * l1 * dist), -1.0, 1.0))
    psi1 = base - gamma                       # rotating towards -Y puts the knee in front
    knee = l1 * np.stack([np.cos(psi1), np.sin(psi1)], -1)
    end = np.stack([np.cos(base), np.sin(base)], -1) * dist[:, None]
    shin = end - knee
    psi2 = np.arctan2(shin[:, 1], shin[:, 0])
    return psi1, psi2


def _smoothstep(u: np.ndarray) -> np.ndarray:
    return u * u * (3.0 - 2.0 * u)


def _foot_track(t: np.ndarray, gait: Gait, speed: float, period: float, phase: float,
                hip_y0: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Forward position along -Y (as a distance), height, and planted flag of
    one foot over times `t`, for a footstep plan with the foot in stance
    around the hip's track (hip at `hip_y0` + speed·t)."""
    cycle = (t / period + phase)
    k = np.floor(cycle)
    u = cycle - k                                           # phase within this cycle
    stance_len = speed * gait.duty * period                 # how far the hip travels over one stance
    # Stance k starts at time (k - phase)·period; the foot lands half a stance ahead of the hip.
    t_land = (k - phase) * period
    land = hip_y0 + speed * t_land + stance_len / 2
    planted = u < gait.duty
    # Swing: from this cycle's liftoff spot to the next cycle's landing spot.
    lift_spot = land
    next_land = land + speed * period
    s = np.clip((u - gait.duty) / (1.0 - gait.duty), 0.0, 1.0)
    pos = np.where(planted, land, lift_spot + (next_land - lift_spot) * _smoothstep(s))
    height = np.where(planted, 0.0, gait.lift * np.sin(np.pi * s) * (1 if speed >= 0 else 0.8))
    return pos, height, planted


@dataclass
class LocomotionClip:
    rotations: np.ndarray    # (T, 24, 3)
    trans: np.ndarray        # (T, 3)
    contacts: np.ndarray     # (T, 2) planted [left, right]
    gait: str
    speed: float             # m/s along the heading


def cycle_period(gait_name: str, speed_factor: float = 1.0) -> float:
    """Seconds per cycle (two steps; one hop) of a gait at a speed factor:
    stride and cadence each take the square root of the factor, as people do."""
    return GAITS[gait_name].period / math.sqrt(max(speed_factor, 0.2))


def locomotion(gait_name: str, seconds: float, fps: float, speed_factor: float = 1.0) -> LocomotionClip:
    """A `seconds` long cycle of `gait_name` at `fps`, travelling towards -Y
    from the origin; `speed_factor` scales the speed (slow 0.65 .. fast 1.45):
    stride and cadence each take its square root, as people do."""
    gait = GAITS[gait_name]
    speed, period = gait.speed * speed_factor, cycle_period(gait_name, speed_factor)
    n = max(int(round(seconds * fps)) + 1, 2)
    t = np.arange(n) / fps
    geo = _leg_geometry()
    lean = math.radians(gait.lean)

    rot = np.zeros((n, NUM_JOINTS, 3))
    rot[:, J["pelvis"], 0] = lean
    rot[:, J["spine1"], 0] = -lean * 0.4                   # keep the head up a little
    # Hips in the world: pelvis travels forward (distance d = speed·t along -Y) with its pitch.
    stand = rest_trans()
    pelvis_d = speed * t
    # Pelvis height: a bob at twice the cycle frequency (lowest mid-stance when running/hopping).
    sign = -1.0 if gait.duty < 0.55 or gait.together else 1.0
    z = stand[2] - gait.crouch + sign * gait.bob * np.cos(2 * np.pi * (2 if not gait.together else 1) * t / period)
    trans = np.stack([np.full(n, stand[0]), stand[1] - pelvis_d, z], -1)
    hips = forward_kinematics(rot, trans)[:, [J["left_hip"], J["right_hip"]]]      # (n, 2, 3)

    contacts = np.zeros((n, 2), bool)
    targets, phases = [], ([0.0, 0.0] if gait.together else [0.0, 0.5])
    rest = reference_rest_positions()
    for i, side in enumerate(("left", "right")):
        # Foot track as forward distance from the start; the foot stands under its hip at rest.
        hip_d0 = -(hips[0, i, 1] - trans[0, 1])              # hip's forward offset from the pelvis at t=0
        ankle_off = -(rest[J[f"{side}_ankle"], 1] - rest[J[f"{side}_hip"], 1])
        pos, height, planted = _foot_track(t, gait, speed, period, phases[i], hip_d0 + ankle_off)
        contacts[:, i] = planted
        targets.append((pos, height))
    # Lower the pelvis where a planted foot could not otherwise be reached (long strides).
    for i, side in enumerate(("left", "right")):
        pos, height = targets[i]
        planted = contacts[:, i]
        dy = np.abs((stand[1] - pos) - hips[:, i, 1])
        reach = (geo[f"{side}_l1"] + geo[f"{side}_l2"]) * 0.985
        max_hip_z = height_above_soles(f"{side}_ankle") + height + np.sqrt(np.maximum(reach ** 2 - dy ** 2, 0.0))
        excess = np.where(planted, np.maximum(hips[:, i, 2] - max_hip_z, 0.0), 0.0)
        trans[:, 2] -= excess
        hips[:, :, 2] -= excess[:, None]
    for i, side in enumerate(("left", "right")):
        pos, height = targets[i]
        ankle_y = stand[1] - pos
        target = np.stack([ankle_y - hips[:, i, 1], height_above_soles(f"{side}_ankle") + height - hips[:, i, 2]], -1)
        psi1, psi2 = _two_bone_ik(target, geo[f"{side}_l1"], geo[f"{side}_l2"])
        hip_world = psi1 - geo[f"{side}_phi1"]
        shin_world = psi2 - geo[f"{side}_phi2"]
        rot[:, J[f"{side}_hip"], 0] = hip_world - lean
        rot[:, J[f"{side}_knee"], 0] = shin_world - hip_world
        rot[:, J[f"{side}_ankle"], 0] = -shin_world               # keep the sole level
    _swing_arms(rot, t, period, gait, phases)
    contacts_out = contacts if speed != 0 else np.ones_like(contacts)
    return LocomotionClip(rot.astype(np.float32), trans.astype(np.float32), contacts_out, gait.name, speed)


def _swing_arms(rot: np.ndarray, t: np.ndarray, period: float, gait: Gait, phases: list[float]) -> None:
    """Arms hang and swing against the opposite leg (in phase with the other foot)."""
    for i, side in enumerate(("left", "right")):
        other_phase = phases[1 - i] if not gait.together else phases[i]
        # The opposite foot is furthest forward at touchdown (u = 0): the arm too.
        swing = gait.arm_swing * np.cos(2 * np.pi * (t / period + other_phase))
        mirror = 1.0 if side == "left" else -1.0      # y and z rotations flip on the right
        # Lower the arm (about z), then swing it (about x): extrinsic z then x = intrinsic "XZ".
        angles = np.stack([-swing, np.full_like(swing, -75.0 * mirror)], -1)
        rot[:, J[f"{side}_shoulder"]] = rotations.matrix_to_axis_angle(rotations.euler_to_matrix("XZ", angles))
        rot[:, J[f"{side}_elbow"]] = rotation_from_steps([("y", -gait.elbow * mirror)])
