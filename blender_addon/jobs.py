"""Main-thread side of the backend link: the job list the UI shows.

`JobTable.pump()` drains the link's events and applies them: progress updates
records, a result is imported into the scene it was requested from, errors
keep the backend's message for the panel. In the UI a `bpy.app.timers` tick
calls `pump()`; in background mode (timers never fire) a caller that uses the
link pumps itself (`JobTable.wait_for`), but operators there use the blocking
client instead (api.py).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable

import bpy

from . import connection, importers
from .settings import Settings, current_settings

ACTIVE_STATES = frozenset(["submitting", "queued", "running", "cancelling"])
PUMP_INTERVAL_S = 0.1
IDLE_PUMP_INTERVAL_S = 0.5


@dataclass
class JobRecord:
    local_id: str
    job: str
    params: dict[str, Any]
    name: str
    scene_name: str
    job_id: str | None = None
    state: str = "submitting"
    fraction: float = 0.0
    stage: str = "submitting"
    message: str = ""                 # the backend's error message, or why the import failed
    cached: bool = False
    target: str = ""                  # the armature a motion goes onto (chosen at submit time), or ""
    created: float = field(default_factory=time.time)
    finished: float | None = None
    artifacts: list[Any] = field(default_factory=list)   # kept until imported
    imported: list[str] = field(default_factory=list)    # names of the objects built
    options: dict[str, Any] = field(default_factory=dict)  # importer options (e.g. a camera's video_path)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def label(self) -> str:
        return f"{self.name} ({self.job})"


class JobTable:
    def __init__(self) -> None:
        self.records: dict[str, JobRecord] = {}
        self.link: connection.BackendLink | None = None
        self.link_error = ""                     # last unexpected failure of the link thread
        self.on_change: list[Callable[[], None]] = []
        self.on_imported: list[Callable[[JobRecord, list[Any]], None]] = []

    # -- link -------------------------------------------------------------------
    def ensure_link(self, settings: Settings | None = None) -> connection.BackendLink:
        """The running link to the configured backend (started, or restarted
        when the address changed)."""
        settings = settings or current_settings()
        if self.link is not None and (self.link.address != settings.address or not self.link.running):
            self.disconnect(f"the add-on switched to the backend at {settings.address} before this job "
                            "finished; press Generate again")
        if self.link is None:
            self.link = connection.BackendLink(
                settings.address, connect_timeout_s=settings.connect_timeout_s,
                request_timeout_s=settings.request_timeout_s, heartbeat_s=settings.heartbeat_s,
                retry_s=settings.retry_s, client_version=settings.addon_version).start()
        return self.link

    def disconnect(self, reason: str = "disconnected from the backend before the job finished; reconnect and "
                                       "press Generate again", wait_s: float = 5.0) -> None:
        """Stop the link; jobs it was following are marked failed with `reason`
        (they go on running on the backend). `wait_s` bounds how long the UI
        waits for the network thread to finish (it closes its socket itself)."""
        if self.link is not None:
            self.link.stop(wait_s)
            self.link = None
        for record in self.records.values():
            if record.active:
                self._finish(record, "failed", reason)
        self._changed()

    @property
    def state(self) -> str:
        return self.link.state if self.link is not None else connection.DISCONNECTED

    @property
    def welcome(self) -> dict[str, Any] | None:
        return self.link.welcome if self.link is not None and self.link.state == connection.CONNECTED else None

    def status_line(self) -> str:
        if self.link is None:
            return "Not connected"
        if self.link.state == connection.CONNECTED and self.link.welcome:
            w = self.link.welcome
            return f"Connected: {w.get('server', 'backend')} {w.get('server_version', '?')}"
        return self.link.message or self.link.state

    # -- jobs -------------------------------------------------------------------
    def submit(self, job: str, params: dict[str, Any], name: str, scene: bpy.types.Scene,
               tier: str | None = None, settings: Settings | None = None,
               target: bpy.types.Object | None = None, options: dict[str, Any] | None = None) -> JobRecord:
        """`target`: the rig a motion result is applied to (kept by name: the
        object may be gone when the result arrives, and the import says so).
        `options`: what the importers take besides (importers.import_artifacts).
        The record keeps the params without their file bytes (a video can be GBs)."""
        link = self.ensure_link(settings)
        local_id = link.submit(job, params, tier)
        kept = {k: (f"<{len(v)} bytes>" if isinstance(v, (bytes, bytearray, memoryview)) else v)
                for k, v in params.items()}
        record = JobRecord(local_id, job, kept, name, scene.name, target=target.name if target else "",
                           options=dict(options or {}))
        self.records[local_id] = record
        self._changed()
        return record

    def cancel(self, record: JobRecord) -> None:
        if not record.active:
            return
        if record.job_id and self.link is not None:
            record.state, record.stage = "cancelling", "cancelling"
            self.link.cancel(record.job_id)
        else:
            self._finish(record, "cancelled", "cancelled before the backend accepted it")
        self._changed()

    def find(self, key: str) -> JobRecord | None:
        """A record by local id or backend job id."""
        if key in self.records:
            return self.records[key]
        return next((r for r in self.records.values() if r.job_id == key), None)

    def clear_finished(self) -> int:
        done = [k for k, r in self.records.items() if not r.active]
        for k in done:
            del self.records[k]
        self._changed()
        return len(done)

    def active_records(self) -> list[JobRecord]:
        return [r for r in self.records.values() if r.active]

    # -- events -----------------------------------------------------------------
    def pump(self) -> int:
        """Apply every pending link event; returns how many were applied."""
        if self.link is None:
            return 0
        events = self.link.drain()
        for event in events:
            self.apply(event)
        if events:
            self._changed()
        return len(events)

    def apply(self, event: connection.LinkEvent) -> None:
        if event.kind == "link_error":
            self.link_error = event.data.get("message", "")
            print("AvatarForge link error:", event.data.get("traceback", self.link_error))
            return
        if event.kind == "state":
            return
        record = self.records.get(event.local_id or "") or (self.find(event.job_id) if event.job_id else None)
        if record is None:
            return  # a job of an earlier session, or one the user cleared
        d = event.data
        if event.kind == "accepted":
            record.job_id = event.job_id
            record.cached = bool(d.get("cached"))
            if record.state in ("submitting", "queued"):
                record.state = d.get("state") or "queued"
                record.stage = "queued" if record.state == "queued" else record.stage
        elif event.kind == "progress":
            if record.state != "cancelling":
                record.state = "running"
            record.fraction, record.stage = d["fraction"], d["stage"]
        elif event.kind == "result":
            record.fraction, record.stage = 1.0, "importing"
            record.artifacts = list(d.get("artifacts") or [])
            self.import_record(record)
        elif event.kind in ("error", "submit_failed"):
            code = d.get("code", "INTERNAL")
            state = "cancelled" if code == "CANCELLED" else "failed"
            self._finish(record, state, d.get("message") or code)
        elif event.kind == "interrupted":
            record.stage = d.get("message", "interrupted")
        elif event.kind == "cancel_failed":
            if record.state == "cancelling":
                record.state = "running"
            record.message = d.get("message", "")
        elif event.kind == "job_state":
            state = d.get("state")
            if state == "cancelled":
                self._finish(record, "cancelled", "cancelled")
            elif state in ("queued", "running") and record.state != "cancelling":
                record.state = state

    def import_record(self, record: JobRecord) -> list[Any]:
        """Build the record's artifacts in its scene; keeps them for a retry if that fails."""
        scene = bpy.data.scenes.get(record.scene_name) or bpy.context.scene
        try:
            built = import_in_scene(record.artifacts, scene, record.job_id, record.name, target_object(record),
                                    **record.options)
        except importers.ImportFailed as exc:
            # Keep the artifacts: the panel offers to import them again.
            self._finish(record, "failed", f"the result arrived but could not be imported: {exc}")
            return []
        record.imported = [o.name for b in built for o in getattr(b, "objects", ())]
        record.artifacts = []
        self._finish(record, "done", "; ".join(n for n in (getattr(b, "notes", "") for b in built) if n))
        for callback in self.on_imported:
            callback(record, built)
        return built

    def _finish(self, record: JobRecord, state: str, message: str) -> None:
        record.state, record.message, record.finished = state, message, time.time()
        record.stage = state
        if state == "done":
            record.fraction = 1.0

    def _changed(self) -> None:
        for callback in self.on_change:
            callback()

    def wait_for(self, record: JobRecord, timeout_s: float) -> JobRecord:
        """Pump until `record` finishes or `timeout_s` passes (background mode and tests)."""
        deadline = time.monotonic() + timeout_s
        while record.active and time.monotonic() < deadline:
            if not self.pump():
                time.sleep(0.02)
        return record


def target_object(record: JobRecord) -> bpy.types.Object | None:
    """The rig the record's motion goes onto, looked up now (it may have been deleted or renamed)."""
    if not record.target:
        return None
    obj = bpy.data.objects.get(record.target)
    if obj is None:
        raise importers.ImportFailed(f"the rig '{record.target}' chosen for this motion is gone (deleted or "
                                     "renamed); select a rig and animate again")
    return obj


def import_in_scene(artifacts: list[Any], scene: bpy.types.Scene, job_id: str | None, name: str,
                    target: bpy.types.Object | None = None, **options: Any) -> list[Any]:
    """Import into `scene` from anywhere on the main thread (an operator, a
    timer without a window, background mode)."""
    view_layer = scene.view_layers[0]
    window = next((w for w in bpy.context.window_manager.windows if w.scene == scene), None)
    if window is not None:
        view_layer = window.view_layer
        with bpy.context.temp_override(window=window):
            built = importers.import_artifacts(artifacts, SimpleNamespace(scene=scene, view_layer=view_layer),
                                               job_id=job_id, name=name, target=target, **options)
            _undo_push(f"AvatarForge: {name}")
            return built
    return importers.import_artifacts(artifacts, SimpleNamespace(scene=scene, view_layer=view_layer),
                                      job_id=job_id, name=name, target=target, **options)


def _undo_push(message: str) -> None:
    # An import from a timer is not an operator, so it makes its own undo step.
    try:
        bpy.ops.ed.undo_push(message=message)
    except RuntimeError:
        # No window to own an undo stack (background mode): there is nothing to undo into.
        pass


TABLE = JobTable()


def _tag_redraw() -> None:
    wm = bpy.context.window_manager
    if wm is None:
        return
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type in ("VIEW_3D", "STATUSBAR", "PREFERENCES"):
                area.tag_redraw()


def _timer() -> float | None:
    """The bpy.app.timers tick (UI only): pump events, redraw what shows them."""
    try:
        TABLE.pump()
    except Exception as exc:  # never let an error unregister the timer
        TABLE.link_error = f"{type(exc).__name__}: {exc}"
        import traceback
        traceback.print_exc()
    return PUMP_INTERVAL_S if TABLE.active_records() else IDLE_PUMP_INTERVAL_S


def register() -> None:
    TABLE.on_change.append(_tag_redraw)
    if not bpy.app.background and not bpy.app.timers.is_registered(_timer):
        bpy.app.timers.register(_timer, first_interval=PUMP_INTERVAL_S, persistent=True)


def unregister() -> None:
    if bpy.app.timers.is_registered(_timer):
        bpy.app.timers.unregister(_timer)
    TABLE.disconnect()
    TABLE.records.clear()
    if _tag_redraw in TABLE.on_change:
        TABLE.on_change.remove(_tag_redraw)
