"""Text -> motion (AvatarCLIP M1 + M2): kinematic pass rate and latency on a prompt set.

    .venv/bin/python bench/text_to_motion.py [--data bench/data/text_to_motion_dev.json]
        [--encoder minilm|clip] [--fps 30] [--verbose]

Each prompt lists kinematic checks on the generated joint positions
(backend/motion/checks.py: pelvis rises for a jump, wrist above shoulder for a
wave, root travel for a walk, ...). A prompt passes when all its checks pass.
Runs the real `text_motion` pipeline in this process; prints each prompt's
result and latency, the pass rate, the side errors, and the cold start
(encoder + vocabulary).

Side errors (what a sided set, text_to_motion_sided*.json, is judged on): a
prompt may list "side_checks": [i, ...], the indices in its "checks" of those
that test the side it names; without that list, every check naming a left_ or
right_ joint (nested checks included) tests the side. A prompt with any failed
side check is one side error.

The bench/data/text_to_motion*_dev*.json files are dev sets (tuned on); the
hold-out sets live in bench/data/holdout/ and are run, checked first, by
bench/text_sets.py, which imports `measure_motion_set` from here.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass, field
from collections.abc import Callable
from pathlib import Path
from typing import Any

from avatarforge.backend.config import BackendConfig
from avatarforge.backend.motion.checks import run_check
from avatarforge.backend.pipelines import JobContext
from avatarforge.backend.pipelines.text_motion import TextMotionPipeline

DEV = Path(__file__).resolve().parent / "data" / "text_to_motion_dev.json"
SIDE_PREFIXES = ("left_", "right_")


@dataclass
class MotionFigures:
    """One prompt set's figures."""
    prompts: int = 0
    passed: int = 0
    side_errors: int = 0                  # prompts with a failed side check
    sided_prompts: int = 0                # prompts with any side check
    latencies: list[float] = field(default_factory=list)      # warm seconds per prompt


@dataclass
class MotionBench:
    """The pipeline, its job context and the run settings every set shares."""
    pipeline: TextMotionPipeline
    ctx: JobContext
    encoder: str
    fps: float
    cold_start: float = 0.0               # seconds: the first run, encoder load and vocabulary included


def start_motion_bench(encoder: str, fps: float, config: BackendConfig) -> MotionBench:
    """A pipeline warmed by one short run (loads the encoder, embeds the vocabulary)."""
    pipeline = TextMotionPipeline()
    bench = MotionBench(pipeline, JobContext(config=config), encoder, fps)
    t0 = time.perf_counter()
    pipeline.run(pipeline.normalise({"prompt": "stands still", "seconds": 0.5, "encoder": encoder}, config),
                 bench.ctx)
    bench.cold_start = time.perf_counter() - t0
    return bench


def names_a_side(check: Any) -> bool:
    """Whether a check (or a check nested in it) names a left_ or right_ joint."""
    if isinstance(check, str):
        return check.startswith(SIDE_PREFIXES)
    if isinstance(check, dict):
        return any(names_a_side(v) for v in check.values())
    if isinstance(check, list):
        return any(names_a_side(v) for v in check)
    return False


def side_check_indices(item: dict[str, Any]) -> list[int]:
    """The indices of the prompt's checks that test its side (see the module docstring)."""
    if "side_checks" in item:
        return list(item["side_checks"])
    return [i for i, check in enumerate(item["checks"]) if names_a_side(check)]


def measure_motion_set(items: list[dict[str, Any]], bench: MotionBench, verbose: bool = False,
                       log_passes: bool = True, log: Callable[[str], None] = print) -> MotionFigures:
    """Every prompt of one set generated and checked; logs each failing prompt with
    its checks, each passing one when `log_passes` (with its checks when `verbose`)."""
    figures = MotionFigures(prompts=len(items))
    config = bench.ctx.config
    for item in items:
        params = bench.pipeline.normalise({"prompt": item["prompt"], "seconds": item.get("seconds", 4.0),
                                           "fps": bench.fps, "encoder": bench.encoder}, config)
        t = time.perf_counter()
        (motion,) = bench.pipeline.run(params, bench.ctx)
        figures.latencies.append(time.perf_counter() - t)
        results = [run_check(c, motion.joints, motion.fps) for c in item["checks"]]
        ok = all(r[0] for r in results)
        figures.passed += ok
        sides = side_check_indices(item)
        figures.sided_prompts += bool(sides)
        figures.side_errors += any(not results[i][0] for i in sides)
        actions = " -> ".join(f"{s['action']}({s['score']:.2f})" for s in motion.params["text"]["segments"])
        if ok and not log_passes:
            continue
        log(f"{'PASS' if ok else 'FAIL'} {figures.latencies[-1] * 1000:6.0f} ms  {item['prompt']!r}: {actions}")
        if not ok or verbose:
            for i, (c, (good, value)) in enumerate(zip(item["checks"], results)):
                side = " (side)" if i in sides else ""
                log(f"      {'ok ' if good else 'BAD'} {c} -> {value:.3f}{side}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEV)
    parser.add_argument("--encoder", default="minilm", choices=["minilm", "clip"])
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--verbose", action="store_true", help="print the checks of passing prompts too")
    args = parser.parse_args()

    items = json.loads(args.data.read_text())["prompts"]
    bench = start_motion_bench(args.encoder, args.fps, BackendConfig())
    figures = measure_motion_set(items, bench, verbose=args.verbose)
    n, latencies = figures.prompts, figures.latencies
    print(f"\npass rate: {figures.passed}/{n} = {100.0 * figures.passed / n:.1f} %")
    print(f"side errors: {figures.side_errors}/{figures.sided_prompts} prompts with side checks")
    print(f"latency per prompt: median {statistics.median(latencies) * 1000:.0f} ms, "
          f"max {max(latencies) * 1000:.0f} ms (cold start incl. encoder load {bench.cold_start:.1f} s)")


if __name__ == "__main__":
    main()
