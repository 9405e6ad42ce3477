"""Backend configuration: one place for paths and devices.

Values come from CLI flags, then environment variables, then defaults.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .core.limits import STORE_MAX_BYTES

DEFAULT_BIND = "tcp://127.0.0.1:5757"


def default_store_dir() -> Path:
    return Path(os.environ.get("AVATARFORGE_STORE", Path.home() / ".cache" / "avatarforge" / "store"))


def default_models_dir() -> Path | None:
    """Where the user keeps licensed model files (SMPL, SMPL-H, SMPL-X, CLIP...)."""
    value = os.environ.get("AVATARFORGE_MODELS_DIR")
    return Path(value) if value else None


def default_clip_dir() -> Path | None:
    """An open_clip checkpoint folder (open_clip_config.json + weights); env AVATARFORGE_CLIP."""
    value = os.environ.get("AVATARFORGE_CLIP")
    return Path(value) if value else None


def default_motion_library() -> Path | None:
    """A folder of labelled motion clips (.npz/.bvh + labels); env AVATARFORGE_MOTION_LIBRARY."""
    value = os.environ.get("AVATARFORGE_MOTION_LIBRARY")
    return Path(value) if value else None


@dataclass
class BackendConfig:
    bind: str = DEFAULT_BIND
    store_dir: Path = field(default_factory=default_store_dir)
    store_max_bytes: int = STORE_MAX_BYTES   # then the least recently used results are evicted
    models_dir: Path | None = field(default_factory=default_models_dir)
    device: str = "cpu"
    workers: int = 1
    max_message_bytes: int = 2 * 1024 ** 3
    plugins: list[str] = field(default_factory=list)   # extra pipelines, "module:Class"
    clip_dir: Path | None = field(default_factory=default_clip_dir)       # else models_dir/clip
    motion_library: Path | None = field(default_factory=default_motion_library)
