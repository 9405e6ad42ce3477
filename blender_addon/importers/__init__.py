"""Artifact importers, one module per artifact kind (as io_scene_gltf2 splits
its import and export), with shared helpers in `common`.

`import_artifacts` dispatches on the artifact's KIND.
"""
from __future__ import annotations

from typing import Any, Callable

import bpy

from . import motion, rigged_avatar
from .common import ImportFailed

Importer = Callable[..., Any]
IMPORTERS: dict[str, Importer] = {rigged_avatar.KIND: rigged_avatar.import_artifact,
                                  motion.KIND: motion.import_artifact}


def importer_for(artifact: Any) -> Importer:
    kind = getattr(artifact, "KIND", type(artifact).__name__)
    try:
        return IMPORTERS[kind]
    except KeyError:
        raise ImportFailed(f"this add-on cannot import '{kind}' artifacts (it knows {sorted(IMPORTERS)}); "
                           "update the add-on to the backend's release") from None


def import_artifacts(artifacts: list[Any], context: bpy.types.Context | None = None,
                     job_id: str | None = None, name: str | None = None,
                     target: bpy.types.Object | None = None) -> list[Any]:
    """Import each artifact; returns what each importer built (e.g. ImportedAvatar).
    `target` is the rig a motion goes onto (None: the motion builds its own)."""
    return [importer_for(a)(a, context, job_id=job_id, name=name, target=target) for a in artifacts]


__all__ = ["IMPORTERS", "ImportFailed", "import_artifacts", "importer_for", "motion", "rigged_avatar"]
