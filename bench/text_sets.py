"""Every text prompt set, dev and hold-out, in one run and one summary table.

    .venv/bin/python bench/text_sets.py [--data bench/data] [--holdout bench/data/holdout] [--dev-only]
        [--encoder minilm|clip] [--fps 30]

Dev sets (tuned on): bench/data/text_to_shape*_dev*.json and
text_to_motion*_dev*.json. Hold-out sets (never tuned on, DESIGN.md §8): every
JSON file in bench/data/holdout/, named text_to_shape*.json or
text_to_motion*.json. A name with "_sided" is a sided motion set, judged also
on side errors (bench/text_to_motion.py). Each hold-out set is checked first
(bench/holdout_check.py) and refused when its prompts are not held out.

Figures come from bench/text_to_shape.py and bench/text_to_motion.py (their
`measure_*_set` functions); the table adds, per set, how many prompts are
verbatim texts the backend ranks (codebook, vocabulary, action and key-pose
descriptions). Dev sets print their failing prompts; hold-out sets print
figures only, so their words do not reach the logs people tune from.

A hold-out figure counts from its first run: each run of the repository's
hold-out sets is appended to bench/holdout_runs.jsonl (set name, content
digest, commit, time, figures; no prompt words), the table's "run" column
says which run of that content this is, and a later run also prints the first
run's figures. The exit status is 1 when a hold-out set is missing or refused
(--dev-only: dev sets only, exit 0).
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import re
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from avatarforge.backend.config import BackendConfig
from avatarforge.backend.models.text_encoder import TextEncoder
from holdout_check import (DATA, HOLDOUT, ReferenceTexts, check_holdout_folder, holdout_files, reference_texts,
                           verbatim_prompts)
from text_to_motion import MotionBench, MotionFigures, measure_motion_set, start_motion_bench
from text_to_shape import ColdStart, ShapeFigures, load_shape_encoder, measure_shape_set

TASKS = ("shape", "motion")
LEDGER = Path(__file__).resolve().parent / "holdout_runs.jsonl"   # every run of the repository's hold-out sets


@dataclass(frozen=True)
class PromptSet:
    path: Path
    holdout: bool

    @property
    def task(self) -> str | None:
        """'shape', 'motion', or None for a file neither bench reads."""
        return next((t for t in TASKS if self.path.stem.startswith(f"text_to_{t}")), None)

    @property
    def sided(self) -> bool:
        return self.task == "motion" and "_sided" in self.path.stem

    @property
    def kind(self) -> str:
        return "hold-out" if self.holdout else "dev"


@dataclass
class SetResult:
    prompt_set: PromptSet
    prompts: int
    verbatim: int
    figures: ShapeFigures | MotionFigures | None = None
    refused: str = ""                 # why a hold-out set was not run
    run: int = 0                      # hold-out: how many runs of this very file, this one included (0: unrecorded)
    first_run: dict | None = None     # hold-out: the ledger's record of the first run when this is a later one


def _natural_key(path: Path) -> list:
    """dev2 before dev10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.stem)]


def _in_run_order(sets: list[PromptSet]) -> list[PromptSet]:
    """Shape sets, then motion sets (each cold start is then its own), then the rest; by name."""
    return sorted(sets, key=lambda s: (TASKS.index(s.task) if s.task else len(TASKS), _natural_key(s.path)))


def dev_sets(data: Path = DATA) -> list[PromptSet]:
    """Every dev set file (other engineers add text_to_*_dev*.json files)."""
    return _in_run_order([PromptSet(p, holdout=False) for p in data.glob("text_to_*.json") if "_dev" in p.stem])


def holdout_sets(holdout: Path = HOLDOUT) -> list[PromptSet]:
    """Every JSON file in the hold-out folder (none when it is absent)."""
    return _in_run_order([PromptSet(p, holdout=True) for p in holdout_files(holdout)
                          if p.stem.startswith("text_to_")])     # video*.json: bench/video_to_motion.py


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


class Benches:
    """The shape encoder and motion pipeline, each started on first use and shared by all sets."""

    def __init__(self, encoder: str, fps: float) -> None:
        self.encoder, self.fps, self.config = encoder, fps, BackendConfig()
        self.shape: tuple[TextEncoder, ColdStart] | None = None
        self.motion: MotionBench | None = None

    def measure(self, prompt_set: PromptSet, data: dict, log: Callable[[str], None]) -> ShapeFigures | MotionFigures:
        if prompt_set.task == "shape":
            self.shape = self.shape or load_shape_encoder(self.encoder, self.config)
            return measure_shape_set(data, self.shape[0], self.config, log=log)
        self.motion = self.motion or start_motion_bench(self.encoder, self.fps, self.config)
        return measure_motion_set(data["prompts"], self.motion, log_passes=False, log=log)

    def cold_starts(self) -> list[str]:
        lines = []
        if self.shape:
            cold = self.shape[1]
            lines.append(f"shape cold start: encoder load {cold.encoder_load:.2f} s, codebook embeddings "
                         f"{cold.codebook_index:.2f} s (disk cache when warm)")
        if self.motion:
            lines.append(f"motion cold start: {self.motion.cold_start:.1f} s (encoder load and vocabulary)")
        return lines


def _silent(_: str) -> None:
    """Hold-out sets log nothing per prompt: their words would be read and tuned on."""


def run_set(prompt_set: PromptSet, benches: Benches, refs: ReferenceTexts, refused: str = "") -> SetResult:
    """One set's figures; a refused set (maybe malformed) is not even read."""
    if refused:
        return SetResult(prompt_set, 0, 0, refused=refused)
    data = _load(prompt_set.path)
    prompts = [item["prompt"] for item in data["prompts"]]
    result = SetResult(prompt_set, len(prompts), len(verbatim_prompts(prompts, refs)))
    if prompt_set.task is None:
        return result
    print(f"\n== {prompt_set.path.name} ({prompt_set.kind}, {len(prompts)} prompts)")
    result.figures = benches.measure(prompt_set, data, _silent if prompt_set.holdout else print)
    return result


# -- the hold-out ledger: a hold-out figure counts from its first run ---------------------

def content_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _ledger_runs(ledger: Path, digest: str) -> list[dict]:
    """The recorded runs of the set file with this content, oldest first."""
    lines = ledger.read_text(encoding="utf-8").splitlines() if ledger.is_file() else []
    return [run for run in map(json.loads, filter(None, lines)) if run["sha256"] == digest]


def _head_commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=LEDGER.parent, check=False)
    return done.stdout.strip() or "unknown"


def record_holdout_run(result: SetResult, ledger: Path = LEDGER) -> None:
    """Appends this run (no prompt words: name, digest, figures) and notes its number
    and, for a later run, the first run's record."""
    digest = content_digest(result.prompt_set.path)
    earlier = _ledger_runs(ledger, digest)
    figures = {k: v for k, v in dataclasses.asdict(result.figures).items() if k not in ("latencies", "per_attribute")}
    record = {"set": result.prompt_set.path.name, "sha256": digest, "commit": _head_commit(),
              "utc": datetime.now(timezone.utc).isoformat(timespec="seconds"), "figures": figures}
    with ledger.open("a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")
    result.run = len(earlier) + 1
    result.first_run = earlier[0] if earlier else None


def first_run_lines(results: list[SetResult]) -> list[str]:
    """For each hold-out set run before: the figures of its first run, the ones that count."""
    lines = []
    for r in results:
        if r.first_run is None:
            continue
        kind = type(r.figures)
        first = dataclasses.replace(r, figures=kind(**r.first_run["figures"]))
        cells = [c for c in _figure_cells(first)[:-1] if c != "-"]
        lines.append(f"{r.prompt_set.path.name}: run {r.run} of this content; its first run "
                     f"({r.first_run['utc']}, commit {r.first_run['commit']}) gave {', '.join(cells)}")
    return lines


# -- the summary table ------------------------------------------------------------

COLUMNS = (("set", 34), ("kind", 9), ("run", 4), ("prompts", 8), ("verbatim", 9), ("mentioned", 15),
           ("unmentioned", 17), ("neutral", 13), ("pass", 13), ("side err", 9), ("ms med/max", 12))


def _fraction(ok: int, n: int) -> str:
    return f"{ok}/{n} {100 * ok / n:.0f}%" if n else "-"


def _latency(latencies: list[float]) -> str:
    return f"{statistics.median(latencies) * 1000:.0f}/{max(latencies) * 1000:.0f}" if latencies else "-"


def _figure_cells(result: SetResult) -> list[str]:
    """mentioned, unmentioned, neutral, pass, side errors, latency."""
    f = result.figures
    if result.refused:
        return ["REFUSED: " + result.refused, "", "", "", "", ""]
    if f is None:
        return ["not a shape or motion set", "", "", "", "", ""]
    if isinstance(f, ShapeFigures):
        return [_fraction(*f.mentioned), _fraction(*f.stable), _fraction(*f.neutral), "-", "-", _latency(f.latencies)]
    side = f"{f.side_errors}/{f.prompts}" if result.prompt_set.sided else "-"
    return ["-", "-", "-", _fraction(f.passed, f.prompts), side, _latency(f.latencies)]


def _row(cells: list[str]) -> str:
    return "".join(f"{cell:<{width}}" for cell, (_, width) in zip(cells, COLUMNS)).rstrip()


def summary_table(results: list[SetResult]) -> str:
    """One row per set, dev rows then hold-out rows, each group under its own rule."""
    lines = [_row([name for name, _ in COLUMNS])]
    width = sum(w for _, w in COLUMNS)
    for kind, label in (("dev", "dev sets: tuned on"), ("hold-out", "hold-out sets: never tuned on")):
        group = [r for r in results if r.prompt_set.kind == kind]
        lines.append(f"-- {label} ".ljust(width, "-"))
        lines += [_row([r.prompt_set.path.name, kind, str(r.run or "-")]
                       + (["-", "-"] if r.refused else [str(r.prompts), str(r.verbatim)]) + _figure_cells(r))
                  for r in group] or ["(none)"]
    return "\n".join(lines)


LEGEND = """\
mentioned: mentioned-attribute accuracy; unmentioned: unmentioned phenotypes at default (checks);
neutral: neutral prompts giving the neutral body; pass: motion prompts passing all checks;
side err: prompts with a failed side check (sided sets); verbatim: prompts equal to a text the
backend ranks (information on dev sets; a hold-out set with any is refused); ms: warm latency per prompt;
run: runs of this hold-out file's content (bench/holdout_runs.jsonl): the first run's figures are the ones to report."""


# -- the run ------------------------------------------------------------------------

def _refusals(sets: list[PromptSet], holdout: Path, refs: ReferenceTexts) -> dict[Path, str]:
    """Why each hold-out set may not run (checks of bench/holdout_check.py); prints the problems."""
    problems = check_holdout_folder(holdout, refs=refs) if sets else {}
    refused = {}
    for path, lines in problems.items():
        if lines:
            print(f"\nhold-out {path.name} is not held out; not run:")
            print("\n".join(f"    {line}" for line in lines))
            refused[path] = f"{len(lines)} problem(s)"
    return refused


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the folder of the dev sets")
    parser.add_argument("--holdout", type=Path, default=HOLDOUT, help="the hold-out folder")
    parser.add_argument("--dev-only", action="store_true", help="run the dev sets only (while tuning)")
    parser.add_argument("--encoder", default="minilm", choices=["minilm", "clip"])
    parser.add_argument("--fps", type=float, default=30.0)
    args = parser.parse_args()

    refs = reference_texts()
    for missing in refs.missing:
        print(f"reference texts missing (hold-out sets cannot be checked): {missing}")
    holdouts = [] if args.dev_only else holdout_sets(args.holdout.resolve())
    refused = _refusals(holdouts, args.holdout.resolve(), refs)
    benches = Benches(args.encoder, args.fps)
    results = [run_set(s, benches, refs) for s in dev_sets(args.data)]
    held_out = [run_set(s, benches, refs, refused.get(s.path, "")) for s in holdouts]
    if args.holdout.resolve() == HOLDOUT:          # runs on a scratch folder are not the hold-out's runs
        for result in held_out:
            if result.figures is not None:
                record_holdout_run(result)
    results += held_out

    print("\n" + summary_table(results))
    print(LEGEND)
    for line in first_run_lines(results):
        print(line)
    print("\n".join(benches.cold_starts()) + f"\nencoder: {args.encoder}")
    if args.dev_only:
        return 0
    if not holdouts:
        print(f"\nno hold-out sets in {args.holdout}: they are required (DESIGN.md §8)")
    return int(not holdouts or bool(refused))


if __name__ == "__main__":
    sys.exit(main())
