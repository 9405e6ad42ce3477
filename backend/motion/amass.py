"""AMASS-style .npz motion files (SMPL, SMPL-H and SMPL-X parameter sequences).

Keys read: `poses` (T, 72 | 156 | 165) axis-angle (or `root_orient` (T, 3) +
`pose_body` (T, 63) [+ `pose_hand` (T, 90)]), `trans` (T, 3), the frame rate
`mocap_framerate` or `mocap_frame_rate`, and `betas`/`gender` (recorded only:
motion runs on the reference skeleton).

Pose layouts (joints, 3 values each):
- SMPL    (72):  the 24 SMPL joints.
- SMPL-H  (156): 22 body joints, 15 left-hand joints, 15 right-hand joints.
- SMPL-X  (165): 22 body joints, jaw, left eye, right eye, 15 + 15 hand joints.
SMPL's own hand joints (left_hand/right_hand, 22 and 23) take the rotation of
the middle finger's first joint from SMPL-H/X (SMPL-H hands list index,
middle, pinky, ring, thumb, three joints each): it is the central finger, so
its curl stands for the hand's.

Frames: AMASS stores SMPL parameters in a Z-up world: SMPL's body model is
Y-up, and each frame's root orientation already contains the rotation that
stands the body up in the Z-up world, so the world needs no conversion; our
pelvis local rotation is that world rotation expressed against SMPL's rest frame
(REST_ROTATION = the Y-up -> Z-up rotation of axes.py): local = R0ᵀ·root_orient.
SMPL rotates the body about the pelvis joint and adds `trans` afterwards, so the
pelvis sits at trans + J_pelvis with J_pelvis the (un-rotated) model-space pelvis
of the rest body, here the reference skeleton's. The clip is then grounded
(to_smpl.grounded) as the subject's shape differs from the reference's.
"""
from __future__ import annotations

import io
import math
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from avatarforge.protocol import ErrorCode, ProtocolError
from avatarforge.protocol.artifacts import FPS_RANGE, MAX_MOTION_FRAMES

from ..core import rotations as rot
from ..core.limits import MOTION_NPZ_MAX_BYTES
from .skeleton import REST_ROTATION, model_space_pelvis
from .to_smpl import grounded

LAYOUTS = {72: "smpl", 156: "smplh", 165: "smplx"}
_MIDDLE1 = 3          # index of middle1 within a 15-joint SMPL-H/X hand
_NPY_HEADER_BYTES = 65536     # a member's .npy header: above numpy's own cap, so never what refuses a file
# The keys read (module docstring); other members (dmpls, marker data...) are never inflated.
KEYS = ("poses", "root_orient", "pose_body", "pose_hand", "trans", "mocap_framerate", "mocap_frame_rate", "fps",
        "betas", "gender")
_NOT_NPZ = "not an .npz file (an npz archive is numpy's zip of .npy arrays)"


def _bad(field: str, message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_REQUEST, f"{field}: {message}", field=field)


@dataclass
class AmassImport:
    rotations: np.ndarray      # (T, 24, 3)
    trans: np.ndarray          # (T, 3) pelvis positions, Z up, grounded
    fps: float
    info: dict[str, Any]


def _load(data: bytes) -> dict[str, np.ndarray | None]:
    """The arrays of the keys we read, each checked against its headers before it is inflated."""
    if not data.startswith(b"PK"):
        raise _bad("data", _NOT_NPZ)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            arrays: dict[str, np.ndarray | None] = {}
            budget = MOTION_NPZ_MAX_BYTES
            for info in archive.infolist():
                key = info.filename[:-4]
                if info.filename.endswith(".npy") and key in KEYS:
                    arrays[key] = _member_array(archive, info, budget)
                    budget -= 0 if arrays[key] is None else arrays[key].nbytes
            return arrays
    except zipfile.BadZipFile as exc:
        raise _bad("data", f"{_NOT_NPZ}: not a valid zip archive ({exc})") from None
    except (OSError, ValueError, EOFError, zlib.error) as exc:
        raise _bad("data", f"cannot read the .npz file: {exc}") from None


def _member_array(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> np.ndarray | None:
    """One .npy member holding at most `budget` bytes, or None for an object
    array (pickles are never loaded: unsafe). Sizes come from the zip and .npy
    headers, so a decompression bomb is refused before any of it is inflated."""
    key = info.filename[:-4]
    if info.file_size > budget + _NPY_HEADER_BYTES:
        raise _too_large(key, f"inflates to {info.file_size:,} bytes")
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0           # 2.0 and 3.0 share one layout
        shape, _, dtype = read_header(member)
    if dtype.hasobject:
        return None
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > budget:
        raise _too_large(key, f"has shape {shape} of {dtype}: {nbytes:,} bytes")
    with archive.open(info) as member:
        return np.lib.format.read_array(member, allow_pickle=False)


def _too_large(key: str, what: str) -> ProtocolError:
    return _bad(f"data.{key}", f"{what}; the arrays of a motion file may hold at most "
                f"{MOTION_NPZ_MAX_BYTES:,} bytes in all")


Size = int | tuple[int, ...] | None      # one size, one of several, or any (the frame count T)
_POSES_SHAPE: tuple[Size, ...] = (None, tuple(LAYOUTS))


def _float_array(d: dict[str, Any], key: str, shape: tuple[Size, ...]) -> np.ndarray:
    arr = d.get(key)
    if arr is None:
        raise _bad(f"data.{key}", "is missing or not a numeric array")
    if arr.dtype.kind not in "fiu":
        raise _bad(f"data.{key}", f"must be numbers, got dtype {arr.dtype}")
    if arr.ndim != len(shape) or not all(_fits(s, a) for s, a in zip(shape, arr.shape)):
        raise _bad(f"data.{key}", f"must have shape {_shape_text(shape)}, got {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise _bad(f"data.{key}", "contains NaN or infinite values")
    return arr


def _fits(want: Size, size: int) -> bool:
    return want is None or size == want or isinstance(want, tuple) and size in want


def _shape_text(shape: tuple[Size, ...]) -> str:
    """E.g. "(T, 72|156|165)"."""
    return "(" + ", ".join("T" if s is None else "|".join(map(str, s)) if isinstance(s, tuple) else str(s)
                           for s in shape) + ")"


def _fps(d: dict[str, Any]) -> float:
    for key in ("mocap_framerate", "mocap_frame_rate", "fps"):
        if d.get(key) is not None:
            v = np.asarray(d[key])
            if v.size != 1 or v.dtype.kind not in "fiu" or not FPS_RANGE[0] <= float(v.reshape(-1)[0]) <= FPS_RANGE[1]:
                raise _bad(f"data.{key}", f"must be a frame rate in [{FPS_RANGE[0]:g}, {FPS_RANGE[1]:g}], got {v!r}")
            return float(v.reshape(-1)[0])
    raise _bad("data.mocap_framerate", "is missing: AMASS files carry mocap_framerate (or mocap_frame_rate)")


def _poses(d: dict[str, Any]) -> tuple[np.ndarray, str]:
    """(T, J*3) poses and the layout name."""
    if d.get("poses") is not None:
        poses = _float_array(d, "poses", _POSES_SHAPE)
        return poses, LAYOUTS[poses.shape[1]]
    if d.get("root_orient") is not None and d.get("pose_body") is not None:
        root = _float_array(d, "root_orient", (None, 3))
        body = _float_array(d, "pose_body", (len(root), 63))
        hands = _float_array(d, "pose_hand", (len(root), 90)) if d.get("pose_hand") is not None else \
            np.zeros((len(root), 90))
        return np.concatenate([root, body, hands], axis=1), "smplh"
    raise _bad("data.poses", f"is missing: give poses {_shape_text(_POSES_SHAPE)}, or root_orient and pose_body")


def smpl24_from_layout(poses: np.ndarray, layout: str) -> np.ndarray:
    """(T, 24, 3) SMPL-24 axis-angle from a (T, 72|156|165) pose array."""
    joints = poses.reshape(len(poses), -1, 3)
    if layout == "smpl":
        return joints.copy()
    out = np.zeros((len(poses), 24, 3))
    out[:, :22] = joints[:, :22]
    hands = 22 if layout == "smplh" else 25          # SMPL-X: jaw and eyes come first
    out[:, 22] = joints[:, hands + _MIDDLE1]
    out[:, 23] = joints[:, hands + 15 + _MIDDLE1]
    return out


def amass_to_smpl(data: bytes) -> AmassImport:
    d = _load(data)
    poses, layout = _poses(d)
    n = len(poses)
    if not 1 <= n <= MAX_MOTION_FRAMES:
        raise _bad("data.poses", f"must have 1..{MAX_MOTION_FRAMES} frames, got {n}")
    trans = _float_array(d, "trans", (n, 3))
    fps = _fps(d)
    body = smpl24_from_layout(poses, layout)
    # Root: AMASS world rotation of the pelvis -> our local (relative to SMPL's rest frame R0).
    root_world = rot.axis_angle_to_matrix(body[:, 0])
    body[:, 0] = rot.matrix_to_axis_angle(REST_ROTATION.T @ root_world)
    # Model-space coordinates are AMASS's world coordinates: the offset adds as is.
    pelvis = trans + model_space_pelvis()
    if np.abs(pelvis).max() > 1e4:
        raise _bad("data.trans", "root positions are over 10 km from the origin; trans must be in metres")
    rotations = body.astype(np.float32)
    info = {"format": "npz", "layout": layout, "frames": n, "source_fps": fps,
            "gender": _gender(d.get("gender")), "betas": _betas(d.get("betas"))}
    return AmassImport(rotations, grounded(rotations, pelvis.astype(np.float32)), fps, info)


def _gender(value: Any) -> str | None:
    if value is None:
        return None
    v = np.asarray(value)
    if v.dtype.kind in "SU" and v.size == 1:
        g = v.reshape(-1)[0]
        g = g.decode("utf-8", "replace") if isinstance(g, bytes) else str(g)
        return g[:16]
    return None


def _betas(value: Any) -> list[float] | None:
    if value is None:
        return None
    v = np.asarray(value)
    if v.dtype.kind not in "fiu" or v.size > 512:
        return None
    return [round(float(b), 5) for b in v.reshape(-1)[:16]]
