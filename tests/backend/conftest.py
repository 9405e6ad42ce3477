"""Backend test fixtures. Anny loads once per test session (the process keeps it:
`load_anny_model` caches it), from the session's own disk cache (tests/conftest.py)."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _anny_cache_first(anny_cache: str) -> str:
    """Anny's cache is built before the first backend test, whatever runs first: a
    backend subprocess that had to build it would spend a minute inside one test."""
    return anny_cache


@pytest.fixture(scope="session")
def anny_model(anny_cache: str):
    """The process-wide Anny body model (~3 s with the session's cache built)."""
    from avatarforge.backend.models.anny_model import load_anny_model

    return load_anny_model()


TINY_CLIP_CONFIG = {
    "model_cfg": {"embed_dim": 32,
                  "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
                  "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}},
    "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]},
}


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory):
    """An open_clip checkpoint folder with a tiny random-weight CLIP, in open_clip's
    "local-dir" layout (open_clip_config.json + open_clip_pytorch_model.bin), made
    from the config the way a real checkpoint is saved, and loaded by the real loader."""
    import json

    import open_clip
    import torch

    folder = tmp_path_factory.mktemp("clip")
    torch.manual_seed(0)
    model = open_clip.CLIP(**TINY_CLIP_CONFIG["model_cfg"])
    (folder / "open_clip_config.json").write_text(json.dumps(TINY_CLIP_CONFIG), encoding="utf-8")
    torch.save(model.state_dict(), folder / "open_clip_pytorch_model.bin")
    return folder
