"""Importing motion files: a 10,000-frame CMU-style BVH and AMASS npz through
the motion_import pipeline (parse -> SMPL-24 -> FK, contacts -> retarget).

    .venv/bin/python bench/motion_import.py [--frames 10000] [--threads N]

Prints seconds per stage-combination (median of --repeat runs). Target: a
10,000-frame file imports in a few seconds on a laptop CPU. Note: torch's
intra-op threads spin badly on a machine whose cores are busy with other
processes; --threads 1 shows the single-threaded figure.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default)")
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from avatarforge.backend.config import BackendConfig
    from avatarforge.backend.motion.target_rigs import default_rig
    from avatarforge.backend.pipelines import JobContext, load_pipelines
    from tests.support.synthetic_motion import amass_npz, cmu_bvh_from_smpl, smpl_test_motion

    rot, trans = smpl_test_motion(args.frames, 120.0)
    bvh = cmu_bvh_from_smpl(rot, trans, 120.0, a_pose_degrees=30).encode()
    npz = amass_npz(rot, trans, 120.0, "smplh")
    default_rig("anny")          # Anny loads once per process; not part of an import
    pipe, config = load_pipelines()["motion_import"], BackendConfig()
    print(f"{args.frames} frames at 120 fps, torch threads {torch.get_num_threads()}; BVH {len(bvh) / 1e6:.1f} MB")
    for label, params in [("bvh", {"data": bvh, "filename": "a.bvh"}),
                          ("npz", {"data": npz, "filename": "a.npz"}),
                          ("bvh -> anny", {"data": bvh, "filename": "a.bvh", "target": "anny"}),
                          ("bvh -> 30 fps -> anny", {"data": bvh, "filename": "a.bvh", "target": "anny", "fps": 30}),
                          ("npz -> smpl", {"data": npz, "filename": "a.npz", "target": "smpl"})]:
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            pipe.run(pipe.normalise(params, config), JobContext(config=config))
            times.append(time.perf_counter() - t0)
        print(f"  {label:24s} {statistics.median(times):6.2f} s")


if __name__ == "__main__":
    main()
