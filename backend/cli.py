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
from .core.limits import MOTION_FPS, MOTION_SECONDS


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
    serve.add_argument("--store-max-bytes", type=byte_size, default=BackendConfig.store_max_bytes, metavar="SIZE",
                       help="most the result store may hold, e.g. 500M, 20G (default "
                            f"{BackendConfig.store_max_bytes // 1024 ** 3}G); past it the least recently used "
                            "results are evicted")
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
    add_text2shape_commands(sub)
    add_text_avatar_commands(gen_sub)
    add_text2motion_commands(sub)
    add_motion_commands(sub)
    add_video2motion_commands(sub)
    add_store_commands(sub)
    return parser


_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4}


def byte_size(text: str) -> int:
    """'20G', '500M', '1.5T' or a plain number of bytes (binary units)."""
    number, unit = text.strip().upper().rstrip("IB"), ""
    if number[-1:] in ("K", "M", "G", "T"):
        number, unit = number[:-1], number[-1]
    try:
        value = float(number)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size: use bytes or K, M, G, T (e.g. 20G)") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a size cannot be negative")
    return int(value * _SIZE_UNITS[unit])


def add_store_commands(sub: Any) -> None:
    """`avatarforge store stats|prune|verify`: the result store on disk (a running server may use it)."""
    store = sub.add_parser("store", help="the result store: its size, eviction and checksums")
    store_sub = store.add_subparsers(dest="store_command", required=True)
    for name, help_text in (("stats", "entries, bytes, least and most recently used"),
                            ("prune", "evict least recently used results down to a size or an age"),
                            ("verify", "check every entry's checksums, quarantine the damaged (exit 1 if any)")):
        p = store_sub.add_parser(name, help=help_text)
        p.add_argument("--store", type=Path, default=default_store_dir(),
                       help="result store folder; env AVATARFORGE_STORE")
        p.add_argument("--format", choices=["json", "text"], default="text")
        p.set_defaults(handler=cmd_store)
        if name == "prune":
            p.add_argument("--max-bytes", type=byte_size, metavar="SIZE", help="evict down to this size, e.g. 5G")
            p.add_argument("--unused-days", type=float, metavar="DAYS",
                           help="evict every result not used (stored or fetched) for this many days")


def cmd_store(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from .store import ResultStore

    if not args.store.is_dir():
        print(f"avatarforge: {args.store}: no result store there", file=sys.stderr)
        return 2
    store = ResultStore(args.store)
    if args.store_command == "stats":
        report: Any = asdict(store.stats())
        lines = [f"{report['entries']} results, {report['bytes'] / 1024 ** 2:.1f} MiB; "
                 f"{report['quarantined']} quarantined, {report['quarantined_bytes'] / 1024 ** 2:.1f} MiB",
                 f"least recently used: {_when(report['least_recently_used'])}",
                 f"most recently used: {_when(report['most_recently_used'])}"]
    elif args.store_command == "prune":
        if args.max_bytes is None and args.unused_days is None:
            print("avatarforge: store prune: give --max-bytes SIZE and/or --unused-days DAYS", file=sys.stderr)
            return 2
        # No size means no cap: only the age prunes then.
        eviction = store.evict(max_bytes=args.max_bytes if args.max_bytes is not None else 2 ** 63,
                               unused_for_s=None if args.unused_days is None else args.unused_days * 86400)
        report = asdict(eviction)
        lines = [f"evicted {len(eviction.removed)} results and {eviction.quarantine_removed} quarantined entries, "
                 f"{eviction.freed_bytes / 1024 ** 2:.1f} MiB freed"
                 + (f"; {len(eviction.spared)} being read were kept" if eviction.spared else "")]
    else:
        verification = store.verify()
        report = asdict(verification)
        lines = [f"checked {verification.checked} results ({verification.bytes / 1024 ** 2:.1f} MiB): "
                 f"{len(verification.damaged)} damaged"
                 + (f", moved to {store.root / 'quarantine'}" if verification.damaged else "")]
        lines += [f"  {key}: {why}" for key, why in sorted(verification.damaged.items())]
    print(json.dumps(report, indent=2) if args.format == "json" else "\n".join(lines))
    return 1 if args.store_command == "verify" and report["damaged"] else 0


def _when(t: float | None) -> str:
    import time

    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def add_motion_commands(sub: Any) -> None:
    """`avatarforge motion import FILE`: a BVH or AMASS .npz onto SMPL-24 (job motion_import)."""
    motion = sub.add_parser("motion", help="motion files: import BVH / AMASS npz")
    motion_sub = motion.add_subparsers(dest="motion_command", required=True)
    p = motion_sub.add_parser("import", help="read a .bvh or AMASS-style .npz onto the SMPL-24 skeleton")
    p.add_argument("file", type=Path, help="the .bvh or .npz file")
    p.add_argument("--fps", type=float, help="resample to this frame rate (default: keep the file's)")
    p.add_argument("--target", choices=["anny", "smpl"], help="also retarget onto this rig")
    p.add_argument("--scale", type=float, help="BVH units -> metres (default: guessed from the skeleton height)")

    def joint_map_file(text: str) -> Any:
        try:
            return json.loads(Path(text).read_text(encoding="utf-8"))
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"{text}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text}: not JSON ({exc})") from None

    p.add_argument("--joint-map", type=joint_map_file, metavar="MAP.json",
                   help='BVH only: a JSON file {"BVH joint name": "SMPL joint name", ...} for skeletons whose '
                        "names are not CMU, Mixamo, Biovision or SMPL (overrides the automatic naming)")
    p.add_argument("--out", type=Path, help=MOTION_OUT_HELP)
    p.add_argument("--format", choices=["json", "text"], default="json",
                   help="json: fps, joint_names, joints [T][24][3] (metres, Z up), poses, trans, contacts; "
                        "text: a summary")
    _add_config_args(p)
    p.set_defaults(handler=cmd_motion_import)


def cmd_motion_import(args: argparse.Namespace) -> int:
    from .motion.ops import motion_json

    try:
        data = args.file.read_bytes()
    except OSError as exc:
        print(f"avatarforge: {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    params: dict[str, Any] = {"data": data, "filename": args.file.name}
    for name in ("fps", "target", "scale", "joint_map"):
        if getattr(args, name) is not None:
            params[name] = getattr(args, name)
    (motion,) = run_job("motion_import", params, config_from_args(args))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_motion_file(motion, args.out, args.target)
    if args.format == "json":
        print(json.dumps(motion_json(motion)))
    else:
        src = motion.provenance["source"]
        travel = float(((motion.trans[-1, :2] - motion.trans[0, :2]) ** 2).sum() ** 0.5)
        print(f"{motion.name}: {motion.frames} frames at {motion.fps:g} fps ({motion.seconds:.2f} s) from "
              f"{src['format']} ({src.get('skeleton') or src.get('layout')}); root travels {travel:.2f} m"
              + (f"; retargeted onto {motion.retargeted.rig} ({len(motion.retargeted.bone_names)} bones)"
                 if motion.retargeted and motion.retargeted.rig != motion.REFERENCE_RIG else "")
              + (f" -> {args.out}" if args.out else ""))
    return 0


def add_text_avatar_commands(gen_sub: Any) -> None:
    """`avatarforge generate avatar --prompt "..." --out x.glb`: text -> dressed, rigged Anny (job text_avatar)."""
    p = gen_sub.add_parser("avatar", help="a rigged, textured, dressed avatar from a text prompt")
    p.add_argument("--prompt", required=True, help='the person, e.g. "a tall woman in a red dress and white sneakers"')
    p.add_argument("--seed", type=int)
    p.add_argument("--texture-size", type=int)
    p.add_argument("--encoder", choices=["minilm", "clip"])
    p.add_argument("--name")
    p.add_argument("--phenotype", type=_key_value, action="append", default=[], metavar="NAME=VALUE",
                   help="override an estimated Anny phenotype, value in [0, 1] (repeatable)")
    p.add_argument("--out", type=Path, help="write a skinned, textured .glb here")
    p.add_argument("--format", choices=["json", "text"], default="text",
                   help="what to print: a summary line, or JSON with what the prompt was understood as")
    _add_config_args(p)
    p.set_defaults(handler=cmd_generate_avatar)


def cmd_generate_avatar(args: argparse.Namespace) -> int:
    from .formats.gltf import write_glb

    params: dict[str, Any] = {"prompt": args.prompt}
    for name in ("seed", "texture_size", "encoder", "name"):
        if getattr(args, name) is not None:
            params[name] = getattr(args, name)
    if args.phenotype:
        params["phenotypes"] = dict(args.phenotype)
    (avatar,) = run_job("text_avatar", params, config_from_args(args))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_glb(avatar, args.out)
    text = avatar.params["text"]
    garments = [f"{g['colour_name']} {g['pattern'] + ' ' if g['pattern'] != 'solid' else ''}{g['kind']}"
                for g in text["appearance"]["garments"]]
    if args.format == "json":
        print(json.dumps({"name": avatar.name, "phenotypes": avatar.params["phenotypes"],
                          "local_changes": avatar.params["local_changes"], "text": text,
                          "material": avatar.materials[0].settings,
                          "out": str(args.out) if args.out else None}, indent=2, default=str))
    else:
        print(f"{avatar.name}: confidence {text['confidence']:.2f}, style {text['style'] or 'realistic'}, "
              f"wearing {', '.join(garments) or 'nothing named'}" + (f" -> {args.out}" if args.out else ""))
    return 0


def add_text2motion_commands(sub: Any) -> None:
    """`avatarforge text2motion "<prompt>"`: text -> motion (AvatarCLIP M1 + M2), printed as JSON or a summary."""
    p = sub.add_parser("text2motion", help="a motion on the SMPL-24 skeleton from a text prompt")
    p.add_argument("prompt", help='what the person does, e.g. "waves hello, then jumps"')
    p.add_argument("--seconds", type=float, default=4.0,
                   help=f"duration, {MOTION_SECONDS[0]:g}..{MOTION_SECONDS[1]:g} (default 4)")
    p.add_argument("--fps", type=float, default=30.0,
                   help=f"frame rate, {MOTION_FPS[0]:g}..{MOTION_FPS[1]:g} (default 30)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--encoder", choices=["minilm", "clip"], default="minilm")
    p.add_argument("--target", choices=["anny", "smpl"], default=None, help="also retarget onto this rig")
    p.add_argument("--out", type=Path, help=MOTION_OUT_HELP)
    p.add_argument("--format", choices=["json", "text"], default="json",
                   help="json: fps, joint_names, joints [T][24][3], poses, trans; text: a summary")
    _add_config_args(p)
    p.set_defaults(handler=cmd_text2motion)


def cmd_text2motion(args: argparse.Namespace) -> int:
    import numpy as np

    from .motion.ops import motion_json

    params: dict[str, Any] = {"prompt": args.prompt, "seconds": args.seconds, "fps": args.fps, "seed": args.seed,
                              "encoder": args.encoder}
    if args.target:
        params["target"] = args.target
    (motion,) = run_job("text_motion", params, config_from_args(args))
    if args.out:
        write_motion_file(motion, args.out, args.target)
    if args.format == "json":
        print(json.dumps(motion_json(motion)))
    else:
        actions = ", then ".join(f"{s['action']} ({s['kind']}, {s['score']:.2f})"
                                 for s in motion.params["text"]["segments"])
        travel = float(np.linalg.norm(motion.trans[-1, :2] - motion.trans[0, :2]))
        print(f"{motion.frames} frames at {motion.fps:g} fps ({motion.seconds:.2f} s): {actions}; "
              f"root travels {travel:.2f} m")
    return 0


MOTION_OUT_HELP = "also write the motion: .bvh, .npz (AMASS-style SMPL-H) or .glb/.gltf (animated skeleton)"


def write_motion_file(motion: Any, path: Path, target: str | None) -> None:
    """A CLI's --out: the motion on the target rig's skeleton when one was asked for, else on SMPL-24."""
    from .formats.gltf import write_animation_glb
    from .motion.export import write_motion
    from .motion.targets import normalise_target

    write_motion(motion, path, target_rig=normalise_target(target) if target else None,
                 glb_writer=write_animation_glb)


def add_video2motion_commands(sub: Any) -> None:
    """`avatarforge video2motion clip.mp4`: motion capture from a video of one person (job video_motion)."""
    from avatarforge.protocol.limits import DEFAULT_VIDEO_FOCAL_MM, VIDEO_FOCAL_MM

    p = sub.add_parser("video2motion", help="a motion on the SMPL-24 skeleton captured from a video of one person")
    p.add_argument("file", type=Path, help="the video (.mp4, .mov, .mkv, .webm, .avi, ...)")
    p.add_argument("--fps", type=float, help="the motion's frame rate (default: the video's)")
    p.add_argument("--target", choices=["anny", "smpl"], default=None, help="also retarget onto this rig")
    p.add_argument("--focal-mm", type=float, help=f"the camera's 35 mm-equivalent focal length, "
                   f"{VIDEO_FOCAL_MM[0]:g}..{VIDEO_FOCAL_MM[1]:g} (default: the file's metadata, else "
                   f"{DEFAULT_VIDEO_FOCAL_MM:g})")
    p.add_argument("--start", type=float, help="capture from this second of the clip")
    p.add_argument("--end", type=float, help="capture up to this second of the clip")
    p.add_argument("--out", type=Path, help=MOTION_OUT_HELP)
    p.add_argument("--format", choices=["json", "text"], default="json",
                   help="json: fps, joint_names, joints [T][24][3] (metres, Z up), poses, trans, contacts, "
                        "gaps, camera; text: a summary")
    _add_config_args(p)
    p.set_defaults(handler=cmd_video2motion)


def cmd_video2motion(args: argparse.Namespace) -> int:
    from .motion.ops import motion_json

    try:
        data = args.file.read_bytes()
    except OSError as exc:
        print(f"avatarforge: {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    params: dict[str, Any] = {"data": data, "filename": args.file.name}
    for name in ("fps", "target", "focal_mm", "start", "end"):
        if getattr(args, name) is not None:
            params[name] = getattr(args, name)
    motion, camera = run_job("video_motion", params, config_from_args(args))
    if args.out:
        write_motion_file(motion, args.out, args.target)
    video = motion.params["video"]
    if args.format == "json":
        print(json.dumps({**motion_json(motion), "gaps": video["gaps"], "gaps_seconds": video["gaps_seconds"],
                          "people_max": video["people_max"], "stopped": video["stopped"],
                          "camera": {"K": camera.K.tolist(), "image_size": list(camera.image_size),
                                     "world_to_camera": camera.world_to_camera.tolist(),
                                     "focal_mm": video["focal_mm"], "focal_source": video["focal_source"]},
                          "out": str(args.out) if args.out else None}))
    else:
        gaps = ", ".join(f"{a}-{b}" for a, b in video["gaps"]) or "none"
        print(f"{motion.name}: {motion.frames} frames at {motion.fps:g} fps ({motion.seconds:.2f} s); gaps filled: "
              f"{gaps}; people in view: up to {video['people_max']}"
              + (f"; stopped early: {video['stopped']}" if video["stopped"] else "")
              + (f" -> {args.out}" if args.out else ""))
    return 0


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

    from .core.components import used_components
    from .pipelines import JobContext, load_pipelines, record_components

    pipeline = load_pipelines()[job]
    normalised = pipeline.normalise(params, config)
    tier = pipeline.choose_tier(None, normalised, config)
    used = used_components(pipeline.components(tier, normalised, config), config)
    with tqdm(total=100, desc=job, unit="%", file=sys.stderr, leave=False,
              disable=not sys.stderr.isatty()) as bar:
        def on_progress(fraction: float, stage: str) -> None:
            bar.set_description_str(stage)
            bar.update(round(fraction * 100) - bar.n)

        ctx = JobContext(config=config, device=config.device, seed=int(normalised.get("seed") or 0),
                         on_progress=on_progress)
        return record_components(pipeline.run(normalised, ctx), used)


def cmd_generate(args: argparse.Namespace) -> int:
    from .formats.gltf import write_glb

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


def add_text2shape_commands(sub: Any) -> None:
    p = sub.add_parser("text2shape", help="the body shape a prompt describes (AvatarCLIP S1), as phenotypes")
    p.add_argument("prompt", help='e.g. "a tall, skinny old man in a red hoodie"')
    p.add_argument("--encoder", default="minilm", choices=["minilm", "clip"],
                   help="text encoder: minilm (embedded) or clip (open_clip folder: --clip-dir)")
    p.add_argument("--model", default="anny", choices=["anny", "smpl"],
                   help="anny phenotypes, or SMPL betas from your model files (--models-dir)")
    p.add_argument("--format", choices=["json", "text"], default="text")
    _add_config_args(p)
    p.set_defaults(handler=cmd_text2shape)


def cmd_text2shape(args: argparse.Namespace) -> int:
    from .models.encoders import load_text_encoder
    from .render.body_render import render_front
    from .text.prompt import clean_prompt
    from .text.shape import estimate_shape

    config = config_from_args(args)
    prompt = clean_prompt(args.prompt)       # before loading an encoder: bad input fails fast
    estimate = estimate_shape(prompt, load_text_encoder(args.encoder, config, config.device), config, args.model,
                              render_body=render_front)
    if args.format == "json":
        print(json.dumps(estimate.to_json(), indent=2, ensure_ascii=False))
        return 0
    names = ("gender", "age", "height", "weight", "muscle", "proportions")
    print(", ".join(f"{n} {estimate.phenotypes[n]:.2f}" for n in names)
          + "".join(f", {n} {v:+.2f}" for n, v in estimate.local_changes.items())
          + (f", betas [{', '.join(f'{b:.2f}' for b in estimate.betas)}]" if estimate.betas else "")
          + f" (confidence {estimate.confidence:.2f}, {estimate.model}, {args.encoder})")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .server import Server

    config = config_from_args(args, bind=args.bind, store_dir=args.store, workers=args.workers,
                              max_message_bytes=args.max_message_bytes, plugins=args.pipeline,
                              store_max_bytes=args.store_max_bytes)
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
