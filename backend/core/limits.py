"""Limits on what a job may be asked for (DESIGN §6: one fact, one place).

Those the add-on enforces too live in protocol/limits.py (the add-on carries a
copy of protocol/) and are imported from there; the backend's own are here."""
from __future__ import annotations

from avatarforge.protocol.artifacts import MAX_MOTION_FRAMES
from avatarforge.protocol.limits import MOTION_FPS, MOTION_SECONDS, VIDEO_MAX_BYTES

# Bytes of one motion file: a motion_import upload or a clip of the motion library.
MOTION_FILE_MAX_BYTES = 256 * 1024 ** 2
# Bytes the arrays of a motion .npz may inflate to, all together, checked from its
# headers before inflating (a few KB of zip can claim GBs): the largest valid file,
# SMPL-X poses and trans (165 + 3 float64 a frame) of MAX_MOTION_FRAMES frames, and
# a MiB for betas, gender and the frame rate.
MOTION_NPZ_MAX_BYTES = MAX_MOTION_FRAMES * (165 + 3) * 8 + 2 ** 20

__all__ = ["MOTION_FILE_MAX_BYTES", "MOTION_NPZ_MAX_BYTES", "MOTION_FPS", "MOTION_SECONDS", "VIDEO_MAX_BYTES"]

# -- Video (video -> motion) --------------------------------------------------------
# Bytes of one video file: VIDEO_MAX_BYTES, in protocol/limits.py (the add-on checks it too).
# Seconds of video one job may process (the range between start and end; a longer
# clip is refused before any decoding, or processed in a range the user chooses).
VIDEO_MAX_SECONDS = 600.0
# Displayed sides a video may have, in pixels: smaller cannot show a person's
# landmarks, larger (beyond 8K) is not a camera's video and one frame alone would
# take hundreds of MB.
VIDEO_MIN_SIDE = 16
VIDEO_MAX_SIDE = 8192
# Average frame rate a video file may state (phones film slow motion at 240-960 fps).
VIDEO_MAX_FPS = 1000.0
# Longer side, in pixels, of the frames given to the landmark detector: MediaPipe
# Pose works on a 256 px crop of the person, so more only costs decode time.
LANDMARK_MAX_SIDE = 640
# A person whose landmarks' median height over the clip is below this fraction of
# the image height is too small to trust. (Measured on a rendered walk padded into
# larger frames: MediaPipe's person detector, which sees the whole frame at 224 px,
# finds the person at 29% of the height and nobody at 19%; a detection smaller
# than 15% is a lucky one.)
MIN_PERSON_HEIGHT_FRACTION = 0.15
# A region of the segmentation mask counts as a person when it covers at least this
# fraction of the image (smaller specks are noise or hands).
PERSON_MIN_AREA_FRACTION = 0.005

# -- Result store -------------------------------------------------------------------
# Bytes the result store may hold (results, the requests kept to recompute them, and
# quarantined entries) before the least recently used results are evicted: room for
# ~9,000 body results (2.2 MB each) or ~1,500 long motions (14 MB); `serve
# --store-max-bytes` sets another cap.
STORE_MAX_BYTES = 20 * 1024 ** 3
