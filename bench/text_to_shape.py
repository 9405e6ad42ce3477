"""Text -> body shape (AvatarCLIP S1): accuracy, stability and latency on a prompt set.

    .venv/bin/python bench/text_to_shape.py [--data bench/data/text_to_shape_dev.json]
        [--encoder minilm|clip] [--verbose]

Three figures:
- mentioned-attribute accuracy: each attribute a prompt mentions ('expect')
  must fall in its range;
- unmentioned stability: every phenotype the prompt neither mentions nor lists
  as 'free' must stay within +-STABLE_TOLERANCE of default_phenotypes(), and
  every local change not expected or free must be absent (one check per
  phenotype per prompt plus one for the local changes);
- neutral-prompt pass rate: prompts marked 'neutral' (nothing about the body)
  must give the neutral body (phenotypes within NEUTRAL_TOLERANCE of the
  defaults, no local change) with confidence < NEUTRAL_CONFIDENCE.
Also the cold start (encoder load + codebook embedding, from the on-disk
cache when warm) and the warm latency per prompt. The bench/data/
text_to_shape_dev*.json files are dev sets (tuned on); the hold-out sets live
in bench/data/holdout/ and are run, checked first, by bench/text_sets.py.
`measure_shape_set` is the per-set measurement that runner imports.
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
from avatarforge.backend.models.anny_model import default_phenotypes
from avatarforge.backend.models.encoders import load_text_encoder
from avatarforge.backend.models.text_encoder import TextEncoder
from avatarforge.backend.text.shape import estimate_shape

DEV = Path(__file__).resolve().parent / "data" / "text_to_shape_dev.json"
STABLE_TOLERANCE = 0.15
NEUTRAL_TOLERANCE = 0.05
NEUTRAL_CONFIDENCE = 0.3
LOCAL_ABSENT = 0.05          # a local change below this counts as absent


@dataclass
class ShapeFigures:
    """One prompt set's figures; each (ok, n) pair counts checks passed / made."""
    prompts: int = 0
    mentioned: list[int] = field(default_factory=lambda: [0, 0])
    stable: list[int] = field(default_factory=lambda: [0, 0])
    neutral: list[int] = field(default_factory=lambda: [0, 0])
    per_attribute: dict[str, list[int]] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)      # warm seconds per prompt


@dataclass
class ColdStart:
    encoder_load: float          # seconds
    codebook_index: float        # seconds: codebook embeddings (first prompt; disk cache when warm)


def value_of(estimate, attribute: str) -> float:
    if attribute.startswith("local:"):
        return estimate.local_changes.get(attribute[len("local:"):], 0.0)
    return estimate.phenotypes[attribute]


def mentioned_failures(estimate, item: dict, ranges: dict) -> tuple[int, list[str], dict[str, bool]]:
    """(checks, failures, per attribute pass) for the attributes the prompt mentions."""
    fails, results = [], {}
    for attribute, expected in item.get("expect", {}).items():
        lo, hi = ranges[expected]
        value = value_of(estimate, attribute)
        results[attribute] = lo <= value <= hi
        if not results[attribute]:
            fails.append(f"{attribute}={value:.2f} (want {expected} {lo}-{hi})")
    return len(results), fails, results


def stability_failures(estimate, item: dict) -> tuple[int, list[str]]:
    """(checks, failures): unmentioned phenotypes near default, no unexpected local change."""
    default = default_phenotypes()
    allowed = set(item.get("expect", {})) | set(item.get("free", []))
    fails, checks = [], 0
    for name, value in estimate.phenotypes.items():
        if name in allowed:
            continue
        checks += 1
        if abs(value - default[name]) > STABLE_TOLERANCE:
            fails.append(f"unmentioned {name}={value:.2f}")
    checks += 1
    stray = {k: v for k, v in estimate.local_changes.items() if abs(v) >= LOCAL_ABSENT and f"local:{k}" not in allowed}
    if stray:
        fails.append("unexpected local " + ", ".join(f"{k}={v:.2f}" for k, v in stray.items()))
    return checks, fails


def neutral_failures(estimate) -> list[str]:
    default = default_phenotypes()
    fails = [f"{k}={v:.2f}" for k, v in estimate.phenotypes.items() if abs(v - default[k]) > NEUTRAL_TOLERANCE]
    fails += [f"local {k}={v:.2f}" for k, v in estimate.local_changes.items() if abs(v) >= LOCAL_ABSENT]
    if estimate.confidence >= NEUTRAL_CONFIDENCE:
        fails.append(f"confidence {estimate.confidence:.2f} (want < {NEUTRAL_CONFIDENCE})")
    return fails


def percent(ok: int, n: int) -> str:
    return f"{ok}/{n} = {100 * ok / max(n, 1):.1f} %"


def load_shape_encoder(name: str, config: BackendConfig) -> tuple[TextEncoder, ColdStart]:
    """The text encoder, warmed by one prompt (builds or reads the codebook embeddings)."""
    t0 = time.perf_counter()
    encoder = load_text_encoder(name, config)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    estimate_shape("a person", encoder, config)
    return encoder, ColdStart(t_load, time.perf_counter() - t0)


def _score_prompt(est, item: dict, ranges: dict, figures: ShapeFigures) -> list[str]:
    """Adds one estimate's checks to `figures`; returns its failures."""
    if item.get("neutral"):
        fails = neutral_failures(est)
        figures.neutral[0] += not fails
        figures.neutral[1] += 1
        return fails
    n, fails, results = mentioned_failures(est, item, ranges)
    figures.mentioned[0] += sum(results.values())
    figures.mentioned[1] += n
    for attribute, ok in results.items():
        tally = figures.per_attribute.setdefault(attribute, [0, 0])
        tally[0] += ok
        tally[1] += 1
    n, stability = stability_failures(est, item)
    figures.stable[0] += n - len(stability)
    figures.stable[1] += n
    return fails + stability


def measure_shape_set(data: dict[str, Any], encoder: TextEncoder, config: BackendConfig, verbose: bool = False,
                      log: Callable[[str], None] = print) -> ShapeFigures:
    """Every prompt of one set (the parsed JSON: 'ranges', 'prompts') estimated and
    checked; logs the failing prompts (all of them when `verbose`)."""
    figures = ShapeFigures(prompts=len(data["prompts"]))
    for item in data["prompts"]:
        t0 = time.perf_counter()
        est = estimate_shape(item["prompt"], encoder, config)
        figures.latencies.append(time.perf_counter() - t0)
        fails = _score_prompt(est, item, data["ranges"], figures)
        if fails or verbose:
            status = "ok  " if not fails else "FAIL"
            log(f"{status} {figures.latencies[-1] * 1000:6.1f} ms  conf {est.confidence:.2f}  {item['prompt']!r}"
                + (f"  -> {'; '.join(fails)}" if fails else ""))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEV)
    parser.add_argument("--encoder", default="minilm", choices=["minilm", "clip"])
    parser.add_argument("--verbose", action="store_true", help="print every prompt, not only failures")
    args = parser.parse_args()

    data = json.loads(args.data.read_text(encoding="utf-8"))
    config = BackendConfig()
    encoder, cold = load_shape_encoder(args.encoder, config)
    figures = measure_shape_set(data, encoder, config, verbose=args.verbose)
    print()
    for attribute, (ok, n) in sorted(figures.per_attribute.items()):
        print(f"  {attribute:<32}{ok:>3}/{n:<3} {100 * ok / n:5.1f} %")
    latencies = figures.latencies
    print(f"data: {args.data.name}")
    print(f"mentioned-attribute accuracy: {percent(*figures.mentioned)}")
    print(f"unmentioned stability:        {percent(*figures.stable)}")
    print(f"neutral prompts:              {percent(*figures.neutral)}")
    print(f"encoder load: {cold.encoder_load:.2f} s; codebook embeddings (first prompt, disk cache when warm): "
          f"{cold.codebook_index:.2f} s")
    print(f"warm latency per prompt: median {statistics.median(latencies) * 1000:.1f} ms, "
          f"max {max(latencies) * 1000:.1f} ms ({args.encoder})")


if __name__ == "__main__":
    main()
