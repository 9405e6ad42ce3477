"""CLIP through open_clip, from a local checkpoint folder (the neural text tier; DESIGN §7).

Where the files go: the folder given by --clip-dir / AVATARFORGE_CLIP, else
<models_dir>/clip, holding open_clip's own "local-dir" layout:

    open_clip_config.json        {"model_cfg": {...}, "preprocess_cfg": {...}}
    open_clip_model.safetensors  (or open_clip_pytorch_model.bin)

That is what a Hugging Face open_clip repository holds (e.g. laion/CLIP-ViT-B-32-
laion2B-s34B-b79K); copy those two files into the folder. Nothing is ever
downloaded: the folder is loaded with open_clip.create_model_and_transforms(
"local-dir:<folder>"), and a missing file is MODEL_MISSING saying what to put where.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np

from avatarforge.protocol import ErrorCode, ProtocolError

from .text_encoder import TextEncoder, unit_rows

log = logging.getLogger(__name__)

CONFIG_FILE = "open_clip_config.json"
WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
EXAMPLE_REPO = "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"


def clip_checkpoint_dir(config: Any) -> Path:
    """config.clip_dir, else <models_dir>/clip (the folder may not exist)."""
    clip_dir = getattr(config, "clip_dir", None)
    if clip_dir is not None:
        return Path(clip_dir)
    models_dir = getattr(config, "models_dir", None)
    return Path(models_dir) / "clip" if models_dir is not None else Path("<models_dir>") / "clip"


def _weights_file(directory: Path) -> Path | None:
    return next((directory / n for n in WEIGHT_FILES if (directory / n).is_file()), None)


HOW = (f"copy {CONFIG_FILE} and {' or '.join(WEIGHT_FILES)} from an open_clip checkpoint (e.g. the Hugging "
       f"Face repository {EXAMPLE_REPO}) into that folder")


def _missing_reason(config: Any) -> str | None:
    """Why the configured folder cannot be loaded, as an instruction; None when it can."""
    if getattr(config, "clip_dir", None) is None and getattr(config, "models_dir", None) is None:
        return (f"no CLIP folder is configured: start the backend with --clip-dir <folder> (or AVATARFORGE_CLIP, "
                f"or --models-dir <dir> to use <dir>/clip) and {HOW}")
    return _folder_problem(clip_checkpoint_dir(config))


def _folder_problem(directory: Path) -> str | None:
    """What is missing from an open_clip folder, as an instruction; None when complete."""
    how = HOW
    if not (directory / CONFIG_FILE).is_file():
        return f"CLIP config not found: expected {directory / CONFIG_FILE}; {how}"
    try:
        cfg = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"{directory / CONFIG_FILE} is not readable JSON ({exc}); {how}"
    if not isinstance(cfg, dict) or "model_cfg" not in cfg:
        return f"{directory / CONFIG_FILE} has no 'model_cfg' (open_clip's format); {how}"
    if _weights_file(directory) is None:
        return f"CLIP weights not found: expected {' or '.join(str(directory / n) for n in WEIGHT_FILES)}; {how}"
    return None


def clip_availability(config: Any) -> dict[str, Any]:
    """Tier info for `welcome`: {"available": bool, "reason": ...}."""
    reason = _missing_reason(config)
    if reason:
        return {"available": False, "reason": reason}
    return {"available": True, "path": str(clip_checkpoint_dir(config))}


def weights_fingerprint(path: Path) -> str:
    """Size plus a hash of the first and last MiB: identifies a weights file without reading 600 MB."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        if size > 2 << 20:
            f.seek(size - (1 << 20))
            h.update(f.read())
    return f"{size}:{h.hexdigest()[:16]}"


def clip_version(directory: Path) -> str:
    """The identity of the checkpoint in `directory` (package, weights file and its
    fingerprint), without loading it: what encoders report and store keys hold."""
    weights = _weights_file(Path(directory))
    if weights is None:
        return f"open_clip {package_version('open_clip_torch')} missing weights in {directory}"
    return f"open_clip {package_version('open_clip_torch')} {weights.name} {weights_fingerprint(weights)}"


class ClipModel:
    """An open_clip model, its image preprocessing and tokenizer, from a local folder."""

    def __init__(self, directory: Path, device: str = "cpu") -> None:
        import open_clip
        import torch

        self.directory = Path(directory)
        weights = _weights_file(self.directory)
        problem = _folder_problem(self.directory)
        if problem:
            raise ProtocolError(ErrorCode.MODEL_MISSING, problem, field="encoder")
        self._torch = torch
        self.device = device
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{self.directory}", device=device)
            self.tokenizer = open_clip.get_tokenizer(f"local-dir:{self.directory}")
        except (RuntimeError, ValueError, KeyError, FileNotFoundError) as exc:
            raise ProtocolError(ErrorCode.MODEL_MISSING, f"{self.directory} is not a loadable open_clip checkpoint "
                                f"({type(exc).__name__}: {exc}); put {CONFIG_FILE} and its weights there",
                                field="encoder") from None
        self.model = model.eval()
        self.preprocess = preprocess
        self.weights = weights
        self.version = clip_version(self.directory)
        self.dim = int(self.model.text_projection.shape[1]) if getattr(self.model, "text_projection", None) \
            is not None else int(self.encode_text(["a"]).shape[1])
        self._lock = threading.Lock()

    def encode_text(self, texts: list[str]) -> np.ndarray:
        torch = self._torch
        with torch.no_grad():
            tokens = self.tokenizer(texts).to(self.device)
            return self.model.encode_text(tokens).float().cpu().numpy()

    def encode_images(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 -> (N, D) raw image embeddings, through the checkpoint's own preprocessing."""
        from PIL import Image

        torch = self._torch
        batch = torch.stack([self.preprocess(Image.fromarray(np.asarray(im, np.uint8))) for im in images])
        with torch.no_grad():
            return self.model.encode_image(batch.to(self.device)).float().cpu().numpy()


class ClipTextEncoder(TextEncoder):
    """CLIP's text tower as a TextEncoder; also embeds images into the same space."""
    name = "clip"

    def __init__(self, model: ClipModel) -> None:
        self.clip = model
        self.dim = model.dim

    @property
    def version(self) -> str:
        return self.clip.version

    def _embed(self, texts: list[str]) -> np.ndarray:
        with self.clip._lock:
            return self.clip.encode_text(texts)

    def encode_images(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 images -> (N, D) unit rows."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must be (N, H, W, 3) uint8, got {images.shape}")
        if not len(images):
            return np.zeros((0, self.dim), np.float32)
        with self.clip._lock:
            return unit_rows(self.clip.encode_images(images))


def load_clip_text_encoder(config: Any, device: str = "cpu") -> ClipTextEncoder:
    """The CLIP encoder from the configured folder; MODEL_MISSING saying what to put where."""
    reason = _missing_reason(config)
    if reason:
        raise ProtocolError(ErrorCode.MODEL_MISSING, reason, field="encoder",
                            expected=[str(clip_checkpoint_dir(config) / n) for n in (CONFIG_FILE, *WEIGHT_FILES)])
    log.info("loading CLIP from %s", clip_checkpoint_dir(config))
    return ClipTextEncoder(ClipModel(clip_checkpoint_dir(config), device))
