"""Is a hold-out set still held out? Checks run before any hold-out is judged.

    .venv/bin/python bench/holdout_check.py [--holdout bench/data/holdout]

A hold-out prompt set (bench/data/holdout/*.json, same format as the dev sets)
judges generalisation only while the code has never seen its words. For every
file there, two checks (DESIGN.md §8):
(a) verbatim: no prompt equals, ignoring case, spacing and punctuation, a text
    the backend ranks (a shape codebook sentence, an appearance vocabulary
    phrase, an action / key-pose description), and no prompt contains a whole
    such text of >= CONTAINED_WORDS words;
(b) leaked: no prompt appears, ignoring case, spacing and punctuation but
    word-bounded, in the code, docs and tests (LEAK_ROOTS, bench/*.py) or in a
    dev set (bench/data/*.json).
A set must also be well formed (`format_problems`: the runner can read it).
bench/text_sets.py refuses to run a set that fails; tests/backend/
test_eval_sets.py runs both checks on the real folder. Problems name a prompt
by its index, never by its words: logs must not spread the hold-out either. The same reference
texts count the dev sets' verbatim prompts (information only).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from avatarforge.backend.motion.checks import CHECK_KINDS

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "bench" / "data"
HOLDOUT = DATA / "holdout"
CONTAINED_WORDS = 4              # a prompt may not contain a whole reference text this long
LEAK_ROOTS = ("backend", "tests", "docs", "blender_addon", "README.md")
MAX_SCANNED_BYTES = 2_000_000    # larger files are data, not code or prose
_WORD = re.compile(r"[^\W_]+")


def normalised(text: str) -> str:
    """Lower-case words joined by single spaces: punctuation and spacing do not count."""
    return " ".join(_WORD.findall(text.lower()))


def _contains(haystack: str, needle: str) -> bool:
    """Word-bounded containment of two normalised texts."""
    return f" {needle} " in f" {haystack} "


# -- the texts the backend ranks ------------------------------------------------

@dataclass
class ReferenceTexts:
    """Every text the backend ranks prompts against, by source, and the sources
    that could not be collected (the check is incomplete while any is missing)."""
    by_source: dict[str, list[str]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


def _shape_codebook_texts() -> list[str]:
    from avatarforge.backend.text.shape import build_codebook

    return list(build_codebook().sentences)


def _appearance_texts() -> list[str]:
    from avatarforge.backend.text import appearance

    return list(appearance.vocabulary_texts())


def _motion_texts() -> list[str]:
    from avatarforge.backend.motion.vocabulary import vocabulary_texts

    return list(vocabulary_texts())


def reference_texts() -> ReferenceTexts:
    """The shape codebook, appearance vocabulary and motion descriptions."""
    refs = ReferenceTexts()
    sources: dict[str, Callable[[], list[str]]] = {
        "shape codebook": _shape_codebook_texts,
        "appearance vocabulary": _appearance_texts,
        "motion descriptions": _motion_texts,
    }
    for name, collect in sources.items():     # each imported alone: one being moved is reported, not fatal
        try:
            refs.by_source[name] = collect()
        except (ImportError, AttributeError) as error:
            refs.missing.append(f"{name}: {error}")
    return refs


# -- check (a): verbatim reference texts ---------------------------------------

def verbatim_prompts(prompts: Iterable[str], refs: ReferenceTexts) -> list[str]:
    """The prompts that equal a reference text (normalised): information on dev sets."""
    known = {normalised(t) for texts in refs.by_source.values() for t in texts}
    return [p for p in prompts if normalised(p) in known]


def verbatim_problems(prompts: Iterable[str], refs: ReferenceTexts) -> list[str]:
    """Check (a): one line per prompt that equals or contains a reference text."""
    exact = {normalised(t): source for source, texts in refs.by_source.items() for t in texts}
    long_texts = [(n, source) for n, source in exact.items() if len(n.split()) >= CONTAINED_WORDS]
    problems = [f"cannot check, reference texts missing: {m}" for m in refs.missing]
    for i, prompt in enumerate(prompts):
        n = normalised(prompt)
        if n in exact:
            problems.append(f"prompts[{i}] equals a {exact[n]} text")
            continue
        inside = [source for text, source in long_texts if _contains(n, text)]
        problems += [f"prompts[{i}] contains a whole {source} text" for source in inside[:1]]
    return problems


# -- check (b): prompts leaked into code, docs, tests or dev sets ----------------

def leak_scan_files(repo: Path = REPO, holdout: Path = HOLDOUT) -> list[Path]:
    """The files no hold-out prompt may appear in: LEAK_ROOTS, bench/*.py and the dev sets."""
    files: list[Path] = []
    for root in (repo / r for r in LEAK_ROOTS):
        if root.is_file():
            files.append(root)
        elif root.is_dir():
            files += sorted(p for p in root.rglob("*") if p.is_file())
    files += sorted((repo / "bench").glob("*.py")) + sorted((repo / "bench" / "data").rglob("*.json"))   # video/ too
    return [f for f in files if "__pycache__" not in f.parts and holdout not in f.parents]


def _readable_text(path: Path) -> str | None:
    """The file's normalised text, or None for binary or oversized files."""
    try:
        if path.stat().st_size > MAX_SCANNED_BYTES:
            return None
        return normalised(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, OSError):
        return None


def leak_problems(prompts: Iterable[str], files: Iterable[Path], repo: Path = REPO) -> list[str]:
    """Check (b): one line per (prompt, file) where the prompt appears in the file."""
    wanted = [(i, normalised(p)) for i, p in enumerate(prompts)]
    problems = []
    for path in files:
        text = _readable_text(path)
        if text is None:
            continue
        shown = path.relative_to(repo) if repo in path.parents else path
        problems += [f"prompts[{i}] appears in {shown}" for i, n in wanted if n and _contains(text, n)]
    return problems


# -- both checks on a hold-out folder ---------------------------------------------

def holdout_files(holdout: Path = HOLDOUT) -> list[Path]:
    """The hold-out sets: every JSON file in the folder (none when it is absent)."""
    return sorted(holdout.glob("*.json")) if holdout.is_dir() else []


def set_prompts(path: Path) -> list[str]:
    """The prompt strings of one set file (shape or motion format; a video set's
    motion and avatar prompts, bench/render_clips.py format)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if path.stem.startswith("video"):
        return [t for clip in data["clips"] for t in (clip["motion"].get("prompt"), clip["avatar"].get("prompt")) if t]
    return [item["prompt"] for item in data["prompts"]]


def _video_problems(data: object) -> list[str]:
    """What bench/render_clips.py and bench/video_to_motion.py cannot read in a video set."""
    clips = data.get("clips") if isinstance(data, dict) else None
    if not isinstance(clips, list) or not clips:
        return ["no 'clips' list"]
    problems = []
    for i, clip in enumerate(clips):
        motion, avatar = (clip.get(k) if isinstance(clip, dict) else None for k in ("motion", "avatar"))
        if not isinstance(clip, dict) or not isinstance(clip.get("name"), str):
            problems.append(f"clips[{i}] has no name")
        elif not isinstance(motion, dict) or not (isinstance(motion.get("prompt"), str) or "file" in motion):
            problems.append(f"clips[{i}] needs a motion prompt or file")
        elif not isinstance(avatar, dict) or not isinstance(avatar.get("prompt"), str):
            problems.append(f"clips[{i}] needs an avatar prompt")
        elif not clip.get("cameras") or any(not isinstance(c, dict) or "focal_mm" not in c for c in clip["cameras"]):
            problems.append(f"clips[{i}] needs cameras with focal_mm")
    return problems


def _item_problems(i: int, item: dict, task: str, ranges: dict) -> list[str]:
    """What is wrong with one prompt entry of a shape or motion set."""
    if not isinstance(item, dict) or not isinstance(item.get("prompt"), str) or not item["prompt"].strip():
        return [f"prompts[{i}] has no prompt string"]
    if task == "shape":
        return [f"prompts[{i}] expects {attribute}={level!r}, not in 'ranges'"
                for attribute, level in item.get("expect", {}).items() if level not in ranges]
    checks = item.get("checks")
    if not checks or any(not isinstance(c, dict) or c.get("kind") not in CHECK_KINDS for c in checks):
        return [f"prompts[{i}] needs 'checks' of the kinds in backend/motion/checks.py"]
    bad_sides = [k for k in item.get("side_checks", []) if not isinstance(k, int) or not 0 <= k < len(checks)]
    return [f"prompts[{i}] 'side_checks' {bad_sides} are not indices into its checks"] if bad_sides else []


def format_problems(path: Path) -> list[str]:
    """Why a set file cannot be run by bench/text_sets.py (empty: it can)."""
    task = next((t for t in ("shape", "motion") if path.stem.startswith(f"text_to_{t}")), None)
    if task is None and not path.stem.startswith("video"):
        return [f"{path.name} is not named text_to_shape*.json, text_to_motion*.json or video*.json"]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return [f"not JSON: {error}"]
    if task is None:
        return _video_problems(data)
    items = data.get("prompts") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        return ["no 'prompts' list"]
    if task == "shape" and not isinstance(data.get("ranges"), dict):
        return ["a shape set needs 'ranges'"]
    return [p for i, item in enumerate(items) for p in _item_problems(i, item, task, data.get("ranges", {}))]


def check_holdout_set(path: Path, refs: ReferenceTexts, scanned: list[Path], repo: Path = REPO) -> list[str]:
    """Every reason this set may not be run as a hold-out (empty: it may)."""
    malformed = format_problems(path)
    if malformed:
        return malformed
    prompts = set_prompts(path)
    return verbatim_problems(prompts, refs) + leak_problems(prompts, scanned, repo)


def check_holdout_folder(holdout: Path = HOLDOUT, repo: Path = REPO,
                         refs: ReferenceTexts | None = None) -> dict[Path, list[str]]:
    """The problems of every hold-out set in the folder, by file."""
    refs = reference_texts() if refs is None else refs
    scanned = leak_scan_files(repo, holdout)
    return {path: check_holdout_set(path, refs, scanned, repo) for path in holdout_files(holdout)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--holdout", type=Path, default=HOLDOUT)
    args = parser.parse_args()
    results = check_holdout_folder(args.holdout.resolve())
    if not results:
        print(f"no hold-out sets in {args.holdout} (they are required)")
        return 1
    for path, problems in results.items():
        print(f"{path.name}: {'held out' if not problems else f'{len(problems)} problem(s)'}")
        for problem in problems:
            print(f"    {problem}")
    return int(any(results.values()))


if __name__ == "__main__":
    sys.exit(main())
