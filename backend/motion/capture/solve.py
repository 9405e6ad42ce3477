"""Solve an SMPL-24 motion from MediaPipe Pose landmarks over a whole clip (issue 10).

Not frame by frame: every output frame's pose and root position are variables of
one objective per chunk of the clip (chunks overlap and are cross-faded):

- 2D: robust (Geman-McClure), visibility-weighted reprojection of the 33
  landmarks (landmark_map: joints plus fixed offsets) through the pinhole camera;
- 3D: MediaPipe's metric world landmarks, root-relative (hip-centred, camera
  axes), robust, visibility-weighted; with the 2D term this fixes depth: the root
  trajectory in metres follows from the person's image size and the focal length;
- bone lengths constant (the actor's skeleton, bones.py, or the target's);
- joint limits (motion/joint_limits.py) and priors on the poorly seen degrees of
  freedom (twists, collars, spine split, wrists);
- smoothness: a Charbonnier (L1-like) penalty on joint accelerations, so noise
  is flattened (a held pose does not tremble) while a real acceleration costs
  only linearly (a fast move is not rounded off as a quadratic penalty would);
- contacts (second pass): feet found planted on the first pass (contacts.py) are
  held at one spot on the fitted ground plane (ground.py).

Steps: a closed-form pose per frame from the world landmarks (initial.py) and the
root position per frame by linear least squares of the reprojection (optionally
each frame refined on its own by L-BFGS); these smoothed by L1 trend filtering
(smoothing.py); then the whole chunk by Levenberg-Marquardt:
Gauss-Newton with the robust terms reweighted (IRLS), per-frame Jacobians by
batched forward differences, and the block-banded normal equations (each frame
couples with two neighbours through the accelerations) solved by block Cholesky
in time linear in the frames. (L-BFGS on the whole chunk, the fallback setting,
needs hundreds of iterations to smooth: the acceleration coupling is
ill-conditioned.) Frames without observations (gaps) have no data terms; the
smoothness prior fills them.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ...core import rotations as R
from ...core.capture import LandmarkTrack, PinholeCamera
from ...core.threads import single_threaded_torch
from ..skeleton import J, NUM_JOINTS, REST_ROTATION, forward_kinematics, height_above_soles, reference_offsets
from ..joint_limits import joint_limits
from . import bones, observations
from .initial import initial_rotations
from .smoothing import trend_filter
from .contacts import SOLE_LANDMARKS, Contacts, detect_contacts
from .ground import WORK_TO_CAMERA, WorldFrame, world_frame
from .landmark_map import LANDMARK_MAP, L

CHUNK_SECONDS = 10.0
OVERLAP_SECONDS = 1.0

# Free rotation degrees of freedom: (joints sharing one rotation, components). A
# shared rotation is split evenly along its chain (spine1-3; neck and head): the
# landmarks see only the chain's ends. Hands are fixed; toes bend about x only.
_DOFS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("pelvis",), "xyz"),
    (("left_hip",), "xyz"), (("right_hip",), "xyz"),
    (("left_knee",), "xyz"), (("right_knee",), "xyz"),
    (("left_ankle",), "xyz"), (("right_ankle",), "xyz"),
    (("left_foot",), "x"), (("right_foot",), "x"),
    (("spine1", "spine2", "spine3"), "xyz"),
    (("neck", "head"), "xyz"),
    (("left_collar",), "xyz"), (("right_collar",), "xyz"),
    (("left_shoulder",), "xyz"), (("right_shoulder",), "xyz"),
    (("left_elbow",), "xyz"), (("right_elbow",), "xyz"),
    (("left_wrist",), "xyz"), (("right_wrist",), "xyz"),
)
# Prior widths (radians) on rotation components the landmarks barely see; others free.
_PRIOR_SIGMA: dict[str, tuple[float, float, float]] = {
    "knee": (10.0, 0.08, 0.08),        # bends about x only
    "elbow": (0.6, 10.0, 0.15),        # bends about y; x is forearm twist
    "ankle": (0.5, 0.25, 0.25),
    "foot": (0.3, 1.0, 1.0),
    "collar": (0.12, 0.12, 0.12),
    "wrist": (0.6, 0.6, 0.6),
    "hip": (10.0, 0.8, 10.0),          # thigh twist
    "shoulder": (0.8, 10.0, 10.0),     # upper-arm twist
}
# Relative weight of each landmark in the data terms: the 11 face points and the
# hand points together should not outweigh a limb.
_LANDMARK_WEIGHT = np.ones(len(LANDMARK_MAP.joint))
for _name in ("left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
              "mouth_left", "mouth_right"):
    _LANDMARK_WEIGHT[L[_name]] = 0.15
for _name in ("nose", "left_ear", "right_ear"):
    _LANDMARK_WEIGHT[L[_name]] = 0.4
for _name in ("left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb"):
    _LANDMARK_WEIGHT[L[_name]] = 0.4


@dataclass(frozen=True)
class SolverSettings:
    """Weights and scales of the objective (all data residuals in metres at the person)."""
    sigma_2d: float = 0.03            # Geman-McClure scale of the reprojection residual (m at the person)
    sigma_3d: float = 0.08            # ... of the world-landmark residual (m)
    weight_2d: float = 1.0
    weight_3d: float = 0.5
    weight_smooth: float = 4e-3       # per joint, per (m/s²) of acceleration (Charbonnier)
    distal_smoothing: float = 1.0     # factor on the elbows', wrists' and hands' smoothness
    smooth_eps: float = 0.3           # m/s²: below this the smoothness penalty is quadratic
    weight_rot_smooth: float = 2e-6   # on rotation-parameter accelerations (rad/s²)², unseen twists
    weight_limits: float = 10.0
    weight_prior: float = 0.01
    weight_contact: float = 40.0      # per sole point, per (m / sigma_contact)²
    weight_floor: float = 40.0        # per sole point below the ground, per (m / sigma_contact)²
    sigma_contact: float = 0.01
    trend_rotation: float = 0.15      # L1 trend filter of the per-frame fits (rad per frame²), smoothing.py
    trend_translation: float = 0.06   # ... of the root positions (m per frame²)
    final_trend: bool = False         # trend-filter the first pass again before contacts (L-BFGS runs needed it)
    gauss_newton: bool = True         # whole-chunk passes by Levenberg-Marquardt (else L-BFGS)
    frame_iterations: int = 0         # per-frame L-BFGS refinement before the trend filter (off: LM does better)
    iterations: int = 5               # Levenberg-Marquardt steps per chunk, first pass
    contact_iterations: int = 5       # ... second pass (contacts held)


@dataclass
class CaptureSolution:
    """A motion solved from a clip (see solve_capture)."""
    rotations: np.ndarray          # (N, 24, 3) float32 SMPL local axis-angle
    trans: np.ndarray              # (N, 3) float32 pelvis, in the reference skeleton's scale (world, Z up)
    actor_trans: np.ndarray        # (N, 3) float32 pelvis in metres of the actor (world, Z up)
    rest_positions: np.ndarray     # (24, 3) the skeleton solved on (Z up, soles on z = 0)
    scale: float                   # actor / reference (leg length)
    contacts: np.ndarray           # (N, 2) bool (left, right)
    world_to_camera: np.ndarray    # (4, 4) OpenCV camera pose in the solved world
    times: np.ndarray              # (N,) seconds
    fps: float
    gaps: list[tuple[int, int]]    # output-frame ranges (inclusive) with no observation, filled
    info: dict[str, Any] = field(default_factory=dict)


def _no_progress(fraction: float, stage: str) -> None:
    return None


# ---------------------------------------------------------------------------------------------
# Parameterisation

def _dof_matrix() -> np.ndarray:
    """(D, 72): free parameters -> flattened local rotations (24 x 3)."""
    rows = []
    for joints, comps in _DOFS:
        for c in comps:
            row = np.zeros(NUM_JOINTS * 3)
            for j in joints:
                row[J[j] * 3 + "xyz".index(c)] = 1.0 / len(joints)
            rows.append(row)
    return np.asarray(rows)


DOF_MATRIX = _dof_matrix()


def _params_from_rotations(rot: np.ndarray) -> np.ndarray:
    """(T, D) least-squares parameters for local rotations (T, 24, 3)."""
    return rot.reshape(len(rot), -1) @ np.linalg.pinv(DOF_MATRIX)


def _smooth_weights(settings: SolverSettings) -> np.ndarray:
    """(24,) smoothness factor per joint: hands and forearms move fastest (a punch, a
    throw), so their accelerations are penalised less than the trunk's."""
    w = np.ones(NUM_JOINTS)
    for name in ("left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand"):
        w[J[name]] = settings.distal_smoothing
    return w


def _prior_weights() -> np.ndarray:
    w = np.zeros((NUM_JOINTS, 3))
    for name, j in J.items():
        part = name.split("_", 1)[-1]
        if part in _PRIOR_SIGMA and name.startswith(("left_", "right_")):
            w[j] = 1.0 / np.square(_PRIOR_SIGMA[part])
    return w


@dataclass
class _Problem:
    """Tensors shared by every chunk: skeleton, camera, limits, weights."""
    rest: np.ndarray
    rest_rot: Any                  # torch (3, 3) skeleton.REST_ROTATION
    offsets_local: Any             # torch (24, 3) each joint's rest offset from its parent, in the parent's frame
    offsets: Any                   # torch (33, 3) landmark offsets in their joints' frames
    focal: float
    cx: float
    cy: float
    fps: float
    lo: Any
    hi: Any
    limit_mask: Any
    prior_w: Any
    dof: Any
    landmark_w: Any
    smooth_w: Any                  # torch (24,) per-joint factor on the smoothness term
    settings: SolverSettings


def _problem(skeleton: bones.ActorSkeleton, camera: PinholeCamera, fps: float, settings: SolverSettings) -> _Problem:
    import torch

    lo, hi = joint_limits()
    mask = np.ones((NUM_JOINTS, 3))
    mask[J["pelvis"]] = 0.0          # the root's orientation is free
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64)   # noqa: E731
    offsets_local = reference_offsets(skeleton.rest) @ REST_ROTATION
    return _Problem(skeleton.rest, t(REST_ROTATION), t(offsets_local), t(skeleton.landmark_offset), float(camera.focal_px), float(camera.cx),
                    float(camera.cy), fps, t(lo), t(hi), t(mask), t(_prior_weights()), t(DOF_MATRIX),
                    t(_LANDMARK_WEIGHT), t(_smooth_weights(settings)), settings)


def _forward_kinematics(prob: "_Problem", rot: Any, trans: Any) -> tuple[Any, Any]:
    """Joints (T,24,3) and joint frames (T,24,3,3) on the actor's skeleton."""
    return forward_kinematics(rot, trans, prob.rest, return_frames=True)


def _pose(prob: _Problem, params: Any, trans: Any) -> tuple[Any, Any, Any]:
    """Local rotations (T,24,3), joints (T,24,3) and landmark points (T,33,3) in the working frame."""
    rot = (params @ prob.dof).reshape(params.shape[0], NUM_JOINTS, 3)
    joints, frames = _forward_kinematics(prob, rot, trans)
    idx = LANDMARK_MAP.joint
    points = joints[:, idx] + (frames[:, idx] @ prob.offsets.unsqueeze(-1)).squeeze(-1)
    return rot, joints, points


def _geman_mcclure(sq: Any, sigma: float) -> Any:
    s2 = sigma * sigma
    return sq / (sq + s2)


# ---------------------------------------------------------------------------------------------
# Chunk objective

@dataclass
class _ChunkData:
    """Observations of one chunk as tensors (T frames)."""
    image: Any            # (T,33,2)
    w2d: Any              # (T,33)
    world: Any            # (T,33,3) camera axes, scaled onto the skeleton
    w3d: Any              # (T,33)
    depth: Any            # (T,) metres, for pixel -> metre residuals
    anchor: Any = None    # (T,4,3) working frame
    anchor_w: Any = None  # (T,4)
    floor: Any = None     # (normal (3,), point (3,)) of the ground, working frame: soles stay above it


def _energy(prob: _Problem, data: _ChunkData, params: Any, trans: Any, use_data3d: bool = True,
            use_2d: bool = True, smooth: bool = True) -> tuple[Any, dict[str, float]]:
    import torch

    s = prob.settings
    n = params.shape[0]
    rot, joints, points = _pose(prob, params, trans)
    cam_r = torch.as_tensor(WORK_TO_CAMERA, dtype=params.dtype)
    terms: dict[str, Any] = {}
    if use_2d:
        pc = points @ cam_r.T
        z = pc[..., 2].clamp(min=0.1)
        proj = torch.stack([prob.focal * pc[..., 0] / z + prob.cx, prob.focal * pc[..., 1] / z + prob.cy], -1)
        res = (proj - data.image) * (data.depth / prob.focal)[:, None, None]
        terms["2d"] = s.weight_2d * (_geman_mcclure((res ** 2).sum(-1), s.sigma_2d) * data.w2d).sum()
    if use_data3d:
        hips = 0.5 * (points[:, L["left_hip"]] + points[:, L["right_hip"]])
        rel = (points - hips[:, None]) @ cam_r.T
        sq = ((rel - data.world) ** 2).sum(-1)
        terms["3d"] = s.weight_3d * (_geman_mcclure(sq, s.sigma_3d) * data.w3d).sum()
    if smooth and n >= 3:
        acc = (joints[2:] - 2 * joints[1:-1] + joints[:-2]) * prob.fps ** 2
        mag = torch.sqrt((acc ** 2).sum(-1) + s.smooth_eps ** 2) - s.smooth_eps
        terms["smooth"] = s.weight_smooth * (mag * prob.smooth_w).sum()
        racc = (params[2:] - 2 * params[1:-1] + params[:-2]) * prob.fps ** 2
        terms["rot_smooth"] = s.weight_rot_smooth * (racc ** 2).sum()
    over = torch.relu(rot - prob.hi) + torch.relu(prob.lo - rot)
    terms["limits"] = s.weight_limits * ((over ** 2) * prob.limit_mask).sum()
    terms["prior"] = s.weight_prior * ((rot ** 2) * prob.prior_w).sum()
    if data.anchor is not None:
        sole = points[:, [L[n] for pair in SOLE_LANDMARKS for n in pair]]
        sq = ((sole - data.anchor) ** 2).sum(-1) / s.sigma_contact ** 2
        terms["contact"] = s.weight_contact * (sq * data.anchor_w).sum()
    if data.floor is not None:
        sole = points[:, [L[n] for pair in SOLE_LANDMARKS for n in pair]]
        below = torch.relu(-((sole - data.floor[1]) @ data.floor[0])) / s.sigma_contact
        terms["floor"] = s.weight_floor * (below ** 2).sum()
    total = sum(terms.values())
    return total, {k: float(v.detach()) for k, v in terms.items()}


def _lbfgs(params: list[Any], closure: Callable[[], Any], iterations: int,
           tick: Callable[[int], None]) -> int:
    """Run L-BFGS for `iterations` (in groups of 10, calling tick between them); returns evaluations."""
    import torch

    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=10, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-9, tolerance_change=1e-12)
    done, best = 0, math.inf
    while done < iterations:
        loss = float(opt.step(closure).detach())
        done += 10
        tick(done)
        if math.isfinite(best) and not loss < best - 1e-9 * abs(best):   # a group without progress: converged
            break
        best = loss
    return int(opt.state[opt._params[0]].get("func_evals", 0))


# ---------------------------------------------------------------------------------------------
# Gauss-Newton (Levenberg-Marquardt) over a whole chunk

_VARS = DOF_MATRIX.shape[0] + 3          # per frame: free rotation parameters, then the root position


def _frame_rows(prob: _Problem, data: _ChunkData, x: Any, rep: int) -> Any:
    """Per-frame residual rows (F, K) for variables x (F, V) where every frame's data is
    repeated `rep` times in a row: 2D residuals (m at the person, 66), root-relative 3D
    residuals (99), joints (72), sole points (12)."""
    import torch

    params, trans = x[:, :-3], x[:, -3:]
    _, joints, points = _pose(prob, params, trans)
    cam_r = torch.as_tensor(WORK_TO_CAMERA, dtype=x.dtype)
    pc = points @ cam_r.T
    z = pc[..., 2].clamp(min=0.1)
    proj = torch.stack([prob.focal * pc[..., 0] / z + prob.cx, prob.focal * pc[..., 1] / z + prob.cy], -1)
    image = data.image.repeat_interleave(rep, 0)
    depth = data.depth.repeat_interleave(rep, 0)
    res2 = (proj - image) * (depth / prob.focal)[:, None, None]
    hips = 0.5 * (points[:, L["left_hip"]] + points[:, L["right_hip"]])
    res3 = (points - hips[:, None]) @ cam_r.T - data.world.repeat_interleave(rep, 0)
    sole = points[:, [L[n] for pair in SOLE_LANDMARKS for n in pair]]
    return torch.cat([res2.reshape(len(x), -1), res3.reshape(len(x), -1), joints.reshape(len(x), -1),
                      sole.reshape(len(x), -1)], 1)


def _jtwj(ja: np.ndarray, w: np.ndarray, jb: np.ndarray) -> np.ndarray:
    """Batched Jaᵀ diag(w) Jb: (T, K, V), (T, K), (T, K, V) -> (T, V, V) (torch bmm, one thread)."""
    import torch

    a = torch.as_tensor(np.ascontiguousarray(ja * w[..., None]))
    return torch.bmm(a.transpose(1, 2), torch.as_tensor(np.ascontiguousarray(jb))).numpy()


def _jtwr(ja: np.ndarray, w: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Batched Jaᵀ diag(w) r -> (T, V)."""
    import torch

    a = torch.as_tensor(np.ascontiguousarray(ja))
    return torch.bmm(a.transpose(1, 2), torch.as_tensor(np.ascontiguousarray((w * r)[..., None])))[..., 0].numpy()


def _rows_and_jacobian(prob: _Problem, data: _ChunkData, x: Any, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Rows (T, K) and their Jacobian (T, K, V) by forward differences: `batch` frames
    with all their perturbations per batched evaluation (each frame's rows depend on its
    own variables only; batches bound the memory of a long chunk)."""
    import torch

    n, v = x.shape
    h = 1e-6
    bases, jacs = [], []
    for s in range(0, n, batch):
        e = min(s + batch, n)
        xs = x[s:e].unsqueeze(1).repeat(1, v + 1, 1)
        xs[:, 1:] += h * torch.eye(v, dtype=x.dtype)
        part = _ChunkData(data.image[s:e], None, data.world[s:e], None, data.depth[s:e])
        with torch.no_grad():
            rows = _frame_rows(prob, part, xs.reshape((e - s) * (v + 1), v), v + 1).reshape(e - s, v + 1, -1)
        bases.append(rows[:, 0])
        jacs.append(((rows[:, 1:] - rows[:, :1]) / h).transpose(1, 2))
    return torch.cat(bases).numpy(), torch.cat(jacs).numpy()


def _gauss_newton_step(prob: _Problem, data: _ChunkData, x: np.ndarray, mu: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The normal equations' blocks of the IRLS model at x: (H blocks, g) pieces; returns
    the step for damping mu."""
    import torch

    s = prob.settings
    n, v = x.shape
    d = DOF_MATRIX.shape[0]
    rows, jac = _rows_and_jacobian(prob, data, torch.as_tensor(x))
    h0 = np.zeros((n, v, v))
    g = np.zeros((n, v))
    lw2 = data.w2d.numpy()
    lw3 = data.w3d.numpy()

    def add_robust(sl: slice, dim: int, lm_w: np.ndarray, weight: float, sigma: float) -> None:
        r = rows[:, sl].reshape(n, -1, dim)
        sq = (r ** 2).sum(-1)
        omega = weight * lm_w * sigma ** 2 / (sq + sigma ** 2) ** 2        # GM's IRLS weight
        om = np.repeat(omega, dim, axis=1)
        jj = jac[:, sl]
        h0[:] += _jtwj(jj, om, jj)
        g[:] += _jtwr(jj, om, rows[:, sl])

    add_robust(slice(0, 66), 2, lw2, s.weight_2d, s.sigma_2d)
    add_robust(slice(66, 165), 3, lw3, s.weight_3d, s.sigma_3d)
    if data.anchor is not None:
        r = rows[:, 237:249] - data.anchor.numpy().reshape(n, 12)
        om = np.repeat(data.anchor_w.numpy(), 3, axis=1) * s.weight_contact / s.sigma_contact ** 2
        jj = jac[:, 237:249]
        h0[:] += _jtwj(jj, om, jj)
        g[:] += _jtwr(jj, om, r)
    if data.floor is not None:
        # Heights of the sole points above the ground, penalised only below it (active set).
        normal, point = (np.asarray(v, np.float64) for v in data.floor)
        heights = (rows[:, 237:249].reshape(n, 4, 3) - point) @ normal
        jh = np.einsum("c,tkcv->tkv", normal, jac[:, 237:249].reshape(n, 4, 3, -1))
        om = (heights < 0) * s.weight_floor / s.sigma_contact ** 2
        h0[:] += _jtwj(jh, om, jh)
        g[:] += _jtwr(jh, om, heights)
    # Rotation terms (linear in the parameters): prior, limits.
    rot = x[:, :d] @ DOF_MATRIX
    lo, hi = prob.lo.numpy().reshape(-1), prob.hi.numpy().reshape(-1)
    mask = prob.limit_mask.numpy().reshape(-1)
    over = np.where(rot > hi, rot - hi, np.where(rot < lo, rot - lo, 0.0)) * mask
    active = (over != 0).astype(np.float64) * s.weight_limits
    prior = prob.prior_w.numpy().reshape(-1) * s.weight_prior
    om_rot = active + prior                                   # (T, 72)
    r_rot = active * over + prior * rot
    dof_t = np.broadcast_to(DOF_MATRIX.T, (n,) + DOF_MATRIX.T.shape)          # rot = params @ DOF
    h0[:, :d, :d] += _jtwj(dof_t, om_rot, dof_t)
    g[:, :d] += r_rot @ DOF_MATRIX.T
    # Smoothness: joint accelerations (Charbonnier) and rotation-parameter accelerations.
    blocks = {0: h0, 1: np.zeros((max(n - 1, 0), v, v)), 2: np.zeros((max(n - 2, 0), v, v))}
    if n >= 3:
        f2 = prob.fps ** 2
        jp = jac[:, 165:237]
        p = rows[:, 165:237]
        acc = (p[2:] - 2 * p[1:-1] + p[:-2]) * f2                   # (T-2, 72)
        mag2 = (acc.reshape(n - 2, 24, 3) ** 2).sum(-1)
        om = np.repeat(s.weight_smooth * prob.smooth_w.numpy() / (2.0 * np.sqrt(mag2 + s.smooth_eps ** 2)), 3, axis=1)
        coef = (1.0, -2.0, 1.0)
        eye = np.zeros((v, v))
        eye[:d, :d] = np.eye(d)
        racc = (x[2:, :d] - 2 * x[1:-1, :d] + x[:-2, :d]) * f2
        for a in range(3):
            g[a:n - 2 + a] += f2 * coef[a] * _jtwr(jp[a:n - 2 + a], om, acc)
            g[a:n - 2 + a, :d] += s.weight_rot_smooth * f2 * coef[a] * racc
            for b in range(a, 3):
                blk = f2 * f2 * coef[a] * coef[b] * _jtwj(jp[a:n - 2 + a], om, jp[b:n - 2 + b])
                blk += s.weight_rot_smooth * f2 * f2 * coef[a] * coef[b] * eye
                if a == b:
                    blocks[0][a:n - 2 + a] += blk
                else:
                    blocks[b - a][a:n - 2 + a] += blk
    # The normal matrix is block-banded (a frame couples with two neighbours each side).
    diag = np.einsum("tii->ti", h0).ravel().copy()
    idx = np.arange(v)
    h0[:, idx, idx] += mu * (np.einsum("tii->ti", h0) + 1e-3)
    step = _solve_block_pentadiagonal(blocks[0], blocks[1], blocks[2], -g)
    return step.reshape(n, v), g, diag


def _solve_block_pentadiagonal(b0: np.ndarray, b1: np.ndarray, b2: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve the symmetric positive-definite system whose (v x v) blocks are b0[t] at
    (t, t), b1[t] at (t, t+1), b2[t] at (t, t+2) (and their transposes below): frames
    paired into super-blocks make it block-tridiagonal, solved by block Cholesky
    (Thomas) in O(T) small dense factorisations (a general banded solver is far slower
    at this band width). Torch's LAPACK, inside the solver's one-thread section (numpy's
    BLAS threads would fight torch's on a small machine)."""
    import torch

    n, v = rhs.shape
    m = n + (n % 2)                                   # pad to whole pairs with an identity frame
    pairs = m // 2
    full0 = np.tile(np.eye(v), (m, 1, 1))
    full0[:n] = b0
    full1 = np.zeros((m, v, v))
    full1[:len(b1)] = b1
    full2 = np.zeros((m, v, v))
    full2[:len(b2)] = b2
    # Super-block s holds frames 2s, 2s+1: diagonal D_s, coupling E_s to super-block s+1.
    d = np.zeros((pairs, 2 * v, 2 * v))
    d[:, :v, :v], d[:, v:, v:] = full0[0::2], full0[1::2]
    d[:, :v, v:] = full1[0::2]
    d[:, v:, :v] = np.swapaxes(full1[0::2], 1, 2)
    e = np.zeros((pairs, 2 * v, 2 * v))
    e[:, :v, :v] = full2[0::2]                        # (2s, 2s+2)
    e[:, v:, :v] = full1[1::2]                        # (2s+1, 2s+2)
    e[:, v:, v:] = full2[1::2]                        # (2s+1, 2s+3)
    rp = np.zeros((m, v))
    rp[:n] = rhs
    dt, et, rt = torch.as_tensor(d), torch.as_tensor(e), torch.as_tensor(rp.reshape(pairs, 2 * v, 1))
    lower, sub, y = [], [], []
    prev = None
    for k in range(pairs):
        dk, rk = dt[k], rt[k]
        if prev is not None:
            dk = dk - prev @ prev.T
            rk = rk - prev @ y[-1]
        low = torch.linalg.cholesky(dk)
        lower.append(low)
        y.append(torch.linalg.solve_triangular(low, rk, upper=False))
        if k + 1 < pairs:
            prev = torch.linalg.solve_triangular(low, et[k], upper=False).T     # the factor's sub-diagonal block
            sub.append(prev)
    x: list[Any] = [None] * pairs
    for k in range(pairs - 1, -1, -1):
        r = y[k] if k + 1 == pairs else y[k] - sub[k].T @ x[k + 1]
        x[k] = torch.linalg.solve_triangular(lower[k].T, r, upper=True)
    return torch.cat(x).reshape(m, v)[:n].numpy()


def _levenberg_marquardt(prob: _Problem, data: _ChunkData, x0: np.ndarray, iterations: int,
                         tick: Callable[[int], None]) -> tuple[np.ndarray, int]:
    """Minimise _energy over a chunk by damped Gauss-Newton (IRLS for the robust terms);
    returns the variables (T, V) and the number of energy evaluations."""
    import torch

    def energy(x: np.ndarray) -> float:
        t = torch.as_tensor(x)
        with torch.no_grad():
            e, _ = _energy(prob, data, t[:, :-3], t[:, -3:])
        return float(e)

    x = x0.copy()
    e0 = energy(x)
    mu, evals = 1e-3, 1
    for it in range(iterations):
        step, _, _ = _gauss_newton_step(prob, data, x, mu)
        e1 = energy(x + step)
        evals += 1
        if e1 < e0:
            x, e0 = x + step, e1
            mu = max(mu / 3.0, 1e-6)
        else:
            mu *= 8.0
        tick(it + 1)
    return x, evals

# ---------------------------------------------------------------------------------------------
# Initialisation

def _continuous_rotvec(r: np.ndarray) -> np.ndarray:
    """Axis-angle (T, 3) with each frame's equivalent closest to the previous one (no 2π jumps)."""
    out = r.copy()
    if len(out) < 2 or np.linalg.norm(out, axis=-1).max() < 2.0:     # far from pi: no equivalent is closer
        return out
    for t in range(1, len(out)):
        a = np.linalg.norm(out[t])
        if a < 1e-9:
            continue
        axis = out[t] / a
        cands = [axis * (a + k * 2 * np.pi) for k in (-1, 0, 1)]
        out[t] = min(cands, key=lambda c: float(np.linalg.norm(c - out[t - 1])))
    return out


def _interpolate_gaps(values: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Fill unobserved frames of (T, ...) by linear interpolation (held at the ends)."""
    out = values.copy()
    idx = np.flatnonzero(observed)
    flat = out.reshape(len(out), -1)
    for c in range(flat.shape[1]):
        flat[:, c] = np.interp(np.arange(len(out)), idx, flat[idx, c])
    return flat.reshape(values.shape)


def _root_positions(points_rel_cam: np.ndarray, image: np.ndarray, weights: np.ndarray,
                    cam: PinholeCamera) -> np.ndarray:
    """(T, 3) camera-space translation of root-relative 3D points (T,33,3) that best
    reprojects them onto `image` (T,33,2): f (X + tx) - u (Z + tz) = 0 per axis is
    linear in t, so one small weighted least-squares solve per frame."""
    f = cam.focal_px
    u = image[..., 0] - cam.cx
    v = image[..., 1] - cam.cy
    x, y, z = points_rel_cam[..., 0], points_rel_cam[..., 1], points_rel_cam[..., 2]
    zeros = np.zeros_like(u)
    # rows: [f, 0, -u] t = u z - f x ; [0, f, -v] t = v z - f y
    a1 = np.stack([np.full_like(u, f), zeros, -u], -1)
    a2 = np.stack([zeros, np.full_like(v, f), -v], -1)
    a = np.concatenate([a1, a2], 1) * np.sqrt(np.concatenate([weights, weights], 1))[..., None]
    b = np.concatenate([u * z - f * x, v * z - f * y], 1) * np.sqrt(np.concatenate([weights, weights], 1))
    ata = np.einsum("tki,tkj->tij", a, a) + np.eye(3) * 1e-6
    atb = np.einsum("tki,tk->ti", a, b)
    return np.linalg.solve(ata, atb[..., None])[..., 0]


# ---------------------------------------------------------------------------------------------
# Chunks

def _chunks(n: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """[start, end) frame ranges of at most `size` frames overlapping by `overlap`."""
    if n <= size:
        return [(0, n)]
    step = max(size - overlap, 1)
    count = int(math.ceil((n - overlap) / step))
    # Spread the chunks evenly so the last is not a sliver.
    length = int(math.ceil((n + (count - 1) * overlap) / count))
    out, start = [], 0
    for k in range(count):
        end = n if k == count - 1 else min(start + length, n)
        out.append((start, end))
        start = end - overlap
    return out


def _blend(chunks: list[tuple[int, int]], results: list[tuple[np.ndarray, np.ndarray]],
           n: int) -> tuple[np.ndarray, np.ndarray]:
    """Cross-fade overlapping chunk results (rotations by slerp, translation linearly)."""
    rot = np.zeros((n, NUM_JOINTS, 3))
    trans = np.zeros((n, 3))
    filled = np.zeros(n, bool)
    for (s, e), (r, t) in zip(chunks, results):
        new = ~filled[s:e]
        over = np.flatnonzero(filled[s:e])
        rot[s:e][new], trans[s:e][new] = r[new], t[new]
        if len(over):
            w = (np.arange(len(over)) + 1.0) / (len(over) + 1.0)
            i = s + over
            rot[i] = R.slerp_axis_angle(rot[i], r[over], np.broadcast_to(w[:, None], (len(over), NUM_JOINTS)))
            trans[i] = trans[i] * (1 - w[:, None]) + t[over] * w[:, None]
        filled[s:e] = True
    return rot, trans


# ---------------------------------------------------------------------------------------------
# The solve

def solve_capture(track: LandmarkTrack, camera: PinholeCamera, *, fps: float | None = None,
                  rest_positions: np.ndarray | None = None,
                  progress: Callable[[float, str], None] = _no_progress,
                  chunk_seconds: float = CHUNK_SECONDS, overlap_seconds: float = OVERLAP_SECONDS,
                  settings: SolverSettings | None = None) -> CaptureSolution:
    """An SMPL-24 motion (local rotations + root translation, uniform at `fps`, the
    clip's average rate when None) solved from a landmark track over the whole clip.
    `rest_positions` (24,3) Z-up: the target's skeleton (bone lengths); else the
    actor's is estimated. `progress(fraction, stage)` is called often and may raise
    to cancel. Raises ProtocolError BAD_REQUEST for unusable input."""
    observations.check_inputs(track, camera, fps)
    if rest_positions is not None and np.shape(rest_positions) != (NUM_JOINTS, 3):
        raise observations.bad_request("rest_positions", f"expected shape (24, 3), got {np.shape(rest_positions)}")
    if not (chunk_seconds > 0 and 0 <= overlap_seconds < chunk_seconds):
        raise observations.bad_request("chunk_seconds", f"need chunk_seconds > overlap_seconds >= 0, got "
                                                 f"{chunk_seconds} and {overlap_seconds}")
    settings = settings or SolverSettings()
    with single_threaded_torch():
        return _solve(track, camera, fps, rest_positions, progress, chunk_seconds, overlap_seconds, settings)


def _solve(track: LandmarkTrack, camera: PinholeCamera, fps: float | None, rest_positions: np.ndarray | None,
           progress: Callable[[float, str], None], chunk_seconds: float, overlap_seconds: float,
           settings: SolverSettings) -> CaptureSolution:
    import torch

    started = time.perf_counter()
    fps = float(fps) if fps is not None else observations.clip_fps(track)
    obs = observations.resample(track, observations.output_times(track, fps))
    n = obs.frames
    progress(0.0, "skeleton")
    if rest_positions is not None:
        skeleton = bones.skeleton_from_rest(np.asarray(rest_positions, np.float64))
    else:
        skeleton = bones.actor_skeleton(obs.world, obs.visibility, obs.observed)
    # MediaPipe's world landmarks, scaled onto the skeleton's size (its metric scale is
    # only approximate, and a target skeleton has its own size).
    measured = bones.measured_segments(obs.world, obs.visibility, obs.observed)
    model = bones.model_segments(skeleton)
    ok = np.isfinite(measured) & (measured > 0)
    world_scale = float(np.median(model[ok] / measured[ok])) if ok.any() else 1.0
    world_cam = np.nan_to_num(obs.world * world_scale)
    world_valid = np.isfinite(obs.world).all(-1) & obs.observed[:, None]
    prob = _problem(skeleton, camera, fps, settings)
    dt = torch.float64

    # --- initialisation: per-frame poses from the world landmarks, root by least squares
    progress(0.02, "initialise")
    world_work = world_cam @ WORK_TO_CAMERA           # camera axes -> working frame (row vectors: x R)
    observed = obs.observed
    has_world = observed & np.isfinite(obs.world).all(axis=(1, 2))
    if not has_world.any():
        raise observations.bad_request("track.world", "no frame has world landmarks")
    rot0 = np.zeros((n, NUM_JOINTS, 3))
    rot0[has_world] = initial_rotations(world_work[has_world], prob.offsets_local.numpy(), skeleton.landmark_offset)
    for j in range(NUM_JOINTS):                       # no 2π jumps between frames
        rot0[has_world, j] = _continuous_rotvec(rot0[has_world, j])
    rot0 = _interpolate_gaps(rot0, has_world)
    params0 = _params_from_rotations(rot0)
    w3d_all = obs.visibility * world_valid * _LANDMARK_WEIGHT
    vis2d = obs.visibility * observed[:, None] * _LANDMARK_WEIGHT

    chunk = max(int(round(chunk_seconds * fps)), 8)
    overlap = min(int(round(overlap_seconds * fps)), chunk // 2)
    spans = _chunks(n, chunk, overlap)
    total_work = len(spans) * (settings.frame_iterations + settings.iterations + settings.contact_iterations)
    done_work = [0]

    def ticker(stage: str, base: float = 0.05, span: float = 0.9) -> Callable[[int], None]:
        def tick(k: int) -> None:
            progress(base + span * min((done_work[0] + k) / max(total_work, 1), 1.0), stage)
        return tick

    init_params = params0
    evals = 0
    # Root positions from the initial poses' landmarks (camera axes), gaps interpolated.
    with torch.no_grad():
        _, joints_i, points_i = _pose(prob, torch.tensor(init_params, dtype=dt), torch.zeros((n, 3), dtype=dt))
    pts = points_i.numpy() @ WORK_TO_CAMERA.T
    weights2d = obs.visibility * observed[:, None]
    cam_t = _root_positions(pts, obs.image, weights2d + 1e-6, camera)     # pelvis (the FK origin) in camera
    cam_t[:, 2] = np.clip(cam_t[:, 2], 0.5, None)
    cam_t = _interpolate_gaps(cam_t, observed)
    cam_t = _median_filter(cam_t, 5)
    trans0 = cam_t @ WORK_TO_CAMERA                     # camera -> working frame
    depth_guess = cam_t[:, 2]

    # --- pass 1: the whole objective, chunk by chunk
    def solve_chunks(params_start: np.ndarray, trans_start: np.ndarray, iterations: int, stage: str,
                     contacts: Contacts | None, smooth: bool = True) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
        nonlocal evals
        results, stats = [], []
        for s, e in spans:
            p = torch.tensor(np.ascontiguousarray(params_start[s:e]), dtype=dt, requires_grad=True)
            tr = torch.tensor(np.ascontiguousarray(trans_start[s:e]), dtype=dt, requires_grad=True)
            data = _ChunkData(torch.tensor(obs.image[s:e], dtype=dt), torch.tensor(vis2d[s:e], dtype=dt),
                              torch.tensor(world_cam[s:e], dtype=dt), torch.tensor(w3d_all[s:e], dtype=dt),
                              torch.tensor(depth_guess[s:e], dtype=dt))
            if contacts is not None:
                data.anchor = torch.tensor(contacts.anchor[s:e].reshape(e - s, 4, 3), dtype=dt)
                data.anchor_w = torch.tensor(contacts.planted[s:e].reshape(e - s, 4), dtype=dt)
                data.floor = (torch.tensor(contacts.ground.normal, dtype=dt),
                              torch.tensor(contacts.ground.point, dtype=dt))

            def closure() -> Any:
                p.grad = None
                tr.grad = None
                loss, _ = _energy(prob, data, p, tr, smooth=smooth)
                loss.backward()
                return loss

            if smooth and settings.gauss_newton:
                x, k = _levenberg_marquardt(prob, data, np.concatenate([params_start[s:e], trans_start[s:e]], 1),
                                            iterations, ticker(stage))
                evals += k
                p = torch.tensor(x[:, :-3], dtype=dt)
                tr = torch.tensor(x[:, -3:], dtype=dt)
            else:
                evals += _lbfgs([p, tr], closure, iterations, ticker(stage))
            done_work[0] += iterations
            with torch.no_grad():
                _, terms = _energy(prob, data, p, tr)
            stats.append({"frames": [s, e], **{k: round(v, 4) for k, v in terms.items()}})
            rot = (p.detach() @ prob.dof).reshape(e - s, NUM_JOINTS, 3).numpy()
            results.append((rot, tr.detach().numpy()))
        rot, trans = _blend(spans, results, n)
        for j in range(NUM_JOINTS):                   # slerp's shortest-arc output: no 2π jumps
            rot[:, j] = _continuous_rotvec(rot[:, j])
        return _params_from_rotations(rot), trans, stats

    # Each frame on its own first (2D and 3D, no smoothness: cheap, well conditioned),
    # then the whole clip.
    params_f, trans_f, _ = solve_chunks(init_params, trans0, settings.frame_iterations, "fit frames", None,
                                        smooth=False)
    # L-BFGS smooths a long sequence slowly (the acceleration penalty couples every frame
    # with its neighbours), so the whole-clip solve starts from the per-frame fits
    # lightly filtered in time; the data terms then pull fast moves back to their peaks.
    params_f, trans_f = _trend_filtered(params_f, trans_f, observed, fps, settings)
    params1, trans1, stats1 = solve_chunks(params_f, trans_f, settings.iterations, "solve", None)

    if settings.final_trend:
        # The optimiser leaves some frame-to-frame tremble where it stopped short of
        # convergence; one more L1 trend filter removes it and keeps the fast moves.
        params1, trans1 = _trend_filtered(params1, trans1, np.ones(n, bool), fps, settings, 0.5)

    # --- contacts and ground from pass 1; pass 2 locks planted feet
    progress(0.05 + 0.9 * done_work[0] / max(total_work, 1), "contacts")
    with torch.no_grad():
        _, _, points1 = _pose(prob, torch.tensor(params1, dtype=dt), torch.tensor(trans1, dtype=dt))
    sole_idx = [[L[a] for a in pair] for pair in SOLE_LANDMARKS]
    sole = points1.numpy()[:, sole_idx]                # (N, 2, 2, 3)
    contacts = detect_contacts(sole, fps, skeleton.scale)
    if settings.contact_iterations > 0 and contacts.planted.any():
        params2, trans2, stats2 = solve_chunks(params1, trans1, settings.contact_iterations, "contacts", contacts)
    else:
        params2, trans2, stats2 = params1, trans1, []

    # --- into the Z-up world: ground z = 0, the camera looking along +Y, the actor starting at the origin
    progress(0.96, "world")
    first = int(np.flatnonzero(observed)[0])
    frame = world_frame(contacts.ground, trans2[first])
    rot_local = (torch.tensor(params2, dtype=dt) @ prob.dof).reshape(n, NUM_JOINTS, 3).numpy()
    rot_out, actor_trans = _to_world(rot_local, trans2, frame)
    with torch.no_grad():
        _, joints2, points2 = _pose(prob, torch.tensor(params2, dtype=dt), torch.tensor(trans2, dtype=dt))
    residual = _reprojection_px(points2.numpy(), obs, camera)
    ref_scale = skeleton.scale
    seconds = time.perf_counter() - started
    info = {
        "residual_px_mean": float(np.nanmean(residual)) if np.isfinite(residual).any() else None,
        "residual_px_median": float(np.nanmedian(residual)) if np.isfinite(residual).any() else None,
        "chunks": [{"pass1": a, "pass2": b} for a, b in zip(stats1, stats2 or [{}] * len(stats1))],
        "function_evaluations": evals,
        "seconds": seconds,
        "ms_per_frame": 1000.0 * seconds / n,
        "skeleton": skeleton.segments,
        "world_landmark_scale": world_scale,
        "ground_normal_camera": (WORK_TO_CAMERA @ contacts.ground.normal).tolist(),
        "contact_fraction": contacts.feet.mean(axis=0).tolist(),
        "observed_frames": int(observed.sum()),
    }
    progress(1.0, "done")
    return CaptureSolution(
        rotations=rot_out.astype(np.float32),
        trans=_on_reference_ground(rot_out, actor_trans / ref_scale, contacts.feet).astype(np.float32),
        actor_trans=actor_trans.astype(np.float32), rest_positions=skeleton.rest.astype(np.float32),
        scale=float(ref_scale), contacts=contacts.feet, world_to_camera=frame.world_to_camera(),
        times=obs.times.copy(), fps=fps, gaps=obs.gaps(), info=info)


def _on_reference_ground(rotations: np.ndarray, trans: np.ndarray, planted: np.ndarray) -> np.ndarray:
    """The scaled root path with the REFERENCE skeleton's planted ankles at their own
    height above the ground: its legs are not the actor's, proportion by proportion,
    so the actor's ground is not quite where the reference skeleton's feet land (no
    planted foot: its lowest sole on the ground at its lowest frame)."""
    joints = forward_kinematics(rotations.astype(np.float64), trans.astype(np.float64))
    ankles = [J["left_ankle"], J["right_ankle"]]
    above = joints[:, ankles, 2] - np.array([height_above_soles(n) for n in ("left_ankle", "right_ankle")])
    lift = np.median(above[planted]) if planted.any() else above.min()
    out = trans.copy()
    out[:, 2] -= lift
    return out


def _trend_filtered(params: np.ndarray, trans: np.ndarray, observed: np.ndarray, fps: float,
                    settings: SolverSettings, strength: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame fits smoothed in time by L1 trend filtering (smoothing.py), each
    rotation and the root position as one vector; gaps (no data) bridged. The
    strengths are per second² so that they mean the same at any frame rate."""
    w = observed.astype(np.float64)
    k = strength * (30.0 / fps) ** 2     # the penalties are tuned at 30 fps on per-frame accelerations
    out = params.copy()
    col = 0
    for _, comps in _DOFS:
        cols = slice(col, col + len(comps))
        out[:, cols] = trend_filter(params[:, cols], w, settings.trend_rotation * k)
        col += len(comps)
    return out, trend_filter(trans, w, settings.trend_translation * k)


def _median_filter(x: np.ndarray, width: int) -> np.ndarray:
    from scipy.ndimage import median_filter

    return median_filter(x, size=(width, 1), mode="nearest") if len(x) >= width else x


def _to_world(rot: np.ndarray, trans: np.ndarray, frame: WorldFrame) -> tuple[np.ndarray, np.ndarray]:
    """Local rotations and pelvis positions from the working frame into the world:
    only the root's rotation changes (rest · r0' = A · rest · r0)."""
    out = rot.copy()
    a = REST_ROTATION.T @ frame.rotation @ REST_ROTATION
    out[:, 0] = R.matrix_to_axis_angle(a @ R.axis_angle_to_matrix(rot[:, 0]))
    return out, frame.points(trans)


def _reprojection_px(points: np.ndarray, obs: observations.Observations, camera: PinholeCamera) -> np.ndarray:
    """(N,) visibility-weighted mean reprojection error (px) per frame; NaN for gaps."""
    pc = points @ WORK_TO_CAMERA.T
    proj = camera.focal_px * pc[..., :2] / np.clip(pc[..., 2:], 0.1, None) + np.array([camera.cx, camera.cy])
    err = np.linalg.norm(proj - obs.image, axis=-1)
    w = obs.visibility * obs.observed[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (err * w).sum(-1) / w.sum(-1)
    out[~obs.observed] = np.nan
    return out
