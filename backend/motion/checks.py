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
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .skeleton import J

CHECK_KINDS = ("pelvis_rise", "pelvis_drop", "travel", "above", "height_below", "height_above", "ahead", "near",
               "any")


def _bounded(value: float, check: dict[str, Any]) -> bool:
    return value >= check.get("min", -np.inf) and value <= check.get("max", np.inf)


def run_check(check: dict[str, Any], joints: np.ndarray) -> tuple[bool, float]:
    """(passed, measured value) of one check on joints (T, 24, 3)."""
    p = np.asarray(joints, dtype=np.float64)
    if "window" in check:
        a, b = check["window"]
        lo, hi = int(round(a * (len(p) - 1))), int(round(b * (len(p) - 1)))
        p = p[lo:hi + 1]
    kind = check["kind"]
    if kind == "any":
        results = [run_check(c, p) for c in check["checks"]]
        return any(r[0] for r in results), max(r[1] for r in results)
    pelvis = p[:, J["pelvis"]]
    if kind == "pelvis_rise":
        value = float(pelvis[:, 2].max() - pelvis[0, 2])
        return _bounded(value, check), value
    if kind == "pelvis_drop":
        value = float(pelvis[0, 2] - pelvis[:, 2].min())
        return _bounded(value, check), value
    if kind == "travel":
        d = pelvis[-1, :2] - pelvis[0, :2]
        direction = check.get("direction", "any")
        value = float(-d[1] if direction == "forward" else d[1] if direction == "backward" else np.linalg.norm(d))
        return _bounded(value, check), value
    if kind in ("above", "height_below", "height_above", "ahead", "near"):
        x = p[:, J[check["joint"]]]
        if kind == "above":
            ok = x[:, 2] > p[:, J[check["over"]], 2] + check.get("margin", 0.0)
        elif kind == "height_below":
            ok = x[:, 2] < check["max"]
        elif kind == "height_above":
            ok = x[:, 2] > check["min"]
        elif kind == "ahead":
            ok = -(x[:, 1] - p[:, J[check.get("of", "pelvis")], 1]) >= check["min"]
        else:
            ok = np.linalg.norm(x - p[:, J[check["other"]]], axis=-1) <= check["max"]
        frac = float(np.mean(ok))
        return frac >= check.get("fraction", 0.0) and frac <= check.get("max_fraction", 1.0), frac
    raise ValueError(f"unknown check kind {kind!r}; known: {', '.join(CHECK_KINDS)}")


def run_checks(checks: list[dict[str, Any]], joints: np.ndarray) -> list[tuple[bool, float]]:
    return [run_check(c, joints) for c in checks]
