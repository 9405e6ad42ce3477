"""The CLIP tier of text -> shape, end to end with a tiny random-weight open_clip
checkpoint loaded through the real loader (random weights: we check the real path,
shapes, caching and completeness, not what it ranks first)."""
from __future__ import annotations

import numpy as np
import pytest

from avatarforge.backend.config import BackendConfig
from avatarforge.backend.models import clip_model
from avatarforge.backend.models.anny_model import phenotype_names
from avatarforge.backend.models.encoders import load_text_encoder
from avatarforge.backend.render import body_render
from avatarforge.backend.text import shape
from avatarforge.protocol import ErrorCode, ProtocolError


def test_missing_checkpoint_says_which_files_go_where(tmp_path):
    empty = BackendConfig(models_dir=tmp_path, clip_dir=None)
    info = clip_model.clip_availability(empty)
    assert not info["available"]
    assert str(tmp_path / "clip" / "open_clip_config.json") in info["reason"]
    (tmp_path / "clip").mkdir()
    (tmp_path / "clip" / "open_clip_config.json").write_text('{"model_cfg": {}}')
    reason = clip_model.clip_availability(empty)["reason"]
    assert "open_clip_model.safetensors" in reason and "open_clip_pytorch_model.bin" in reason
    with pytest.raises(ProtocolError) as err:
        load_text_encoder("clip", empty)
    assert err.value.code == ErrorCode.MODEL_MISSING
    unconfigured = BackendConfig(models_dir=None, clip_dir=None)
    assert "--clip-dir" in clip_model.clip_availability(unconfigured)["reason"]


def test_tiny_clip_loads_through_the_real_loader(tiny_clip_dir):
    config = BackendConfig(clip_dir=tiny_clip_dir)
    assert clip_model.clip_availability(config)["available"]
    encoder = load_text_encoder("clip", config)
    assert encoder.name == "clip" and encoder.dim == 32
    assert "open_clip_pytorch_model.bin" in encoder.version and str((tiny_clip_dir / "open_clip_pytorch_model.bin")
                                                                     .stat().st_size) in encoder.version
    text = encoder.encode(["a tall man", "a short woman"])
    assert text.shape == (2, 32) and np.allclose(np.linalg.norm(text, axis=1), 1, atol=1e-5)
    images = np.random.default_rng(0).integers(0, 255, (3, 64, 48, 3), dtype=np.uint8)
    emb = encoder.encode_images(images)
    assert emb.shape == (3, 32) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)


def test_front_render_shows_a_centred_grey_body(anny_model):
    image = body_render.render_front(anny_model.build({}))
    assert image.shape == (224, 224, 3) and image.dtype == np.uint8
    body = image[..., 0] < 250
    rows, cols = np.flatnonzero(body.any(1)), np.flatnonzero(body.any(0))
    assert 0.6 * 224 < np.ptp(rows) < 224 and abs((cols.min() + cols.max()) / 2 - 112) < 4
    tall = body_render.render_front(anny_model.build({"phenotypes": {"height": 0.95}}))[..., 0] < 250
    assert np.ptp(np.flatnonzero(tall.any(1))) > np.ptp(rows) + 5      # one scale for all bodies: taller looks taller


def test_clip_tier_ranks_rendered_bodies_and_caches_them(tiny_clip_dir, anny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("AVATARFORGE_TEXT_CACHE", str(tmp_path))
    config = BackendConfig(clip_dir=tiny_clip_dir)
    encoder = load_text_encoder("clip", config)
    renders = []

    def render_body(mesh):
        renders.append(1)
        return body_render.render_front(mesh)

    est = shape.estimate_shape("a tall, skinny old man in a red hoodie", encoder, config, render_body=render_body)
    assert len(renders) == len(shape.image_codebook_entries())
    assert list(est.phenotypes) == list(phenotype_names())
    assert all(0.0 <= v <= 1.0 for v in est.phenotypes.values())
    assert 0.0 <= est.confidence <= 1.0 and est.model == "anny" and est.betas == []
    assert est.details["tier"] == "image" and est.details["encoder"]["name"] == "clip"
    assert abs(sum(m["weight"] for m in est.details["top_matches"]) - 1.0) < 1e-3 or \
        est.details["top_matches"][0]["weight"] == 0.0
    assert list(tmp_path.glob("shape-images-anny-*.npz"))
    again = shape.estimate_shape("a tall, skinny old man in a red hoodie", encoder, config, render_body=render_body)
    assert len(renders) == len(shape.image_codebook_entries())      # the second call reads the cache
    assert again.phenotypes == est.phenotypes
    assert set(est.to_json()) == {"model", "phenotypes", "local_changes", "confidence"}
    with pytest.raises(ValueError):      # the image tier needs a renderer
        shape.estimate_shape("a tall man", encoder, config)
