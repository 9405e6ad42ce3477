"""Motion capture from a video's pose landmarks (issue 10, DESIGN §1 video -> motion):
MediaPipe Pose landmarks over a clip -> an SMPL-24 motion solved over the whole clip."""
from __future__ import annotations

from .solve import CHUNK_SECONDS, OVERLAP_SECONDS, CaptureSolution, SolverSettings, solve_capture

__all__ = ["CHUNK_SECONDS", "OVERLAP_SECONDS", "CaptureSolution", "SolverSettings", "solve_capture"]
