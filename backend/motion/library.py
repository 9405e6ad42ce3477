"""The user's motion library: a folder of labelled clips that text -> motion
retrieves from (whole clips when a label matches the prompt closely) and
samples key poses from (extra AvatarCLIP M1 codebook entries).

Folder layout (config.motion_library, env AVATARFORGE_MOTION_LIBRARY):

    clips/...            any .bvh and .npz (AMASS-style) files, in sub-folders too
    labels.json          {"relative/path.bvh": "a person walks in a circle", ...}
                         (a value may also be a list of descriptions), or
    labels.txt           one clip a line: relative/path<TAB>description
                         (a path may appear on several lines; # starts a comment)

Clips without a label are ignored (there is nothing to match a prompt with).
Files are read with the importers (bvh.bvh_to_smpl, amass.amass_to_smpl) when
first needed; label embeddings are computed once per encoder.
"""
from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avatarforge.protocol import ErrorCode, ProtocolError

from ..core.limits import MOTION_FILE_MAX_BYTES
from . import ops
from .keyposes import KeyPose
from .skeleton import forward_kinematics

CLIP_SUFFIXES = (".bvh", ".npz")
MATCH_THRESHOLD = 0.8          # cosine similarity a label needs to replace generation by the whole clip
POSES_PER_CLIP = 3


def _bad(message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_REQUEST, f"motion_library: {message}", field="motion_library")


@dataclass
class ClipMatch:
    name: str        # the clip's path relative to the library folder
    score: float
    label: str


@dataclass
class LibraryClip:
    name: str
    path: Path
    labels: list[str]
    rotations: np.ndarray | None = None
    trans: np.ndarray | None = None
    fps: float = 0.0


def read_labels(folder: Path) -> dict[str, list[str]]:
    """{relative clip path: [descriptions]} from labels.json or labels.txt."""
    js, txt = folder / "labels.json", folder / "labels.txt"
    out: dict[str, list[str]] = {}
    if js.is_file():
        try:
            data = json.loads(js.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise _bad(f"{js} is not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise _bad(f"{js} must map clip paths to descriptions")
        for name, value in data.items():
            texts = [value] if isinstance(value, str) else value
            if not isinstance(texts, list) or not all(isinstance(t, str) and t.strip() for t in texts):
                raise _bad(f"{js}: the label of {name!r} must be a description or a list of them")
            out.setdefault(str(name), []).extend(t.strip() for t in texts)
    elif txt.is_file():
        for number, line in enumerate(txt.read_text(encoding="utf-8").splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, sep, text = line.partition("\t")
            if not sep or not text.strip():
                raise _bad(f"{txt} line {number}: write clip path<TAB>description")
            out.setdefault(name.strip(), []).append(text.strip())
    else:
        raise _bad(f"{folder} has no labels.json or labels.txt saying what each clip shows")
    return out


class MotionLibrary:
    """The labelled clips of one folder."""

    def __init__(self, folder: Path) -> None:
        folder = Path(folder)
        if not folder.is_dir():
            raise _bad(f"{folder} is not a folder; set it to a folder of .bvh/.npz clips with a labels.json")
        self.folder = folder
        labels = read_labels(folder)
        self.clips: dict[str, LibraryClip] = {}
        for name, texts in sorted(labels.items()):
            path = (folder / name).resolve()
            if folder.resolve() not in path.parents or path.suffix.lower() not in CLIP_SUFFIXES:
                raise _bad(f"label for {name!r}: not a .bvh or .npz file inside the library folder")
            if not path.is_file():
                raise _bad(f"labelled clip {name!r} is missing from {folder}")
            self.clips[name] = LibraryClip(name, path, texts)
        h = hashlib.sha1()
        for name, clip in self.clips.items():
            st = clip.path.stat()
            h.update(json.dumps([name, clip.labels, st.st_size, st.st_mtime_ns]).encode())
        self.signature = f"{len(self.clips)}-{h.hexdigest()[:16]}"
        self._emb: dict[tuple[str, str], tuple[np.ndarray, list[tuple[str, str]]]] = {}
        self._lock = threading.Lock()

    # -- clips ------------------------------------------------------------------------------
    def load(self, name: str) -> LibraryClip:
        """The clip with its motion read (once)."""
        clip = self.clips[name]
        with self._lock:
            if clip.rotations is None:
                data = clip.path.read_bytes()
                if len(data) > MOTION_FILE_MAX_BYTES:
                    raise _bad(f"{name} is larger than {MOTION_FILE_MAX_BYTES >> 20} MiB")
                if clip.path.suffix.lower() == ".bvh":
                    from .bvh import bvh_to_smpl

                    imported = bvh_to_smpl(data.decode("utf-8", errors="replace"))
                else:
                    from .amass import amass_to_smpl

                    imported = amass_to_smpl(data)
                clip.rotations = np.asarray(imported.rotations, np.float32)
                clip.trans = np.asarray(imported.trans, np.float32)
                clip.fps = float(imported.fps)
        return clip

    def clip_frames(self, name: str, fps: float, frames: int) -> tuple[np.ndarray, np.ndarray]:
        """The clip at `fps`, looped or cut to exactly `frames` frames."""
        clip = self.load(name)
        r, t = ops.resample(clip.rotations, clip.trans, clip.fps, fps)
        if len(r) < frames:
            r, t = ops.loop(r, t, int(np.ceil(frames / max(len(r) - 1, 1))) + 1)
        return r[:frames], t[:frames]

    # -- text ---------------------------------------------------------------------------------
    def _embeddings(self, encoder: Any) -> tuple[np.ndarray, list[tuple[str, str]]]:
        key = (encoder.name, encoder.version)
        with self._lock:
            if key not in self._emb:
                pairs = [(name, text) for name, clip in self.clips.items() for text in clip.labels]
                emb = encoder.encode([t for _, t in pairs]) if pairs else np.zeros((0, encoder.dim), np.float32)
                self._emb[key] = (emb, pairs)
            return self._emb[key]

    def match(self, text: str, encoder: Any, threshold: float = MATCH_THRESHOLD) -> ClipMatch | None:
        """The clip whose label is closest to `text`, when at least `threshold` similar."""
        emb, pairs = self._embeddings(encoder)
        if not pairs:
            return None
        sims = emb @ encoder.encode(text)[0]
        best = int(np.argmax(sims))
        if sims[best] < threshold:
            return None
        return ClipMatch(pairs[best][0], float(sims[best]), pairs[best][1])

    def keyposes(self, per_clip: int = POSES_PER_CLIP) -> list[KeyPose]:
        """Poses sampled evenly from inside each clip, described by its labels."""
        out = []
        for name, clip in self.clips.items():
            clip = self.load(name)
            n = len(clip.rotations)
            for k in range(per_clip):
                f = int(round((k + 1) * (n - 1) / (per_clip + 1)))
                rot = clip.rotations[f].astype(np.float64).copy()
                rot[0] = clip.rotations[0, 0]     # keep the clip's first heading: codebook poses face forward
                out.append(KeyPose(f"library:{name}#{f}", rot, tuple(clip.labels), _planted(clip, f),
                                   False, source=f"library:{name}"))
        return out


def _planted(clip: LibraryClip, frame: int) -> tuple[bool, bool]:
    lo, hi = max(frame - 1, 0), min(frame + 2, len(clip.rotations))
    joints = forward_kinematics(clip.rotations[lo:hi].astype(np.float64), clip.trans[lo:hi].astype(np.float64))
    contacts = ops.foot_contacts(joints, clip.fps)
    c = contacts[min(frame - lo, len(contacts) - 1)]
    return bool(c[0]), bool(c[1])


_libraries: dict[str, MotionLibrary] = {}
_open_lock = threading.Lock()


def open_library(config: Any) -> MotionLibrary | None:
    """The library config.motion_library names (None when unset), re-read when its files change."""
    folder = getattr(config, "motion_library", None)
    if folder is None:
        return None
    with _open_lock:
        fresh = MotionLibrary(Path(folder))
        cached = _libraries.get(str(folder))
        if cached is not None and cached.signature == fresh.signature:
            return cached
        _libraries[str(folder)] = fresh
        return fresh
