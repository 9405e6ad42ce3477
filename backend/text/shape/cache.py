"""Arrays the shape reader computes once per machine (codebook embeddings, rendered bodies),
kept on disk under keys derived from what made them: never a hand-bumped version."""
from __future__ import annotations

import io
import logging
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ...core.files import atomic_write
from ...core.sources import digest_of, loaded_module_identity

log = logging.getLogger(__name__)


def shape_cache_dir() -> Path:
    """Where the text tier's caches live: env AVATARFORGE_TEXT_CACHE, else ~/.cache/avatarforge/text."""
    value = os.environ.get("AVATARFORGE_TEXT_CACHE")
    return Path(value) if value else Path.home() / ".cache" / "avatarforge" / "text"


def code_identity(obj: Any) -> str:
    """The identity of the code behind an object (an encoder, a renderer, a body model): the
    digest of its backend module and all it imports; outside the backend, its qualified name."""
    module = getattr(obj, "__module__", None) or type(obj).__module__
    return loaded_module_identity(module) or f"{module}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def encoder_identity(encoder: Any) -> str:
    """What an encoder's embeddings depend on: its weights and its code."""
    return digest_of(encoder.name, encoder.version, code_identity(encoder))


def cached_arrays(name: str, key: str, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Arrays from <cache>/<name>-<key>.npz, computed and written (atomically) when absent."""
    path = shape_cache_dir() / f"{name}-{key}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError) as exc:      # unreadable (a disk error): rebuild it
            log.warning("rebuilding %s (%s)", path, exc)
    arrays = compute()
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write(path, [buffer.getvalue()])
    return arrays
