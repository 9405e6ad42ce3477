"""The landmark track at the output frame rate: observations resampled by their
timestamps (DESIGN §6: interpolated, never decimated), frames that have none
marked, and the input checked with errors that name what is wrong."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avatarforge.protocol import ErrorCode, ProtocolError

from ...core.capture import NUM_POSE_LANDMARKS, LandmarkTrack, PinholeCamera
from ...core.limits import MOTION_FPS

# Two observed frames further apart than this many median frame intervals are not
# interpolated across: the output frames between them are a gap.
MAX_BRIDGE_INTERVALS = 2.5


@dataclass
class Observations:
    """Landmarks at the output times (N frames). image (N,33,2) px; world (N,33,3) m
    (camera axes, hip-centred); visibility (N,33) in [0,1] (0 where unknown);
    observed (N,) bool: the frame has landmarks (False: a gap, filled by the solve)."""
    times: np.ndarray
    image: np.ndarray
    world: np.ndarray
    visibility: np.ndarray
    observed: np.ndarray

    @property
    def frames(self) -> int:
        return len(self.times)

    def gaps(self) -> list[tuple[int, int]]:
        """Runs of unobserved output frames, inclusive (first, last)."""
        out: list[tuple[int, int]] = []
        start = None
        for i, o in enumerate(self.observed.tolist() + [True]):
            if not o and start is None:
                start = i
            elif o and start is not None:
                out.append((start, i - 1))
                start = None
        return out


def bad_request(field: str, message: str) -> ProtocolError:
    """A BAD_REQUEST error about `field` (named in the message too)."""
    return ProtocolError(ErrorCode.BAD_REQUEST, f"{field}: {message}", field=field)


def check_inputs(track: LandmarkTrack, camera: PinholeCamera, fps: float | None) -> None:
    """Raise BAD_REQUEST naming the field when the track or camera cannot be solved."""
    t = track.frames
    if t == 0:
        raise bad_request("track.times", "the clip has no frames")
    shapes = {"image": (t, NUM_POSE_LANDMARKS, 2), "world": (t, NUM_POSE_LANDMARKS, 3),
              "visibility": (t, NUM_POSE_LANDMARKS), "present": (t,)}
    for name, shape in shapes.items():
        got = np.shape(getattr(track, name))
        if got != shape:
            raise bad_request(f"track.{name}", f"expected shape {shape}, got {got}")
    times = np.asarray(track.times, np.float64)
    if not np.isfinite(times).all():
        raise bad_request("track.times", "timestamps must be finite numbers")
    if t > 1 and not (np.diff(times) > 0).all():
        k = int(np.argmin(np.diff(times) > 0)) + 1
        raise bad_request("track.times", f"timestamps must increase; frame {k} is at {times[k]:.6f} s, "
                                  f"not after frame {k - 1} at {times[k - 1]:.6f} s")
    present = np.asarray(track.present, bool)
    if not present.any():
        raise bad_request("track.present", f"no person was found in any of the {t} frames")
    usable = present & np.isfinite(np.asarray(track.image)).all(axis=(1, 2))
    if not usable.any():
        raise bad_request("track.image", "no frame has a complete set of image landmarks")
    if not (np.isfinite(camera.focal_px) and camera.focal_px > 0):
        raise bad_request("camera.focal_px", f"must be a positive number of pixels, got {camera.focal_px}")
    if not (camera.width > 0 and camera.height > 0):
        raise bad_request("camera", f"image size must be positive, got {camera.width}x{camera.height}")
    if fps is not None and not (np.isfinite(fps) and MOTION_FPS[0] <= fps <= MOTION_FPS[1]):
        raise bad_request("fps", f"must be within {MOTION_FPS[0]:g}..{MOTION_FPS[1]:g}, got {fps}")


def clip_fps(track: LandmarkTrack) -> float:
    """The clip's average frame rate (frames - 1 over the time they span); 30 for a single frame."""
    times = np.asarray(track.times, np.float64)
    if len(times) < 2 or times[-1] <= times[0]:
        return 30.0
    return float(np.clip((len(times) - 1) / (times[-1] - times[0]), *MOTION_FPS))


def output_times(track: LandmarkTrack, fps: float) -> np.ndarray:
    """Uniform times at `fps` spanning the clip (same duration; frame k at t0 + k / fps)."""
    times = np.asarray(track.times, np.float64)
    n = int(round((times[-1] - times[0]) * fps)) + 1
    return times[0] + np.arange(max(n, 1)) / fps


def resample(track: LandmarkTrack, times_out: np.ndarray) -> Observations:
    """Observations at `times_out`: linear between the two observed frames around each
    time when they are close enough (MAX_BRIDGE_INTERVALS), else the nearest observed
    frame within half an interval, else none (a gap)."""
    times = np.asarray(track.times, np.float64)
    image = np.asarray(track.image, np.float64)
    world = np.asarray(track.world, np.float64)
    vis = np.nan_to_num(np.asarray(track.visibility, np.float64), nan=0.0).clip(0.0, 1.0)
    # A frame is usable when the person is there and the landmarks are numbers.
    usable = np.asarray(track.present, bool) & np.isfinite(image).all(axis=(1, 2))
    world_ok = np.isfinite(world).all(axis=(1, 2))
    idx = np.flatnonzero(usable)
    dt = float(np.median(np.diff(times))) if len(times) > 1 else 1.0 / 30.0
    n = len(times_out)
    out_img = np.zeros((n, NUM_POSE_LANDMARKS, 2))
    out_world = np.zeros((n, NUM_POSE_LANDMARKS, 3))
    out_vis = np.zeros((n, NUM_POSE_LANDMARKS))
    observed = np.zeros(n, bool)
    ut = times[idx]
    k1 = np.searchsorted(ut, times_out, side="left").clip(0, len(idx) - 1)
    k0 = (k1 - 1).clip(0, len(idx) - 1)
    for o, t in enumerate(times_out):
        a, b = idx[k0[o]], idx[k1[o]]
        ta, tb = times[a], times[b]
        if ta > t:      # before the first usable frame: a == b
            a = b
        if a != b and ta <= t <= tb and tb - ta <= MAX_BRIDGE_INTERVALS * dt + 1e-9:
            w = (t - ta) / (tb - ta)
        else:
            nearest = a if abs(t - ta) <= abs(t - tb) else b
            if abs(times[nearest] - t) > 0.5 * dt + 1e-9:
                continue
            a = b = nearest
            w = 0.0
        observed[o] = True
        out_img[o] = image[a] * (1 - w) + image[b] * w
        out_vis[o] = np.minimum(vis[a], vis[b]) if w not in (0.0, 1.0) else vis[a if w == 0.0 else b]
        if world_ok[a] and world_ok[b]:
            out_world[o] = world[a] * (1 - w) + world[b] * w
        else:
            out_world[o] = np.nan
    return Observations(times_out, out_img, out_world, out_vis, observed)
