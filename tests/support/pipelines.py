"""A pipeline for testing the server's mechanics (progress, cancel, failures,
the store) with timing the test controls. Loaded into a real `avatarforge serve`
subprocess through `--pipeline tests.support.pipelines:StepPipeline`."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from avatarforge.backend.config import BackendConfig
from avatarforge.backend.core.components import Availability, Component, Tier
from avatarforge.backend.pipelines import JobContext, Pipeline
from avatarforge.protocol import ErrorCode, Material, ProtocolError, RiggedAvatar, Skeleton

# 1x1 PNG (a skin tone), so the artifact carries a valid texture without an image library.
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c633831ade23f0006d602d6e13f3bcc0000000049454e44ae426082")


def tetra_avatar(scale: float = 1.0, extra_vertices: int = 0) -> RiggedAvatar:
    """A two-joint tetrahedron, optionally padded with vertices to make it large."""
    verts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32) * scale
    if extra_vertices:
        verts = np.concatenate([verts, np.random.default_rng(0).random((extra_vertices, 3), dtype=np.float32)])
    faces = np.array([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]], np.int32)
    rest = np.repeat(np.eye(4, dtype=np.float32)[None], 2, axis=0)
    rest[1, 2, 3] = 0.5
    n = len(verts)
    return RiggedAvatar(
        name="tetra", vertices=verts, faces=faces, uvs=np.zeros((4, 3, 2), np.float32),
        skeleton=Skeleton(["root", "tip"], np.array([-1, 0], np.int32), rest),
        skin_indices=np.zeros((n, 1), np.int32), skin_weights=np.ones((n, 1), np.float32),
        materials=[Material("skin", "base_color", PNG_1PX)], body_model="test", params={}, provenance={})


# A plugin's code is outside the backend: its own file counts as its data. Not
# registered: its module is no component's entry.
STEPS_JOB = Component("pipeline", "steps", (), data=lambda: [Path(__file__)])
NO_GPU = Component("device", "gpu", (), availability=lambda config: Availability(False, "test tier without a GPU"))
TIERS = (Tier("cpu", {"pipeline": STEPS_JOB}), Tier("gpu", {"pipeline": STEPS_JOB, "device": NO_GPU}))


class StepPipeline(Pipeline):
    name = "steps"
    PARAMS = {"steps": (1, 10_000), "step_s": (0.0, 2.0), "scale": (0.001, 100.0), "extra_vertices": (0, 10_000_000)}

    def tiers(self) -> tuple[Tier, ...]:
        return TIERS

    def normalise(self, params: dict[str, Any], config: BackendConfig) -> dict[str, Any]:
        out = {"steps": 5, "step_s": 0.01, "scale": 1.0, "extra_vertices": 0, "fail": "", "seed": 0}
        for key, value in params.items():
            if key == "fail":
                if value not in ("", "bad_request", "crash", "oom"):
                    raise ProtocolError(ErrorCode.BAD_REQUEST, "fail: one of bad_request, crash, oom", field="fail")
            elif key == "seed":
                pass
            elif key == "payload":   # an upload of any size, as motion_import takes a file
                if not isinstance(value, bytes):
                    raise ProtocolError(ErrorCode.BAD_REQUEST, "payload: must be bytes", field="payload")
            elif key in self.PARAMS:
                lo, hi = self.PARAMS[key]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
                    raise ProtocolError(ErrorCode.BAD_REQUEST, f"{key}: must be in [{lo}, {hi}]", field=key)
            else:
                raise ProtocolError(ErrorCode.BAD_REQUEST, f"{key}: unknown parameter", field=key)
            out[key] = value
        return out

    def run(self, params: dict[str, Any], ctx: JobContext) -> list[Any]:
        for i in range(params["steps"]):
            ctx.progress(i / params["steps"], f"step {i + 1} of {params['steps']}")
            time.sleep(params["step_s"])
        if params["fail"] == "bad_request":
            raise ProtocolError(ErrorCode.BAD_REQUEST, "this input cannot be used", field="fail")
        if params["fail"] == "crash":
            raise RuntimeError("simulated bug")
        if params["fail"] == "oom":
            raise MemoryError()
        return [tetra_avatar(params["scale"], int(params["extra_vertices"]))]
