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

# Video -> motion: the camera's focal length, 35 mm-equivalent (the 36 mm film width
# spans the image's longer side), when neither the request nor the file states it:
# between a phone's main camera (~26 mm) and a webcam or camcorder at its wide end.
VIDEO_FOCAL_MM = (4.0, 1200.0)
# Bytes of one video a client may send (the add-on refuses a larger file before reading it).
VIDEO_MAX_BYTES = 2 * 1024 ** 3
DEFAULT_VIDEO_FOCAL_MM = 30.0
# File names the video_motion job reads (PyAV/FFmpeg decode much more; these are
# what a user picks in the add-on's file browser and what the CLI accepts).
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".wmv", ".flv", ".ts",
                  ".mts", ".m2ts", ".3gp", ".ogv", ".gif")
