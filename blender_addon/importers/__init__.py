"""Artifact importers, one module per artifact kind (as io_scene_gltf2 splits
its import and export), with shared helpers in `common`.

`import_artifacts` dispatches on the artifact's KIND. Options meant for one
kind (e.g. the camera's `video_path`) go only to the importers that take them.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

import bpy

from . import camera, motion, rigged_avatar
from .common import ImportFailed

Importer = Callable[..., Any]
IMPORTERS: dict[str, Importer] = {rigged_avatar.KIND: rigged_avatar.import_artifact,
                                  motion.KIND: motion.import_artifact, camera.KIND: camera.import_artifact}


def importer_for(artifact: Any) -> Importer:
    kind = getattr(artifact, "KIND", type(artifact).__name__)
    try:
        return IMPORTERS[kind]
    except KeyError:
        raise ImportFailed(f"this add-on cannot import '{kind}' artifacts (it knows {sorted(IMPORTERS)}); "
                           "update the add-on to the backend's release") from None


def import_artifacts(artifacts: list[Any], context: bpy.types.Context | None = None,
                     job_id: str | None = None, name: str | None = None,
                     target: bpy.types.Object | None = None, **options: Any) -> list[Any]:
    """Import each artifact; returns what each importer built (e.g. ImportedAvatar).
    `target` is the rig a motion goes onto (None: the motion builds its own) and
    the world a camera is placed in. When a motion builds its own rig, a camera
    after it (solved with that motion) is placed on that rig."""
    built = []
    camera_world = target
    for a in artifacts:
        importer = importer_for(a)
        on = camera_world if importer is camera.import_artifact else target
        result = importer(a, context, job_id=job_id, name=name, target=on, **options_for(importer, options))
        built.append(result)
        if camera_world is None and getattr(result, "built_rig", False):
            camera_world = result.rig
    return built


def options_for(importer: Importer, options: dict[str, Any]) -> dict[str, Any]:
    """The options `importer` names among its parameters (others are for other kinds)."""
    names = inspect.signature(importer).parameters
    return {k: v for k, v in options.items() if k in names}


__all__ = ["IMPORTERS", "ImportFailed", "camera", "import_artifacts", "importer_for", "motion", "rigged_avatar"]
