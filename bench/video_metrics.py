"""What bench/video_to_motion.py measures, as plain functions of joint arrays
(numpy only): errors against the rendered truth, foot skate, jitter.

Joint arrays are (T, J, 3) in metres, Z up; results are in millimetres.
The 15 joints a video can show (EVAL_JOINTS) index SMPL-24 (SMPL24).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SMPL24 = ("pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
          "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
          "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
          "left_hand", "right_hand")
EVAL_NAMES = ("pelvis", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "neck",
              "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist")
EVAL_JOINTS = np.array([SMPL24.index(n) for n in EVAL_NAMES])
PELVIS = 0            # in both SMPL24 and EVAL_NAMES order
FEET = (SMPL24.index("left_foot"), SMPL24.index("right_foot"))
ANKLES = (SMPL24.index("left_ankle"), SMPL24.index("right_ankle"))

# MediaPipe Pose landmark indices (33) for EVAL_NAMES: pairs are averaged.
MEDIAPIPE_FOR_EVAL = ((23, 24), (23,), (24,), (25,), (26,), (27,), (28,), (11, 12), (7, 8), (11,), (12,),
                      (13,), (14,), (15,), (16,))


def _check(pred: np.ndarray, truth: np.ndarray) -> None:
    if pred.shape != truth.shape or pred.ndim != 3 or pred.shape[-1] != 3:
        raise ValueError(f"joint arrays must both be (T, J, 3); got {pred.shape} and {truth.shape}")


def yaw_alignment(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The 3x3 rotation about +Z that best maps `pred` points onto `truth`
    (least squares over every frame and joint: one angle for the clip)."""
    p, q = pred.reshape(-1, 3), truth.reshape(-1, 3)
    ok = np.isfinite(p).all(1) & np.isfinite(q).all(1)
    p, q = p[ok], q[ok]
    angle = np.arctan2(np.sum(p[:, 0] * q[:, 1] - p[:, 1] * q[:, 0]), np.sum(p[:, 0] * q[:, 0] + p[:, 1] * q[:, 1]))
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def mpjpe(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean per-joint error (mm), pelvis-aligned: both made pelvis-relative in
    every frame (joint 0), then `pred` turned by one rotation about the vertical
    for the whole clip (a video does not know which way the world faces)."""
    _check(pred, truth)
    p = pred - pred[:, :1]
    q = truth - truth[:, :1]
    p = p @ yaw_alignment(p, q).T
    return float(np.nanmean(np.linalg.norm(p - q, axis=-1)) * 1000.0)


def similarity_align(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """`pred` (J, 3) after the similarity transform (scale, rotation, translation;
    no reflection) that best fits it to `truth` (Umeyama 1991)."""
    mu_p, mu_q = pred.mean(0), truth.mean(0)
    p, q = pred - mu_p, truth - mu_q
    u, s, vt = np.linalg.svd(p.T @ q)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0            # no mirror image
    fix = np.diag([1.0, 1.0, d])
    rotation = (u @ fix @ vt).T
    scale = float(np.sum(s * np.diag(fix)) / max(np.sum(p * p), 1e-12))
    return scale * p @ rotation.T + mu_q


def pa_mpjpe(pred: np.ndarray, truth: np.ndarray) -> float:
    """Procrustes-aligned mean per-joint error (mm): each frame aligned alone
    (scale, rotation, translation); frames with a missing joint are skipped."""
    _check(pred, truth)
    errors = [np.linalg.norm(similarity_align(p, q) - q, axis=-1).mean()
              for p, q in zip(pred, truth) if np.isfinite(p).all() and np.isfinite(q).all()]
    if not errors:
        raise ValueError("no frame has every joint in both arrays")
    return float(np.mean(errors) * 1000.0)


def foot_skate(feet: np.ndarray, contacts: np.ndarray) -> float:
    """Mean horizontal speed (mm/frame) of each foot over the frames it is in
    contact in both the frame and the next. `feet` (T, 2, 3) left/right foot
    positions, `contacts` (T, 2) bool. NaN when no foot is ever in contact."""
    feet = np.asarray(feet, np.float64)
    contacts = np.asarray(contacts, bool)
    if feet.shape[:2] != contacts.shape or feet.shape[1] != 2:
        raise ValueError(f"feet must be (T, 2, 3) and contacts (T, 2); got {feet.shape} and {contacts.shape}")
    speed = np.linalg.norm(np.diff(feet[..., :2], axis=0), axis=-1)           # (T-1, 2)
    held = contacts[1:] & contacts[:-1]
    return float(speed[held].mean() * 1000.0) if held.any() else float("nan")


def detect_contacts(feet: np.ndarray, height_m: float = 0.08, speed_m: float = 0.01) -> np.ndarray:
    """(T, 2) contacts for motions that carry none: a foot within `height_m` of
    the clip's lowest foot height and moving less than `speed_m` per frame."""
    feet = np.asarray(feet, np.float64)
    floor = np.nanmin(feet[..., 2])
    speed = np.linalg.norm(np.diff(feet, axis=0), axis=-1)
    speed = np.concatenate([speed[:1], speed], axis=0)
    return (feet[..., 2] - floor < height_m) & (speed < speed_m)


def mean_acceleration(joints: np.ndarray) -> float:
    """Mean magnitude of the joints' second difference (mm/frame^2)."""
    joints = np.asarray(joints, np.float64)
    if len(joints) < 3:
        raise ValueError("acceleration needs at least 3 frames")
    acc = joints[2:] - 2 * joints[1:-1] + joints[:-2]
    return float(np.nanmean(np.linalg.norm(acc, axis=-1)) * 1000.0)


def jitter_ratio(pred: np.ndarray, truth: np.ndarray) -> float:
    """The prediction's mean joint acceleration over the truth's (1 = as smooth
    as the real motion; a jittery estimate is well above 1), pelvis-relative
    so a drifting root is not counted as jitter."""
    _check(pred, truth)
    return mean_acceleration(pred - pred[:, :1]) / max(mean_acceleration(truth - truth[:, :1]), 1e-9)


def mediapipe_to_eval(world_landmarks: np.ndarray) -> np.ndarray:
    """MediaPipe Pose world landmarks (T, 33, 3; x right, y down, z away from
    the camera, metres) -> (T, 15, 3) EVAL_NAMES joints in a Z-up frame
    (x, z, -y): yaw and translation stay unknown, as for any video estimate."""
    lm = np.asarray(world_landmarks, np.float64)
    joints = np.stack([lm[:, list(idx)].mean(axis=1) for idx in MEDIAPIPE_FOR_EVAL], axis=1)
    return np.stack([joints[..., 0], joints[..., 2], -joints[..., 1]], axis=-1)


@dataclass
class ClipScores:
    """One clip's figures (mm, mm/frame, ratio)."""
    mpjpe: float
    pa_mpjpe: float
    skate: float = float("nan")
    jitter: float = float("nan")


def score_clip(pred: np.ndarray, truth: np.ndarray) -> ClipScores:
    """MPJPE, PA-MPJPE and jitter on EVAL_JOINTS of (T, 24, 3) predictions and truth."""
    p, q = pred[:, EVAL_JOINTS], truth[:, EVAL_JOINTS]
    return ClipScores(mpjpe(p, q), pa_mpjpe(p, q), jitter=jitter_ratio(p, q))
