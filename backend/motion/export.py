"""Exports of any Motion (video, text or file): BVH (on the SMPL-24 reference
skeleton or on a target rig), AMASS-style .npz, and the rig + tracks the glTF
writer (formats/gltf.py) animates.

BVH conventions (what Blender's importer, MotionBuilder and the CMU/Mixamo
conversions read):
- Y up, the body facing +Z (converted once from our Z-up world: core/axes).
- Offsets and positions in centimetres by default (`unit="cm"`, the unit of
  the common BVH libraries and of MotionBuilder); `unit="m"` writes metres.
  Blender's BVH importer takes file units as metres: import a cm file with
  Scale 0.01 (our own importer, motion/bvh.py, detects either unit).
- Rotation channels "Zrotation Xrotation Yrotation" (intrinsic ZXY, degrees:
  R = Rz·Rx·Ry, CMU's order) on every joint; the root (and a rig's root-motion
  bone when it is not the root) has 6 channels, positions first.
- Joint frames are world-aligned at rest (BVH has no rest orientation), so a
  pose bone's quaternion Q_b, relative to its rest frame P_b (Blender's
  `rotation_quaternion`), becomes the BVH local rotation P_b·Q_b·P_bᵀ; the
  world rotation of a joint is then the product of those down its chain, as
  BVH readers compute it. Joint names are SMPL's on the reference skeleton
  (our importer's "smpl" naming) or the rig's bone names (whitespace -> "_").
- Leaf joints get an End Site continuing their bone (half its length).
- Euler angles are kept continuous over time (the equivalent solution and
  multiples of 360° nearest the previous frame), so a player interpolating
  between frames never spins the long way round.

AMASS .npz (`amass_npz_bytes`) is the exact inverse of motion/amass.py's
reader: poses in SMPL-H (156) or SMPL (72) layout, the root orientation in
AMASS's Z-up world, trans = pelvis - J_pelvis. AMASS's trans is the body
model's translation, not the pelvis position: SMPL turns the body about its
model-space pelvis J_pelvis and then adds trans, so the pelvis sits at
trans + J_pelvis, un-rotated: ~(-0.002, -0.223, 0.028) m for the neutral mean
shape, a constant 22 cm horizontal offset in AMASS's Z-up world. We subtract
the reference skeleton's J_pelvis, which our reader adds back (round trip
exact); a tool that reads trans as the pelvis sees that constant offset, and
one that poses a real SMPL-H body of another shape puts the pelvis where that
body's J_pelvis says (millimetres to a couple of centimetres away).

The dispatcher `write_motion` writes .bvh and .npz here; glTF is
formats/gltf.py's (a domain area does not import another): pass its writer as
`glb_writer` (the spine does), which receives the rig and tracks
`export_rig` resolves.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from avatarforge.protocol import ErrorCode, Motion, ProtocolError, RetargetedTracks, Skeleton
from avatarforge.protocol.artifacts import FPS_RANGE, MAX_MOTION_FRAMES

from ..core import rotations as rot
from ..core.axes import Z_UP_TO_Y_UP, z_up_to_y_up
from . import rigs
from .retarget import retarget
from .skeleton import REST_ROTATION, model_space_pelvis, reference_skeleton
from .target_rigs import REFERENCE_RIG, TargetRig, resolve_target
from .targets import normalise_target

BVH_SUFFIX, NPZ_SUFFIX, GLB_SUFFIXES = ".bvh", ".npz", (".glb", ".gltf")
SUFFIXES = (BVH_SUFFIX, NPZ_SUFFIX) + GLB_SUFFIXES
BVH_UNITS = {"cm": 100.0, "m": 1.0}            # file units per metre
BVH_ORDER = "ZXY"
BVH_DECIMALS = 6                               # 1e-6 cm / 1e-6 degrees: far below a millimetre
END_SITE_FRACTION = 0.5                        # of the parent bone's length
MIN_END_SITE_M = 0.02
AMASS_LAYOUTS = {"smplh": 52, "smpl": 24}      # joints per frame of each pose layout
_HAND_MIDDLE1 = 3                              # middle1 within a 15-joint SMPL-H hand (amass.py reads it)
AMASS_BETAS = {"smplh": 16, "smpl": 10}
AMASS_DMPLS = 8
# The writer of .glb/.gltf (formats.gltf.write_animation_glb's signature).
GlbWriter = Callable[..., Path]


def _bad(field: str, message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_REQUEST, f"{field}: {message}", field=field)


@dataclass
class ExportRig:
    """The skeleton an export is written on (Z up, metres: bone rest frames as
    Blender's `bone.matrix_local`) and the motion's pose-bone tracks on it."""
    skeleton: Skeleton
    tracks: RetargetedTracks


def check_motion(motion: Any) -> Motion:
    """`motion` if it is a Motion with at least one finite frame; else BAD_REQUEST naming what is wrong."""
    if not isinstance(motion, Motion):
        raise _bad("motion", f"must be a Motion artifact, got {type(motion).__name__}")
    r, t = np.asarray(motion.rotations), np.asarray(motion.trans)
    if r.ndim != 3 or r.shape[1:] != (24, 3) or len(r) == 0:
        raise _bad("motion.rotations", f"must be (T, 24, 3) axis-angle with T >= 1 frames; got shape {r.shape}: "
                   "an empty motion has nothing to export")
    if len(r) > MAX_MOTION_FRAMES:
        raise _bad("motion.rotations", f"at most {MAX_MOTION_FRAMES} frames, got {len(r)}")
    if t.shape != (len(r), 3):
        raise _bad("motion.trans", f"must be ({len(r)}, 3), one pelvis position per frame; got {t.shape}")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(t))):
        raise _bad("motion", "rotations and trans must be finite (no NaN or infinity)")
    if not FPS_RANGE[0] <= float(motion.fps) <= FPS_RANGE[1]:
        raise _bad("motion.fps", f"must be in [{FPS_RANGE[0]:g}, {FPS_RANGE[1]:g}], got {motion.fps!r}")
    return motion


# -- the rig and tracks an export is written on ------------------------------------------------------
def _rig_of(target_rig: TargetRig | dict[str, Any] | str) -> TargetRig:
    if isinstance(target_rig, TargetRig):
        return target_rig
    return resolve_target(normalise_target(target_rig, "target_rig"), "target_rig")


def export_rig(motion: Motion, target_rig: TargetRig | dict[str, Any] | str | None = None) -> ExportRig:
    """The skeleton and tracks to write. No target: the motion's own SMPL-24
    reference skeleton (rest_skeleton) and its tracks on it (the Motion's
    `retargeted` when they are the reference rig's, else made here). A target
    rig (a TargetRig, a <target rig> param such as "anny" or {preset,
    bone_names, parents, rest_matrices, map}): the motion retargeted onto it
    here, so the tracks always belong to the rig written."""
    check_motion(motion)
    if target_rig is None:
        skeleton = motion.rest_skeleton if motion.rest_skeleton is not None else reference_skeleton()
        if motion.retargeted is not None and motion.retargeted.rig == REFERENCE_RIG:
            return ExportRig(skeleton, motion.retargeted)
        names = list(skeleton.joint_names)
        rig = TargetRig(REFERENCE_RIG, names, skeleton.parents.astype(np.int64),
                        skeleton.rest_matrices.astype(np.float64), rigs.preset_map("smpl", names), verbatim=True)
    else:
        rig = _rig_of(target_rig)
        skeleton = Skeleton(list(rig.bone_names), np.asarray(rig.parents, np.int32),
                            np.asarray(rig.rest, np.float32))
    return ExportRig(skeleton, retarget(motion.rotations, motion.trans, rig, motion.contacts))


def full_pose(tracks: RetargetedTracks, bone_names: list[str]) -> np.ndarray:
    """(T, B, 4) w, x, y, z pose quaternions of every bone of the rig (undriven ones identity)."""
    index = {n: i for i, n in enumerate(bone_names)}
    absent = [n for n in tracks.bone_names if n not in index]
    if absent or tracks.root_bone not in index:
        shown = ", ".join((absent or [tracks.root_bone])[:10])
        raise _bad("target_rig", f"the tracks drive bones the rig lacks: {shown}")
    q = np.zeros((len(tracks.rotations), len(bone_names), 4))
    q[..., 0] = 1.0
    q[:, [index[n] for n in tracks.bone_names]] = tracks.rotations
    return q


# -- BVH -----------------------------------------------------------------------------------------------
@dataclass
class _BvhRig:
    names: list[str]
    parents: list[int]
    offsets: np.ndarray          # (K, 3) file axes and units (the root's: its rest position)
    end_sites: dict[int, np.ndarray]
    located: int                 # the joint with position channels besides the root (-1: none)


def _depth_first(parents: np.ndarray, root: int) -> list[int]:
    """root and every bone below it in depth-first order, children in rig order:
    the order a BVH hierarchy lists joints, hence the order of a frame's channels."""
    children: dict[int, list[int]] = {}
    for k, p in enumerate(parents):
        children.setdefault(int(p), []).append(k)
    out: list[int] = []
    stack = [root]
    while stack:
        k = stack.pop()
        out.append(k)
        stack.extend(reversed(children.get(k, [])))
    return out


def _top(parents: np.ndarray, i: int) -> int:
    while parents[i] >= 0:
        i = int(parents[i])
    return i


def _bvh_names(names: list[str]) -> list[str]:
    """Bone names as BVH tokens: whitespace becomes "_" (a BVH name is one word)."""
    out = ["_".join(n.split()) or "_" for n in names]
    out = [n if n not in ("{", "}") else f"_{n}_" for n in out]
    twice = sorted({n for n in out if out.count(n) > 1})
    if twice:
        raise _bad("target_rig.bone_names", f"bone names {twice[:5]} collide once whitespace is replaced by '_' "
                   "(BVH names are single words); rename those bones")
    return out


def _end_site(rest_heads: np.ndarray, rest_rot: np.ndarray, parent: int, i: int) -> np.ndarray:
    """A leaf's End Site offset (Z up, metres): its bone continued, else its rest Y axis (Blender's bone axis)."""
    bone = rest_heads[i] - rest_heads[parent] if parent >= 0 else np.zeros(3)
    length = float(np.linalg.norm(bone))
    if length > 1e-6:
        return bone / length * max(END_SITE_FRACTION * length, MIN_END_SITE_M)
    return rest_rot[i][:, 1] * max(MIN_END_SITE_M, 0.05)


def bvh_text(motion: Motion, target_rig: TargetRig | dict[str, Any] | str | None = None, unit: str = "cm") -> str:
    """The motion as BVH text on the SMPL-24 reference skeleton, or on `target_rig`
    (see export_rig); conventions in the module docstring."""
    if unit not in BVH_UNITS:
        raise _bad("unit", f"must be one of {', '.join(BVH_UNITS)}, got {unit!r}")
    rig = export_rig(motion, target_rig)
    return _bvh_from_tracks(rig.skeleton, rig.tracks, float(motion.fps), BVH_UNITS[unit])


def _bvh_from_tracks(skeleton: Skeleton, tracks: RetargetedTracks, fps: float, per_metre: float) -> str:
    parents_all = np.asarray(skeleton.parents, np.int64)
    rest = np.asarray(skeleton.rest_matrices, np.float64)
    names_all = list(skeleton.joint_names)
    q = full_pose(tracks, names_all)
    located_all = names_all.index(tracks.root_bone)
    # BVH has one ROOT: the tree holding the root-motion bone (other roots are controls, props...).
    keep = _depth_first(parents_all, _top(parents_all, located_all))
    new = {old: k for k, old in enumerate(keep)}
    parents = [new[int(parents_all[i])] if parents_all[i] >= 0 else -1 for i in keep]
    heads, P, q = rest[keep, :3, 3], rest[keep][:, :3, :3], q[:, keep]
    located = new[located_all]
    offsets = heads.copy()
    offsets[1:] -= heads[[parents[k] for k in range(1, len(keep))]]
    leaves = set(range(len(keep))) - set(parents)
    ends = {k: _end_site(heads, P, parents[k], k) for k in sorted(leaves)}

    # Rotations: BVH local = P·Q·Pᵀ in our axes, C·(P·Q·Pᵀ)·Cᵀ in the file's Y-up axes.
    C = Z_UP_TO_Y_UP
    local = C @ P @ rot.quat_to_matrix(q) @ np.swapaxes(P, -1, -2) @ C.T          # (T, K, 3, 3)
    euler = continuous_euler(rot.matrix_to_euler(BVH_ORDER, local))              # (T, K, 3) degrees
    # Positions: the root's head; a located non-root bone's head relative to its parent's BVH frame.
    loc = np.asarray(tracks.root_locations, np.float64) @ P[located].T             # P·location, armature axes
    root_pos = heads[0] + (loc if located == 0 else 0.0)
    columns = [np.broadcast_to(z_up_to_y_up(root_pos) * per_metre, (len(q), 3)), euler[:, 0]]
    for k in range(1, len(keep)):
        if k == located:
            columns.append(z_up_to_y_up(offsets[k] + loc) * per_metre)
        columns.append(euler[:, k])
    values = np.concatenate(columns, axis=1)
    bvh = _BvhRig(_bvh_names([names_all[i] for i in keep]), parents,
                  z_up_to_y_up(offsets) * per_metre,
                  {k: z_up_to_y_up(e) * per_metre for k, e in ends.items()}, located if located else -1)
    return _hierarchy(bvh) + _motion_section(values, fps)


def _hierarchy(rig: _BvhRig) -> str:
    children: dict[int, list[int]] = {k: [] for k in range(len(rig.names))}
    for k, p in enumerate(rig.parents):
        if p >= 0:
            children[p].append(k)
    rotation = " ".join(f"{a}rotation" for a in BVH_ORDER)
    f = f"{{:.{BVH_DECIMALS}f}}"
    out = ["HIERARCHY"]
    # Iterative (a rig may be deep) walk emitting opening lines, children, then the closing brace.
    stack: list[tuple[int, int, bool]] = [(0, 0, False)]
    while stack:
        k, depth, closing = stack.pop()
        pad = "\t" * depth
        if closing:
            if not children[k]:
                e = rig.end_sites[k]
                out += [f"{pad}\tEnd Site", f"{pad}\t{{", f"{pad}\t\tOFFSET " + " ".join(f.format(v) for v in e),
                        f"{pad}\t}}"]
            out.append(f"{pad}}}")
            continue
        out.append(f"{pad}{'ROOT' if rig.parents[k] < 0 else 'JOINT'} {rig.names[k]}")
        out.append(f"{pad}{{")
        out.append(f"{pad}\tOFFSET " + " ".join(f.format(v) for v in rig.offsets[k]))
        six = k == 0 or k == rig.located
        out.append(f"{pad}\tCHANNELS {6 if six else 3} " + ("Xposition Yposition Zposition " if six else "")
                   + rotation)
        stack.append((k, depth, True))
        stack.extend((c, depth + 1, False) for c in reversed(children[k]))
    return "\n".join(out) + "\n"


def _motion_section(values: np.ndarray, fps: float) -> str:
    buf = io.StringIO()
    buf.write(f"MOTION\nFrames: {len(values)}\nFrame Time: {1.0 / fps:.10f}\n")
    np.savetxt(buf, values, fmt=f"%.{BVH_DECIMALS}f", delimiter=" ")
    return buf.getvalue()


def continuous_euler(euler: np.ndarray, degrees: bool = True) -> np.ndarray:
    """(T, ..., 3) intrinsic Euler angles (a, b, c) made continuous over time:
    per frame, of the two equivalent solutions (a, b, c) and (a+180, 180-b, c+180)
    shifted by multiples of 360, the one nearest the previous frame."""
    half = 180.0 if degrees else np.pi
    e = np.asarray(euler, np.float64)
    if len(e) < 2:
        return e.copy()
    alt = e + np.array([half, 0.0, half])
    alt[..., 1] = half - e[..., 1]
    out = np.empty_like(e)
    out[0] = e[0]
    for t in range(1, len(e)):
        prev = out[t - 1]
        a = prev + (e[t] - prev + half) % (2 * half) - half
        b = prev + (alt[t] - prev + half) % (2 * half) - half
        pick_b = np.abs(b - prev).sum(axis=-1) < np.abs(a - prev).sum(axis=-1) - 1e-9
        out[t] = np.where(pick_b[..., None], b, a)
    return out


def write_bvh(motion: Motion, path: str | Path, target_rig: TargetRig | dict[str, Any] | str | None = None,
              unit: str = "cm") -> Path:
    """Write `bvh_text(motion, target_rig, unit)` to `path` (folders are created)."""
    return _write(path, bvh_text(motion, target_rig, unit).encode("ascii", "replace"))


# -- AMASS npz ----------------------------------------------------------------------------------------
def amass_npz_bytes(motion: Motion, layout: str = "smplh") -> bytes:
    """An AMASS-style .npz of the motion (module docstring): `poses` (T, 156)
    SMPL-H (22 body joints, then 15 + 15 hand joints: SMPL's hand joint goes
    to each hand's middle1, the joint motion/amass.py reads back) or (T, 72)
    SMPL, `trans` (T, 3), `mocap_framerate`, `betas` (zeros: the reference body's
    mean shape), `gender` "neutral", and for SMPL-H `dmpls` (T, 8) zeros as AMASS has."""
    check_motion(motion)
    if layout not in AMASS_LAYOUTS:
        raise _bad("layout", f"must be one of {', '.join(AMASS_LAYOUTS)}, got {layout!r}")
    r = np.asarray(motion.rotations, np.float64).copy()
    n = len(r)
    # Our pelvis rotation is local to SMPL's rest frame R0; AMASS stores the world orientation R0·local.
    r[:, 0] = rot.matrix_to_axis_angle(REST_ROTATION @ rot.axis_angle_to_matrix(r[:, 0]))
    if layout == "smpl":
        poses = r
    else:
        poses = np.zeros((n, AMASS_LAYOUTS["smplh"], 3))
        poses[:, :22] = r[:, :22]
        poses[:, 22 + _HAND_MIDDLE1] = r[:, 22]
        poses[:, 22 + 15 + _HAND_MIDDLE1] = r[:, 23]
    arrays: dict[str, np.ndarray] = {
        "poses": poses.reshape(n, -1), "trans": np.asarray(motion.trans, np.float64) - model_space_pelvis(),
        "mocap_framerate": np.float64(motion.fps), "betas": np.zeros(AMASS_BETAS[layout]),
        "gender": np.array("neutral")}
    if layout == "smplh":
        arrays["dmpls"] = np.zeros((n, AMASS_DMPLS))
    buf = io.BytesIO()
    np.savez(buf, **arrays)          # uncompressed float64, as AMASS ships its files
    return buf.getvalue()


# -- files ------------------------------------------------------------------------------------------
def _write(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as exc:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"path: cannot write {str(path)!r}: "
                            f"{exc.strerror or exc}; choose a folder you can write to", field="path") from None
    return path


def export_suffix(path: str | Path) -> str:
    """The export format of `path` from its suffix; BAD_REQUEST naming the supported ones otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise _bad("path", f"cannot export a motion as {suffix or 'a file without a suffix'!r} "
                   f"({Path(path).name}); supported: {', '.join(SUFFIXES)}")
    return suffix


def write_motion(motion: Motion, path: str | Path, target_rig: TargetRig | dict[str, Any] | str | None = None,
                 glb_writer: GlbWriter | None = None, **options: Any) -> Path:
    """Write `motion` to `path` in the format its suffix names (.bvh, .npz,
    .glb, .gltf) and return the path. `target_rig` (BVH and glTF): the rig to
    write it on instead of the SMPL-24 reference skeleton. `glb_writer`
    (formats.gltf.write_animation_glb) writes .glb/.gltf from the rig and
    tracks; `options` go to the format's writer (BVH: unit; npz: layout;
    glTF: avatar (a RiggedAvatar whose mesh is included: the motion is then
    retargeted onto its skeleton unless target_rig says otherwise), extras)."""
    suffix = export_suffix(path)
    check_motion(motion)
    if suffix == BVH_SUFFIX:
        return write_bvh(motion, path, target_rig, **options)
    if suffix == NPZ_SUFFIX:
        if target_rig is not None:
            raise _bad("target_rig", "an .npz holds SMPL body-model parameters; a target rig applies to "
                       f"{BVH_SUFFIX} and {'/'.join(GLB_SUFFIXES)} exports only")
        return _write(path, amass_npz_bytes(motion, **options))
    if glb_writer is None:
        raise ProtocolError(ErrorCode.UNSUPPORTED, f"path: {suffix} export needs the glTF writer "
                            "(formats.gltf.write_animation_glb) passed as glb_writer", field="path")
    avatar = options.get("avatar")
    if avatar is not None and target_rig is None:       # the avatar's mesh moves with its own rig
        target_rig = {"preset": rigs.AUTO, "bone_names": list(avatar.skeleton.joint_names),
                      "parents": avatar.skeleton.parents.tolist(), "rest_matrices": avatar.skeleton.rest_matrices}
    rig = export_rig(motion, target_rig)
    options.setdefault("extras", {"provenance": motion.provenance})
    return glb_writer(rig.skeleton, rig.tracks, float(motion.fps), path, name=motion.name, **options)
