"""The video_motion job end to end: a rendered clip of Anny (tests/data/video, made by
bench/render_clips.py) through a real backend process over ZeroMQ and through the
CLI; its bad inputs; and its place among the components."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from avatarforge.backend.config import BackendConfig
from avatarforge.backend.pipelines import load_pipelines
from avatarforge.protocol import Camera, ErrorCode, Motion, ProtocolError

REPO = Path(__file__).resolve().parents[2]
CLIPS = REPO / "tests" / "data" / "video"


def pipeline():
    return load_pipelines()["video_motion"]


def normalise(**params):
    return pipeline().normalise({"data": b"\x00\x00\x00\x18ftypmp42", "filename": "take.mp4", **params},
                                BackendConfig())


@pytest.mark.parametrize("params, field", [
    ({"data": b""}, "data"),
    ({"data": "not bytes"}, "data"),
    ({"filename": "take.txt"}, "filename"),
    ({"filename": ""}, "filename"),
    ({"fps": 0}, "fps"),
    ({"fps": 1e9}, "fps"),
    ({"focal_mm": 0.5}, "focal_mm"),
    ({"focal_mm": float("nan")}, "focal_mm"),
    ({"focal_mm": 1e6}, "focal_mm"),
    ({"start": -1.0}, "start"),
    ({"start": 5.0, "end": 2.0}, "end"),
    ({"target": "nobody"}, "target.preset"),
    ({"colour": "red"}, "colour"),
])
def test_bad_params_name_their_field(params, field):
    with pytest.raises(ProtocolError) as err:
        normalise(**params)
    assert err.value.code == ErrorCode.BAD_REQUEST and err.value.field == field


def test_defaults_are_filled_and_the_name_comes_from_the_file():
    out = normalise(filename="C:\\clips\\Long Jump.MOV")
    assert out["name"] == "Long Jump" and out["fps"] is None and out["focal_mm"] is None
    assert out["start"] is None and out["end"] is None and out["target"] is None


def test_the_job_lists_every_component_it_runs():
    p = pipeline()
    (tier,) = p.tiers()
    used = p.components(tier, normalise(target="anny"), BackendConfig())
    assert {"video_decoder", "landmark_detector", "motion_solver", "retargeter", "target_body"} <= set(used)
    assert tier.available(BackendConfig()).available, tier.available(BackendConfig()).reason
