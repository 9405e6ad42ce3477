"""Component identity (DESIGN §7): a result's store key holds the identities of
the components that made it, derived from their source, data and weights.

Each test edits one thing (a module's source, as the digest reader sees it, or a
weights file) and checks that the keys of exactly the jobs that run it change:
one fixed normalised request per job and tier (and per target rig where
retargeting loads a body model)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

import pytest

from avatarforge.backend.config import BackendConfig
from avatarforge.backend.core import sources
from avatarforge.backend.core.components import (Availability, Component, Tier, register, registered,
                                                 used_components)
from avatarforge.backend.pipelines import load_pipelines
from avatarforge.backend.store import request_key
from tests.support.synthetic_smpl import write_synthetic_model

PIPELINES = load_pipelines()
BVH = b"HIERARCHY\nROOT Hips\n{\n}\n"
MP4 = b"\x00\x00\x00\x18ftypmp42"        # normalising checks no more than the name and size


@dataclass(frozen=True)
class Case:
    """One fixed request: a job on a tier with raw params."""
    label: str
    job: str
    tier: str
    params: dict[str, Any]


CASES = [
    Case("body/anny", "body", "anny", {"model": "anny"}),
    Case("body/smpl", "body", "smpl", {"model": "smpl"}),
    Case("text_avatar/minilm", "text_avatar", "minilm", {"prompt": "a tall woman in a red dress"}),
    Case("text_avatar/clip", "text_avatar", "clip", {"prompt": "a tall woman in a red dress", "encoder": "clip"}),
    Case("text_motion/minilm", "text_motion", "minilm", {"prompt": "waves, then jumps"}),
    Case("text_motion/clip", "text_motion", "clip", {"prompt": "waves, then jumps", "encoder": "clip"}),
    Case("text_motion/minilm->anny", "text_motion", "minilm", {"prompt": "waves, then jumps", "target": "anny"}),
    Case("motion_import", "motion_import", "embedded", {"data": BVH, "filename": "walk.bvh"}),
    Case("motion_import->anny", "motion_import", "embedded", {"data": BVH, "filename": "walk.bvh", "target": "anny"}),
    Case("video_motion", "video_motion", "embedded", {"data": MP4, "filename": "take.mp4"}),
    Case("video_motion->anny", "video_motion", "embedded", {"data": MP4, "filename": "take.mp4", "target": "anny"}),
]
ALL = {c.label for c in CASES}
TEXT_AVATAR = {"text_avatar/minilm", "text_avatar/clip"}
TEXT_MOTION = {"text_motion/minilm", "text_motion/clip", "text_motion/minilm->anny"}
MOTION_IMPORT = {"motion_import", "motion_import->anny"}
VIDEO_MOTION = {"video_motion", "video_motion->anny"}
CLIP_JOBS = {"text_avatar/clip", "text_motion/clip"}


def clip_folder(path) -> None:
    """An open_clip folder as far as finding and digesting it goes (never loaded here)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "open_clip_config.json").write_text(json.dumps({"model_cfg": {"embed_dim": 8}}))
    (path / "open_clip_model.safetensors").write_bytes(b"tiny weights")


@pytest.fixture
def config(tmp_path) -> BackendConfig:
    write_synthetic_model(tmp_path / "models", "smpl")
    clip_folder(tmp_path / "clip")
    return BackendConfig(models_dir=tmp_path / "models", clip_dir=tmp_path / "clip", motion_library=None,
                         store_dir=tmp_path / "store")


def normalised(case: Case, config: BackendConfig) -> dict[str, Any]:
    if case.job == "body" and case.params["model"] != "anny":
        # Normalising reads the model file to count its shape coefficients; these are its canonical params.
        return {"model": case.params["model"], "betas": [], "gender": "neutral", "texture_size": 1024,
                "skin_weights_k": 4, "seed": 0, "name": f"{case.params['model']}_avatar"}
    return PIPELINES[case.job].normalise(dict(case.params), config)


def keys(config: BackendConfig) -> dict[str, str]:
    """The store key of every case, as the server computes it."""
    out = {}
    for case in CASES:
        pipeline = PIPELINES[case.job]
        params = normalised(case, config)
        tier = pipeline.choose_tier(None, params, config)
        assert tier.name == case.tier
        out[case.label] = request_key(case.job, tier.name, params,
                                      used_components(pipeline.components(tier, params, config), config))
    return out


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {label for label in before if before[label] != after[label]}


def edit_source(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    """Make the digest reader see `module` with a comment appended, as if someone edited it."""
    read = sources.module_digest
    path = sources.module_path(module)
    assert path.is_file(), f"{module} is not a backend module (moved?)"

    def digest(name: str) -> str:
        if name != module:
            return read(name)
        return hashlib.sha256(path.read_bytes() + b"\n# edited\n").hexdigest()

    monkeypatch.setattr(sources, "module_digest", digest)


@pytest.mark.parametrize("module, expected", [
    ("backend.motion.synthesis", TEXT_MOTION),
    ("backend.motion.joint_limits", TEXT_MOTION | VIDEO_MOTION),
    ("backend.text.motion_prompt", TEXT_MOTION),
    ("backend.render.clothing_texture", TEXT_AVATAR),
    ("backend.text.appearance", TEXT_AVATAR),
    ("backend.render.skin_texture", {"body/anny", "body/smpl"} | TEXT_AVATAR),
    ("backend.models.anny_model", {"body/anny", "text_motion/minilm->anny", "motion_import->anny",
                                   "video_motion->anny"} | TEXT_AVATAR),
    ("backend.models.smpl_model", {"body/smpl"}),
    ("backend.models.text_encoder", TEXT_AVATAR | TEXT_MOTION),
    ("backend.motion.pose_render", {"text_motion/clip"}),
    ("backend.motion.bvh", MOTION_IMPORT),
    ("backend.motion.skeleton_map", MOTION_IMPORT),
    ("backend.motion.retarget", TEXT_MOTION | MOTION_IMPORT | VIDEO_MOTION),
    ("backend.motion.capture", VIDEO_MOTION),
    ("backend.video.decode", VIDEO_MOTION),
    ("backend.video.track", VIDEO_MOTION),
    ("backend.models.pose_landmarks", VIDEO_MOTION),
    ("backend.pipelines.video_motion", VIDEO_MOTION),
    ("backend.pipelines.body", {"body/anny", "body/smpl"} | TEXT_AVATAR),
    ("backend.pipelines.text_motion", TEXT_MOTION),
    ("backend.pipelines.base", ALL),
])
def test_editing_a_module_changes_the_keys_of_exactly_the_jobs_that_run_it(monkeypatch, config, module, expected):
    before = keys(config)
    edit_source(monkeypatch, module)
    assert changed(before, keys(config)) == expected


def test_unedited_sources_keep_every_key(config):
    assert keys(config) == keys(config)


def test_changed_clip_weights_change_only_the_clip_jobs(config):
    before = keys(config)
    with open(config.clip_dir / "open_clip_model.safetensors", "ab") as f:
        f.write(b" retrained")
    assert changed(before, keys(config)) == CLIP_JOBS


def test_changed_smpl_file_changes_only_the_smpl_body(config):
    before = keys(config)
    write_synthetic_model(config.models_dir, "smpl", num_betas=12)   # another SMPL file, same place
    assert changed(before, keys(config)) == {"body/smpl"}


def test_a_configured_motion_library_is_part_of_text_motion_keys(monkeypatch, config, tmp_path):
    before = keys(config)
    library = tmp_path / "library"
    library.mkdir()
    (library / "labels.json").write_text("{}")
    config = replace(config, motion_library=library)
    with_library = keys(config)
    assert changed(before, with_library) == TEXT_MOTION
    (library / "labels.json").write_text('{"walk.bvh": "a person walks"}')
    relabelled = keys(config)
    assert changed(with_library, relabelled) == TEXT_MOTION
    edit_source(monkeypatch, "backend.motion.bvh")     # the library's clips are read with the importers
    assert changed(relabelled, keys(config)) == TEXT_MOTION | MOTION_IMPORT


def test_every_component_names_real_modules():
    missing = [f"{c.role} {c.name!r}: {m}" for c in registered() for m in c.modules
               if not sources.module_path(m).is_file()]
    assert not missing, "components name modules that are not there (moved? rename them in the catalogue):\n" + \
        "\n".join(missing)
    assert {c.role for c in registered()} >= {"pipeline", "body_model", "encoder", "shape_estimator", "painter",
                                               "motion_generator", "retargeter", "motion_importer"}


def test_every_pipeline_is_a_component_of_each_of_its_tiers():
    for pipeline in PIPELINES.values():
        for tier in pipeline.tiers():
            assert tier.components["pipeline"].modules[0] == f"backend.pipelines.{pipeline.name}"


def test_identity_names_what_makes_it(config):
    base = Component("painter", "test", ("backend.render.skin_texture",))
    assert base.identity(config) == Component("painter", "test", ("backend.render.skin_texture",)).identity(config)
    assert base.identity(config) != Component("painter", "other", base.modules).identity(config)
    assert base.identity(config) != Component("painter", "test", ("backend.render.clothing_texture",)).identity(config)


def test_a_tier_is_unavailable_with_its_first_missing_components_reason(config):
    missing = Component("device", "gpu", (), availability=lambda c: Availability(False, "no GPU here"))
    tier = Tier("gpu", {"pipeline": PIPELINES["body"].tiers()[0].components["pipeline"], "device": missing})
    described = tier.describe(config)
    assert described["available"] is False and described["reason"] == "no GPU here"
    assert described["components"]["device"] == {"role": "device", "name": "gpu", "identity": None}
    assert len(described["components"]["pipeline"]["identity"]) == 16
    absent = Component("encoder", "absent", (), packages=("no-such-distribution-af",))
    assert "no-such-distribution-af" in absent.available(config).reason


def test_a_component_is_registered_once():
    component = registered()[0]
    assert register(component) is component
    with pytest.raises(ValueError, match="already registered"):
        register(Component(component.role, component.name, ()))
