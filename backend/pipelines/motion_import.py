"""The `motion_import` job: a BVH or AMASS-style .npz file in, a Motion out
(SMPL-24, Z up, metres), optionally resampled and retargeted onto a rig.

Params (`normalise` validates every field):

    data        the file's bytes (required, at most core.limits.MOTION_FILE_MAX_BYTES)
    filename    its name (required): ".bvh" or ".npz" decides the format
    fps         resample to this frame rate, within core.limits.MOTION_FPS (default: keep the file's)
    target      <target rig> (see backend/motion/targets.normalise_target), optional
    scale       BVH units -> metres, (0, 100] (default: guessed from the skeleton's height)
    joint_map   BVH only, optional: {BVH joint name: SMPL-24 joint name, or null to leave it
                unmapped}, on top of the automatic mapping: by name (CMU, DAZ/Poser, Mixamo,
                Biovision, SMPL), else from the skeleton's shape (backend/motion/skeleton_map)

A BVH Motion's params report the mapping used: joint_mapping {BVH joint: SMPL joint},
mapping_method ("names:cmu", "names:daz", "topology", "...+joint_map", "joint_map") and
mapping_evidence {part: what decided it} (empty for a naming scheme).

One tier, "embedded": plain numpy/torch, nothing to download.
"""
from __future__ import annotations

import hashlib
import time
from datetime import datetime, timezone
from pathlib import PurePath
from typing import Any

from avatarforge.protocol.artifacts import MAX_MOTION_FRAMES

from .. import __version__
from ..config import BackendConfig
from ..core.components import Component, Tier
from ..core.limits import MOTION_FILE_MAX_BYTES, MOTION_FPS
from .base import JobContext, Pipeline
from .catalogue import MOTION_IMPORT_JOB, MOTION_IMPORTER, RETARGETER, target_body
from .params import NAME_MAX, bad_field, number_param, check_param_names

PARAM_NAMES = ("data", "filename", "fps", "target", "scale", "joint_map")
SCALE_LIMITS = (1e-5, 100.0)
FORMATS = {".bvh": "bvh", ".npz": "npz"}


def _motion_name(filename: str) -> str:
    stem = PurePath(filename.replace("\\", "/")).stem.strip() or "motion"
    return "".join(c for c in stem if c.isprintable())[:NAME_MAX] or "motion"


TIERS = (Tier("embedded", {"pipeline": MOTION_IMPORT_JOB, "motion_importer": MOTION_IMPORTER,
                           "retargeter": RETARGETER}, embedded=True),)


class MotionImportPipeline(Pipeline):
    name = "motion_import"

    def tiers(self) -> tuple[Tier, ...]:
        return TIERS

    def components(self, tier: Tier, params: dict[str, Any], config: BackendConfig) -> dict[str, Component]:
        """The tier's, and the body model retargeting onto the target rig loads."""
        return {**tier.components, **target_body(params["target"])}

    def describe(self, config: BackendConfig) -> dict[str, Any]:
        """Tiers, and the file formats it reads."""
        return {**super().describe(config), "formats": sorted(FORMATS)}

    def normalise(self, params: dict[str, Any], config: BackendConfig) -> dict[str, Any]:
        from ..motion.bvh import normalise_joint_map
        from ..motion.targets import normalise_target

        check_param_names(params, PARAM_NAMES, "motion_import")
        data = params.get("data")
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        if not isinstance(data, bytes) or not data:
            raise bad_field("data", "must be the motion file's bytes (a non-empty binary value)")
        if len(data) > MOTION_FILE_MAX_BYTES:
            raise bad_field("data", f"at most {MOTION_FILE_MAX_BYTES >> 20} MiB, got {len(data) / 2 ** 20:.1f} MiB")
        filename = params.get("filename")
        if not isinstance(filename, str) or not filename.strip():
            raise bad_field("filename", "must be the file's name, ending in .bvh or .npz")
        suffix = PurePath(filename.replace("\\", "/")).suffix.lower()
        if suffix not in FORMATS:
            raise bad_field("filename", f"unsupported format {suffix or '(no extension)'!r}; supported: "
                       f"{', '.join(sorted(FORMATS))} (BVH, or an AMASS-style .npz of SMPL/SMPL-H/SMPL-X poses)")
        fmt = FORMATS[suffix]
        if fmt == "bvh" and not data.lstrip()[:9].upper().startswith(b"HIERARCHY"):
            raise bad_field("data", "line 1: a BVH file starts with HIERARCHY", line=1)
        if fmt == "npz" and not data.startswith(b"PK"):
            raise bad_field("data", "not an .npz file (numpy's zip of arrays)")
        out: dict[str, Any] = {"data": data, "filename": filename.strip(), "format": fmt}
        fps = params.get("fps")
        out["fps"] = None if fps is None else number_param("fps", fps, *MOTION_FPS)
        scale = params.get("scale")
        if scale is not None and fmt != "bvh":
            raise bad_field("scale", "only for BVH files (AMASS files are in metres)")
        out["scale"] = None if scale is None else number_param("scale", scale, *SCALE_LIMITS)
        joint_map = params.get("joint_map")
        if joint_map is not None and fmt != "bvh":
            raise bad_field("joint_map", "only for BVH files (AMASS files already use SMPL's joints)")
        out["joint_map"] = normalise_joint_map(joint_map)
        out["target"] = normalise_target(params.get("target"))
        return out

    def run(self, params: dict[str, Any], ctx: JobContext) -> list[Any]:
        from ..motion.amass import amass_to_smpl
        from ..motion.build import make_motion
        from ..motion.bvh import bvh_to_smpl
        from ..motion.ops import resample, resampled_frame_count
        from ..motion.targets import target_summary

        started = time.monotonic()
        ctx.progress(0.0, "reading")
        if params["format"] == "bvh":
            text = self._text(params["data"])
            ctx.progress(0.05, "parsing BVH")
            imported = bvh_to_smpl(text, params.get("scale"), params.get("joint_map"))
        else:
            ctx.progress(0.05, "reading npz")
            imported = amass_to_smpl(params["data"])
        rotations, trans, fps = imported.rotations, imported.trans, imported.fps
        ctx.progress(0.5, "resampling")
        if params.get("fps") is not None and abs(params["fps"] - fps) > 1e-6:
            n = resampled_frame_count(len(rotations), fps, params["fps"])
            if n > MAX_MOTION_FRAMES:
                raise bad_field("fps", f"resampling {len(rotations)} frames from {fps:g} to {params['fps']:g} fps "
                                       f"gives {n} frames; at most {MAX_MOTION_FRAMES}. Lower fps")
            rotations, trans = resample(rotations, trans, fps, params["fps"])
            fps = params["fps"]
        ctx.progress(0.7, "retargeting" if params.get("target") else "forward kinematics")
        request = {k: v for k, v in params.items() if k not in ("data", "target")}
        request["target"] = target_summary(params.get("target"))
        provenance = {"job": self.name, "avatarforge": __version__,
                      "request": request, "source": {**imported.info, "filename": params["filename"],
                                                     "sha256": hashlib.sha256(params["data"]).hexdigest(),
                                                     "bytes": len(params["data"])},
                      "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        motion_params = {"source_fps": imported.fps, "fps": fps, "format": params["format"]}
        if params["format"] == "bvh":      # which file joint drives which SMPL joint, and why (the report)
            motion_params.update({k: imported.info[k] for k in ("joint_mapping", "mapping_method",
                                                                "mapping_evidence")})
        motion = make_motion(_motion_name(params["filename"]), fps, rotations, trans, motion_params, provenance,
                             target=params.get("target"))
        motion.provenance["seconds"] = round(time.monotonic() - started, 3)
        ctx.progress(1.0, "done")
        return [motion]

    @staticmethod
    def _text(data: bytes) -> str:
        if b"\x00" in data[:65536]:
            line = data[:data.index(b"\x00")].count(b"\n") + 1
            raise bad_field("data", f"line {line}: binary data in a BVH file", line=line)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("latin-1")     # old exporters write Latin-1 joint names
