"""Limits on what a job may be asked for (DESIGN §6: one fact, one place).

Those the add-on enforces too live in protocol/limits.py (the add-on carries a
copy of protocol/) and are imported from there; the backend's own are here."""
from __future__ import annotations

from avatarforge.protocol.artifacts import MAX_MOTION_FRAMES
from avatarforge.protocol.limits import MOTION_FPS, MOTION_SECONDS

# Bytes of one motion file: a motion_import upload or a clip of the motion library.
MOTION_FILE_MAX_BYTES = 256 * 1024 ** 2
# Bytes the arrays of a motion .npz may inflate to, all together, checked from its
# headers before inflating (a few KB of zip can claim GBs): the largest valid file,
# SMPL-X poses and trans (165 + 3 float64 a frame) of MAX_MOTION_FRAMES frames, and
# a MiB for betas, gender and the frame rate.
MOTION_NPZ_MAX_BYTES = MAX_MOTION_FRAMES * (165 + 3) * 8 + 2 ** 20

__all__ = ["MOTION_FILE_MAX_BYTES", "MOTION_NPZ_MAX_BYTES", "MOTION_FPS", "MOTION_SECONDS"]
