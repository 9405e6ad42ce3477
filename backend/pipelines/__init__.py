"""One module per job (DESIGN §1). `load_pipelines` is the registry."""
from __future__ import annotations

import importlib
from typing import Iterable

from avatarforge.protocol import ErrorCode, ProtocolError

from .base import JobCancelled, JobContext, Pipeline, record_components


def load_pipelines(plugins: Iterable[str] = ()) -> dict[str, Pipeline]:
    """Every pipeline this backend serves, by job name: the built-in ones plus
    plugins named as "module:Class" (a studio's own jobs, or test pipelines)."""
    from .body import BodyPipeline
    from .motion_import import MotionImportPipeline
    from .video_motion import VideoMotionPipeline
    from .text_avatar import TextAvatarPipeline
    from .text_motion import TextMotionPipeline

    pipelines: list[Pipeline] = [BodyPipeline(), TextAvatarPipeline(), TextMotionPipeline(), MotionImportPipeline(),
                                 VideoMotionPipeline()]
    pipelines += [load_plugin(spec) for spec in plugins]
    return {p.name: p for p in pipelines}


def load_plugin(spec: str) -> Pipeline:
    module_name, _, class_name = spec.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ProtocolError(ErrorCode.BAD_REQUEST,
                            f"pipeline plugin {spec!r} cannot be loaded ({exc}); write it as module:Class "
                            "with the module importable by the backend's Python") from None
    if not (isinstance(cls, type) and issubclass(cls, Pipeline)):
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"pipeline plugin {spec!r} is not a Pipeline subclass")
    return cls()


__all__ = ["JobCancelled", "JobContext", "Pipeline", "load_pipelines", "record_components"]
