"""Text -> motion composition (AvatarCLIP M1 + M2): a prompt's segments
(vocabulary.understand) played one after another on the SMPL-24 skeleton.

Each segment becomes a part of the motion: a clip from the user's motion
library when one of its labels matches closely (library.py), a procedural
locomotion cycle (locomotion.py), a turn on the spot, or an optimised pass
through ranked key poses (keyposes.py + synthesis.py). Parts follow on from
each other (each starts from the pose the previous one ended in) and turn
with the heading the turns so far left the body at.

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
from typing import Any, Callable, Sequence

import numpy as np

from ..core import rotations
from ..core.phrases import Phrase
from ..models.text_encoder import TextEncoder
from . import ops
from .keyposes import KeyPose, authored_keyposes, grounded_trans, keypose, turn_clip, with_heading
from .locomotion import cycle_period, locomotion
from .skeleton import J, NUM_JOINTS
from .synthesis import KeyTarget, key_pose_track, synthesise
from .vocabulary import MotionVocabulary, Segment, action_by_name, understand

POSE_MARGIN = 0.03          # candidates within this score of the best are passed through on the way to it
MAX_CANDIDATES = 3
BLEND_SECONDS = 0.25        # cross-fade into a locomotion cycle or a library clip
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


def motion_vocabulary(encoder: TextEncoder, neutral: str, library: Any = None) -> MotionVocabulary:
    """The (cached) vocabulary of actions and key poses for an encoder, with key
    poses sampled from the motion library when there is one; the CLIP encoder's
    also ranks key poses on their renders, as AvatarCLIP does."""
    key = (encoder.name, encoder.version, id(encoder), neutral, None if library is None else library.signature)
    with _vocab_lock:
        if key not in _vocabularies:
            poses: list[KeyPose] = list(authored_keyposes())
            if library is not None:
                poses += library.keyposes()
            if encoder.name == "clip":
                from .pose_render import ClipMotionVocabulary

                _vocabularies[key] = ClipMotionVocabulary(encoder, poses, neutral)
            else:
                _vocabularies[key] = MotionVocabulary(encoder, poses, neutral)
        return _vocabularies[key]


@dataclass
class _Track:
    """The motion so far and the way the body faces after it (radians, + to its left)."""
    rot: np.ndarray | None = None
    trans: np.ndarray | None = None
    heading: float = 0.0

    def last_frame(self) -> int:
        return 0 if self.rot is None else len(self.rot) - 1

    def start_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """The pose the next part starts from, turned back to face the default way (-Y):
        parts are made facing it, then turned to the heading (no axis-angle wrap-around)."""
        if self.rot is None:
            stand = keypose("stand").rotations
            return stand, grounded_trans(stand)
        return with_heading(self.rot[-1], -self.heading), np.asarray(self.trans[-1], np.float64)

    def follow(self, part_r: np.ndarray, part_t: np.ndarray) -> None:
        """A part made from start_pose, turned to the heading, after what came before
        (its first frame is the last one so far)."""
        part_r, part_t = turn_clip(part_r, part_t, self.heading)
        if self.rot is None:
            self.rot, self.trans = part_r, part_t
        else:
            self.rot = np.concatenate([self.rot, part_r[1:]])
            self.trans = np.concatenate([self.trans, part_t[1:]])


def motion_from_phrases(phrases: Sequence[Phrase], seconds: float, fps: float, seed: int, vocab: MotionVocabulary,
                        library: Any = None, progress: Callable[[float, str], None] | None = None) -> MotionPlan:
    """The motion for a read prompt (text/motion_prompt.read_motion_prompt): its
    segments understood, generated one after another and joined."""
    t0 = time.perf_counter()
    segments = understand(phrases, vocab)
    t_understand = time.perf_counter() - t0
    frames = max(int(round(seconds * fps)) + 1, 2)     # at least a start and an end
    segments = segments[:frames - 1]                  # at most one action per frame step
    bounds = _frame_bounds([s.weight for s in segments], frames)
    track = _Track()
    summaries = []
    for i, seg in enumerate(segments):
        first = track.last_frame()
        summary = _play_segment(track, seg, bounds[i + 1] - bounds[i], fps, seed + i, vocab, library)
        if seg.overlay is not None:
            track.rot, overlay_names = _layer_upper_body(track.rot, first, seg.overlay, vocab, fps,
                                                         fade_out=i + 1 < len(segments))
            summary["overlay"] = seg.overlay.summary() | {"key_poses": overlay_names}
        summaries.append(summary)
        if progress is not None:
            progress((i + 1) / len(segments), f"motion: {summary['action']}")
    assert track.rot is not None and track.trans is not None
    summaries[-1]["final_heading_deg"] = round(float(np.degrees(track.heading)), 2)
    return MotionPlan(np.asarray(track.rot[:frames], np.float32), np.asarray(track.trans[:frames], np.float32),
                      summaries, {"understand_s": round(t_understand, 4),
                                  "total_s": round(time.perf_counter() - t0, 4)})


def _play_segment(track: _Track, seg: Segment, steps: int, fps: float, seed: int, vocab: MotionVocabulary,
                  library: Any) -> dict[str, Any]:
    """Appends `steps` frame steps of the segment to the track; returns its summary."""
    clip = library.match(seg.text, vocab.encoder) if library is not None else None
    if clip is not None and clip.score >= seg.choice.score:     # ties: its own sampled poses
        summary = seg.summary() | {"action": clip.name, "kind": "clip", "score": round(clip.score, 4)}
        part_r, part_t = turn_clip(*library.clip_frames(clip.name, fps, steps + 1), track.heading)
        track.rot, track.trans = _append_blended(track.rot, track.trans, part_r, part_t, fps)
        return summary
    if seg.choice.kind == "gait":
        return _play_gait(track, seg, steps, fps, seed)
    if seg.turn:
        return _play_turn(track, seg, steps, fps)
    return _play_key_poses(track, seg, steps, fps, seed, vocab)


def _play_gait(track: _Track, seg: Segment, steps: int, fps: float, seed: int) -> dict[str, Any]:
    """A locomotion cycle cross-faded in; with a count ("hops twice") that many
    cycles, then settling into standing for the rest of the segment."""
    blend = 0 if track.rot is None else max(1, int(round(BLEND_SECONDS * fps)))
    gait = action_by_name(seg.choice.name).gait or "walk"
    moving, speed = steps, seg.speed
    if seg.count is not None:
        cycle = cycle_period(gait, seg.speed)
        seg.count, pace = _counted_pace(1, cycle, seg.count, steps / fps, trailing=0.0)
        moving = min(steps, max(1, int(round(seg.count * pace * fps))))
        speed = seg.speed * cycle / pace      # a squeezed cycle is a faster one
    loco = locomotion(gait, (moving + blend) / fps, fps, speed)
    summary = seg.summary() | {"speed_mps": round(loco.speed, 3)}
    loco_r, loco_t = turn_clip(loco.rotations, loco.trans, track.heading)
    if track.rot is None:
        track.rot, track.trans = loco_r, loco_t
    else:
        track.rot, track.trans = ops.concatenate([(track.rot, track.trans), (loco_r, loco_t)], blend_frames=blend)
    if moving < steps:
        rest = steps - moving
        synth = synthesise([_key(keypose("stand"), min(0.6, 0.8 * rest / fps))], rest / fps, fps,
                           start=track.start_pose(), seed=seed)
        track.follow(synth.rotations, synth.trans)
    return summary


def _play_turn(track: _Track, seg: Segment, steps: int, fps: float) -> dict[str, Any]:
    """A turn on the spot ("spins twice": that many turns); later parts face the new way."""
    turn = seg.turn * (seg.count or 1)
    track.follow(*_turn_in_place(track.start_pose(), np.radians(turn), steps, fps))
    track.heading += np.radians(turn)
    return seg.summary() | {"key_poses": ["stand"]}


def _play_key_poses(track: _Track, seg: Segment, steps: int, fps: float, seed: int,
                    vocab: MotionVocabulary) -> dict[str, Any]:
    """An optimised pass through the segment's key poses (AvatarCLIP M2)."""
    dur = steps / fps
    keys, use_progress, names = _pose_keys(seg, vocab, dur)
    summary = seg.summary()
    synth = synthesise(keys, dur, fps, start=track.start_pose(), progress=use_progress, seed=seed)
    track.follow(synth.rotations, synth.trans)
    return summary | {"key_poses": names, "losses": {k: round(v, 6) for k, v in synth.losses.items()}}


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
        mirror = best.mirror if best.side else None
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


def _key(kp: KeyPose, time_s: float) -> KeyTarget:
    return KeyTarget(time_s, kp.rotations, kp.planted, kp.airborne, 1.0, kp.name)


def _layer_upper_body(rot: np.ndarray, first: int, overlay: Segment, vocab: MotionVocabulary, fps: float,
                      fade_out: bool) -> tuple[np.ndarray, list[str]]:
    """`rot` with the upper-body action `overlay` played over frames `first`..end:
    its key poses eased from one to the next, faded in (and out when another
    segment follows) over the arm joints it moves (upper spine, neck and head
    too when it moves them). Only joints below no foot change: contacts stay.
    Also returns the overlay's key-pose names."""
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
    stand = keypose("stand").rotations
    u = np.arange(steps + 1) / max(steps, 1)
    ease = u * u * (3 - 2 * u)
    settle = np.clip(u / 0.3, 0.0, 1.0)
    pose_ = rotations.slerp_axis_angle(np.repeat(np.asarray(start[0], np.float64)[None], len(u), 0),
                                       np.repeat(stand[None], len(u), 0), settle[:, None] * np.ones(NUM_JOINTS))
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
