"""The text encoders by name (DESIGN §7): which exist, and the process-wide
instance of each (their identities are the registry's: pipelines/catalogue.py)."""
from __future__ import annotations

import logging
import threading
from typing import Any

from avatarforge.protocol import ErrorCode, ProtocolError

from .clip_model import clip_checkpoint_dir, load_clip_text_encoder
from .text_encoder import MiniLMEncoder, TextEncoder, minilm_available

log = logging.getLogger(__name__)

ENCODER_NAMES = ("minilm", "clip")


_lock = threading.Lock()
_encoders: dict[tuple[str, str, str], TextEncoder] = {}


def load_text_encoder(name: str = "minilm", config: Any = None, device: str = "cpu") -> TextEncoder:
    """The process-wide encoder `name` ("minilm" or "clip"), loaded once.

    "clip" reads the open_clip checkpoint the backend config points at
    (models/clip_model.py); it raises MODEL_MISSING saying where to put it."""
    if name not in ENCODER_NAMES:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"text encoder must be one of {', '.join(ENCODER_NAMES)}, "
                            f"got {name!r}", field="encoder")
    where = str(clip_checkpoint_dir(config)) if name == "clip" else ""
    key = (name, where, device)
    with _lock:
        if key not in _encoders:
            _encoders[key] = _load(name, config, device)
        return _encoders[key]


def _load(name: str, config: Any, device: str) -> TextEncoder:
    if name == "clip":
        return load_clip_text_encoder(config, device)
    info = minilm_available()
    if not info["available"]:
        raise ProtocolError(ErrorCode.MODEL_MISSING, info["reason"])
    log.info("loading the MiniLM text encoder")
    return MiniLMEncoder(device)
