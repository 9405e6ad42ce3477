"""Video -> motion on rendered ground truth: the `video_motion` job, run in
process on Cycles renders of Anny (bench/render_clips.py), scored against the
joints the renders were made from.

    .venv/bin/python bench/video_to_motion.py --set dev                 # bench/data/video/dev.json
    .venv/bin/python bench/video_to_motion.py --set holdout             # only once the solver is final
    .venv/bin/python bench/video_to_motion.py --check-landmarks tests/data/video/walk_small/three_quarter.mp4

The clips must be rendered first (about 5-15 s a frame on 2 shared cores; cached by spec):
    nice -n 10 .venv-blender/bin/python bench/render_clips.py --backend-python .venv/bin/python \\
        --spec bench/data/video/dev.json --out /tmp/af-video-clips/dev

The job retargets onto --target: Anny's default rig ("anny", the default), or
the rendered avatar's own rig ("actor": the solver gets the actor's true bone
lengths). The solved joints are read on that rig exactly as the truth is read
on the rendered one (rigs.ANNY bone heads), so with "anny" MPJPE also counts
the difference between the actor's proportions and Anny's default body.
Per clip (video of one camera) and mean, dev and hold-out apart, on the 15
joints a video can show (bench/video_metrics.py):
- MPJPE: pelvis-aligned, one rotation about the vertical per clip; PA-MPJPE:
  each frame Procrustes-aligned; both mm;
- foot skate: mean horizontal speed (mm/frame) of the target rig's ankles
  while the solved motion says the foot is in contact; beside it, the truth's
  own figure (the rendered Anny's ankles during the source motion's contacts:
  what the text -> motion retargeting onto that avatar already slides);
- jitter: mean joint acceleration / the truth's;
- fps end to end (decode -> landmarks -> solve -> Motion, retargeting included),
  solved frames / wall seconds of the job, Anny loaded beforehand as in a server;
- baseline: MediaPipe's world landmarks alone, frame by frame (video mode),
  mapped onto the 15 joints: its PA-MPJPE and MPJPE (where it found the person;
  its MPJPE keeps the camera's pitch, which MediaPipe's camera-aligned frame has).
--save DIR writes each clip's solved and true joints (npz) to look into a figure.
A hold-out run is recorded in bench/holdout_runs.jsonl (set name, content
digest, commit, figures; no prompt words): its first run is the one that counts.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

import video_metrics as vm  # noqa: E402  (bench/ is a folder of scripts)

SETS = {"dev": BENCH / "data" / "video" / "dev.json", "holdout": BENCH / "data" / "holdout" / "video.json"}
CLIPS = Path("/tmp/af-video-clips")          # render_clips.py --out <CLIPS>/<set>
LEDGER = BENCH / "holdout_runs.jsonl"
TARGETS = {"pa_mpjpe": 50.0, "skate": 5.0, "jitter": 1.5, "fps": 15.0}


@dataclass
class ClipResult:
    """One video's figures (NaN where a figure could not be measured)."""
    clip: str
    frames: int
    mpjpe: float
    pa_mpjpe: float
    skate: float
    truth_skate: float
    jitter: float
    fps: float
    mp_mpjpe: float
    mp_pa_mpjpe: float
    mp_found: float          # fraction of frames where MediaPipe found the person
    note: str = ""


# -- MediaPipe alone ------------------------------------------------------------------

def read_frames(path: Path) -> tuple[list[np.ndarray], float]:
    """The video's RGB frames and average frame rate (PyAV; bench clips are small)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        return frames, float(stream.average_rate)


@dataclass
class Landmarks:
    image_px: np.ndarray      # (T, 33, 2) pixels, NaN where not found
    world: np.ndarray         # (T, 33, 3) MediaPipe world landmarks, metres, NaN where not found
    visibility: np.ndarray    # (T, 33)
    found: np.ndarray         # (T,) bool


def mediapipe_landmarks(frames: list[np.ndarray]) -> Landmarks:
    """MediaPipe Pose (legacy solution, video mode, model_complexity=1) on every frame."""
    import mediapipe as mp

    n = len(frames)
    out = Landmarks(np.full((n, 33, 2), np.nan), np.full((n, 33, 3), np.nan), np.zeros((n, 33)), np.zeros(n, bool))
    with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1) as pose:
        for t, img in enumerate(frames):
            result = pose.process(img)
            if result.pose_landmarks is None:
                continue
            h, w = img.shape[:2]
            out.found[t] = True
            lm = result.pose_landmarks.landmark
            out.image_px[t] = [(p.x * w, p.y * h) for p in lm]
            out.visibility[t] = [p.visibility for p in lm]
            out.world[t] = [(p.x, p.y, p.z) for p in result.pose_world_landmarks.landmark]
    return out


def image_eval_joints(image_px: np.ndarray) -> np.ndarray:
    """(T, 33, 2) MediaPipe image landmarks -> (T, 15, 2) at the EVAL_NAMES joints."""
    return np.stack([image_px[:, list(idx)].mean(axis=1) for idx in vm.MEDIAPIPE_FOR_EVAL], axis=1)


def check_landmarks(video: Path) -> int:
    """Does MediaPipe find the rendered person, near the true joints? Prints the
    fraction of frames found and the mean pixel distance of its landmarks (mapped
    onto the 15 joints) from the projected truth, per joint."""
    truth = np.load(video.with_suffix(".npz"))
    frames, _fps = read_frames(video)
    lm = mediapipe_landmarks(frames)
    n = min(len(frames), int(truth["frames"]))
    px_true = truth["joints_px"][:n][:, vm.EVAL_JOINTS]
    px_mp = image_eval_joints(lm.image_px[:n])
    err = np.linalg.norm(px_mp - px_true, axis=-1)
    height_px = float(np.nanmedian(np.ptp(px_true[..., 1], axis=1)))
    print(f"{video}: {len(frames)} frames {frames[0].shape[1]}x{frames[0].shape[0]}, person found in "
          f"{lm.found[:n].mean():.0%}; landmark error {np.nanmean(err):.1f} px mean, {np.nanmedian(err):.1f} px "
          f"median (person ~{height_px:.0f} px tall)")
    print("  per joint (px): " + ", ".join(f"{name} {e:.1f}" for name, e in zip(vm.EVAL_NAMES, np.nanmean(err, 0))))
    if lm.found.any():
        world = vm.mediapipe_to_eval(lm.world[:n])
        ok = lm.found[:n]
        true15 = truth["joints_world"][:n][:, vm.EVAL_JOINTS]
        print(f"  world landmarks alone: PA-MPJPE {vm.pa_mpjpe(world[ok], true15[ok]):.1f} mm, "
              f"MPJPE {vm.mpjpe(world[ok], true15[ok]):.1f} mm")
    return 0 if lm.found[:n].mean() >= 0.9 else 1


# -- the pipeline ----------------------------------------------------------------------

def actor_target(truth: Any) -> dict[str, Any]:
    """The rendered avatar's own rig (render_clips.py saves it) as the job's <target rig>."""
    if "target_rest_matrices" not in truth:
        raise SystemExit("this clip's truth has no actor rig: bench/render_clips.py --truth-only adds it")
    return {"preset": str(truth["target_preset"]), "bone_names": [str(b) for b in truth["target_bone_names"]],
            "parents": [int(p) for p in truth["target_parents"]],
            "rest_matrices": np.asarray(truth["target_rest_matrices"], np.float32)}


def run_pipeline(video: Path, focal_mm: float, target: str | dict[str, Any] = "anny") -> tuple[Any, float]:
    """The `video_motion` job in this process: (its Motion, wall seconds)."""
    from avatarforge.backend.cli import run_job
    from avatarforge.backend.config import BackendConfig

    params = {"data": video.read_bytes(), "filename": video.name, "focal_mm": float(focal_mm), "target": target}
    t0 = time.perf_counter()
    artifacts = run_job("video_motion", params, BackendConfig())
    seconds = time.perf_counter() - t0
    motion = next(a for a in artifacts if getattr(a, "KIND", "") == "motion")
    return motion, seconds


def rig_joints(motion: Any, target: str | dict[str, Any]) -> np.ndarray:
    """(T, 24, 3) SMPL-24 joints (world, Z up) of the motion as keyed on the Anny
    rig it was retargeted onto (Anny's default rig, or the actor's own): the
    backend's FK of the pose-bone tracks, read at the bones rigs.ANNY maps, as
    render_clips.py reads the truth (NaN: left/right_foot and _hand, no bone head)."""
    from avatarforge.backend.motion.retarget import tracks_heads
    from avatarforge.backend.motion.rigs import ANNY
    from avatarforge.backend.motion.target_rigs import default_rig

    if isinstance(target, dict):
        names, parents, rest = list(target["bone_names"]), target["parents"], target["rest_matrices"]
    else:
        names, parents, rest = default_rig(target)
        names = list(names)
    tracks = motion.retargeted
    if tracks is None or tracks.rig != "anny":
        raise RuntimeError(f"the motion is not retargeted onto Anny (rig {getattr(tracks, 'rig', None)!r})")
    heads = tracks_heads(tracks, names, parents, rest)
    out = np.full((len(heads), 24, 3), np.nan)
    for bone, joint in ANNY.items():
        out[:, vm.SMPL24.index(joint)] = heads[:, names.index(bone)]
    return out


def score_video(video: Path, baseline: bool = True, save: Path | None = None, target: str = "anny") -> ClipResult:
    """Every figure for one rendered video; `save`: a folder for the solved joints
    and contacts (<clip>_<camera>.npz), to look into a figure."""
    truth = np.load(video.with_suffix(".npz"))
    camera = json.loads(str(truth["camera"]))
    name = f"{video.parent.name}/{video.stem}"
    true_joints = truth["joints_world"].astype(np.float64)
    true_contacts = truth["contacts"].astype(bool)
    truth_skate = vm.foot_skate(true_joints[:, list(vm.ANKLES)], true_contacts)
    rig = actor_target(truth) if target == "actor" else target
    motion, seconds = run_pipeline(video, float(camera["focal_mm"]), rig)
    pred = rig_joints(motion, rig)
    n = min(len(pred), len(true_joints))
    note = "" if len(pred) == len(true_joints) else f"{len(pred)} frames solved for {len(true_joints)} rendered"
    scores = vm.score_clip(pred[:n], true_joints[:n])
    contacts = np.asarray(motion.contacts, bool) if motion.contacts is not None else None
    feet = pred[:, list(vm.ANKLES)]
    if contacts is None:
        contacts, note = vm.detect_contacts(feet), (note + "; " if note else "") + "contacts detected here"
    skate = vm.foot_skate(feet, contacts)
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(save / f"{video.parent.name}_{video.stem}.npz", joints=pred, trans=motion.trans,
                            contacts=contacts, anny_feet=feet, truth=true_joints, truth_contacts=true_contacts)
    mp_mpjpe = mp_pa = mp_found = float("nan")
    if baseline:
        frames, _fps = read_frames(video)
        lm = mediapipe_landmarks(frames)
        m = min(len(frames), len(true_joints))
        ok = lm.found[:m]
        mp_found = float(ok.mean())
        if ok.any():
            world = vm.mediapipe_to_eval(lm.world[:m][ok])
            true15 = true_joints[:m][ok][:, vm.EVAL_JOINTS]
            mp_mpjpe, mp_pa = vm.mpjpe(world, true15), vm.pa_mpjpe(world, true15)
    return ClipResult(name, len(true_joints), scores.mpjpe, scores.pa_mpjpe, skate, truth_skate, scores.jitter,
                      len(pred) / seconds, mp_mpjpe, mp_pa, mp_found, note)


# -- sets, table, ledger -------------------------------------------------------------------

def set_videos(spec: Path, clips: Path) -> tuple[list[Path], list[str]]:
    """The rendered videos of a spec file's clips, and the cameras not rendered yet."""
    data = json.loads(spec.read_text(encoding="utf-8"))
    videos, missing = [], []
    for clip in data["clips"]:
        for cam in clip["cameras"]:
            path = clips / clip["name"] / f"{cam['name']}.mp4"
            (videos if path.is_file() and path.with_suffix(".npz").is_file() else missing).append(
                path if path.is_file() else f"{clip['name']}/{cam['name']}")
    return videos, missing


def set_prompts(spec: Path) -> list[str]:
    """Every text a video set sends to the backend (motion and avatar prompts)."""
    data = json.loads(spec.read_text(encoding="utf-8"))
    return [t for clip in data["clips"] for t in (clip["motion"].get("prompt"), clip["avatar"].get("prompt")) if t]


def holdout_problems(spec: Path) -> list[str]:
    """bench/holdout_check.py's two checks on a video set's prompts (by index, never words)."""
    import holdout_check as hc

    prompts = set_prompts(spec)
    return hc.verbatim_problems(prompts, hc.reference_texts()) + hc.leak_problems(prompts, hc.leak_scan_files())


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def summary(results: list[ClipResult]) -> dict[str, float]:
    keys = ("mpjpe", "pa_mpjpe", "skate", "truth_skate", "jitter", "fps", "mp_mpjpe", "mp_pa_mpjpe", "mp_found")
    out = {k: round(_mean([getattr(r, k) for r in results]), 3) for k in keys}
    out["clips"] = len(results)
    return out


def print_table(title: str, results: list[ClipResult]) -> None:
    head = (f"{'clip':34s} {'frames':>6s} {'MPJPE':>7s} {'PA-MPJPE':>8s} {'skate':>6s} {'(truth)':>7s} "
            f"{'jitter':>6s} {'fps':>6s} | {'MP MPJPE':>8s} {'MP PA':>6s} {'MP found':>8s}")
    print(f"\n{title}\n{head}\n{'-' * len(head)}")
    rows = [(r.clip, r.frames, r.mpjpe, r.pa_mpjpe, r.skate, r.truth_skate, r.jitter, r.fps, r.mp_mpjpe,
             r.mp_pa_mpjpe, r.mp_found, r.note) for r in results]
    m = summary(results)
    rows.append(("mean", sum(r.frames for r in results), m["mpjpe"], m["pa_mpjpe"], m["skate"], m["truth_skate"],
                 m["jitter"], m["fps"], m["mp_mpjpe"], m["mp_pa_mpjpe"], m["mp_found"], ""))
    for c, f, a, pa, s, ts, j, fps, ma, mpa, mf, note in rows:
        print(f"{c:34s} {f:6d} {a:7.1f} {pa:8.1f} {s:6.2f} {ts:7.2f} {j:6.2f} {fps:6.1f} | {ma:8.1f} {mpa:6.1f} "
              f"{mf:8.0%}" + (f"  ({note})" if note else ""))
    print(f"targets: PA-MPJPE <= {TARGETS['pa_mpjpe']:g} mm, skate <= {TARGETS['skate']:g} mm/frame, jitter <= "
          f"{TARGETS['jitter']:g}x the truth's, >= {TARGETS['fps']:g} fps end to end; MPJPE/PA-MPJPE mm, skate "
          "mm/frame (Anny's ankles during contact), fps = solved frames / wall seconds")


def record_holdout_run(spec: Path, figures: dict[str, float], ledger: Path = LEDGER) -> int:
    """Append this hold-out run to the ledger (no prompt words); returns its run number for this content."""
    digest = hashlib.sha256(spec.read_bytes()).hexdigest()[:16]
    lines = ledger.read_text(encoding="utf-8").splitlines() if ledger.is_file() else []
    earlier = [r for r in map(json.loads, filter(None, lines)) if r["sha256"] == digest]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO,
                            check=False).stdout.strip() or "unknown"
    record = {"set": spec.name, "sha256": digest, "commit": commit,
              "utc": datetime.now(timezone.utc).isoformat(timespec="seconds"), "figures": figures}
    with ledger.open("a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")
    if earlier:
        print(f"{spec.name}: run {len(earlier) + 1} of this content; its first run ({earlier[0]['utc']}, commit "
              f"{earlier[0]['commit']}) gave {earlier[0]['figures']}")
    return len(earlier) + 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--set", choices=sorted(SETS), default="dev")
    p.add_argument("--spec", type=Path, help="another clip spec file, run like a dev set (e.g. "
                   "bench/data/video/test_clips.json with --clips tests/data/video)")
    p.add_argument("--clips", type=Path, help=f"rendered clips of the set (default {CLIPS}/<set>)")
    p.add_argument("--only", nargs="*", help="clip/camera names to run (a dev-set convenience)")
    p.add_argument("--target", choices=("anny", "actor"), default="anny",
                   help="the rig the job retargets onto (and takes bone lengths from): Anny's default body, or "
                        "the rendered avatar's own rig (its true proportions)")
    p.add_argument("--save", type=Path, help="write each clip's solved joints here (npz), to look into a figure")
    p.add_argument("--no-baseline", action="store_true", help="skip MediaPipe-alone figures")
    p.add_argument("--check-landmarks", type=Path, nargs="+", metavar="VIDEO",
                   help="only check MediaPipe on rendered videos (found fraction, pixel error)")
    args = p.parse_args()
    import torch

    torch.set_num_threads(2)      # 2 shared cores
    if args.check_landmarks:
        return max(check_landmarks(v) for v in args.check_landmarks)
    spec = args.spec.resolve() if args.spec else SETS[args.set]
    if args.spec and spec == SETS["holdout"].resolve():
        raise SystemExit("run the hold-out set with --set holdout (it is checked and recorded)")
    if args.set == "holdout" and not args.spec:
        problems = holdout_problems(spec)
        if problems:
            print(f"{spec.name} is not held out any more; not run:\n  " + "\n  ".join(problems))
            return 1
    videos, missing = set_videos(spec, args.clips or CLIPS / args.set)
    if args.only:
        videos = [v for v in videos if f"{v.parent.name}/{v.stem}" in args.only or v.parent.name in args.only]
    if missing:
        print(f"not rendered yet (bench/render_clips.py --spec {spec.relative_to(REPO)}): {', '.join(missing)}")
    if not videos:
        return 1
    from avatarforge.backend.motion.target_rigs import default_rig

    default_rig("anny")    # Anny loaded once before timing, as in a running server (the first job loads it)
    results = []
    for video in videos:
        result = score_video(video, baseline=not args.no_baseline, save=args.save, target=args.target)
        print(f"{result.clip}: PA-MPJPE {result.pa_mpjpe:.1f} mm, MPJPE {result.mpjpe:.1f} mm, skate "
              f"{result.skate:.2f} mm/frame, jitter {result.jitter:.2f}x, {result.fps:.1f} fps", flush=True)
        results.append(result)
    print_table(f"{'spec' if args.spec else args.set} set ({spec.relative_to(REPO)}): {len(results)} videos, "
                f"target {args.target}", results)
    if args.set == "holdout" and not args.spec:
        record_holdout_run(spec, {**summary(results), "missing": len(missing), "target": args.target,
                                  "per_clip": [dataclasses.asdict(r) for r in results]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
