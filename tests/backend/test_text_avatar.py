"""The text_avatar job: params, an in-process run, and a real backend process."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from avatarforge.backend.config import BackendConfig
from avatarforge.backend.core.components import used_components
from avatarforge.backend.pipelines import JobContext
from avatarforge.backend.pipelines.text_avatar import PAINTERS, TextAvatarPipeline
from avatarforge.protocol import ErrorCode, ProtocolError, RiggedAvatar


@pytest.fixture(scope="module")
def pipeline():
    return TextAvatarPipeline()


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return BackendConfig(models_dir=tmp_path_factory.mktemp("models"))


def run(pipeline, config, **params):
    stages = []
    ctx = JobContext(config=config, on_progress=lambda f, s: stages.append((f, s)))
    (avatar,) = pipeline.run(pipeline.normalise(params, config), ctx)
    return avatar, stages


def test_normalise_fills_defaults(pipeline, config):
    out = pipeline.normalise({"prompt": "  a tall   man  "}, config)
    assert out == {"prompt": "a tall man", "seed": 0, "texture_size": 1024, "encoder": "minilm",
                   "name": "text_avatar", "phenotypes": {}, "local_changes": {}}
    assert pipeline.tier_of(out) == "minilm"
    out = pipeline.normalise({"prompt": "x", "phenotypes": {"height": 1, "age": 0.2},
                              "local_changes": {"nose-scale-vert-incr": 0.5}}, config)
    assert out["phenotypes"] == {"age": 0.2, "height": 1.0}   # only the overrides, sorted
    assert out["local_changes"] == {"nose-scale-vert-incr": 0.5}


@pytest.mark.parametrize("params, field", [
    ({"prompt": ""}, "prompt"), ({"prompt": "   "}, "prompt"), ({"prompt": "a" * 501}, "prompt"),
    ({}, "prompt"), ({"prompt": 3}, "prompt"), ({"prompt": "x", "encoder": "bert"}, "encoder"),
    ({"prompt": "x", "texture_size": 100}, "texture_size"), ({"prompt": "x", "seed": -1}, "seed"),
    ({"prompt": "x", "phenotypes": {"height": 2}}, "phenotypes.height"),
    ({"prompt": "x", "phenotypes": {"wingspan": 0.5}}, "phenotypes.wingspan"),
    ({"prompt": "x", "colour": "red"}, "colour"), ({"prompt": "x", "name": ""}, "name")])
def test_bad_params_are_refused(pipeline, config, params, field):
    with pytest.raises(ProtocolError) as err:
        pipeline.normalise(params, config)
    assert err.value.code == ErrorCode.BAD_REQUEST and field in str(err.value)


def test_clip_without_a_checkpoint_is_model_missing(pipeline, config):
    tiers = pipeline.describe(config)["tiers"]
    assert tiers["minilm"]["available"] is True and tiers["clip"]["available"] is False
    with pytest.raises(ProtocolError) as err:
        pipeline.normalise({"prompt": "a man", "encoder": "clip"}, config)
    assert err.value.code == ErrorCode.MODEL_MISSING


def test_clip_tier_follows_the_encoder(pipeline, tiny_clip_dir):
    config = BackendConfig(clip_dir=tiny_clip_dir)
    assert pipeline.tier("clip").available(config).available
    params = pipeline.normalise({"prompt": "a man", "encoder": "clip"}, config)
    assert pipeline.tier_of(params) == "clip"
    used = used_components(pipeline.components(pipeline.choose_tier(None, params, config), params, config), config)
    # The CLIP tier ranks with CLIP and reads the appearance with MiniLM: both are in its key.
    assert (used["encoder"]["name"], used["word_encoder"]["name"]) == ("clip", "minilm")


def test_each_tier_names_every_part_and_its_painter(pipeline, config):
    for tier in pipeline.tiers():
        assert {"pipeline", "encoder", "shape_estimator", "appearance_reader", "body_model",
                "painter"} <= set(tier.components)
        assert tier.components["painter"].name in PAINTERS


def test_run_dresses_the_estimated_body(pipeline, config, anny_model):
    avatar, stages = run(pipeline, config, prompt="a very tall man in a red shirt and blue jeans, cartoon style",
                         texture_size=256, phenotypes={"muscle": 0.9})
    assert isinstance(avatar, RiggedAvatar) and avatar.body_model == "anny"
    text = avatar.params["text"]
    assert text["style"] == "toon" and text["confidence"] > 0.3
    kinds = {g["slot"]: (g["kind"], g["colour_name"]) for g in text["appearance"]["garments"]}
    assert kinds == {"top": ("shirt", "red"), "bottom": ("jeans", "blue")}
    assert avatar.params["phenotypes"]["muscle"] == 0.9                 # the override wins
    assert avatar.params["phenotypes"]["gender"] < 0.3                  # "man", from the prompt
    assert avatar.params["phenotypes"]["height"] > 0.6                  # "very tall"
    settings = avatar.materials[0].settings
    assert settings["style"] == "toon" and settings["shading"] == "toon" and settings["outline"] is True
    img = Image.open(io.BytesIO(avatar.materials[0].png))
    assert img.size == (256, 256)
    assert len(avatar.skeleton.joint_names) == len(anny_model.joint_names)
    assert set(avatar.provenance["timings"]) == {"load", "shape", "appearance", "body", "texture"}
    fractions = [f for f, _ in stages]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {"understanding the body", "understanding the appearance", "painting texture"} <= {s for _, s in stages}


def test_clothes_without_a_body_description_dress_the_neutral_body(pipeline, config):
    from avatarforge.backend.models.anny_model import default_phenotypes

    avatar, _ = run(pipeline, config, prompt="a person in a green raincoat", texture_size=256)
    text = avatar.params["text"]
    assert text["confidence"] < 0.2 and text["neutral_body"] is True
    assert avatar.params["phenotypes"] == pytest.approx(default_phenotypes(), abs=1e-3)
    assert [g["kind"] for g in text["appearance"]["garments"]] == ["coat"]


def test_prompt_about_nothing_gives_the_neutral_body_with_low_confidence(pipeline, config):
    from avatarforge.backend.models.anny_model import default_phenotypes

    avatar, _ = run(pipeline, config, prompt="a banana on a table", texture_size=256)
    text = avatar.params["text"]
    assert text["appearance"]["garments"] == [] and text["style"] is None
    assert avatar.materials[0].settings["style"] == "realistic"
    # The body comes from text/shape's estimate: off-topic prompts must keep the neutral body.
    assert text["confidence"] < 0.2 and text["neutral_body"] is True, text["shape"].get("attributes")
    assert avatar.params["phenotypes"] == pytest.approx(default_phenotypes(), abs=1e-3)


def test_non_ascii_prompt_runs(pipeline, config):
    avatar, _ = run(pipeline, config, prompt="Zoë, une danseuse 💃 in a yellow dress — 黄色", texture_size=256)
    assert avatar.params["text"]["prompt"].startswith("Zoë")
    assert [g["kind"] for g in avatar.params["text"]["appearance"]["garments"]] == ["dress"]
    px = np.asarray(Image.open(io.BytesIO(avatar.materials[0].png)).convert("RGB"), dtype=np.float32)
    assert px.shape == (256, 256, 3)


def test_cli_writes_a_glb(tmp_path, capsys):
    from avatarforge.backend.cli import main

    out = tmp_path / "avatar.glb"
    assert main(["--log-level", "warning", "generate", "avatar", "--prompt", "a woman in a green hoodie",
                 "--texture-size", "256", "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"glTF"
    assert "green hoodie" in capsys.readouterr().out
    assert main(["generate", "avatar", "--prompt", ""]) == 2
    assert "BAD_REQUEST" in capsys.readouterr().err


def test_through_a_real_backend(tmp_path):
    from avatarforge.protocol.client import Client
    from tests.support.server import BackendProcess

    with BackendProcess(tmp_path / "store", plugins=False) as backend, \
            Client(backend.address, timeout_s=180) as client:
        client.connect()
        tiers = client.welcome["pipelines"]["text_avatar"]["tiers"]
        assert tiers["minilm"]["available"] is True
        (avatar,) = client.run("text_avatar", {"prompt": "an old woman in a purple coat", "texture_size": 256,
                                               "seed": 5})
        assert isinstance(avatar, RiggedAvatar)
        assert avatar.params["text"]["appearance"]["garments"][0]["kind"] == "coat"
        assert avatar.materials[0].settings["style"] == "realistic"
        with pytest.raises(ProtocolError) as err:
            client.submit("text_avatar", {"prompt": ""})
        assert err.value.code == ErrorCode.BAD_REQUEST
