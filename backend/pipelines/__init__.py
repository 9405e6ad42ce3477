"""One module per job (DESIGN §1). `load_pipelines` is the registry."""
from __future__ import annotations

from .base import JobCancelled, JobContext, Pipeline


def load_pipelines() -> dict[str, Pipeline]:
    """Every pipeline this backend serves, by job name."""
    from .body import BodyPipeline

    return {p.name: p for p in (BodyPipeline(),)}


__all__ = ["JobCancelled", "JobContext", "Pipeline", "load_pipelines"]
