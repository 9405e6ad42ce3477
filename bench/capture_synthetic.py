"""Capture solver on synthetic landmark tracks (tests/support/synthetic_landmarks.py):
known motions seen through a known camera with MediaPipe-like noise. Prints per clip
MPJPE (pelvis-aligned, one rotation per clip) and PA-MPJPE on the 15 joints a video
can show, foot skate (mm/frame during detected contact), jitter (mean joint
acceleration, solved vs truth) and the solver's ms per frame (wall clock and CPU);
and MPJPE / PA-MPJPE of MediaPipe's world landmarks read frame by frame, as the
baseline.

Only synthetic tracks: nothing under bench/data/ is read here.

    .venv/bin/python bench/capture_synthetic.py [--seed N] [--clips walk,punch]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avatarforge.backend.motion.capture import solve_capture  # noqa: E402
from avatarforge.backend.motion.capture.landmark_map import L  # noqa: E402
from avatarforge.backend.motion.skeleton import forward_kinematics  # noqa: E402
from tests.support import synthetic_landmarks as S  # noqa: E402

# MediaPipe landmarks standing for the 15 evaluation joints (pelvis, neck: midpoints).
_BASELINE = {"left_hip": "left_hip", "right_hip": "right_hip", "left_knee": "left_knee", "right_knee": "right_knee",
             "left_ankle": "left_ankle", "right_ankle": "right_ankle", "left_shoulder": "left_shoulder",
             "right_shoulder": "right_shoulder", "left_elbow": "left_elbow", "right_elbow": "right_elbow",
             "left_wrist": "left_wrist", "right_wrist": "right_wrist", "head": "nose"}


def _baseline_joints(world: np.ndarray) -> np.ndarray:
    """(T, 24, 3) MediaPipe world landmarks put at the SMPL joints they stand for (others 0)."""
    from avatarforge.backend.motion.skeleton import J

    out = np.zeros((len(world), 24, 3))
    for joint, lm in _BASELINE.items():
        out[:, J[joint]] = world[:, L[lm]]
    out[:, J["pelvis"]] = 0.5 * (world[:, L["left_hip"]] + world[:, L["right_hip"]])
    out[:, J["neck"]] = 0.5 * (world[:, L["left_shoulder"]] + world[:, L["right_shoulder"]])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clips", default="")
    args = parser.parse_args()
    wanted = set(filter(None, args.clips.split(",")))
    rows = []
    print(f"{'clip':18s} {'MPJPE':>7s} {'PA-MPJPE':>9s} {'skate':>7s} {'jitter':>14s} {'ms/frame':>9s} "
          f"{'cpu ms/f':>9s} {'base MPJPE':>10s} {'base PA':>8s}")
    for clip in S.standard_clips(args.seed):
        if wanted and clip.name not in wanted:
            continue
        started, cpu_started = time.perf_counter(), time.process_time()
        sol = solve_capture(clip.track, clip.camera)
        ms = 1000.0 * (time.perf_counter() - started) / len(sol.times)
        # CPU time too: on a shared machine the wall clock counts other people's work.
        cpu_ms = 1000.0 * (time.process_time() - cpu_started) / len(sol.times)
        joints = forward_kinematics(sol.rotations.astype(np.float64), sol.actor_trans.astype(np.float64),
                                    sol.rest_positions.astype(np.float64))
        truth = clip.truth.joints
        ok = clip.track.present
        base = _baseline_joints(np.nan_to_num(clip.track.world.astype(np.float64)))
        row = {
            "mpjpe": 1000 * S.mpjpe(joints, truth), "pa": 1000 * S.pa_mpjpe(joints, truth),
            "skate": 1000 * S.foot_skate(joints, sol.contacts),
            "jitter": S.mean_acceleration(joints, sol.fps), "jitter_truth": S.mean_acceleration(truth, clip.truth.fps),
            "ms": ms, "cpu_ms": cpu_ms, "base": 1000 * S.mpjpe(base[ok], truth[ok]), "base_pa": 1000 * S.pa_mpjpe(base[ok], truth[ok]),
        }
        rows.append(row)
        print(f"{clip.name:18s} {row['mpjpe']:7.1f} {row['pa']:9.1f} {row['skate']:7.2f} "
              f"{row['jitter']:6.1f}/{row['jitter_truth']:5.1f} m/s² {row['ms']:9.1f} {row['cpu_ms']:9.1f} {row['base']:10.1f} "
              f"{row['base_pa']:8.1f}   gaps {sol.gaps} residual {sol.info['residual_px_mean']:.1f} px")
    if rows:
        mean = {k: statistics.fmean(r[k] for r in rows) for k in rows[0]}
        print(f"{'mean':18s} {mean['mpjpe']:7.1f} {mean['pa']:9.1f} {mean['skate']:7.2f} "
              f"{mean['jitter']:6.1f}/{mean['jitter_truth']:5.1f} m/s² {mean['ms']:9.1f} {mean['cpu_ms']:9.1f} {mean['base']:10.1f} "
              f"{mean['base_pa']:8.1f}")
        print("(mm; skate mm/frame; jitter mean joint acceleration solved/truth; targets on real renders: "
              "PA-MPJPE <= 50, skate <= 5, jitter <= 1.5x truth, solver <= 25 ms/frame)")


if __name__ == "__main__":
    main()
