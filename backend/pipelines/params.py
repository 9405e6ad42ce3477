"""Validation of job params, shared by every pipeline: each bad field gets a
BAD_REQUEST that names it and says what is allowed."""
from __future__ import annotations

import difflib
import math
from typing import Any

from avatarforge.protocol import ErrorCode, ProtocolError

SEED_MAX = 2 ** 32 - 1
NAME_MAX = 63              # Blender's limit for object and data names


def bad_field(field: str, message: str, **details: Any) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_REQUEST, f"{field}: {message}", field=field, **details)


def number_param(field: str, value: Any, lo: float, hi: float) -> float:
    """A finite real in [lo, hi] (bools are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise bad_field(field, f"must be a number in [{lo:g}, {hi:g}], got {value!r}")
    if not lo <= value <= hi:
        # repr, not :g (6 digits), so 1.0000001 does not read as an in-range 1.
        raise bad_field(field, f"must be in [{lo:g}, {hi:g}], got {value!r}")
    return float(value)


def integer_param(field: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_field(field, f"must be an integer in [{lo}, {hi}], got {value!r}")
    if not lo <= value <= hi:
        raise bad_field(field, f"must be in [{lo}, {hi}], got {value}")
    return int(value)


def named_values_param(field: str, value: Any, allowed: tuple[str, ...], lo: float, hi: float,
                  what: str, list_all: bool) -> dict[str, float]:
    """A {name: number} map whose names are in `allowed`, each value in [lo, hi]."""
    if not isinstance(value, dict):
        raise bad_field(field, f"must be a map of {what} names to numbers in [{lo:g}, {hi:g}]")
    out = {}
    for name, v in value.items():
        if not isinstance(name, str) or name not in allowed:
            if list_all:
                hint = f"{what} names: {', '.join(allowed)}"
            else:
                close = difflib.get_close_matches(str(name), allowed, n=5, cutoff=0.5)
                hint = (f"did you mean {', '.join(close)}? " if close else "") + \
                    f"({len(allowed)} names; the full list is in this error's details.allowed)"
            raise bad_field(f"{field}.{name}", f"not an Anny {what}; {hint}", allowed=list(allowed))
        out[name] = number_param(f"{field}.{name}", v, lo, hi)
    return out


def name_param(value: Any) -> str:
    """An object name Blender can take: printable, non-empty, at most NAME_MAX characters."""
    if not isinstance(value, str) or not value.strip() or len(value) > NAME_MAX or not value.isprintable():
        raise bad_field("name", f"must be a non-empty printable string of at most {NAME_MAX} characters")
    return value.strip()


def check_param_names(params: Any, allowed: tuple[str, ...], job: str) -> dict[str, Any]:
    """`params` as a map with no names outside `allowed`."""
    if not isinstance(params, dict):
        raise bad_field("params", "must be a map")
    for key in params:
        if key not in allowed:
            raise bad_field(str(key), f"unknown parameter of job '{job}'; allowed: {', '.join(allowed)}")
    return params
