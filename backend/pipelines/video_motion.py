"""The `video_motion` job (3DHM's actor): a video of one person in, the Motion
they perform and the Camera that filmed them out.

Params (`normalise` validates every field):

    data        the video file's bytes (required, at most core.limits.VIDEO_MAX_BYTES)
    filename    its name (required), ending in one of protocol.limits.VIDEO_SUFFIXES
    fps         the motion's frame rate, within core.limits.MOTION_FPS (default: the video's
                average rate; variable-rate video is resampled by its timestamps)
    focal_mm    the camera's focal length, 35 mm-equivalent, within protocol.limits.VIDEO_FOCAL_MM
                (default: the file's metadata, else protocol.limits.DEFAULT_VIDEO_FOCAL_MM)
    start, end  the part of the clip to capture, in seconds (default: all of it; at most
                core.limits.VIDEO_MAX_SECONDS long)
    target      <target rig> (backend/motion/targets.py), optional: also retarget onto it
    name        the motion's name (default: the file's stem)

Decode and track landmarks (backend/video), solve the whole clip onto SMPL-24
(backend/motion/capture), build the Motion (backend/motion/build) and the Camera
in the world of the target rig. One tier, "embedded": MediaPipe Pose from its wheel.
"""
from __future__ import annotations

import hashlib
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path, PurePath
from typing import Any

import numpy as np

from avatarforge.protocol import Camera, Motion
from avatarforge.protocol.limits import DEFAULT_VIDEO_FOCAL_MM, VIDEO_FOCAL_MM, VIDEO_SUFFIXES

from .. import __version__
from ..config import BackendConfig
from ..core.capture import PinholeCamera
from ..core.components import Component, Tier
from ..core.limits import LANDMARK_MAX_SIDE, MOTION_FPS, VIDEO_MAX_BYTES, VIDEO_MAX_SECONDS
from .base import JobContext, Pipeline
from .catalogue import CAPTURE_SOLVER, LANDMARK_DETECTOR, RETARGETER, VIDEO_DECODER, VIDEO_MOTION_JOB, target_body
from .params import NAME_MAX, bad_field, check_param_names, name_param, number_param

PARAM_NAMES = ("data", "filename", "fps", "focal_mm", "start", "end", "target", "name")
PREVIEW_INTERVAL_S = 1.0      # one small preview image a second of work, at most
# Shares of the job's progress: decoding + landmarks, then the solve, then building.
TRACK_SHARE, SOLVE_SHARE = 0.6, 0.3

TIERS = (Tier("embedded", {"pipeline": VIDEO_MOTION_JOB, "video_decoder": VIDEO_DECODER,
                           "landmark_detector": LANDMARK_DETECTOR, "motion_solver": CAPTURE_SOLVER,
                           "retargeter": RETARGETER}, embedded=True),)


def _safe_basename(filename: str) -> str:
    """The file's own name, without folders or characters a file system may refuse."""
    base = PurePath(filename.replace("\\", "/")).name
    safe = "".join(c if c.isalnum() or c in "._- " else "_" for c in base).strip(" .")
    suffix = PurePath(base).suffix.lower()
    return (safe[:120] if safe else "clip") + ("" if safe.lower().endswith(suffix) else suffix)


def _stem(filename: str) -> str:
    stem = PurePath(filename.replace("\\", "/")).stem.strip()
    return "".join(c for c in stem if c.isprintable())[:NAME_MAX] or "video_motion"


class VideoMotionPipeline(Pipeline):
    name = "video_motion"

    def tiers(self) -> tuple[Tier, ...]:
        return TIERS

    def components(self, tier: Tier, params: dict[str, Any], config: BackendConfig) -> dict[str, Component]:
        """The tier's, and the body model retargeting onto the target rig loads."""
        return {**tier.components, **target_body(params["target"])}

    def describe(self, config: BackendConfig) -> dict[str, Any]:
        """Tiers, and the file names it reads."""
        return {**super().describe(config), "formats": list(VIDEO_SUFFIXES)}

    def normalise(self, params: dict[str, Any], config: BackendConfig) -> dict[str, Any]:
        from ..motion.targets import normalise_target

        check_param_names(params, PARAM_NAMES, self.name)
        data = params.get("data")
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        if not isinstance(data, bytes) or not data:
            raise bad_field("data", "must be the video file's bytes (a non-empty binary value)")
        if len(data) > VIDEO_MAX_BYTES:
            raise bad_field("data", f"at most {VIDEO_MAX_BYTES / 2 ** 30:.1f} GiB, got {len(data) / 2 ** 30:.2f} "
                                    "GiB: trim or re-encode the clip")
        filename = params.get("filename")
        if not isinstance(filename, str) or not filename.strip():
            raise bad_field("filename", f"must be the file's name, ending in one of {', '.join(VIDEO_SUFFIXES)}")
        suffix = PurePath(filename.replace("\\", "/")).suffix.lower()
        if suffix not in VIDEO_SUFFIXES:
            raise bad_field("filename", f"unsupported file type {suffix or '(no extension)'!r}; video files: "
                                        f"{', '.join(VIDEO_SUFFIXES)}")
        out: dict[str, Any] = {"data": data, "filename": filename.strip()}
        fps = params.get("fps")
        out["fps"] = None if fps is None else number_param("fps", fps, *MOTION_FPS)
        focal = params.get("focal_mm")
        out["focal_mm"] = None if focal is None else number_param("focal_mm", focal, *VIDEO_FOCAL_MM)
        start, end = params.get("start"), params.get("end")
        out["start"] = None if start is None else number_param("start", start, 0.0, 1e6)
        out["end"] = None if end is None else number_param("end", end, 0.0, 1e6)
        if out["start"] is not None and out["end"] is not None and out["end"] <= out["start"]:
            raise bad_field("end", f"must be after start ({out['start']:g} s), got {out['end']:g} s")
        out["target"] = normalise_target(params.get("target"))
        out["name"] = name_param(params.get("name", _stem(out["filename"])))
        return out

    def run(self, params: dict[str, Any], ctx: JobContext) -> list[Any]:
        started = time.monotonic()
        ctx.progress(0.0, "reading the video")
        with tempfile.TemporaryDirectory(prefix="avatarforge-video-") as tmp:
            # PyAV seeks and probes on a file; the upload is written once (under the user's
            # file name, so messages name it), removed after.
            path = Path(tmp) / _safe_basename(params["filename"])
            path.write_bytes(params["data"])
            tracked = self._track(path, params, ctx)
        camera = self._camera(params, tracked.info)
        solution = self._solve(tracked, camera, params, ctx)
        ctx.progress(TRACK_SHARE + SOLVE_SHARE, "retargeting" if params["target"] else "building the motion")
        motion = self._motion(params, tracked, camera, solution, started)
        cam = self._camera_artifact(params, tracked, camera, solution, motion)
        ctx.progress(1.0, "done")
        return [motion, cam]

    # -- stages ---------------------------------------------------------------------------
    def _track(self, path: Path, params: dict[str, Any], ctx: JobContext) -> Any:
        """Landmarks over the clip, with per-frame progress, cancel and previews."""
        from ..video.decode import VideoReader
        from ..video.preview import preview_png
        from ..video.track import track_landmarks

        with VideoReader(path) as reader:
            info = reader.info
        start = params["start"] or 0.0
        end = min(params["end"] if params["end"] is not None else info.duration, info.duration)
        if start >= info.duration:
            raise bad_field("start", f"the clip is {info.duration:.2f} s long; start {start:g} s is past its end")
        if end - start > VIDEO_MAX_SECONDS:
            raise bad_field("end", f"at most {VIDEO_MAX_SECONDS:g} s of video per job, asked for {end - start:.1f} s "
                                   f"of a {info.duration:.1f} s clip: capture it in parts with start and end")
        last_preview = [0.0]

        def on_frame(index: int, total: int, frame: Any, observation: Any) -> None:
            stage = f"landmarks: frame {index + 1} of {max(total, index + 1)}"
            ctx.progress(TRACK_SHARE * (index + 1) / max(total, index + 1), stage)
            now = time.monotonic()
            if now - last_preview[0] >= PREVIEW_INTERVAL_S:
                last_preview[0] = now
                pixels = None if observation is None else observation.image     # pixels of frame.image
                visibility = None if observation is None else observation.visibility
                ctx.preview(preview_png(frame.image, pixels, visibility), frame=index)

        return track_landmarks(path, start=params["start"], end=params["end"], max_side=LANDMARK_MAX_SIDE,
                               on_frame=on_frame)

    @staticmethod
    def _camera(params: dict[str, Any], info: Any) -> PinholeCamera:
        focal = params["focal_mm"] or info.focal_mm_35 or DEFAULT_VIDEO_FOCAL_MM
        return PinholeCamera.from_focal_mm(focal, info.width, info.height)

    @staticmethod
    def _solve(tracked: Any, camera: PinholeCamera, params: dict[str, Any], ctx: JobContext) -> Any:
        from ..motion.capture import solve_capture
        from ..motion.retarget import target_rest_positions

        rest = target_rest_positions(params["target"])
        return solve_capture(tracked.track, camera, fps=params["fps"], rest_positions=rest,
                             progress=lambda f, stage: ctx.progress(TRACK_SHARE + SOLVE_SHARE * f, stage))

    def _motion(self, params: dict[str, Any], tracked: Any, camera: PinholeCamera, solution: Any,
                started: float) -> Motion:
        from ..motion.build import make_motion
        from ..motion.targets import target_summary

        info = tracked.info
        fps = float(solution.fps)        # the solve's uniform frames (the clip's mean rate by its timestamps)
        video = {"filename": params["filename"], "fps": info.fps, "frames": int(len(solution.rotations)),
                 "start": float(params["start"] or 0.0), "gaps": [list(g) for g in solution.gaps],
                 "gaps_seconds": [[round(a / fps, 4), round(b / fps, 4)] for a, b in solution.gaps],
                 "people_max": int(tracked.people_max), "stopped": tracked.stopped,
                 "focal_mm": round(camera.focal_px / max(camera.width, camera.height) * 36.0, 4),
                 "focal_source": "request" if params["focal_mm"] else
                 "metadata" if info.focal_mm_35 else "default",
                 "source": info.to_json()}
        motion_params = {"fps": fps, "video": video, "target": target_summary(params["target"]),
                         "solve": solution.info}
        request = {k: v for k, v in params.items() if k not in ("data", "target")}
        request["target"] = target_summary(params["target"])
        provenance = {"job": self.name, "avatarforge": __version__, "request": request,
                      "source": {"filename": params["filename"], "bytes": len(params["data"]),
                                 "sha256": hashlib.sha256(params["data"]).hexdigest()},
                      "detector": tracked.track.detector,
                      "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        # The solver's contacts are the ones it locked the feet with: the retargeting keeps them too.
        motion = make_motion(params["name"], fps, solution.rotations, solution.trans, motion_params, provenance,
                             target=params["target"], contacts=solution.contacts)
        provenance["seconds"] = round(time.monotonic() - started, 3)
        return motion

    @staticmethod
    def _camera_artifact(params: dict[str, Any], tracked: Any, camera: PinholeCamera, solution: Any,
                         motion: Motion) -> Camera:
        from ..motion.retarget import camera_on_target

        info = tracked.info
        pose = camera_on_target(solution.world_to_camera, solution.scale, params["target"])
        video = {"filename": params["filename"], "fps": info.fps, "frames": info.frames,
                 "start": float(params["start"] or 0.0), "width": info.width, "height": info.height,
                 "rotation": info.rotation}
        return Camera(name=f"{motion.name}_camera", K=camera.K.astype(np.float32),
                      image_size=(camera.width, camera.height), world_to_camera=pose.astype(np.float32),
                      params={"video": video, "focal_mm": motion.params["video"]["focal_mm"],
                              "rig": motion.retargeted.rig if motion.retargeted else None},
                      provenance=dict(motion.provenance))
