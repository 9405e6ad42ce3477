"""Operators: connect, start a local backend, generate (body, from a
description), animate (from a prompt, from a .bvh/.npz file, from a video),
export a motion (FBX/glTF), cancel.

Generate runs one of two ways:
- in the UI, asynchronously: the job goes to the link thread and the result
  is imported by the timer when it arrives (jobs.py);
- in background mode (`blender -b`, the bpy wheel), where timers never fire,
  it blocks on the shared client (api.py) and imports before returning.
Every failure ends as CANCELLED with a report that says what to do; the
last one is also kept for the panel.
"""
from __future__ import annotations

import json
import os
from typing import Any

import bpy

from . import api, backend_process, connection, exporters, properties
from .importers import ImportFailed
from .importers.rigged_avatar import ImportedAvatar
from .jobs import TABLE, JobRecord
from .protocol import ProtocolError
from .settings import addon_preferences, current_settings

LAST_ERROR: dict[str, str] = {"message": ""}   # what the panel shows under Generate


def _fail(op: bpy.types.Operator, message: str) -> set[str]:
    LAST_ERROR["message"] = message
    op.report({"ERROR"}, message)
    return {"CANCELLED"}


def _blocking(op: bpy.types.Operator) -> bool:
    """Blocking when asked, else in background mode (no timers to deliver results)."""
    if op.properties.is_property_set("wait"):
        return bool(op.wait)
    return bool(bpy.app.background)


def run_job(op: bpy.types.Operator, context: bpy.types.Context, job: str, params: dict[str, Any],
            tier: str | None, name: str, target: bpy.types.Object | None = None,
            options: dict[str, Any] | None = None) -> set[str]:
    """Shared body of the generate operators. `target`: the rig a motion goes
    onto; `options`: importer options (a camera's video_path, reference)."""
    LAST_ERROR["message"] = ""
    if _blocking(op):
        return _run_blocking(op, context, job, params, tier, name, target, options)
    state = TABLE.state
    if state in (connection.UNREACHABLE, connection.INCOMPATIBLE) and TABLE.link is not None:
        return _fail(op, f"Not submitted: {TABLE.link.message}")
    record = TABLE.submit(job, params, name, context.scene, tier, target=target, options=options)
    op.report({"INFO"}, f"AvatarForge: {record.label} submitted; progress in the AvatarForge panel")
    return {"FINISHED"}


def _run_blocking(op: bpy.types.Operator, context: bpy.types.Context, job: str, params: dict[str, Any],
                  tier: str | None, name: str, target: bpy.types.Object | None = None,
                  options: dict[str, Any] | None = None) -> set[str]:
    try:
        built = api.generate(job, params, tier, name=name, context=context, on_progress=api.print_progress,
                             target=target, **(options or {}))
    except api.BackendUnavailable as exc:
        return _fail(op, f"AvatarForge backend unavailable: {exc.message}")
    except ProtocolError as exc:
        return _fail(op, f"AvatarForge {job} failed ({exc.code.value}): {exc.message}")
    except ImportFailed as exc:
        return _fail(op, f"AvatarForge could not import the result: {exc}")
    after_import(job, context.scene, built)
    objects = [o.name for b in built for o in getattr(b, "objects", ())]
    op.report({"INFO"}, f"AvatarForge: created {', '.join(objects) or 'nothing'}")
    notes = result_notes(job, built)
    for note in notes:
        op.report({"WARNING"}, f"AvatarForge: {note}")
    return {"FINISHED"}


def result_notes(job: str, built: list[Any]) -> list[str]:
    """What the user should know about a result: the importers' notes, and for
    a video take the gaps filled, people in view and where it stopped."""
    if job == "video_motion":
        return api.video_report(api.video_of(built), built)
    return [n for n in (getattr(b, "notes", "") for b in built) if n]


def after_import(job: str, scene: bpy.types.Scene, built: list[Any]) -> None:
    """What the panel learns from a result: a described avatar's chosen
    parameters go onto the sliders (edit them, then Regenerate)."""
    if job != "text_avatar":
        return
    avatar = next((b for b in built if isinstance(b, ImportedAvatar)), None)
    if avatar is not None:
        properties.adopt_avatar_params(scene.avatarforge, api.read_params(avatar.rig))


def _on_imported(record: JobRecord, built: list[Any]) -> None:
    scene = bpy.data.scenes.get(record.scene_name)
    if scene is not None:
        after_import(record.job, scene, built)
    if record.job == "video_motion":      # the panel shows the take's report with the job
        record.message = "; ".join(result_notes(record.job, built))


def motion_rig(context: bpy.types.Context) -> bpy.types.Object | None:
    """The rig to animate: the panel's Target Rig, else the active armature
    (or the armature of the active skinned mesh), else None (a new SMPL-24 one)."""
    s = context.scene.avatarforge
    if s.motion_target is not None:
        rig = armature_of(s.motion_target)
        if rig is None:
            raise ImportFailed(f"Target Rig '{s.motion_target.name}' is not an armature nor deformed by one; "
                               "pick the avatar's armature (or clear the field for a new SMPL-24 armature)")
        return rig
    return armature_of(context.view_layer.objects.active)


def armature_of(obj: bpy.types.Object | None) -> bpy.types.Object | None:
    """`obj` if it is an armature, else the armature deforming it (its parent or Armature modifier)."""
    if obj is None:
        return None
    if obj.type == "ARMATURE":
        return obj
    if obj.parent is not None and obj.parent.type == "ARMATURE":
        return obj.parent
    return next((m.object for m in getattr(obj, "modifiers", ()) if m.type == "ARMATURE" and m.object), None)


def motion_target(context: bpy.types.Context, rig: bpy.types.Object | None) -> dict[str, Any] | None:
    s = context.scene.avatarforge
    return api.motion_target(rig, s.motion_preset, s.motion_bone_map or None)


class AVATARFORGE_OT_generate_text_avatar(bpy.types.Operator):
    """Generate an avatar from the description; Regenerate keeps the edited sliders"""
    bl_idname = "avatarforge.generate_text_avatar"
    bl_label = "Generate from Description"
    bl_options = {"REGISTER", "UNDO"}

    regenerate: bpy.props.BoolProperty(name="Regenerate", default=False, options={"SKIP_SAVE"},
                                       description="Send the sliders as overrides of what the description chose")
    wait: bpy.props.BoolProperty(name="Wait", default=False, options={"SKIP_SAVE"})

    def execute(self, context: bpy.types.Context) -> set[str]:
        s = context.scene.avatarforge
        if not s.text_prompt.strip():
            return _fail(self, "Describe the person first (e.g. 'a tall old man in a red coat')")
        if self.regenerate and not s.text_has_params:
            return _fail(self, "Nothing to regenerate yet: Generate from the description first")
        params = properties.text_avatar_params(s, self.regenerate)   # the encoder param picks the tier
        return run_job(self, context, "text_avatar", params, None, s.avatar_name or "Avatar")


class AVATARFORGE_OT_animate(bpy.types.Operator):
    """Animate the target rig (or a new SMPL-24 armature) from the motion prompt"""
    bl_idname = "avatarforge.animate"
    bl_label = "Animate"
    bl_options = {"REGISTER", "UNDO"}

    wait: bpy.props.BoolProperty(name="Wait", default=False, options={"SKIP_SAVE"})

    def execute(self, context: bpy.types.Context) -> set[str]:
        s = context.scene.avatarforge
        if not s.motion_prompt.strip():
            return _fail(self, "Say what the body does (e.g. 'waves hello, then jumps')")
        params = properties.motion_params(s)
        try:
            rig = motion_rig(context)
            target = motion_target(context, rig)
        except ImportFailed as exc:
            return _fail(self, str(exc))
        if target is not None:
            params["target"] = target
        return run_job(self, context, "text_motion", params, None, "Motion", rig)


class AVATARFORGE_OT_import_motion(bpy.types.Operator):
    """Import a .bvh or .npz motion through the backend onto the target rig"""
    bl_idname = "avatarforge.import_motion"
    bl_label = "Import Motion File"
    bl_options = {"REGISTER", "UNDO"}

    filepath: bpy.props.StringProperty(name="File", subtype="FILE_PATH")
    filter_glob: bpy.props.StringProperty(default="*.bvh;*.npz", options={"HIDDEN"})
    wait: bpy.props.BoolProperty(name="Wait", default=False, options={"SKIP_SAVE"})

    def invoke(self, context: bpy.types.Context, event: Any) -> set[str]:
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        s = context.scene.avatarforge
        try:
            rig = motion_rig(context)
            params = api.motion_file_params(self.filepath, s.motion_file_fps or None)
            target = motion_target(context, rig)
        except ImportFailed as exc:
            return _fail(self, str(exc))
        if target is not None:
            params["target"] = target
        name = os.path.splitext(params["filename"])[0] or "Motion"
        return run_job(self, context, "motion_import", params, None, name, rig)


class AVATARFORGE_OT_motion_from_video(bpy.types.Operator):
    """Capture the motion of the person in the video onto the target rig (or a new
    SMPL-24 armature), with the solved camera and the footage behind it"""
    bl_idname = "avatarforge.motion_from_video"
    bl_label = "Capture Motion"
    bl_options = {"REGISTER", "UNDO"}

    filepath: bpy.props.StringProperty(name="Video", subtype="FILE_PATH", options={"SKIP_SAVE"},
                                       description="Empty: the panel's video")
    wait: bpy.props.BoolProperty(name="Wait", default=False, options={"SKIP_SAVE"})

    def execute(self, context: bpy.types.Context) -> set[str]:
        s = context.scene.avatarforge
        path = self.filepath or s.video_path
        if not path.strip():
            return _fail(self, "Choose the video to capture first")
        try:
            rig = motion_rig(context)
            params = api.video_file_params(path, **properties.video_params(s))
            target = motion_target(context, rig)
        except ImportFailed as exc:
            return _fail(self, str(exc))
        if target is not None:
            params["target"] = target
        name = os.path.splitext(params["filename"])[0] or "Take"
        options = {"video_path": bpy.path.abspath(path), "reference": s.video_reference}
        return run_job(self, context, "video_motion", params, None, name, rig, options)


class AVATARFORGE_OT_export_motion(bpy.types.Operator):
    """Export the target rig's motion (or the active armature's) to FBX or glTF,
    set up for the chosen application"""
    bl_idname = "avatarforge.export_motion"
    bl_label = "Export Motion"

    filepath: bpy.props.StringProperty(name="File", subtype="FILE_PATH")
    filter_glob: bpy.props.StringProperty(default="*.fbx;*.glb", options={"HIDDEN"})
    check_existing: bpy.props.BoolProperty(default=True, options={"HIDDEN"})

    def invoke(self, context: bpy.types.Context, event: Any) -> set[str]:
        try:
            rig = motion_rig(context)
        except ImportFailed as exc:
            return _fail(self, str(exc))
        if not self.filepath:
            base = rig.name if rig is not None else "motion"
            self.filepath = os.path.join(os.path.dirname(bpy.data.filepath) or os.path.expanduser("~"),
                                         f"{base}_{context.scene.avatarforge.export_preset}.fbx")
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        s = context.scene.avatarforge
        try:
            rig = motion_rig(context)
            if rig is None:
                return _fail(self, "Select the armature whose motion to export (or set the Target Rig)")
            done = exporters.export_motion(rig, bpy.path.abspath(self.filepath), s.export_preset,
                                           s.export_with_mesh, context)
        except (ImportFailed, exporters.ExportFailed) as exc:
            return _fail(self, str(exc))
        self.report({"INFO"}, f"AvatarForge: {done.frames} frames of {rig.name} written to {done.path} "
                              f"({done.format}, {done.preset})")
        return {"FINISHED"}


class AVATARFORGE_OT_generate_body(bpy.types.Operator):
    """Generate a rigged, textured body from the panel's settings"""
    bl_idname = "avatarforge.generate_body"
    bl_label = "Generate"
    bl_options = {"REGISTER", "UNDO"}

    wait: bpy.props.BoolProperty(name="Wait", default=False, options={"SKIP_SAVE"},
                                 description="Block until the avatar is built (default in background mode)")

    def execute(self, context: bpy.types.Context) -> set[str]:
        s = context.scene.avatarforge
        return run_job(self, context, "body", properties.body_params(s), None, s.avatar_name or "Avatar")


class AVATARFORGE_OT_submit_job(bpy.types.Operator):
    """Run any backend job with JSON parameters and import its result"""
    bl_idname = "avatarforge.submit_job"
    bl_label = "Submit Job"
    bl_options = {"REGISTER", "UNDO"}

    job: bpy.props.StringProperty(name="Job", default="body")
    params: bpy.props.StringProperty(name="Parameters", default="{}", description="JSON object")
    tier: bpy.props.StringProperty(name="Tier", default="", description="Empty: the backend chooses")
    name: bpy.props.StringProperty(name="Name", default="Avatar")
    wait: bpy.props.BoolProperty(name="Wait", default=False, options={"SKIP_SAVE"})

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            params = json.loads(self.params or "{}")
        except json.JSONDecodeError as exc:
            return _fail(self, f"Parameters are not valid JSON: {exc}")
        if not isinstance(params, dict):
            return _fail(self, "Parameters must be a JSON object, e.g. {\"model\": \"anny\"}")
        return run_job(self, context, self.job, params, self.tier or None, self.name)


class AVATARFORGE_OT_cancel_job(bpy.types.Operator):
    """Cancel a running AvatarForge job"""
    bl_idname = "avatarforge.cancel_job"
    bl_label = "Cancel Job"

    key: bpy.props.StringProperty(name="Job", description="Local id or backend job id")

    def execute(self, context: bpy.types.Context) -> set[str]:
        record = TABLE.find(self.key)
        if record is None:
            return _fail(self, f"No AvatarForge job '{self.key}' in this session")
        if not record.active:
            self.report({"INFO"}, f"{record.label} already {record.state}")
            return {"CANCELLED"}
        TABLE.cancel(record)
        self.report({"INFO"}, f"Cancelling {record.label}")
        return {"FINISHED"}


class AVATARFORGE_OT_import_result(bpy.types.Operator):
    """Import a finished job's result again (after its import failed, e.g. in Edit mode)"""
    bl_idname = "avatarforge.import_result"
    bl_label = "Import Result"
    bl_options = {"REGISTER", "UNDO"}

    key: bpy.props.StringProperty(name="Job", description="Local id or backend job id")

    def execute(self, context: bpy.types.Context) -> set[str]:
        record = TABLE.find(self.key)
        if record is None or not record.artifacts:
            return _fail(self, f"No result of job '{self.key}' is waiting to be imported")
        built = TABLE.import_record(record)
        if not built:
            return _fail(self, record.message)
        self.report({"INFO"}, f"AvatarForge: imported {', '.join(record.imported)}")
        return {"FINISHED"}


class AVATARFORGE_OT_clear_jobs(bpy.types.Operator):
    """Remove finished jobs from the list"""
    bl_idname = "avatarforge.clear_jobs"
    bl_label = "Clear Finished"

    def execute(self, context: bpy.types.Context) -> set[str]:
        TABLE.clear_finished()
        return {"FINISHED"}


class AVATARFORGE_OT_reset_phenotypes(bpy.types.Operator):
    """Set every phenotype back to its default"""
    bl_idname = "avatarforge.reset_phenotypes"
    bl_label = "Reset Phenotypes"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        properties.reset_phenotypes(context.scene.avatarforge, backend_phenotype_defaults())
        return {"FINISHED"}


def backend_phenotype_defaults() -> dict[str, float]:
    """Phenotype defaults from the backend's welcome (pipelines.body.phenotypes: {name: value});
    empty before a welcome, and then the add-on's own defaults apply."""
    body = ((TABLE.welcome or {}).get("pipelines") or {}).get("body") or {}
    found = body.get("phenotypes") or {}
    return {k: float(v) for k, v in found.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


class AVATARFORGE_OT_connect(bpy.types.Operator):
    """Connect to the AvatarForge backend (retries in the background until it answers)"""
    bl_idname = "avatarforge.connect"
    bl_label = "Connect"

    def execute(self, context: bpy.types.Context) -> set[str]:
        link = TABLE.ensure_link()
        link.reconnect()
        self.report({"INFO"}, f"Connecting to {link.address}")
        return {"FINISHED"}


class AVATARFORGE_OT_disconnect(bpy.types.Operator):
    """Disconnect from the backend (running jobs keep running there)"""
    bl_idname = "avatarforge.disconnect"
    bl_label = "Disconnect"

    def execute(self, context: bpy.types.Context) -> set[str]:
        TABLE.disconnect(wait_s=0.3)  # never hold the UI for a connect attempt in flight
        return {"FINISHED"}


class AVATARFORGE_OT_start_backend(bpy.types.Operator):
    """Start a backend on this machine with the configured Python, then connect to it"""
    bl_idname = "avatarforge.start_backend"
    bl_label = "Start Local Backend"

    def execute(self, context: bpy.types.Context) -> set[str]:
        s = current_settings()
        local = backend_process.LOCAL
        if local is not None and local.state in ("starting", "running"):
            self.report({"INFO"}, f"The local backend is already {local.state}")
            return {"CANCELLED"}
        local = backend_process.LocalBackend(s.backend_python, s.local_bind, s.local_store or None)
        try:
            if not bpy.app.background:
                backend_process.connect_address(s.local_bind)  # refuses a "*" port before starting
            local.start()
        except backend_process.BackendStartFailed as exc:
            return _fail(self, str(exc))
        backend_process.LOCAL = local
        if bpy.app.background:
            try:
                s.address = local.wait_ready()
            except backend_process.BackendStartFailed as exc:
                return _fail(self, str(exc))
        else:
            s.address = backend_process.connect_address(local.bind)
        prefs = addon_preferences()
        if prefs is not None:  # Generate connects where the backend we started listens
            prefs.backend_address = s.address
        TABLE.ensure_link(s)
        self.report({"INFO"}, f"Starting the backend at {local.bind}; the panel shows when it is connected")
        return {"FINISHED"}


class AVATARFORGE_OT_stop_backend(bpy.types.Operator):
    """Stop the backend this Blender started"""
    bl_idname = "avatarforge.stop_backend"
    bl_label = "Stop Local Backend"

    def execute(self, context: bpy.types.Context) -> set[str]:
        local = backend_process.LOCAL
        if local is None or local.proc is None:
            self.report({"INFO"}, "No local backend was started from here")
            return {"CANCELLED"}
        code = local.stop()
        backend_process.LOCAL = None
        self.report({"INFO"}, f"Local backend stopped (exit code {code})")
        return {"FINISHED"}


def register() -> None:
    TABLE.on_imported.append(_on_imported)


def unregister() -> None:
    if _on_imported in TABLE.on_imported:
        TABLE.on_imported.remove(_on_imported)


classes = (
    AVATARFORGE_OT_generate_body, AVATARFORGE_OT_generate_text_avatar, AVATARFORGE_OT_animate,
    AVATARFORGE_OT_import_motion, AVATARFORGE_OT_motion_from_video, AVATARFORGE_OT_export_motion,
    AVATARFORGE_OT_submit_job, AVATARFORGE_OT_cancel_job, AVATARFORGE_OT_import_result,
    AVATARFORGE_OT_clear_jobs, AVATARFORGE_OT_reset_phenotypes, AVATARFORGE_OT_connect,
    AVATARFORGE_OT_disconnect, AVATARFORGE_OT_start_backend, AVATARFORGE_OT_stop_backend,
)
