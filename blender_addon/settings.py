"""The add-on's settings as a plain object, from wherever they are defined.

Order: the add-on preferences when the add-on is enabled through Blender,
else defaults; `AVATARFORGE_ADDRESS` in the environment overrides the address
(batch machines set it instead of editing preferences). Code reads settings
through `current_settings()` so it works the same when the package is only
registered by a script (prefs then do not exist).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import bpy

ADDON_ID = __package__ or "avatarforge_addon"
DEFAULT_ADDRESS = "tcp://127.0.0.1:5757"
ADDRESS_ENV = "AVATARFORGE_ADDRESS"


def addon_version() -> str:
    """The version in blender_manifest.toml (the extension's), else the protocol client's default."""
    try:
        import tomllib
        path = os.path.join(os.path.dirname(__file__), "blender_manifest.toml")
        with open(path, "rb") as f:
            return str(tomllib.load(f).get("version", "0.0.0"))
    except (OSError, ValueError):
        return "0.0.0"


@dataclass
class Settings:
    address: str = DEFAULT_ADDRESS
    connect_timeout_s: float = 3.0       # how long a hello may take before "unreachable"
    request_timeout_s: float = 10.0      # replies to submit/cancel/status
    job_timeout_s: float = 600.0         # longest silence (no progress) a blocking wait accepts
    heartbeat_s: float = 2.0
    retry_s: float = 2.0
    backend_python: str = ""             # interpreter of the backend's environment
    local_bind: str = DEFAULT_ADDRESS
    local_store: str = ""
    addon_version: str = "0.1.0"


def addon_preferences() -> "bpy.types.AddonPreferences | None":
    addon = bpy.context.preferences.addons.get(ADDON_ID)
    return addon.preferences if addon is not None else None


def current_settings() -> Settings:
    s = Settings(addon_version=addon_version())
    prefs = addon_preferences()
    if prefs is not None:
        s.address = prefs.backend_address.strip() or DEFAULT_ADDRESS
        s.connect_timeout_s = prefs.connect_timeout_s
        s.request_timeout_s = prefs.request_timeout_s
        s.job_timeout_s = prefs.job_timeout_s
        s.backend_python = bpy.path.abspath(prefs.backend_python) if prefs.backend_python else ""
        s.local_bind = prefs.local_bind.strip() or DEFAULT_ADDRESS
        s.local_store = bpy.path.abspath(prefs.local_store) if prefs.local_store else ""
    if os.environ.get(ADDRESS_ENV):
        s.address = os.environ[ADDRESS_ENV]
    return s
