"""The body models by name: which families exist and the loaded model of each."""
from __future__ import annotations

from typing import Any

from ..config import BackendConfig
from .anny_model import load_anny_model
from .body_model import BodyModel
from .smpl_model import MODEL_TYPES as SMPL_MODEL_TYPES, load_smpl_model

BODY_MODEL_NAMES = ("anny", *SMPL_MODEL_TYPES)


def load_body_model(name: str, config: BackendConfig, **options: Any) -> BodyModel:
    """The body model `name` (one of BODY_MODEL_NAMES), cached per process.

    SMPL-family models take `gender` ("neutral", "male", "female") and read the
    user's licensed files from config.models_dir (see smpl_model)."""
    if name == "anny":
        return load_anny_model(**options)
    if name in SMPL_MODEL_TYPES:
        return load_smpl_model(name, config, **options)
    raise ValueError(f"unknown body model {name!r}; known: {', '.join(BODY_MODEL_NAMES)}")
