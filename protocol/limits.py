"""Limits and names that both the add-on and the backend hold to (DESIGN §6: one
fact, one place). The add-on's fields stop at these limits and the backend's
validation rejects anything past them; the add-on carries its own copy of this
package, so both read the same file."""
from __future__ import annotations

# Frame rates a motion may be asked for: text_motion's output, motion_import's resampling.
# (An artifact on the wire may carry more: artifacts.FPS_RANGE bounds what a file can hold.)
MOTION_FPS = (1.0, 240.0)
# Seconds of motion text_motion generates.
MOTION_SECONDS = (0.5, 60.0)

# Retargeting presets: rigs whose bone names the backend maps onto SMPL's 24 joints
# (backend/motion/rigs.py holds each map); "auto" picks the one that maps the most joints.
RIG_PRESETS = ("anny", "smpl", "mixamo", "rigify", "unreal")
AUTO_RIG_PRESET = "auto"
