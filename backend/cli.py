"""Command line: `avatarforge serve` and `avatarforge generate`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from avatarforge.protocol import ProtocolError

from . import __version__
from .config import DEFAULT_BIND, BackendConfig, default_models_dir, default_store_dir


def _key_value(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return key.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{key}: {value!r} is not a number") from None


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models-dir", type=Path, default=default_models_dir(),
                   help="folder with your licensed model files (SMPL, SMPL-X...); env AVATARFORGE_MODELS_DIR")
    p.add_argument("--device", default="cpu", help="cpu or cuda:N (default cpu)")
    p.add_argument("--clip-dir", type=Path, default=None,
                   help="open_clip checkpoint folder for the CLIP tiers (default: env AVATARFORGE_CLIP, "
                        "else <models-dir>/clip)")
    p.add_argument("--motion-library", type=Path, default=None,
                   help="folder of labelled motion clips (default: env AVATARFORGE_MOTION_LIBRARY)")


def config_from_args(args: argparse.Namespace, **extra: Any) -> BackendConfig:
    """The backend config from the shared flags (unset ones keep their env/defaults)."""
    config = BackendConfig(models_dir=args.models_dir, device=args.device, **extra)
    if args.clip_dir is not None:
        config.clip_dir = args.clip_dir
    if args.motion_library is not None:
        config.motion_library = args.motion_library
    return config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avatarforge", description="AvatarForge backend")
    parser.add_argument("--version", action="version", version=f"avatarforge {__version__}")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the compute server")
    serve.add_argument("--bind", default=DEFAULT_BIND, help=f"ZeroMQ endpoint (default {DEFAULT_BIND})")
    serve.add_argument("--store", type=Path, default=default_store_dir(),
                       help="result store folder; env AVATARFORGE_STORE")
    serve.add_argument("--workers", type=int, default=1, help="jobs run at once on the device")
    serve.add_argument("--max-message-bytes", type=int, default=BackendConfig.max_message_bytes,
                       help="largest message accepted from a client")
    serve.add_argument("--pipeline", action="append", default=[], metavar="MODULE:CLASS",
                       help="also serve this pipeline plugin (repeatable)")
    _add_config_args(serve)

    gen = sub.add_parser("generate", help="run a job in this process and write its result")
    gen_sub = gen.add_subparsers(dest="job", required=True)
    body = gen_sub.add_parser("body", help="a rigged, textured body from body-model parameters")
    body.add_argument("--model", default="anny", choices=["anny", "smpl", "smplh", "smplx"])
    body.add_argument("--phenotype", type=_key_value, action="append", default=[], metavar="NAME=VALUE",
                      help="Anny phenotype in [0, 1], e.g. gender=0.2 height=0.8 (repeatable)")
    body.add_argument("--local-change", type=_key_value, action="append", default=[], metavar="NAME=VALUE",
                      help="Anny local change (repeatable)")
    body.add_argument("--betas", type=float, nargs="+", help="SMPL-family shape coefficients")
    body.add_argument("--gender", choices=["neutral", "male", "female"], help="SMPL-family model gender")
    body.add_argument("--texture-size", type=int)
    body.add_argument("--seed", type=int)
    body.add_argument("--out", type=Path, help="write a skinned, textured .glb here")
    body.add_argument("--format", choices=["json", "text"], default="text",
                      help="what to print: a summary line, or JSON with the parameters and counts")
    _add_config_args(body)
    # Each job's subcommands are added below, one function per job (add_*_commands).
    return parser


def body_params(args: argparse.Namespace) -> dict[str, Any]:
    """The `body` job's params from CLI flags (unset flags take the pipeline's defaults)."""
    params: dict[str, Any] = {"model": args.model}
    if args.phenotype:
        params["phenotypes"] = dict(args.phenotype)
    if args.local_change:
        params["local_changes"] = dict(args.local_change)
    for name in ("betas", "gender", "texture_size", "seed"):
        if getattr(args, name) is not None:
            params[name] = getattr(args, name)
    return params


def run_job(job: str, params: dict[str, Any], config: BackendConfig) -> list[Any]:
    """Run a pipeline in this process with a progress bar on stderr."""
    from tqdm import tqdm

    from .pipelines import JobContext, load_pipelines

    pipeline = load_pipelines()[job]
    normalised = pipeline.normalise(params, config)
    with tqdm(total=100, desc=job, unit="%", file=sys.stderr, leave=False,
              disable=not sys.stderr.isatty()) as bar:
        def on_progress(fraction: float, stage: str) -> None:
            bar.set_description_str(stage)
            bar.update(round(fraction * 100) - bar.n)

        ctx = JobContext(config=config, device=config.device, seed=int(normalised.get("seed") or 0),
                         on_progress=on_progress)
        return pipeline.run(normalised, ctx)


def cmd_generate(args: argparse.Namespace) -> int:
    from .export_gltf import write_glb

    config = config_from_args(args)
    (avatar,) = run_job("body", body_params(args), config)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_glb(avatar, args.out)
    summary = {"model": avatar.body_model, "params": avatar.params,
               "counts": {"vertices": int(len(avatar.vertices)), "faces": int(len(avatar.faces)),
                          "joints": len(avatar.skeleton), "materials": len(avatar.materials)},
               "height_m": float(avatar.vertices[:, 2].max() - avatar.vertices[:, 2].min()),
               "out": str(args.out) if args.out else None}
    if args.format == "json":
        print(json.dumps(summary, indent=2, default=str))
    else:
        c = summary["counts"]
        print(f"{avatar.body_model} body: {c['vertices']} vertices, {c['faces']} faces, {c['joints']} joints, "
              f"{summary['height_m']:.2f} m tall" + (f" -> {args.out}" if args.out else ""))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .server import Server

    config = config_from_args(args, bind=args.bind, store_dir=args.store, workers=args.workers,
                              max_message_bytes=args.max_message_bytes, plugins=args.pipeline)
    server = Server(config)
    server.install_signal_handlers()
    endpoint = server.bind()
    # One plain line on stdout so a parent process (the add-on, tests) knows where we listen.
    print(f"avatarforge serving on {endpoint}", flush=True)
    server.serve_forever()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from .logs import setup_logging

    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    try:
        if args.command == "serve":
            return cmd_serve(args)
        if args.command == "generate" and args.job == "body":
            return cmd_generate(args)
        return args.handler(args)   # subcommands added by add_*_commands set their handler
    except ProtocolError as exc:
        print(f"avatarforge: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
