"""Text -> motion (AvatarCLIP M1 + M2): kinematic pass rate and latency on a prompt set.

    .venv/bin/python bench/text_to_motion.py [--data bench/data/text_to_motion_dev.json]
        [--encoder minilm|clip] [--fps 30] [--verbose]

Each prompt lists kinematic checks on the generated joint positions
(backend/motion/checks.py: pelvis rises for a jump, wrist above shoulder for a
wave, root travel for a walk, ...). A prompt passes when all its checks pass.
Runs the real `text_motion` pipeline in this process; prints each prompt's
result and latency, the pass rate, and the cold start (encoder + vocabulary).
Point --data at another file of the same format to judge unseen prompts.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from avatarforge.backend.config import BackendConfig
from avatarforge.backend.motion.checks import run_check
from avatarforge.backend.pipelines import JobContext
from avatarforge.backend.pipelines.text_motion import TextMotionPipeline

DEV = Path(__file__).resolve().parent / "data" / "text_to_motion_dev.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEV)
    parser.add_argument("--encoder", default="minilm", choices=["minilm", "clip"])
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--verbose", action="store_true", help="print the checks of passing prompts too")
    args = parser.parse_args()

    items = json.loads(args.data.read_text())["prompts"]
    config = BackendConfig()
    pipeline = TextMotionPipeline()
    ctx = JobContext(config=config)
    t0 = time.perf_counter()
    pipeline.run(pipeline.normalise({"prompt": "stands still", "seconds": 0.5, "encoder": args.encoder}, config), ctx)
    cold = time.perf_counter() - t0

    passed, latencies = 0, []
    for item in items:
        params = pipeline.normalise({"prompt": item["prompt"], "seconds": item.get("seconds", 4.0), "fps": args.fps,
                                     "encoder": args.encoder}, config)
        t = time.perf_counter()
        (motion,) = pipeline.run(params, ctx)
        latencies.append(time.perf_counter() - t)
        results = [run_check(c, motion.joints, motion.fps) for c in item["checks"]]
        ok = all(r[0] for r in results)
        passed += ok
        actions = " -> ".join(f"{s['action']}({s['score']:.2f})" for s in motion.params["text"]["segments"])
        print(f"{'PASS' if ok else 'FAIL'} {latencies[-1] * 1000:6.0f} ms  {item['prompt']!r}: {actions}")
        if not ok or args.verbose:
            for c, (good, value) in zip(item["checks"], results):
                print(f"      {'ok ' if good else 'BAD'} {c} -> {value:.3f}")
    n = len(items)
    print(f"\npass rate: {passed}/{n} = {100.0 * passed / n:.1f} %")
    print(f"latency per prompt: median {statistics.median(latencies) * 1000:.0f} ms, "
          f"max {max(latencies) * 1000:.0f} ms (cold start incl. encoder load {cold:.1f} s)")


if __name__ == "__main__":
    main()
