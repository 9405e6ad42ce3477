"""Landmark tracks with known motions, for the capture solver's tests and bench.

A known SMPL-24 motion (a walk from locomotion.py, a punch and a held pose built
from keyposes.py steps) is posed on a (possibly scaled) skeleton, MediaPipe's 33
landmarks are placed on it (capture.landmark_map, plus a fixed per-landmark
mismatch so that the solver's map is not exactly the generator's), seen by a
pinhole camera 3-4 m away and tilted down, and degraded as MediaPipe degrades
them: pixel noise, lower visibility and more noise on the side turned away,
world landmarks root-relative with a scale bias and temporally correlated noise,
and gaps where the person is absent. Also the figures the tests and bench judge
a solve by (MPJPE, PA-MPJPE, foot skate, jitter).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avatarforge.backend.core.capture import NUM_POSE_LANDMARKS, LandmarkTrack, PinholeCamera
from avatarforge.backend.motion import keyposes, ops
from avatarforge.backend.motion.capture.landmark_map import LANDMARK_MAP, L
from avatarforge.backend.motion.keyposes import mirror_steps, pose
from avatarforge.backend.motion.locomotion import locomotion
from avatarforge.backend.motion.skeleton import J, NUM_JOINTS, forward_kinematics, reference_rest_positions

# The 15 joints a video can show (issue 10's benchmark).
EVAL_JOINTS = np.array([J[n] for n in (
    "pelvis", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "neck", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist")])


@dataclass
class Truth:
    """A known motion on a known skeleton: rotations (T,24,3), trans (T,3) (world, Z up,
    soles on z = 0), joints (T,24,3), rest (24,3), contacts (T,2) or None."""
    rotations: np.ndarray
    trans: np.ndarray
    joints: np.ndarray
    rest: np.ndarray
    contacts: np.ndarray | None
    fps: float


@dataclass
class SyntheticClip:
    name: str
    track: LandmarkTrack
    camera: PinholeCamera
    world_to_camera: np.ndarray        # (4,4) OpenCV
    truth: Truth
    points: np.ndarray                 # (T,33,3) true landmark positions (world)


# ------------------------------------------------------------------------------------------------
# Motions

def _scaled_rest(scale: float) -> np.ndarray:
    rest = np.asarray(reference_rest_positions(), np.float64) * scale
    return rest


def walk_motion(seconds: float = 2.4, fps: float = 30.0, yaw_degrees: float = 90.0,
                scale: float = 1.0) -> Truth:
    """A walk across the view (turned by `yaw_degrees` from walking towards the camera),
    centred on the origin."""
    clip = locomotion("walk", seconds, fps)
    rot, trans = keyposes.turn_clip(clip.rotations, clip.trans, np.radians(yaw_degrees))
    trans = np.asarray(trans, np.float64)
    mid = 0.5 * (trans[0, :2] + trans[-1, :2])
    trans[:, :2] -= mid
    trans *= scale
    rest = _scaled_rest(scale)
    return _truth(rot, trans, rest, clip.contacts, fps)


def _smoothstep(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3 - 2 * u)


def punch_motion(seconds: float = 2.4, fps: float = 30.0, yaw_degrees: float = 20.0, scale: float = 1.0,
                 strike_at: float = 0.9, strike_time: float = 0.1, hold: float = 0.25,
                 retract_time: float = 0.3) -> Truth:
    """Standing in a guard, a fast right straight punch (out in `strike_time` s), held, retracted."""
    guard = {"left_shoulder": [("z", -55), ("y", -50)], "left_elbow": [("y", -125)],
             "right_shoulder": mirror_steps([("z", -55), ("y", -50)]), "right_elbow": mirror_steps([("y", -125)]),
             "left_hip": [("z", 6)], "right_hip": mirror_steps([("z", 6)])}
    strike = dict(guard)
    strike.update({"right_shoulder": mirror_steps([("y", -85), ("z", 3)]), "right_elbow": mirror_steps([("y", -5)]),
                   "spine2": [("y", 12)], "spine3": [("y", 8)]})
    a, b = pose(guard), pose(strike)
    n = int(round(seconds * fps)) + 1
    t = np.arange(n) / fps
    u = _smoothstep((t - strike_at) / strike_time) - _smoothstep((t - strike_at - strike_time - hold) / retract_time)
    from avatarforge.backend.core import rotations as R

    rot = R.slerp_axis_angle(np.broadcast_to(a, (n, NUM_JOINTS, 3)), np.broadcast_to(b, (n, NUM_JOINTS, 3)),
                             np.broadcast_to(u[:, None], (n, NUM_JOINTS)))
    rot = keyposes.with_heading(rot, np.radians(yaw_degrees))
    trans = np.tile(keyposes.grounded_trans(a), (n, 1))
    trans[:, :2] = 0.0
    return _truth(rot, trans * np.array([1, 1, scale]), _scaled_rest(scale), np.ones((n, 2), bool), fps)


def held_motion(seconds: float = 2.0, fps: float = 30.0, yaw_degrees: float = -30.0, scale: float = 1.0) -> Truth:
    """A pose held still: one arm raised, the other on the hip, a slight lean."""
    spec = {"left_shoulder": [("z", 70)], "left_elbow": [("y", -20)],
            "right_shoulder": mirror_steps([("z", -60)]), "right_elbow": mirror_steps([("y", -80)]),
            "spine1": [("z", -5)], "neck": [("y", 15)], "left_hip": [("z", 8)], "right_hip": mirror_steps([("z", 8)])}
    a = keyposes.with_heading(pose(spec), np.radians(yaw_degrees))
    n = int(round(seconds * fps)) + 1
    rot = np.broadcast_to(a, (n, NUM_JOINTS, 3)).copy()
    trans = np.tile(keyposes.grounded_trans(pose(spec)), (n, 1))
    trans[:, :2] = 0.0
    return _truth(rot, trans * np.array([1, 1, scale]), _scaled_rest(scale), np.ones((n, 2), bool), fps)


def _truth(rot: np.ndarray, trans: np.ndarray, rest: np.ndarray, contacts: np.ndarray | None, fps: float) -> Truth:
    rot = np.asarray(rot, np.float64)
    trans = np.asarray(trans, np.float64)
    joints = forward_kinematics(rot, trans, rest)
    return Truth(rot, trans, joints, rest, None if contacts is None else np.asarray(contacts, bool), fps)


# ------------------------------------------------------------------------------------------------
# Seeing it

def look_at_camera(distance: float = 3.8, height: float = 1.35, pitch_degrees: float = 8.0,
                   yaw_degrees: float = 0.0, target: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """(4,4) OpenCV world->camera of a camera `distance` m in front of `target` (on the
    -Y side, so a body facing -Y faces it), `height` m up, pitched down, optionally yawed."""
    th, ps = np.radians(pitch_degrees), np.radians(yaw_degrees)
    fwd = np.array([np.sin(ps) * np.cos(th), np.cos(ps) * np.cos(th), -np.sin(th)])
    right = np.array([np.cos(ps), -np.sin(ps), 0.0])
    down = np.cross(fwd, right)
    rot = np.stack([right, down, fwd])
    centre = np.array([target[0], target[1], 0.0]) - distance * np.array([np.sin(ps), np.cos(ps), 0.0])
    centre[2] = height
    out = np.eye(4)
    out[:3, :3] = rot
    out[:3, 3] = -rot @ centre
    return out


def landmark_points(truth: Truth, mismatch: float = 0.012, seed: int = 0) -> np.ndarray:
    """(T,33,3) world positions of the landmarks on the true motion; `mismatch` (m) moves
    each landmark by a fixed random offset in its joint's frame (MediaPipe's notion of a
    landmark is not exactly ours)."""
    rng = np.random.default_rng(seed + 1000)
    size = truth.rest[J["head"], 2] / reference_rest_positions()[J["head"], 2]
    offsets = LANDMARK_MAP.offset * size + rng.normal(0.0, mismatch, (NUM_POSE_LANDMARKS, 3))
    _, frames = forward_kinematics(truth.rotations, truth.trans, truth.rest, return_frames=True)
    idx = LANDMARK_MAP.joint
    return truth.joints[:, idx] + np.einsum("tlij,lj->tli", frames[:, idx], offsets)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float, frames: int) -> np.ndarray:
    """Temporally correlated noise (a Gaussian-filtered white noise rescaled to `sigma`)."""
    from scipy.ndimage import gaussian_filter1d

    raw = gaussian_filter1d(rng.normal(size=shape), sigma=frames, axis=0, mode="nearest")
    return raw / max(raw.std(), 1e-9) * sigma


def make_clip(name: str, truth: Truth, *, camera: PinholeCamera | None = None,
              world_to_camera: np.ndarray | None = None, pixel_noise: float = 3.0, world_noise: float = 0.04,
              world_scale: float = 1.0, gaps: tuple[tuple[int, int], ...] = (), seed: int = 0,
              variable_fps: bool = False, mismatch: float = 0.012) -> SyntheticClip:
    """A LandmarkTrack of `truth` as MediaPipe would report it (see the module's docstring)."""
    rng = np.random.default_rng(seed)
    camera = camera or PinholeCamera.from_focal_mm(30.0, 640, 480)
    w2c = look_at_camera() if world_to_camera is None else world_to_camera
    times = np.arange(len(truth.rotations)) / truth.fps
    seen = truth
    if variable_fps:
        # Frames arrive at jittered times (a phone's variable frame rate): the landmarks
        # are of the motion at those times, the last one at the clip's end.
        steps = rng.uniform(0.5, 1.5, len(times) - 1)
        times = np.concatenate([[0.0], np.cumsum(steps)]) * (times[-1] / steps.sum())
        r, t = ops.sample(truth.rotations, truth.trans, times * truth.fps)
        seen = _truth(r, t, truth.rest, None, truth.fps)
    pts = landmark_points(seen, mismatch, seed)
    n = len(pts)
    pc = pts @ w2c[:3, :3].T + w2c[:3, 3]
    image = camera.focal_px * pc[..., :2] / pc[..., 2:] + np.array([camera.cx, camera.cy])
    # Visibility: the side of the body turned away from the camera is partly hidden.
    _, frames = forward_kinematics(seen.rotations, seen.trans, seen.rest, return_frames=True)
    left_axis = frames[:, J["pelvis"], :, 0] @ w2c[:3, :3].T                 # body's left in camera axes
    away = left_axis[:, 2]                                                    # > 0: left side turned away
    vis = np.full((n, NUM_POSE_LANDMARKS), 0.97)
    for i, lname in enumerate(_landmark_names()):
        if lname.startswith("left_"):
            vis[:, i] = np.where(away > 0.35, 0.35, 0.97)
        elif lname.startswith("right_"):
            vis[:, i] = np.where(away < -0.35, 0.35, 0.97)
    noise_scale = np.where(vis < 0.5, 2.5, 1.0)
    image = image + rng.normal(0.0, pixel_noise, image.shape) * noise_scale[..., None]
    hips = 0.5 * (pc[:, L["left_hip"]] + pc[:, L["right_hip"]])
    world = (pc - hips[:, None]) * world_scale
    world = world + rng.normal(0.0, world_noise * 0.6, world.shape) * noise_scale[..., None]
    world = world + _smooth_noise(rng, world.shape, world_noise * 0.8, 3)
    depth = (pc[..., 2] - hips[:, None, 2]) * camera.focal_px / hips[:, None, 2]
    present = np.ones(n, bool)
    for a, b in gaps:
        present[a:b + 1] = False
    image[~present] = np.nan
    world[~present] = np.nan
    depth[~present] = np.nan
    vis[~present] = 0.0
    track = LandmarkTrack(image=image.astype(np.float32), depth=depth.astype(np.float32),
                          visibility=vis.astype(np.float32), world=world.astype(np.float32), present=present,
                          times=times, mask_area=np.full(n, np.nan, np.float32), people=np.full(n, -1, np.int16),
                          width=camera.width, height=camera.height, detector={"name": "synthetic"})
    return SyntheticClip(name, track, camera, w2c, truth, pts)


def _landmark_names() -> tuple[str, ...]:
    from avatarforge.backend.core.capture import POSE_LANDMARKS

    return POSE_LANDMARKS


def standard_clips(seed: int = 0) -> list[SyntheticClip]:
    """The bench's clips: walk (side view, a gap), punch, held pose, a scaled actor walking
    at an angle with a steeper camera."""
    return [
        make_clip("walk", walk_motion(), gaps=((30, 36),), seed=seed),
        make_clip("punch", punch_motion(), seed=seed + 1),
        make_clip("held", held_motion(), seed=seed + 2),
        make_clip("walk_small_steep", walk_motion(yaw_degrees=60.0, scale=0.92), seed=seed + 3,
                  world_to_camera=look_at_camera(distance=3.4, height=1.8, pitch_degrees=18.0), world_scale=0.95),
    ]


# ------------------------------------------------------------------------------------------------
# Figures

def _kabsch(a: np.ndarray, b: np.ndarray, scale: bool = False) -> tuple[np.ndarray, float]:
    """Rotation (and scale) taking centred points a (K,3) onto b (K,3)."""
    u, s, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(u @ vt))
    D = np.diag([1.0, 1.0, d])
    rot = (u @ D @ vt).T
    k = float((s * np.diag(D)).sum() / max((a ** 2).sum(), 1e-12)) if scale else 1.0
    return rot, k


def mpjpe(pred: np.ndarray, true: np.ndarray, joints: np.ndarray = EVAL_JOINTS) -> float:
    """Pelvis-aligned MPJPE (m) with one rotation for the whole clip (the solved world's
    heading is its own)."""
    p = pred[:, joints] - pred[:, :1]
    t = true[:, joints] - true[:, :1]
    rot, _ = _kabsch(p.reshape(-1, 3), t.reshape(-1, 3))
    return float(np.linalg.norm(p @ rot.T - t, axis=-1).mean())


def pa_mpjpe(pred: np.ndarray, true: np.ndarray, joints: np.ndarray = EVAL_JOINTS) -> float:
    """Per-frame Procrustes-aligned (rotation, scale, translation) MPJPE (m)."""
    errs = []
    for p, t in zip(pred[:, joints], true[:, joints]):
        pc, tc = p - p.mean(0), t - t.mean(0)
        rot, k = _kabsch(pc, tc, scale=True)
        errs.append(np.linalg.norm(k * pc @ rot.T - tc, axis=-1).mean())
    return float(np.mean(errs))


def mean_acceleration(joints: np.ndarray, fps: float, idx: np.ndarray = EVAL_JOINTS) -> float:
    """Mean joint acceleration magnitude (m/s²)."""
    p = joints[:, idx]
    if len(p) < 3:
        return 0.0
    return float(np.linalg.norm(p[2:] - 2 * p[1:-1] + p[:-2], axis=-1).mean() * fps ** 2)


def foot_skate(joints: np.ndarray, contacts: np.ndarray) -> float:
    """Mean horizontal speed (m/frame) of the ankle and ball joints of feet in contact
    (contact at both ends of the step)."""
    speeds = []
    for k, side in enumerate(("left", "right")):
        both_frames = contacts[1:, k] & contacts[:-1, k]
        for jn in ("ankle", "foot"):
            p = joints[:, J[f"{side}_{jn}"], :2]
            step = np.linalg.norm(np.diff(p, axis=0), axis=-1)
            speeds.append(step[both_frames])
    allv = np.concatenate(speeds)
    return float(allv.mean()) if len(allv) else 0.0


def peak_speed(joints: np.ndarray, joint: str, fps: float) -> float:
    """Highest speed (m/s) of one joint, relative to the pelvis."""
    p = joints[:, J[joint]] - joints[:, J["pelvis"]]
    return float(np.linalg.norm(np.diff(p, axis=0), axis=-1).max() * fps)
