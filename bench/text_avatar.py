"""Text -> dressed avatar (`text_avatar`): warm latency per stage on this machine.

    .venv/bin/python bench/text_avatar.py [--size 1024] [--repeats 5] [--encoder minilm]

Stages, each timed warm (encoder, Anny, vocabularies and the UV raster already
loaded; median over the prompts and repeats): text -> shape (text/shape.py),
appearance parse (text/appearance.py), Anny build, texture painting (skin +
garments, without PNG encoding), PNG encoding. "shape + texture" is everything
a request does after the job starts except the one-off loads; the target is
under 1 s at the default texture size. Also prints the cold start (loads) and
the whole pipeline run.
"""
from __future__ import annotations

import argparse
import statistics
import time

from avatarforge.backend.config import BackendConfig
from avatarforge.backend.models.anny_model import load_anny_model
from avatarforge.backend.models.encoders import load_text_encoder
from avatarforge.backend.pipelines import JobContext
from avatarforge.backend.pipelines.text_avatar import TextAvatarPipeline
from avatarforge.backend.render.clothing_texture import PNG_COMPRESS_LEVEL, paint_avatar_layers
from avatarforge.backend.render.skin_texture import encode_png
from avatarforge.backend.text.appearance import parse_appearance
from avatarforge.backend.text.shape import estimate_shape

PROMPTS = [
    "a man in a red shirt and blue jeans",
    "a tall woman with long blonde hair in a green and white striped dress and black high heels",
    "a cartoon boy in a yellow hoodie, khaki shorts and white sneakers",
    "an old man with short grey hair in a charcoal suit and brown shoes",
    "a muscular woman in a black tank top, grey leggings and a navy cap",
]


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--encoder", default="minilm", choices=["minilm", "clip"])
    args = parser.parse_args()
    config = BackendConfig()

    _, t_enc = timed(lambda: load_text_encoder(args.encoder, config))
    encoder = load_text_encoder(args.encoder, config)
    _, t_anny = timed(load_anny_model)
    model = load_anny_model()
    # First calls build the caches: shape codebook, appearance vocabulary, UV raster.
    def first_request() -> None:
        shape = estimate_shape(PROMPTS[0], encoder, config)
        mesh = model.build({"phenotypes": shape.phenotypes, "local_changes": shape.local_changes})
        paint_avatar_layers(mesh, parse_appearance(PROMPTS[0], encoder), args.size, 0)

    _, t_first = timed(first_request)
    print(f"cold: encoder {t_enc:.2f} s, Anny {t_anny:.2f} s, first request's caches {t_first:.2f} s")

    stages: dict[str, list[float]] = {k: [] for k in ("shape", "appearance", "body", "paint", "png", "total")}
    for _ in range(args.repeats):
        for prompt in PROMPTS:
            shape, t_shape = timed(lambda: estimate_shape(prompt, encoder, config))
            appearance, t_app = timed(lambda: parse_appearance(prompt, encoder))
            mesh, t_body = timed(lambda: model.build({"phenotypes": shape.phenotypes,
                                                      "local_changes": shape.local_changes}))
            painted, t_paint = timed(lambda: paint_avatar_layers(mesh, appearance, args.size, 0))
            _, t_png = timed(lambda: encode_png(painted.rgb, compress_level=PNG_COMPRESS_LEVEL))
            for k, v in zip(stages, (t_shape, t_app, t_body, t_paint, t_png,
                                     t_shape + t_app + t_body + t_paint + t_png)):
                stages[k].append(v)
    print(f"warm latency per stage at {args.size} px (median of {len(stages['total'])} runs, "
          f"{args.encoder} encoder):")
    for k, v in stages.items():
        label = "shape + texture (all stages)" if k == "total" else k
        print(f"  {label:30s} {statistics.median(v) * 1000:7.1f} ms   (max {max(v) * 1000:.1f} ms)")

    pipeline = TextAvatarPipeline()
    params = pipeline.normalise({"prompt": PROMPTS[1], "texture_size": args.size, "encoder": args.encoder}, config)
    runs = [timed(lambda: pipeline.run(params, JobContext(config=config)))[1] for _ in range(args.repeats)]
    print(f"whole text_avatar job (in process, warm): {statistics.median(runs) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
