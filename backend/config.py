"""Backend configuration: one place for paths and devices.

Values come from CLI flags, then environment variables, then defaults.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_BIND = "tcp://127.0.0.1:5757"


def default_store_dir() -> Path:
    return Path(os.environ.get("AVATARFORGE_STORE", Path.home() / ".cache" / "avatarforge" / "store"))


def default_models_dir() -> Path | None:
    """Where the user keeps licensed model files (SMPL, SMPL-H, SMPL-X, CLIP...)."""
    value = os.environ.get("AVATARFORGE_MODELS_DIR")
    return Path(value) if value else None


@dataclass
class BackendConfig:
    bind: str = DEFAULT_BIND
    store_dir: Path = field(default_factory=default_store_dir)
    models_dir: Path | None = field(default_factory=default_models_dir)
    device: str = "cpu"
    workers: int = 1
    max_message_bytes: int = 2 * 1024 ** 3
    plugins: list[str] = field(default_factory=list)   # extra pipelines, "module:Class"
