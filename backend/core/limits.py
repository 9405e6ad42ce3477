"""Limits on what a job may be asked for (DESIGN §6: one fact, one place).

Those the add-on enforces too live in protocol/limits.py (the add-on carries a
copy of protocol/) and are imported from there; the backend's own are here."""
from __future__ import annotations

from avatarforge.protocol.limits import MOTION_FPS, MOTION_SECONDS

# Bytes of one motion file: a motion_import upload or a clip of the motion library.
MOTION_FILE_MAX_BYTES = 256 * 1024 ** 2

__all__ = ["MOTION_FILE_MAX_BYTES", "MOTION_FPS", "MOTION_SECONDS"]
