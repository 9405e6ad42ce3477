"""Add-on preferences: where the backend is, how to start a local one,
timeouts, and a status line from the backend's `welcome`."""
from __future__ import annotations

import textwrap
from typing import Any

import bpy

from . import backend_process, connection
from .jobs import TABLE
from .settings import ADDON_ID, DEFAULT_ADDRESS


def welcome_lines(welcome: dict[str, Any] | None) -> list[str]:
    """What the status line shows: pipelines with their tiers (available or why not), devices."""
    if not welcome:
        return []
    lines = [f"Backend {welcome.get('server', '?')} {welcome.get('server_version', '?')}, "
             f"devices: {', '.join(map(str, welcome.get('devices') or [])) or 'none'}"]
    for name, info in sorted((welcome.get("pipelines") or {}).items()):
        tiers = info.get("tiers") or {}
        parts = []
        for tier, t in tiers.items():
            parts.append(tier if t.get("available") else f"{tier} (unavailable: {t.get('reason', 'missing')})")
        lines.append(f"  {name}: {', '.join(parts) or 'no tiers'}")
    return lines


def draw_connection(layout: bpy.types.UILayout, compact: bool = False) -> None:
    """Connection state with Connect/Disconnect; shared by the prefs and the panel."""
    state = TABLE.state
    row = layout.row(align=True)
    icon = {"connected": "LINKED", "connecting": "SORTTIME"}.get(state, "UNLINKED")
    row.label(text=TABLE.status_line() if compact else state.capitalize(), icon=icon)
    if state in (connection.DISCONNECTED, connection.INCOMPATIBLE):
        row.operator("avatarforge.connect", text="Connect", icon="PLAY")
    else:
        row.operator("avatarforge.disconnect", text="Disconnect", icon="X")
    if state in (connection.UNREACHABLE, connection.INCOMPATIBLE) or (not compact and state != "connected"):
        draw_wrapped(layout.column(align=True), TABLE.link.message if TABLE.link else "", icon="ERROR")


def draw_wrapped(layout: bpy.types.UILayout, text: str, width: int = 60, icon: str = "NONE") -> None:
    for i, line in enumerate(textwrap.wrap(text, width) or []):
        layout.label(text=line, icon=icon if i == 0 else "BLANK1")


class AvatarForgePreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    backend_address: bpy.props.StringProperty(
        name="Backend Address", default=DEFAULT_ADDRESS,
        description="ZeroMQ address of the AvatarForge backend, e.g. tcp://127.0.0.1:5757 or tcp://gpu-box:5757")
    connect_timeout_s: bpy.props.FloatProperty(
        name="Connect Timeout", default=3.0, min=0.2, max=120.0, unit="TIME_ABSOLUTE",
        description="How long the backend may take to answer before it counts as unreachable")
    request_timeout_s: bpy.props.FloatProperty(
        name="Request Timeout", default=10.0, min=0.5, max=600.0, unit="TIME_ABSOLUTE",
        description="How long a submit, cancel or status may take")
    job_timeout_s: bpy.props.FloatProperty(
        name="Job Silence Timeout", default=600.0, min=5.0, max=86400.0, unit="TIME_ABSOLUTE",
        description="Longest time without progress a blocking script waits for a job (background mode)")
    backend_python: bpy.props.StringProperty(
        name="Backend Python", subtype="FILE_PATH", default="",
        description="Python interpreter of the backend's environment (e.g. <checkout>/.venv/bin/python)")
    local_bind: bpy.props.StringProperty(
        name="Local Bind", default=DEFAULT_ADDRESS,
        description="Where a local backend started from here listens")
    local_store: bpy.props.StringProperty(
        name="Result Store", subtype="DIR_PATH", default="",
        description="Folder for the local backend's results (empty: the backend's default)")

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        col = layout.column()
        col.prop(self, "backend_address")
        draw_connection(col)
        box = col.box()
        for line in welcome_lines(TABLE.welcome):
            box.label(text=line)
        if TABLE.welcome is None:
            box.label(text="Connect to see the backend's version, pipelines and model tiers.")

        col.separator()
        col.label(text="Local Backend")
        col.prop(self, "backend_python")
        col.prop(self, "local_bind")
        col.prop(self, "local_store")
        row = col.row(align=True)
        local = backend_process.LOCAL
        row.label(text=f"Local backend: {local.state if local else 'stopped'}")
        row.operator("avatarforge.start_backend", icon="PLAY")
        row.operator("avatarforge.stop_backend", icon="SNAP_FACE")

        col.separator()
        col.label(text="Timeouts")
        row = col.row(align=True)
        row.prop(self, "connect_timeout_s")
        row.prop(self, "request_timeout_s")
        row.prop(self, "job_timeout_s")


classes = (AvatarForgePreferences,)
