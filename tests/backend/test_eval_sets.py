"""The evaluation sets (DESIGN.md §8): the hold-out sets in bench/data/holdout/
exist, are big enough, and are still held out (bench/holdout_check.py); the
checks themselves catch what they are for (synthetic folders); the bench runner
finds every set and keeps the hold-out ledger.

No prompt of a hold-out set is written here: the real sets are read from their
folder, and the synthetic ones use texts taken from the backend at run time."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import holdout_check as hc  # noqa: E402  (bench/ is a folder of scripts, not a package)

MIN_PROMPTS = {"text_to_shape": 60, "text_to_motion": 40}    # per task, over its non-sided hold-out files


def _task_prompt_counts(files: list[Path]) -> dict[str, int]:
    counts = dict.fromkeys(MIN_PROMPTS, 0)
    for path in files:
        task = next((t for t in MIN_PROMPTS if path.stem.startswith(t)), None)
        if task and "_sided" not in path.stem:
            counts[task] += len(hc.set_prompts(path))
    return counts


# -- the real hold-out sets ----------------------------------------------------------

def test_holdout_sets_are_present_and_big_enough():
    files = hc.holdout_files()
    assert files, (f"no hold-out sets in {hc.HOLDOUT.relative_to(REPO)}/: they are required (DESIGN.md §8): "
                   "text_to_shape.json, text_to_motion.json, text_to_motion_sided.json")
    assert any("_sided" in p.stem for p in files), "a sided motion hold-out set (text_to_motion_sided.json) is required"
    malformed = {p.name: hc.format_problems(p) for p in files if hc.format_problems(p)}
    assert not malformed, f"hold-out sets the runner cannot read: {malformed}"
    counts = _task_prompt_counts(files)
    small = {task: n for task, n in counts.items() if n < MIN_PROMPTS[task]}
    assert not small, f"hold-out prompts per task {counts}, at least {MIN_PROMPTS} needed"


def test_every_reference_source_is_collected():
    refs = hc.reference_texts()
    assert not refs.missing, f"the verbatim check is incomplete: {refs.missing}"
    assert all(refs.by_source.values()), {k: len(v) for k, v in refs.by_source.items()}


def test_holdout_sets_are_held_out():
    results = hc.check_holdout_folder()
    assert results, f"no hold-out sets in {hc.HOLDOUT.relative_to(REPO)}/: they are required (DESIGN.md §8)"
    problems = {path.name: lines for path, lines in results.items() if lines}
    assert not problems, "hold-out sets that are not held out:\n" + "\n".join(
        f"{name}:\n  " + "\n  ".join(lines) for name, lines in problems.items())


def test_spent_sets_are_dev_sets():
    """The former hold-outs were retired as dev sets: no hold-out file outside holdout/."""
    assert not list(hc.DATA.glob("*holdout*.json"))


# -- the checks catch what they are for: synthetic folders -----------------------------

@pytest.fixture(scope="module")
def refs():
    return hc.reference_texts()


def _codebook_sentence(refs, min_words: int = 1) -> str:
    return next(t for t in refs.by_source["shape codebook"] if len(t.split()) >= min_words)


def _write_set(folder: Path, name: str, prompts: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    data = {"about": "synthetic", "ranges": {"high": [0.6, 1.0]}, "prompts": [{"prompt": p} for p in prompts]}
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_normalised_ignores_case_spacing_and_punctuation():
    assert hc.normalised("  A Tall,   MAN!\n") == hc.normalised("a tall man") == "a tall man"


def test_verbatim_check_reports_reference_texts(refs):
    short = _codebook_sentence(refs)
    long_ = _codebook_sentence(refs, hc.CONTAINED_WORDS)
    motion = refs.by_source["motion descriptions"][0]
    prompts = [short.upper() + "!", f"zq7 first, {long_}, then zq8", motion, "zq7 zq8 zq9"]
    problems = hc.verbatim_problems(prompts, refs)
    assert any(p.startswith("prompts[0] equals a shape codebook text") for p in problems), problems
    assert any(p.startswith("prompts[1] contains a whole shape codebook text") for p in problems), problems
    assert any(p.startswith("prompts[2] equals a motion descriptions text") for p in problems), problems
    assert not any(p.startswith("prompts[3]") for p in problems), problems


def test_verbatim_check_fails_while_a_source_is_missing(refs):
    incomplete = hc.ReferenceTexts(by_source=refs.by_source, missing=["appearance vocabulary: not there"])
    assert hc.verbatim_problems(["zq7 zq8 zq9"], incomplete)


def test_leak_check_reports_prompts_in_code(tmp_path):
    leaked = "zq7 a walrus juggles zq8"
    code = tmp_path / "repo" / "backend" / "module.py"
    code.parent.mkdir(parents=True)
    code.write_text('# e.g. "ZQ7 a walrus\n# juggles, zq8"\nEXAMPLES = ()\n', encoding="utf-8")
    (tmp_path / "repo" / "README.md").write_text("zq7 a walrus juggles zq8z\n", encoding="utf-8")   # not whole words
    problems = hc.leak_problems([leaked, "zq9 clean"], hc.leak_scan_files(tmp_path / "repo"), tmp_path / "repo")
    assert problems == ["prompts[0] appears in backend/module.py"]


def test_holdout_folder_check_reports_both(tmp_path, refs):
    holdout = tmp_path / "repo" / "bench" / "data" / "holdout"
    complete = hc.ReferenceTexts(by_source=refs.by_source)
    sentence = _codebook_sentence(refs)
    _write_set(holdout, "text_to_shape.json", [sentence, "zq7 a walrus juggles zq8", "zq9 clean"])
    (tmp_path / "repo" / "tests").mkdir(parents=True)
    (tmp_path / "repo" / "tests" / "test_x.py").write_text('PROMPT = "zq7 a walrus juggles zq8"\n', encoding="utf-8")
    results = hc.check_holdout_folder(holdout, tmp_path / "repo", complete)
    problems = results[holdout / "text_to_shape.json"]
    assert any(p.startswith("prompts[0] equals a shape codebook text") for p in problems), problems
    assert "prompts[1] appears in tests/test_x.py" in problems
    assert not any(p.startswith("prompts[2]") for p in problems), problems
    assert not any(sentence in p for p in problems), "problems name prompts by index, never by their words"


def test_format_check_reports_unreadable_sets(tmp_path):
    bad_motion = _write_set(tmp_path, "text_to_motion.json", ["zq7"])          # no checks
    stray = _write_set(tmp_path, "notes.json", ["zq7"])
    assert hc.format_problems(bad_motion) and hc.format_problems(stray)
    good = tmp_path / "text_to_motion_sided.json"
    good.write_text(json.dumps({"prompts": [{"prompt": "zq7", "side_checks": [0],
                                             "checks": [{"kind": "pelvis_rise", "min": 0.1}]}]}), encoding="utf-8")
    assert hc.format_problems(good) == []


# -- the runner: finds every set, keeps the ledger ---------------------------------------

@pytest.fixture(scope="module")
def text_sets():
    import text_sets

    return text_sets


def test_runner_finds_every_dev_and_holdout_set(tmp_path, text_sets):
    for name in ("text_to_shape_dev.json", "text_to_shape_dev10.json", "text_to_shape_dev2.json",
                 "text_to_motion_sided_dev.json", "text_to_motion_dev.json", "readme.json"):
        _write_set(tmp_path / "data", name, ["zq7"])
    dev = text_sets.dev_sets(tmp_path / "data")
    assert [s.path.name for s in dev] == ["text_to_shape_dev.json", "text_to_shape_dev2.json",
                                         "text_to_shape_dev10.json", "text_to_motion_dev.json",
                                         "text_to_motion_sided_dev.json"]
    assert [s.sided for s in dev] == [False, False, False, False, True]
    _write_set(tmp_path / "holdout", "text_to_motion_sided.json", ["zq7"])
    (held,) = text_sets.holdout_sets(tmp_path / "holdout")
    assert held.kind == "hold-out" and held.task == "motion" and held.sided
    assert text_sets.holdout_sets(tmp_path / "absent") == []


def test_ledger_keeps_the_first_run(tmp_path, text_sets):
    path = _write_set(tmp_path, "text_to_motion.json", ["zq7"])
    ledger = tmp_path / "runs.jsonl"
    prompt_set = text_sets.PromptSet(path, holdout=True)
    first = text_sets.SetResult(prompt_set, 1, 0, text_sets.MotionFigures(prompts=1, passed=1))
    text_sets.record_holdout_run(first, ledger)
    again = text_sets.SetResult(prompt_set, 1, 0, text_sets.MotionFigures(prompts=1, passed=0))
    text_sets.record_holdout_run(again, ledger)
    assert (first.run, again.run) == (1, 2)
    assert again.first_run["figures"]["passed"] == 1
    (line,) = text_sets.first_run_lines([again])
    assert "run 2" in line and "1/1 100%" in line
    assert "zq7" not in ledger.read_text(encoding="utf-8")
