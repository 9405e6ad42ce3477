"""AvatarCLIP M2: optimise a motion that passes through candidate key poses.

AvatarCLIP optimises a motion VAE's latent code so that the decoded sequence
(1) contains each candidate pose (reference-pose term), (2) is smooth (delta
term), and (3) moves progressively towards the text target (progress term:
later frames must not be further from the target than earlier ones). No
pretrained motion prior ships with AvatarForge, so the variables here are the
per-frame axis-angle rotations and pelvis positions themselves, at a coarse key
rate, optimised with Adam through differentiable forward kinematics
(skeleton.forward_kinematics) with those three terms plus physical ones:
per-joint angle limits, ground contact (no body part under the floor, planted
feet on it), and no foot sliding (a planted foot keeps still). The result is
resampled to the requested frame rate (ops.resample) and put exactly on the
floor; airborne keys (jumps) follow a ballistic pelvis arc.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..core import rotations
from . import ops
from .keyposes import SURFACE_BELOW, grounded_trans
from .joint_limits import joint_limits
from .skeleton import J, NUM_JOINTS, forward_kinematics

GRAVITY = 9.81
KEY_RATE = 15.0           # optimisation frames per second (AvatarCLIP's motion VAE runs at a similar rate)
ITERATIONS = 60
LEARNING_RATE = 0.02
_FEET = [J["left_ankle"], J["left_foot"], J["right_ankle"], J["right_foot"]]

@dataclass
class KeyTarget:
    """A candidate pose the motion must pass through at `time` seconds."""
    time: float
    rotations: np.ndarray              # (24, 3)
    planted: tuple[bool, bool] = (True, True)
    airborne: bool = False
    weight: float = 1.0
    name: str = ""


@dataclass
class Synthesis:
    rotations: np.ndarray              # (T, 24, 3) at the requested fps
    trans: np.ndarray                  # (T, 3)
    planted: np.ndarray                # (T, 2) planned foot contacts
    losses: dict[str, float] = field(default_factory=dict)


def _interpolate_keys(times: np.ndarray, keys: Sequence[KeyTarget], values: list[np.ndarray],
                      rotation: bool) -> np.ndarray:
    """Values at `times`, eased between consecutive keys (slerp for rotations)."""
    kt = np.array([k.time for k in keys])
    out = []
    for t in times:
        b = int(np.searchsorted(kt, t, side="right"))
        if b == 0:
            out.append(values[0])
            continue
        if b >= len(keys):
            out.append(values[-1])
            continue
        a = b - 1
        u = (t - kt[a]) / max(kt[b] - kt[a], 1e-9)
        u = u * u * (3 - 2 * u)
        if rotation:
            out.append(rotations.slerp_axis_angle(values[a], values[b], np.full(values[a].shape[:-1], u)))
        else:
            out.append(values[a] * (1 - u) + values[b] * u)
    return np.asarray(out, dtype=np.float64)


def key_pose_track(keys: Sequence[KeyTarget], times: np.ndarray) -> np.ndarray:
    """(N, 24, 3) rotations at `times` eased from key to key (slerp), holding
    the first key before it and the last after it: the un-optimised track, for
    layering an upper-body action's arms onto another motion."""
    keys = sorted(keys, key=lambda k: k.time)
    return _interpolate_keys(np.asarray(times, np.float64), keys, [np.asarray(k.rotations, np.float64) for k in keys],
                             rotation=True)


def _flight_windows(keys: Sequence[KeyTarget]) -> list[tuple[float, float]]:
    """Time spans in the air: from the key before each airborne key (take-off) to the key after it (landing)."""
    out = []
    for i, k in enumerate(keys):
        if not k.airborne:
            continue
        before = keys[i - 1].time if i > 0 else k.time - 0.3
        after = keys[i + 1].time if i + 1 < len(keys) else k.time + 0.3
        out.append((before, after))
    return out


def _planted_at(times: np.ndarray, keys: Sequence[KeyTarget], flights: list[tuple[float, float]]) -> np.ndarray:
    """(N, 2) which feet are planted: a foot is planted between two keys that both plant it."""
    kt = np.array([k.time for k in keys])
    out = np.zeros((len(times), 2), bool)
    for i, t in enumerate(times):
        b = int(np.clip(np.searchsorted(kt, t, side="right"), 1, len(keys) - 1)) if len(keys) > 1 else 0
        a = max(b - 1, 0)
        if len(keys) == 1 or t <= kt[0]:
            out[i] = keys[0].planted
        elif t >= kt[-1]:
            out[i] = keys[-1].planted
        else:
            near = keys[a] if t - kt[a] < 1e-6 else None
            out[i] = near.planted if near else np.logical_and(keys[a].planted, keys[b].planted)
        if any(lo <= t <= hi for lo, hi in flights):
            out[i] = False
    return out


def _ballistic_lift(times: np.ndarray, flights: list[tuple[float, float]]) -> np.ndarray:
    """Extra pelvis height over each flight: a parabola under gravity, rising
    from and returning to zero at the window's ends."""
    lift = np.zeros(len(times))
    for lo, hi in flights:
        inside = (times >= lo) & (times <= hi)
        s = times[inside] - lo
        lift[inside] = 0.5 * GRAVITY * s * (hi - lo - s)
    return lift


def _place_feet(keys: Sequence[KeyTarget], key_rots: list[np.ndarray], key_trans: list[np.ndarray],
                start_rot: np.ndarray, start_trans: np.ndarray) -> None:
    """Move each key's pelvis horizontally so that feet planted before and at
    the key stay where they stood (in place; the optimiser starts sliding-free)."""
    ankles = [J["left_ankle"], J["right_ankle"]]
    feet = forward_kinematics(start_rot, start_trans)[ankles, :2]
    planted = np.array([True, True])
    xy = start_trans[:2].copy()
    for key, rot, trans in zip(keys, key_rots, key_trans):
        rel = forward_kinematics(rot, np.array([0.0, 0.0, trans[2]]))[ankles, :2]
        now = np.asarray(key.planted, bool)
        both = planted & now
        if both.any():
            xy = np.mean(feet[both] - rel[both], axis=0)
        trans[:2] = xy
        feet = np.where(now[:, None], xy + rel, feet)
        planted = now if not key.airborne else planted


def _lowest_points(joints):
    """Per frame, the height of the lowest body surface point, and of each foot's sole (left, right)."""
    import torch

    below = torch.as_tensor(SURFACE_BELOW, dtype=joints.dtype)
    surface = joints[..., 2] - below
    lowest = surface.min(dim=-1).values
    left = torch.minimum(surface[..., J["left_ankle"]], surface[..., J["left_foot"]])
    right = torch.minimum(surface[..., J["right_ankle"]], surface[..., J["right_foot"]])
    return lowest, torch.stack([left, right], -1)


def synthesise(keys: Sequence[KeyTarget], seconds: float, fps: float, start: tuple[np.ndarray, np.ndarray] | None = None,
               progress: bool = False, seed: int = 0, iterations: int = ITERATIONS,
               key_rate: float = KEY_RATE) -> Synthesis:
    """A `seconds` long motion at `fps` through `keys` (sorted by time).

    `start` (rotations (24,3), pelvis position (3,)) pins the first frame (the
    end of the previous segment); `progress` adds AvatarCLIP's progress term
    towards the last key. Deterministic for a given `seed` (which jitters the
    key poses by a degree or so, so seeds give slightly different takes)."""
    from ..core.threads import single_threaded_torch

    if not keys:
        raise ValueError("synthesise needs at least one key pose")
    # Small tensors: one thread is ~30x faster than several fighting over them
    # (process-global, so shared with overlapping jobs through the helper).
    with single_threaded_torch():
        return _synthesise(keys, seconds, fps, start, progress, seed, iterations, key_rate)


def _synthesise(keys: Sequence[KeyTarget], seconds: float, fps: float, start: tuple[np.ndarray, np.ndarray] | None,
                progress: bool, seed: int, iterations: int, key_rate: float) -> Synthesis:
    import torch

    keys = sorted(keys, key=lambda k: k.time)
    rng = np.random.default_rng(seed)
    n = max(int(round(seconds * key_rate)) + 1, 2)
    rate = (n - 1) / seconds
    times = np.arange(n) / rate
    key_rots = [np.asarray(k.rotations, np.float64) + (rng.normal(0, np.radians(1.0), (NUM_JOINTS, 3))
                                                        if seed else 0.0) for k in keys]
    key_trans = [grounded_trans(r) for r in key_rots]
    if start is not None:
        start_rot, start_trans = np.asarray(start[0], np.float64), np.asarray(start[1], np.float64)
    else:
        start_rot, start_trans = key_rots[0], key_trans[0]
    _place_feet(keys, key_rots, key_trans, start_rot, start_trans)
    flights = _flight_windows(keys)
    planted = _planted_at(times, keys, flights)
    lift = _ballistic_lift(times, flights)
    init_rot = _interpolate_keys(times, keys, key_rots, rotation=True)
    init_trans = _interpolate_keys(times, keys, key_trans, rotation=False)
    if start is not None:
        init_rot[0], init_trans[0] = start_rot, start_trans
    init_trans[:, 2] += lift

    dtype = torch.float64
    rot = torch.tensor(init_rot, dtype=dtype, requires_grad=True)
    trans = torch.tensor(init_trans, dtype=dtype, requires_grad=True)
    key_idx = torch.as_tensor([int(round(k.time * rate)) for k in keys]).clamp(0, n - 1)
    key_target = torch.as_tensor(np.stack(key_rots), dtype=dtype)
    key_w = torch.as_tensor([k.weight for k in keys], dtype=dtype)
    lo, hi = (torch.as_tensor(b, dtype=dtype) for b in joint_limits())
    planted_t = torch.as_tensor(planted, dtype=dtype)
    still = planted_t[1:] * planted_t[:-1]                     # planted on both frames of a step
    grounded = torch.as_tensor(lift == 0, dtype=dtype)
    target_rel = None
    last = int(key_idx[-1])
    if progress:
        target_rel = forward_kinematics(key_target[-1:], torch.zeros(1, 3, dtype=dtype))[0]
    anchor = torch.as_tensor(init_trans, dtype=dtype)
    opt = torch.optim.Adam([rot, trans], lr=LEARNING_RATE)
    weights = {"reach": 10.0, "velocity": 0.5, "acceleration": 2.0, "joint_acceleration": 20.0, "progress": 5.0,
               "limits": 10.0, "ground": 200.0, "contact": 100.0, "sliding": 300.0, "root": 1.0, "start": 50.0}
    terms: dict[str, torch.Tensor] = {}
    for _ in range(iterations):
        opt.zero_grad()
        joints = forward_kinematics(rot, trans)
        lowest, soles = _lowest_points(joints)
        terms = {
            "reach": (key_w[:, None] * ((rot[key_idx] - key_target) ** 2).sum(-1)).mean(),
            "velocity": ((rot[1:] - rot[:-1]) ** 2).sum(-1).mean(),
            "acceleration": ((rot[2:] - 2 * rot[1:-1] + rot[:-2]) ** 2).sum(-1).mean() if n > 2 else rot.sum() * 0,
            "joint_acceleration": ((joints[2:] - 2 * joints[1:-1] + joints[:-2]) ** 2).sum(-1).mean()
            if n > 2 else rot.sum() * 0,
            "limits": (torch.relu(rot - hi) ** 2 + torch.relu(lo - rot) ** 2).sum(-1).mean(),
            # Nothing under the floor; planted soles on it (flight frames are lifted by the ballistic arc).
            "ground": (torch.relu(-lowest) ** 2).mean(),
            "contact": ((planted_t * (soles - 0.0) ** 2).sum(-1) * grounded).mean()
            + ((grounded * (lowest - 0.0) ** 2) * (planted_t.sum(-1) > 0)).mean()
            + ((1 - grounded) * (trans[:, 2] - anchor[:, 2]) ** 2).mean(),
            "sliding": (still[:, :, None] * ((joints[1:, _FEET, :2] - joints[:-1, _FEET, :2]) ** 2)
                        .reshape(n - 1, 2, 2, 2).sum(-1)).sum(-1).mean() * rate,
            "root": ((trans[:, :2] - anchor[:, :2]) ** 2).sum(-1).mean() * 0.1,
        }
        if progress and last > 1:
            rel = joints[: last + 1] - joints[: last + 1, :1]
            dist = ((rel - (target_rel - target_rel[:1])) ** 2).sum(-1).mean(-1).sqrt()
            terms["progress"] = torch.relu(dist[1:] - dist[:-1]).mean()
        if start is not None:
            terms["start"] = ((rot[0] - torch.as_tensor(start_rot, dtype=dtype)) ** 2).sum() + \
                ((trans[0] - torch.as_tensor(start_trans, dtype=dtype)) ** 2).sum()
        loss = sum(weights[k] * v for k, v in terms.items())
        loss.backward()
        opt.step()
    coarse_rot = rot.detach().numpy()
    coarse_trans = trans.detach().numpy()
    out_rot, out_trans = ops.resample(coarse_rot, coarse_trans, rate, fps)
    fine_times = np.arange(len(out_rot)) / fps
    fine_planted = _planted_at(fine_times, keys, flights)
    out_trans = _lock_planted_feet(out_rot, out_trans.astype(np.float64), fine_planted)
    out_trans = _settle_on_floor(out_rot, out_trans.astype(np.float64), fine_times, flights)
    if start is not None:
        out_trans[0] = start_trans
    return Synthesis(out_rot.astype(np.float32), out_trans.astype(np.float32), fine_planted,
                     {k: float(v.detach()) for k, v in terms.items()})


def _lock_planted_feet(rot: np.ndarray, trans: np.ndarray, planted: np.ndarray) -> np.ndarray:
    """Remove what sliding is left after the optimisation (it works at the key
    rate): each frame's pelvis moves horizontally by the mean drift of its
    planted feet from where each landed."""
    ankles = [J["left_ankle"], J["right_ankle"]]
    out = trans.copy()
    all_feet = forward_kinematics(rot, trans)[:, ankles, :2]      # a pelvis shift moves both feet with it
    lock = np.full((2, 2), np.nan)
    for f in range(len(rot)):
        feet = all_feet[f]
        for k in range(2):
            if not planted[f, k]:
                lock[k] = np.nan
            elif np.isnan(lock[k, 0]):
                lock[k] = feet[k]
        held = planted[f] & ~np.isnan(lock[:, 0])
        if held.any():
            out[f, :2] += np.mean(lock[held] - feet[held], axis=0)
    return out


def _settle_on_floor(rot: np.ndarray, trans: np.ndarray, times: np.ndarray,
                     flights: list[tuple[float, float]]) -> np.ndarray:
    """Exact ground contact after resampling: each frame's lowest point on the
    floor; in the air the pelvis follows a parabola under gravity from take-off
    to landing (kept above the floor where the legs reach lower)."""
    joints = forward_kinematics(rot, trans)
    lowest = np.min(joints[..., 2] - SURFACE_BELOW, axis=-1)
    out = trans.copy()
    out[:, 2] -= lowest
    ground_z = out[:, 2].copy()
    for lo, hi in flights:
        inside = np.nonzero((times >= lo) & (times <= hi))[0]
        if len(inside) < 2:
            continue
        a, b = inside[0], inside[-1]
        s = times[inside] - times[a]
        span = times[b] - times[a]
        line = ground_z[a] + (ground_z[b] - ground_z[a]) * s / span
        ballistic = line + 0.5 * GRAVITY * s * (span - s)
        out[inside, 2] = np.maximum(ballistic, ground_z[inside])
    return out
