"""The `text_motion` job: a prompt in, a Motion out (AvatarCLIP M1 + M2).

Params (normalise validates every field and fills defaults):

    prompt    required text (backend/text/prompt.py rules)
    seconds   duration, 0.5..60 (default 4)
    fps       frame rate, 1..240 (default 30)
    seed      0..2**32-1 (default 0): small variations of the key poses
    encoder   "minilm" (default, tier "minilm") | "clip" (tier "clip": key poses
              are also ranked by CLIP on stick-figure renders, as AvatarCLIP does)
    target    <target rig> (optional): also retarget onto it (motion/retarget.py)

The prompt is cut into an ordered list of actions (text/motion_prompt.py). Each
becomes a segment of the motion: a clip from the user's motion library when one
of its labels matches closely (motion/library.py), a procedural locomotion
cycle (motion/locomotion.py), or an optimised pass through ranked key poses
(motion/keyposes.py + motion/synthesis.py). Segments follow on from each other
(each starts from the pose the previous one ended in).

Simultaneous actions ("walks while waving") play the base segment and layer the
upper-body action's arm (and, when it moves them, upper spine / neck / head)
rotations on it over the same span, faded in and out; leg joints are not
touched, so the base's foot contacts stay exact. Repetition counts ("jumps
three times") play that many cycles in the requested duration, squeezed down to
MIN_PACE of the natural pace at most (fewer repetitions beyond that, recorded
as capped in the segment's "repetitions").
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from avatarforge.protocol import Motion

from ..config import BackendConfig
from ..models.text_encoder import ENCODER_NAMES, TextEncoder, encoder_tiers, encoder_version, load_text_encoder
from ..motion import ops
from ..motion.build import make_motion
from ..motion.skeleton import J
from ..motion.keyposes import KeyPose, authored_keyposes, grounded_trans, keypose, turn_clip, with_heading
from ..motion.locomotion import cycle_period, locomotion
from ..motion.retarget import normalise_target, target_summary
from ..motion.synthesis import KeyTarget, key_pose_track, synthesise
from ..text.motion_prompt import MotionVocabulary, Segment, action_by_name, understand
from ..text.prompt import clean_prompt
from .base import JobContext, Pipeline
from .params import SEED_MAX, bad_field, integer_param, number_param, check_param_names

PARAM_NAMES = ("prompt", "seconds", "fps", "seed", "encoder", "target", "name")
DEFAULTS = {"seconds": 4.0, "fps": 30.0, "seed": 0, "encoder": "minilm"}
SECONDS_RANGE = (0.5, 60.0)
FPS_RANGE = (1.0, 240.0)
NAME_MAX = 63
POSE_MARGIN = 0.03          # candidates within this score of the best are passed through on the way to it
MAX_CANDIDATES = 3
BLEND_SECONDS = 0.25        # cross-fade into a locomotion cycle
OVERLAY_FADE_SECONDS = 0.3  # fade of a layered upper-body action in and out
MIN_PACE = 0.5              # counted repetitions are squeezed down to this fraction of their natural period
SLOW_PACE = 1.5             # ... and stretched up to this much when there is time to spare
# Joints an upper-body action may drive when layered on another motion (legs, pelvis and lower spine never).
OVERLAY_ARMS = ("left_collar", "right_collar", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
                "left_wrist", "right_wrist", "left_hand", "right_hand")
OVERLAY_HEAD = ("spine3", "neck", "head")


@dataclass
class MotionPlan:
    """What the generator made: arrays plus the decisions behind them."""
    rotations: np.ndarray
    trans: np.ndarray
    segments: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


_vocab_lock = threading.Lock()
_vocabularies: dict[tuple[Any, ...], MotionVocabulary] = {}


def motion_vocabulary(encoder: TextEncoder, library: Any = None) -> MotionVocabulary:
    """The (cached) vocabulary of actions and key poses for an encoder, with
    key poses sampled from the motion library when there is one."""
    key = (encoder.name, encoder.version, id(encoder), None if library is None else library.signature)
    with _vocab_lock:
        if key not in _vocabularies:
            poses: list[KeyPose] = list(authored_keyposes())
            if library is not None:
                poses += library.keyposes()
            if encoder.name == "clip":             # AvatarCLIP: key poses also ranked on their renders
                from ..motion.pose_render import ClipMotionVocabulary

                _vocabularies[key] = ClipMotionVocabulary(encoder, poses)
            else:
                _vocabularies[key] = MotionVocabulary(encoder, poses)
        return _vocabularies[key]


def _frame_bounds(weights: list[float], frames: int) -> list[int]:
    """Frame indices 0 = b0 < b1 < ... < bn = frames - 1 splitting the motion by `weights`."""
    total = sum(weights)
    cum = np.cumsum([0.0] + weights) / total
    bounds = [int(round(c * (frames - 1))) for c in cum]
    for i in range(1, len(bounds)):                       # every segment at least one frame step long
        bounds[i] = max(bounds[i], bounds[i - 1] + 1)
    bounds[-1] = frames - 1
    return bounds


def _repeated(keys: tuple[str, ...], count: int) -> list[str]:
    """An action's key poses `count` times in a row. Actions that leave a crouch
    for a final "stand" (jumps) rebound from the crouch between repetitions
    instead of standing up in between (which would read as another bounce)."""
    names = list(keys)
    if count > 1 and names[-1] == "stand" and names[0] != "stand":
        body = names[:-1]
        names = body * count + ["stand"]
        names = [n for i, n in enumerate(names) if i == 0 or n != names[i - 1]]
    else:
        names = names * count
    return names


def _counted_pace(keys_per_rep: int, period: float, count: int, seconds: float,
                  trailing: float = 1.0) -> tuple[int, float]:
    """(repetitions played, period) for `count` repetitions in `seconds`: the
    natural period stretched up to SLOW_PACE, squeezed down to MIN_PACE, and
    fewer repetitions when even that does not fit."""
    pace = min(period * SLOW_PACE, seconds / (keys_per_rep * count + trailing))
    if pace >= period * MIN_PACE:
        return count, pace
    played = max(1, int((seconds / (period * MIN_PACE) - trailing) // keys_per_rep))
    return min(played, count), seconds / (keys_per_rep * min(played, count) + trailing)


def _pose_keys(seg: Segment, vocab: MotionVocabulary, seconds: float) -> tuple[list[KeyTarget], bool, list[str]]:
    """Key poses for a key-pose segment and whether the progress term applies
    (sets seg.count to the repetitions played when a count was asked for)."""
    by_name = {kp.name: kp for kp in vocab.keyposes}
    choice = seg.choice
    if choice.kind == "action":
        action = action_by_name(choice.name)
        names = list(action.keys)
        period = action.period
        if seg.count is not None:
            seg.count, period = _counted_pace(len(names), period, seg.count, seconds)
            names = _repeated(action.keys, seg.count)
            if by_name[names[-1]].airborne:
                names.append(names[0])
            progress = not action.cycle and seg.count == 1
        elif action.cycle:
            per_cycle = len(names) * period
            cycles = max(1, int((seconds - period) // per_cycle))
            if per_cycle + period > seconds:             # even one cycle is too slow: play it faster
                period = seconds / (len(names) + 1)
            names = _repeated(action.keys, cycles)
            if by_name[names[-1]].airborne:              # land before the segment ends
                names.append(names[0])
            progress = False
        else:
            period = min(period, seconds / (len(names) + 0.5))
            progress = True
        keys = [_key(by_name[n], (i + 1) * period) for i, n in enumerate(names)]
    else:
        best = by_name[choice.name]
        if best.airborne:                                 # a pose in the air is a jump into it
            names = ["jump_crouch", "takeoff", best.name, "takeoff", "jump_crouch", "stand"]
            period = min(0.2, seconds / 7)
            return [_key(by_name[n], (i + 1) * period) for i, n in enumerate(names)], False, names
        # Never pass through the best pose's mirror image (the other hand raised...): the prompt named a side.
        mirror = _mirror_name(best.name)
        pose_cands = [c for c in seg.ranked if c.kind == "pose" and c.score >= choice.score - POSE_MARGIN
                      and not by_name[c.name].airborne and c.name != mirror][:MAX_CANDIDATES] if seg.matched else []
        if choice.name not in [c.name for c in pose_cands]:
            pose_cands.insert(0, choice)
        # AvatarCLIP: pass through the candidates, ending on (and holding) the best one.
        ordered = sorted(pose_cands, key=lambda c: c.score)
        names = [c.name for c in ordered]
        reach = min(seconds * 0.45, 1.2)
        step = reach / len(names)
        keys = [_key(by_name[n], (i + 1) * step) for i, n in enumerate(names)]
        progress = True
    last = keys[-1]
    if last.time < seconds - 1e-3:                        # hold the final pose to the end
        keys.append(KeyTarget(seconds, last.rotations, last.planted, False, 0.5, last.name))
    keys = [k for k in keys if k.time <= seconds + 1e-6]
    return keys, progress, names


def _mirror_name(name: str) -> str:
    for a, b in (("left", "right"), ("right", "left")):
        if a in name:
            return name.replace(a, b)
    return name


def _key(kp: KeyPose, time_s: float) -> KeyTarget:
    return KeyTarget(time_s, kp.rotations, kp.planted, kp.airborne, 1.0, kp.name)


def generate_motion(prompt: str, seconds: float, fps: float, seed: int, vocab: MotionVocabulary,
                    library: Any = None, progress: Any = None) -> MotionPlan:
    """The motion for a (clean) prompt: segments understood, generated one after another and joined."""
    t0 = time.perf_counter()
    segments = understand(prompt, vocab)
    t_understand = time.perf_counter() - t0
    frames = max(int(round(seconds * fps)) + 1, 2)     # at least a start and an end
    segments = segments[:frames - 1]                  # at most one action per frame step
    bounds = _frame_bounds([s.weight for s in segments], frames)
    stand = keypose("stand").rotations
    rot: np.ndarray | None = None
    trans: np.ndarray | None = None
    heading = 0.0                                         # radians the body has turned (turn actions)
    summaries = []
    for i, seg in enumerate(segments):
        n = bounds[i + 1] - bounds[i]                     # frame steps in this segment
        dur = n / fps
        first = 0 if rot is None else len(rot) - 1        # this segment's first frame
        clip = library.match(seg.text, vocab.encoder) if library is not None else None
        if clip is not None and clip.score >= seg.choice.score:     # ties: its own sampled poses
            summary = seg.summary()
            summary.update(action=clip.name, kind="clip", score=round(clip.score, 4))
            part_r, part_t = turn_clip(*library.clip_frames(clip.name, fps, n + 1), heading)
            rot, trans = _append_blended(rot, trans, part_r, part_t, fps)
        elif seg.choice.kind == "gait":
            blend = 0 if rot is None else max(1, int(round(BLEND_SECONDS * fps)))
            gait = action_by_name(seg.choice.name).gait or "walk"
            steps = n
            if seg.count is not None:                 # "hops twice": that many cycles, then stand
                cycle = cycle_period(gait, seg.speed)
                seg.count, pace = _counted_pace(1, cycle, seg.count, dur, trailing=0.0)
                steps = min(n, max(1, int(round(seg.count * pace * fps))))
                speed = seg.speed * cycle / pace      # a squeezed cycle is a faster one
            else:
                speed = seg.speed
            loco = locomotion(gait, (steps + blend) / fps, fps, speed)
            summary = seg.summary()
            summary["speed_mps"] = round(loco.speed, 3)
            loco_r, loco_t = turn_clip(loco.rotations, loco.trans, heading)
            if rot is None:
                rot, trans = loco_r, loco_t
            else:
                rot, trans = ops.concatenate([(rot, trans), (loco_r, loco_t)], blend_frames=blend)
            if steps < n:                             # settle into standing for the rest of the segment
                rest = n - steps
                stand_at = min(0.6, 0.8 * rest / fps)
                start = (with_heading(rot[-1], -heading), np.asarray(trans[-1], np.float64))
                synth = synthesise([_key(keypose("stand"), stand_at)], rest / fps, fps, start=start, seed=seed + i)
                part_r, part_t = turn_clip(synth.rotations, synth.trans, heading)
                rot = np.concatenate([rot, part_r[1:]])
                trans = np.concatenate([trans, part_t[1:]])
        else:
            # Key-pose segments are made facing the default way (-Y) from the start pose
            # turned back by the heading, then turned to the heading (no axis-angle wrap-around).
            start_rot, start_trans = (stand, grounded_trans(stand)) if rot is None else (rot[-1], trans[-1])
            start = (with_heading(start_rot, -heading), np.asarray(start_trans, np.float64))
            turn = action_by_name(seg.choice.name).turn if seg.choice.kind == "action" else 0.0
            if turn:
                if seg.count is not None:             # "spins twice": that many turns
                    turn *= seg.count
                part_r, part_t = _turn_in_place(start, np.radians(turn), n, fps)
                summary = seg.summary()
                summary["key_poses"] = ["stand"]
            else:
                keys, use_progress, names = _pose_keys(seg, vocab, dur)
                summary = seg.summary()
                synth = synthesise(keys, dur, fps, start=start, progress=use_progress, seed=seed + i)
                part_r, part_t = synth.rotations, synth.trans
                summary["key_poses"] = names
                summary["losses"] = {k: round(v, 6) for k, v in synth.losses.items()}
            part_r, part_t = turn_clip(part_r, part_t, heading)
            heading += np.radians(turn)
            if rot is None:
                rot, trans = part_r, part_t
            else:
                rot = np.concatenate([rot, part_r[1:]])
                trans = np.concatenate([trans, part_t[1:]])
        if seg.overlay is not None:
            rot, overlay_names = _layer_upper_body(rot, first, seg.overlay, vocab, fps, fade_out=i + 1 < len(segments))
            summary["overlay"] = seg.overlay.summary() | {"key_poses": overlay_names}
        summaries.append(summary)
        if progress is not None:
            progress((i + 1) / len(segments), f"motion: {summary['action']}")
    assert rot is not None and trans is not None
    rot, trans = rot[:frames], trans[:frames]
    summaries[-1]["final_heading_deg"] = round(float(np.degrees(heading)), 2)
    return MotionPlan(np.asarray(rot, np.float32), np.asarray(trans, np.float32), summaries,
                      {"understand_s": round(t_understand, 4), "total_s": round(time.perf_counter() - t0, 4)})


def _layer_upper_body(rot: np.ndarray, first: int, overlay: Segment, vocab: MotionVocabulary, fps: float,
                      fade_out: bool) -> tuple[np.ndarray, list[str]]:
    """`rot` with the upper-body action `overlay` played over frames `first`..end:
    its key poses eased from one to the next, faded in (and out when another
    segment follows) over the arm joints it moves (upper spine, neck and head
    too when it moves them). Only joints below no foot change: contacts stay.
    Also returns the overlay's key-pose names."""
    from ..motion import rotations

    out = np.array(rot, dtype=np.float64, copy=True)
    frames = len(out) - first
    dur = (frames - 1) / fps
    keys, _, names = _pose_keys(overlay, vocab, max(dur, 1.0 / fps))
    track = key_pose_track(keys, np.arange(frames) / fps)
    stand = keypose("stand").rotations
    moved = np.degrees(np.linalg.norm(track - stand, axis=-1)).max(axis=0) > 5.0
    joints = [J[n] for n in OVERLAY_ARMS if moved[J[n]]] + [J[n] for n in OVERLAY_HEAD if moved[J[n]]]
    if not joints:
        return out, names
    t = np.arange(frames) / fps
    fade = max(OVERLAY_FADE_SECONDS, 1.0 / fps)
    w = np.clip(t / fade, 0.0, 1.0)
    if fade_out:
        w = np.minimum(w, np.clip((dur - t) / fade, 0.0, 1.0))
    w = w * w * (3 - 2 * w)
    seg = out[first:]
    seg[:, joints] = rotations.slerp_axis_angle(seg[:, joints], track[:, joints], w[:, None] * np.ones(len(joints)))
    return out, names


def _turn_in_place(start: tuple[np.ndarray, np.ndarray], yaw: float, steps: int,
                   fps: float) -> tuple[np.ndarray, np.ndarray]:
    """A turn on the spot by `yaw` radians over `steps` frame steps: the body
    settles into the standing pose while its pelvis yaws along an eased curve
    (composed as matrices: any angle, no wrap-around)."""
    from ..motion import rotations

    stand = keypose("stand").rotations
    u = np.arange(steps + 1) / max(steps, 1)
    ease = u * u * (3 - 2 * u)
    settle = np.clip(u / 0.3, 0.0, 1.0)
    pose_ = rotations.slerp_axis_angle(np.repeat(np.asarray(start[0], np.float64)[None], len(u), 0),
                                       np.repeat(stand[None], len(u), 0), settle[:, None] * np.ones(24))
    rot = np.stack([with_heading(p, yaw * e) for p, e in zip(pose_, ease)])
    trans = np.repeat(np.asarray(start[1], np.float64)[None], len(u), 0)
    trans[:, 2] += (grounded_trans(stand)[2] - trans[0, 2]) * settle
    return rot.astype(np.float32), trans.astype(np.float32)


def _append_blended(rot: np.ndarray | None, trans: np.ndarray | None, part_r: np.ndarray, part_t: np.ndarray,
                    fps: float) -> tuple[np.ndarray, np.ndarray]:
    """A library clip after what came before: moved to start where it ended, cross-faded in."""
    if rot is None:
        return part_r, part_t
    blend = min(max(1, int(round(BLEND_SECONDS * fps))), len(part_r) - 1)
    extra_r = np.concatenate([part_r[:1].repeat(blend, 0), part_r])  # keep the length: the fade eats `blend` frames
    extra_t = np.concatenate([part_t[:1].repeat(blend, 0), part_t])
    out_r, out_t = ops.concatenate([(rot, trans), (extra_r, extra_t)], blend_frames=blend)
    return out_r[:len(rot) + len(part_r) - 1], out_t[:len(rot) + len(part_r) - 1]


class TextMotionPipeline(Pipeline):
    name = "text_motion"
    version = "2"   # bump when the same request would move differently (part of the store key)

    def tiers(self, config: BackendConfig) -> dict[str, dict[str, Any]]:
        return encoder_tiers(config)

    def tier_of(self, params: dict[str, Any]) -> str | None:
        return params["encoder"]

    def model_versions(self, params: dict[str, Any], config: BackendConfig) -> dict[str, str]:
        from ..motion.library import open_library

        versions = {self.name: self.version, "encoder": params["encoder"],
                    "encoder_version": encoder_version(params["encoder"], config)}
        library = open_library(config)
        if library is not None:
            versions["motion_library"] = library.signature
        return versions

    def normalise(self, params: dict[str, Any], config: BackendConfig) -> dict[str, Any]:
        check_param_names(params, PARAM_NAMES, "text_motion")
        if "prompt" not in params:
            raise bad_field("prompt", "is required: describe the motion, e.g. \"waves hello, then jumps\"")
        out: dict[str, Any] = {"prompt": clean_prompt(params["prompt"])}
        out["seconds"] = number_param("seconds", params.get("seconds", DEFAULTS["seconds"]), *SECONDS_RANGE)
        out["fps"] = number_param("fps", params.get("fps", DEFAULTS["fps"]), *FPS_RANGE)
        out["seed"] = integer_param("seed", params.get("seed", DEFAULTS["seed"]), 0, SEED_MAX)
        encoder = params.get("encoder", DEFAULTS["encoder"])
        if encoder not in ENCODER_NAMES:
            raise bad_field("encoder", f"must be one of {', '.join(ENCODER_NAMES)}, got {encoder!r}")
        out["encoder"] = encoder
        out["target"] = normalise_target(params.get("target"))
        name = params.get("name", "text_motion")
        if not isinstance(name, str) or not name.strip() or len(name) > NAME_MAX or not name.isprintable():
            raise bad_field("name", f"must be a non-empty printable string of at most {NAME_MAX} characters")
        out["name"] = name.strip()
        return out

    def run(self, params: dict[str, Any], ctx: JobContext) -> list[Motion]:
        from ..motion.library import open_library

        ctx.progress(0.02, "loading the text encoder")
        encoder = load_text_encoder(params["encoder"], ctx.config, ctx.device)
        library = open_library(ctx.config)
        vocab = motion_vocabulary(encoder, library)
        ctx.progress(0.1, "understanding the prompt")
        plan = generate_motion(params["prompt"], params["seconds"], params["fps"], params["seed"], vocab, library,
                               progress=lambda f, stage: ctx.progress(0.1 + 0.8 * f, stage))
        ctx.progress(0.92, "building the motion")
        motion_params = {k: v for k, v in params.items() if k != "target"}
        motion_params["target"] = target_summary(params["target"])
        motion_params["text"] = {"prompt": params["prompt"], "segments": plan.segments}
        provenance = {"pipeline": self.name, "version": self.version, "encoder": encoder.name,
                      "encoder_version": encoder.version, "seed": params["seed"], "timings": plan.timings,
                      "motion_library": None if library is None else library.signature}
        motion = make_motion(params["name"], params["fps"], plan.rotations, plan.trans, motion_params, provenance,
                             target=params["target"])
        ctx.progress(1.0, "done")
        return [motion]

