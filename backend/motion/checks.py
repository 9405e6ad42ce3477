"""Kinematic checks on joint positions: does a motion do what its prompt says?

Used by bench/text_to_motion.py and the tests. A check is plain data, e.g.
{"kind": "pelvis_rise", "min": 0.15}; every check may also carry
"window": [a, b] (fractions of the clip) to look only at that part of it.

Kinds (heights in metres, Z up; forward is -Y; fractions of the frames):
    pelvis_rise     max pelvis height minus its first-frame height >= min (<= max)
    pelvis_drop     first-frame pelvis height minus the lowest >= min (<= max)
    travel          horizontal root displacement first -> last frame >= min (<= max);
                    "direction": "forward" | "backward" | "any" (default any)
    above           `joint` higher than `over` (+ margin) for >= fraction (<= max_fraction)
    height_below    `joint` lower than `max` for >= fraction of the frames
    height_above    `joint` higher than `min` for >= fraction of the frames
    ahead           `joint` in front of `of` by >= min for >= fraction of the frames
    near            `joint` within `max` of `other` for >= fraction of the frames
    any             at least one of "checks" passes
    pelvis_peaks    number of pelvis-height peaks in [min, max]: rises of >= "prominence" (m,
                    default 0.07: more than a jog's bob) above the lowest point since the last
                    peak, each followed by a fall of >= "prominence" (jumps, hops)
    pelvis_dips     the same for pelvis-height valleys (squats, sitting down...)
    episodes        number of separate spans where the per-frame condition "check" (an above /
                    height_below / height_above / ahead / near check) holds, in [min, max]; spans
                    shorter than "min_frames" (default 2) are ignored and gaps shorter than
                    "gap" frames (default 2) joined: claps, kicks, arm raises
    foot_slide      horizontal speed (m/s) of an ankle while it is on the floor (within "height",
                    default 0.09 m, on both frames of a step; needs the clip's fps), 90th
                    percentile over both feet, <= max
    turn            how far the body turned (degrees), first -> last frame, in [min, max]: signed,
                    + towards the body's left (counter-clockwise seen from above), summed frame by
                    frame so a full spin reads 360; the heading is the hips' left-right axis
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .skeleton import J

CHECK_KINDS = ("pelvis_rise", "pelvis_drop", "travel", "above", "height_below", "height_above", "ahead", "near",
               "any", "pelvis_peaks", "pelvis_dips", "episodes", "foot_slide", "turn")
_FRAME_KINDS = ("above", "height_below", "height_above", "ahead", "near")


def _bounded(value: float, check: dict[str, Any]) -> bool:
    return value >= check.get("min", -np.inf) and value <= check.get("max", np.inf)


def _frame_condition(check: dict[str, Any], p: np.ndarray) -> np.ndarray:
    """(T,) bool: where a per-frame check's condition holds."""
    kind = check["kind"]
    x = p[:, J[check["joint"]]]
    if kind == "above":
        return x[:, 2] > p[:, J[check["over"]], 2] + check.get("margin", 0.0)
    if kind == "height_below":
        return x[:, 2] < check["max"]
    if kind == "height_above":
        return x[:, 2] > check["min"]
    if kind == "ahead":
        return -(x[:, 1] - p[:, J[check.get("of", "pelvis")], 1]) >= check["min"]
    if kind == "near":
        return np.linalg.norm(x - p[:, J[check["other"]]], axis=-1) <= check["max"]
    raise ValueError(f"{kind!r} is not a per-frame check; those are {', '.join(_FRAME_KINDS)}")


def count_episodes(ok: np.ndarray, min_frames: int = 2, gap: int = 2) -> int:
    """Separate runs of True in `ok`: gaps shorter than `gap` frames are joined,
    runs shorter than `min_frames` ignored."""
    ok = np.asarray(ok, bool).copy()
    idx = np.nonzero(ok)[0]
    for a, b in zip(idx[:-1], idx[1:]):
        if 1 < b - a <= gap:
            ok[a:b] = True
    edges = np.diff(np.concatenate([[0], ok.astype(np.int8), [0]]))
    starts, ends = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]
    return int(np.sum(ends - starts >= min_frames))


def count_peaks(z: np.ndarray, prominence: float) -> int:
    """Rises of >= `prominence` from the last valley followed by falls of >= `prominence`.
    Written here (hysteresis counting) because scipy's find_peaks counts a flat-topped
    peak twice when sub-millimetre ripple splits its plateau."""
    count, low, high = 0, float(z[0]), None
    for v in np.asarray(z, dtype=np.float64):
        if high is None:
            low = min(low, v)
            if v - low >= prominence:
                high = v
        else:
            high = max(high, v)
            if high - v >= prominence:
                count, low, high = count + 1, v, None
    return count


def turned_degrees(joints: np.ndarray) -> float:
    """Signed heading change (degrees, + towards the body's left) from the first frame to the
    last, accumulated frame by frame (unwrapped) so turns past 180 degrees count in full."""
    p = np.asarray(joints, dtype=np.float64)
    across = p[:, J["left_hip"], :2] - p[:, J["right_hip"], :2]
    yaw = np.unwrap(np.arctan2(across[:, 1], across[:, 0]))
    return float(np.degrees(yaw[-1] - yaw[0]))


def run_check(check: dict[str, Any], joints: np.ndarray, fps: float = 30.0) -> tuple[bool, float]:
    """(passed, measured value) of one check on joints (T, 24, 3) sampled at `fps`."""
    p = np.asarray(joints, dtype=np.float64)
    if "window" in check:
        a, b = check["window"]
        lo, hi = int(round(a * (len(p) - 1))), int(round(b * (len(p) - 1)))
        p = p[lo:hi + 1]
    kind = check["kind"]
    if kind == "any":
        results = [run_check(c, p, fps) for c in check["checks"]]
        return any(r[0] for r in results), max(r[1] for r in results)
    pelvis = p[:, J["pelvis"]]
    if kind == "pelvis_rise":
        value = float(pelvis[:, 2].max() - pelvis[0, 2])
        return _bounded(value, check), value
    if kind == "pelvis_drop":
        value = float(pelvis[0, 2] - pelvis[:, 2].min())
        return _bounded(value, check), value
    if kind in ("pelvis_peaks", "pelvis_dips"):
        z = pelvis[:, 2] if kind == "pelvis_peaks" else -pelvis[:, 2]
        value = float(count_peaks(z, check.get("prominence", 0.07)))
        return _bounded(value, check), value
    if kind == "episodes":
        value = float(count_episodes(_frame_condition(check["check"], p), check.get("min_frames", 2),
                                     check.get("gap", 2)))
        return _bounded(value, check), value
    if kind == "foot_slide":
        height = check.get("height", 0.09)
        speeds = []
        for side in ("left", "right"):
            ankle = p[:, J[f"{side}_ankle"]]
            down = (ankle[1:, 2] < height) & (ankle[:-1, 2] < height)
            speeds.append(np.linalg.norm(np.diff(ankle[:, :2], axis=0), axis=-1)[down] * fps)
        both = np.concatenate(speeds)
        value = float(np.percentile(both, 90)) if len(both) else 0.0
        return _bounded(value, check), value
    if kind == "turn":
        value = turned_degrees(p)
        return _bounded(value, check), value
    if kind == "travel":
        d = pelvis[-1, :2] - pelvis[0, :2]
        direction = check.get("direction", "any")
        value = float(-d[1] if direction == "forward" else d[1] if direction == "backward" else np.linalg.norm(d))
        return _bounded(value, check), value
    if kind in _FRAME_KINDS:
        frac = float(np.mean(_frame_condition(check, p)))
        return frac >= check.get("fraction", 0.0) and frac <= check.get("max_fraction", 1.0), frac
    raise ValueError(f"unknown check kind {kind!r}; known: {', '.join(CHECK_KINDS)}")


def run_checks(checks: list[dict[str, Any]], joints: np.ndarray, fps: float = 30.0) -> list[tuple[bool, float]]:
    return [run_check(c, joints, fps) for c in checks]
