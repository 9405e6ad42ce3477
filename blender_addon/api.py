"""Python API for pipeline TDs: blocking calls that work in `blender -b --python`
(and the `bpy` wheel), where timers never fire.

    import avatarforge_addon.api as af
    rig, mesh = af.generate_body(phenotypes={"gender": 0.2, "height": 0.8})
    rig, mesh = af.generate_avatar("a tall muscular woman, anime style", seed=2)
    motion = af.animate(rig, "waves hello, then jumps", seconds=4, fps=30)
    motion = af.import_motion("/path/clip.bvh", rig=rig)     # the file's bytes go to the backend
    take = af.motion_from_video("/path/dance.mp4", rig=rig)  # take.action, take.camera_object, take.gaps
    af.export_motion(rig, "/out/dance.fbx", preset="unity")  # or "unreal", "blender"; .glb for glTF

    job = af.submit("body", af.body_params(phenotypes={"muscle": 0.9}))
    job.cancel()              # from anywhere on the same thread
    artifacts = job.wait()    # raises ProtocolError(CANCELLED) after a cancel

Errors are typed: `BackendUnavailable` (nothing answers at the address: start
the backend), `ProtocolError` (the backend refused or the job failed; `.code`
and `.message` say why), `ImportFailed` (the result cannot be built here).

Each call uses one blocking client per address, owned by the calling thread
(a ZeroMQ socket must stay on its thread). The address is, in order: the
`address` argument, $AVATARFORGE_ADDRESS, the add-on preferences,
tcp://127.0.0.1:5757.
"""
from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from typing import Any, Callable

import bpy

from . import exporters, importers, rig_description
from .exporters import ExportedMotion, ExportFailed
from .importers import ImportFailed
from .protocol import ErrorCode, ProtocolError
from .protocol.client import BackendUnavailable, Client
from .protocol.limits import VIDEO_MAX_BYTES, VIDEO_SUFFIXES
from .settings import Settings, current_settings

# Anny's macro phenotypes the panel shows, in [0, 1] (DESIGN §6: gender 0 male,
# 1 female; age on Anny's own scale, 2/3 = young adult).
MAIN_PHENOTYPES = ("gender", "age", "muscle", "weight", "height", "proportions")
ProgressFn = Callable[[float, str], None]

_clients: dict[tuple[str, int], Client] = {}


def _settings(address: str | None) -> Settings:
    s = current_settings()
    if address:
        s.address = address
    return s


def client(address: str | None = None, timeout_s: float | None = None) -> Client:
    """The connected blocking client for `address` on this thread (created and
    greeted on first use). Raises BackendUnavailable if nothing answers."""
    s = _settings(address)
    key = (s.address, threading.get_ident())
    c = _clients.get(key)
    if c is None:
        c = Client(s.address, timeout_s=s.request_timeout_s, client_name="avatarforge-blender-api",
                   client_version=s.addon_version)
        try:
            c.connect(timeout_s=timeout_s or s.connect_timeout_s)
        except ProtocolError:
            c.close()
            raise
        _clients[key] = c
    return c


def _forget(c: Client) -> None:
    """Drop a client whose backend went away, so the next call starts clean."""
    for key, value in list(_clients.items()):
        if value is c:
            del _clients[key]
    c.close()


def close() -> None:
    """Close every client this module opened (unregister calls this)."""
    for c in list(_clients.values()):
        c.close()
    _clients.clear()


def connect(address: str | None = None, timeout_s: float | None = None) -> dict[str, Any]:
    """The backend's `welcome`: version, pipelines with their tiers, devices."""
    c = client(address, timeout_s)
    try:
        return c.connect(timeout_s=timeout_s)
    except BackendUnavailable:
        _forget(c)
        raise


def body_params(phenotypes: dict[str, float] | None = None, model: str = "anny",
                local_changes: dict[str, float] | None = None, seed: int | None = None,
                texture_size: int | None = None, betas: list[float] | None = None,
                gender: str | None = None) -> dict[str, Any]:
    """The `body` job's params; unset values take the backend's defaults."""
    params: dict[str, Any] = {"model": model}
    if phenotypes:
        params["phenotypes"] = {k: float(v) for k, v in phenotypes.items()}
    if local_changes:
        params["local_changes"] = {k: float(v) for k, v in local_changes.items()}
    for key, value in (("seed", seed), ("texture_size", texture_size), ("betas", betas), ("gender", gender)):
        if value is not None:
            params[key] = value
    return params


@dataclass
class Job:
    """A submitted job, followed by this thread's client."""
    job_id: str
    job: str
    cached: bool
    address: str

    def _client(self) -> Client:
        return client(self.address)

    def wait(self, on_progress: ProgressFn | None = None, timeout_s: float | None = None) -> list[Any]:
        """Block until the job ends; its artifacts, or its error raised.
        `timeout_s` bounds the silence between two progress messages."""
        c = self._client()
        callback = (lambda job_id, fraction, stage: on_progress(fraction, stage)) if on_progress else None
        try:
            return c.wait(self.job_id, callback, timeout_s or _settings(self.address).job_timeout_s)
        except BackendUnavailable:
            _forget(c)
            raise

    def cancel(self) -> dict[str, Any]:
        return self._client().cancel(self.job_id)

    def status(self) -> dict[str, Any]:
        return self._client().status(self.job_id)


def submit(job: str, params: dict[str, Any] | None = None, tier: str | None = None,
           address: str | None = None) -> Job:
    c = client(address)
    try:
        accepted = c.submit(job, params or {}, tier)
    except BackendUnavailable:
        _forget(c)
        raise
    return Job(accepted["job_id"], job, bool(accepted.get("cached")), c.address)


def run(job: str, params: dict[str, Any] | None = None, tier: str | None = None,
        on_progress: ProgressFn | None = None, address: str | None = None,
        timeout_s: float | None = None) -> tuple[str, list[Any]]:
    """Submit and wait; returns (job id, artifacts)."""
    handle = submit(job, params, tier, address)
    return handle.job_id, handle.wait(on_progress, timeout_s)


def import_artifacts(artifacts: list[Any], context: Any = None, name: str | None = None,
                     job_id: str | None = None, target: Any = None, **options: Any) -> list[Any]:
    """Build artifacts in the scene (e.g. an ImportedAvatar per RiggedAvatar,
    an ImportedMotion per Motion, keyed onto `target` when given, an
    ImportedCamera per Camera). `options` go to the importers that take them
    (a camera's video_path, reference, set_render)."""
    return importers.import_artifacts(artifacts, context or bpy.context, job_id=job_id, name=name, target=target,
                                      **options)


def generate(job: str, params: dict[str, Any] | None = None, tier: str | None = None, name: str | None = None,
             context: Any = None, on_progress: ProgressFn | None = None, address: str | None = None,
             timeout_s: float | None = None, target: Any = None, **options: Any) -> list[Any]:
    """Run any job and import what it returns; returns what the importers built.
    `target`: the armature a motion result is keyed onto; `options`: importer options."""
    job_id, artifacts = run(job, params, tier, on_progress, address, timeout_s)
    return import_artifacts(artifacts, context, name, job_id, target, **options)


def generate_body(phenotypes: dict[str, float] | None = None, model: str = "anny", name: str | None = None,
                  context: Any = None, on_progress: ProgressFn | None = None, address: str | None = None,
                  timeout_s: float | None = None, **params: Any) -> tuple[bpy.types.Object, bpy.types.Object]:
    """A rigged, textured body in the scene; returns (armature, mesh).
    Extra keyword arguments are `body_params` ones (seed, texture_size,
    local_changes, betas, gender)."""
    built = generate("body", body_params(phenotypes, model, **params), name=name or "Avatar",
                     context=context, on_progress=on_progress, address=address, timeout_s=timeout_s)
    avatar = next((b for b in built if isinstance(b, importers.rigged_avatar.ImportedAvatar)), None)
    if avatar is None:
        raise ImportFailed("the body job returned no rigged avatar")
    return avatar.rig, avatar.mesh


def text_avatar_params(prompt: str, seed: int | None = None, texture_size: int | None = None,
                       encoder: str | None = None, phenotypes: dict[str, float] | None = None,
                       local_changes: dict[str, float] | None = None, name: str | None = None) -> dict[str, Any]:
    """The `text_avatar` job's params; `phenotypes` / `local_changes` override
    what the prompt chose (the sliders after a first generation)."""
    params: dict[str, Any] = {"prompt": prompt}
    for key, value in (("seed", seed), ("texture_size", texture_size), ("encoder", encoder), ("name", name)):
        if value is not None:
            params[key] = value
    if phenotypes:
        params["phenotypes"] = {k: float(v) for k, v in phenotypes.items()}
    if local_changes:
        params["local_changes"] = {k: float(v) for k, v in local_changes.items()}
    return params


def _one(built: list[Any], cls: type, job: str) -> Any:
    found = next((b for b in built if isinstance(b, cls)), None)
    if found is None:
        raise ImportFailed(f"the {job} job returned no {cls.__name__}")
    return found


def generate_avatar(prompt: str, seed: int = 0, name: str | None = None, context: Any = None,
                    on_progress: ProgressFn | None = None, address: str | None = None, tier: str | None = None,
                    timeout_s: float | None = None, **params: Any) -> tuple[bpy.types.Object, bpy.types.Object]:
    """A rigged, textured avatar described in words; returns (armature, mesh).
    Extra keyword arguments are `text_avatar_params` ones (texture_size,
    encoder, phenotypes, local_changes). The parameters the prompt chose are
    on the rig: `read_params(rig)`."""
    built = generate("text_avatar", text_avatar_params(prompt, seed=seed, name=name, **params), tier=tier,
                     name=name or "Avatar", context=context, on_progress=on_progress, address=address,
                     timeout_s=timeout_s)
    avatar = _one(built, importers.rigged_avatar.ImportedAvatar, "text_avatar")
    return avatar.rig, avatar.mesh


def read_params(obj: bpy.types.ID) -> dict[str, Any]:
    """The params an AvatarForge object was made with (phenotypes, text, ...)."""
    return importers.common.read_stamp(obj, "params") or {}


def motion_target(rig: Any, preset: str = "auto",
                  bone_map: dict[str, str] | str | None = None) -> dict[str, Any] | None:
    """The `target` param for `rig` (None: no rig, the motion builds its own
    SMPL-24 armature). `bone_map`: a dict, or a text block name / .json path / JSON text."""
    if rig is None:
        return None
    if isinstance(bone_map, str):
        bone_map = rig_description.parse_bone_map(bone_map)
    return rig_description.describe_rig(rig, preset, bone_map)


def animate(rig: Any, prompt: str, seconds: float = 4.0, fps: float = 30.0, seed: int = 0,
            preset: str = "auto", bone_map: dict[str, str] | str | None = None, encoder: str | None = None,
            name: str | None = None, context: Any = None, on_progress: ProgressFn | None = None,
            address: str | None = None, timeout_s: float | None = None) -> Any:
    """Animate `rig` (an armature, or None for a new SMPL-24 one) from a text
    prompt (the `text_motion` job); returns the ImportedMotion."""
    params: dict[str, Any] = {"prompt": prompt, "seconds": float(seconds), "fps": float(fps), "seed": int(seed)}
    if encoder:
        params["encoder"] = encoder
    target = motion_target(rig, preset, bone_map)
    if target is not None:
        params["target"] = target
    built = generate("text_motion", params, name=name or "Motion", context=context, on_progress=on_progress,
                     address=address, timeout_s=timeout_s, target=rig)
    return _one(built, importers.motion.ImportedMotion, "text_motion")


MAX_MOTION_FILE = 256 * 1024 * 1024   # the motion_import job's limit on `data`
MOTION_FILE_TYPES = (".bvh", ".npz")


def motion_file_params(path: str, fps: float | None = None, scale: float | None = None) -> dict[str, Any]:
    """The `motion_import` params for a file: its bytes travel with the request
    (the backend may run on another machine)."""
    path = bpy.path.abspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in MOTION_FILE_TYPES:
        raise ImportFailed(f"{os.path.basename(path)}: motion files must be {' or '.join(MOTION_FILE_TYPES)}")
    try:
        size = os.path.getsize(path)
        if size > MAX_MOTION_FILE:
            raise ImportFailed(f"{os.path.basename(path)} is {size / 2**20:.0f} MiB; the backend takes at most "
                               f"{MAX_MOTION_FILE // 2**20} MiB: trim or resample the clip")
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ImportFailed(f"cannot read the motion file {path}: {exc.strerror}") from None
    params: dict[str, Any] = {"data": data, "filename": os.path.basename(path)}
    if fps:
        params["fps"] = float(fps)
    if scale:
        params["scale"] = float(scale)
    return params


def import_motion(path: str, rig: Any = None, fps: float | None = None, scale: float | None = None,
                  preset: str = "auto", bone_map: dict[str, str] | str | None = None, name: str | None = None,
                  context: Any = None, on_progress: ProgressFn | None = None, address: str | None = None,
                  timeout_s: float | None = None) -> Any:
    """A .bvh or .npz motion file, converted by the backend (`motion_import`)
    and keyed onto `rig` (None: a new SMPL-24 armature); returns the ImportedMotion."""
    params = motion_file_params(path, fps, scale)
    target = motion_target(rig, preset, bone_map)
    if target is not None:
        params["target"] = target
    built = generate("motion_import", params, name=name or os.path.splitext(params["filename"])[0], context=context,
                     on_progress=on_progress, address=address, timeout_s=timeout_s, target=rig)
    return _one(built, importers.motion.ImportedMotion, "motion_import")


def video_file_params(path: str, fps: float | None = None, focal_mm: float | None = None,
                      start: float | None = None, end: float | None = None) -> dict[str, Any]:
    """The `video_motion` params for a video file: its bytes travel with the
    request (the backend may run on another machine; it bounds their size)."""
    path = bpy.path.abspath(path)
    name = os.path.basename(path)
    if os.path.splitext(path)[1].lower() not in VIDEO_SUFFIXES:
        raise ImportFailed(f"{name or path!r}: choose a video file ({', '.join(VIDEO_SUFFIXES)})")
    try:
        size = os.path.getsize(path)
        if size > VIDEO_MAX_BYTES:
            raise ImportFailed(f"{name}: {size / 2 ** 30:.2f} GiB; the backend takes at most "
                               f"{VIDEO_MAX_BYTES / 2 ** 30:.0f} GiB per video: trim or re-encode it")
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ImportFailed(f"cannot read the video {path}: {exc.strerror}") from None
    params: dict[str, Any] = {"data": data, "filename": name}
    for key, value in (("fps", fps), ("focal_mm", focal_mm), ("start", start), ("end", end)):
        if value is not None:
            params[key] = float(value)
    return params


@dataclass
class VideoTake:
    """What motion_from_video built: the motion on its rig, the camera with the
    footage behind it, and what the solve reported."""
    motion: Any                      # importers.motion.ImportedMotion
    camera: Any                      # importers.camera.ImportedCamera
    video: dict[str, Any]            # Motion.params["video"]: fps, frames, start, gaps, people_max, stopped, ...

    @property
    def rig(self) -> bpy.types.Object:
        return self.motion.rig

    @property
    def action(self) -> bpy.types.Action:
        return self.motion.action

    @property
    def camera_object(self) -> bpy.types.Object:
        return self.camera.camera

    @property
    def gaps(self) -> list[list[int]]:
        """Output frame ranges [first, last] (0-based) the solve filled where nobody was seen."""
        return [list(g) for g in self.video.get("gaps") or []]

    @property
    def people_max(self) -> int:
        return int(self.video.get("people_max") or 0)

    @property
    def stopped(self) -> str | None:
        return self.video.get("stopped") or None

    def report(self) -> list[str]:
        """Sentences for the user: gaps filled, several people, where it stopped, notes."""
        return video_report(self.video, [self.motion, self.camera])


def video_of(built: list[Any]) -> dict[str, Any]:
    """Motion.params["video"] of the motion among `built` (read back from its Action's stamp)."""
    for b in built:
        action = getattr(b, "action", None)
        if action is not None:
            video = (importers.common.read_stamp(action, "params") or {}).get("video")
            if isinstance(video, dict):
                return video
    return {}


def video_report(video: dict[str, Any], built: list[Any]) -> list[str]:
    """What the user should know about a video take, one sentence each."""
    out = []
    start = float(video.get("start") or 0.0)
    gaps = video.get("gaps") or []
    if gaps:
        first = importers.motion.START_FRAME        # output frame 0 is this scene frame
        frames = sum(int(b) - int(a) + 1 for a, b in gaps)
        ranges = ", ".join(f"{int(a) + first}-{int(b) + first}" if a != b else f"{int(a) + first}"
                           for a, b in gaps[:8])
        more = f" and {len(gaps) - 8} more" if len(gaps) > 8 else ""
        out.append(f"no person seen in {frames} frame(s), filled: scene frames {ranges}{more}")
    if int(video.get("people_max") or 0) > 1:
        out.append(f"up to {int(video['people_max'])} people in view: the largest one was captured")
    if video.get("stopped"):
        out.append(f"stopped early: {video['stopped']}")
    if start > 0:
        out.append(f"the motion starts {start:g} s into the video")
    out += [n for n in (getattr(b, "notes", "") for b in built) if n]
    return out


def motion_from_video(path: str, rig: Any = None, fps: float | None = None, focal_mm: float | None = None,
                      start: float | None = None, end: float | None = None, preset: str = "auto",
                      bone_map: dict[str, str] | str | None = None, reference: str = "background",
                      name: str | None = None, context: Any = None, on_progress: ProgressFn | None = None,
                      address: str | None = None, timeout_s: float | None = None) -> VideoTake:
    """Capture the motion of the person in a video (the `video_motion` job) onto
    `rig` (an armature, or None for a new SMPL-24 one); the solved camera comes
    with the footage as `reference` ("background", "plane" or "none"). Blocks
    until done (background mode, scripts). `fps`: the motion's rate (default
    the video's); `focal_mm`: 35 mm-equivalent (default the file's, else a
    default); `start`/`end`: the part of the clip, in seconds."""
    params = video_file_params(path, fps, focal_mm, start, end)
    target = motion_target(rig, preset, bone_map)
    if target is not None:
        params["target"] = target
    if name:
        params["name"] = name
    built = generate("video_motion", params, name=name or os.path.splitext(params["filename"])[0] or "Take",
                     context=context, on_progress=on_progress, address=address, timeout_s=timeout_s, target=rig,
                     video_path=bpy.path.abspath(path), reference=reference)
    motion = _one(built, importers.motion.ImportedMotion, "video_motion")
    camera = _one(built, importers.camera.ImportedCamera, "video_motion")
    return VideoTake(motion, camera, video_of(built))


def export_motion(rig: Any, path: str, preset: str = exporters.DEFAULT_PRESET, with_mesh: bool = True,
                  context: Any = None) -> ExportedMotion:
    """Write `rig`'s motion to `path`: .fbx through Blender's FBX exporter with
    `preset`'s settings ("unity", "unreal", "blender"), or .glb through the glTF
    exporter; with the meshes the rig deforms unless `with_mesh` is False."""
    return exporters.export_motion(rig, bpy.path.abspath(path), preset, with_mesh, context)


_last_printed: list[str] = [""]


def print_progress(fraction: float, stage: str) -> None:
    """A progress callback for scripts: one line per change on stdout (the backend
    repeats a job's last progress about once a second to show it is alive)."""
    line = f"AvatarForge {fraction * 100:5.1f}%  {stage}"
    if line != _last_printed[0]:
        _last_printed[0] = line
        print(line, file=sys.stdout, flush=True)


__all__ = ["BackendUnavailable", "ErrorCode", "ExportFailed", "ExportedMotion", "ImportFailed", "Job",
           "MAIN_PHENOTYPES", "ProtocolError", "VideoTake", "animate", "body_params", "client", "close", "connect",
           "export_motion", "generate", "generate_avatar", "generate_body", "import_artifacts", "import_motion",
           "motion_file_params", "motion_from_video", "motion_target", "print_progress", "read_params", "run",
           "submit", "text_avatar_params", "video_file_params", "video_report"]
