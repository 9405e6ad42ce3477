"""The panel, status bar and preferences draw code, run headless against a
layout stand-in that checks what Blender would: properties and operators
exist, icons are valid. Also what they show: progress, stage, errors, the
backend's pipelines and tiers."""
from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

bpy = pytest.importorskip("bpy")

ICONS = set(bpy.types.UILayout.bl_rna.functions["label"].parameters["icon"].enum_items.keys())


class Layout:
    """Records what a draw function puts on screen and checks it like Blender."""

    def __init__(self, log: list[tuple[str, str]]) -> None:
        self.__dict__["log"] = log

    def __setattr__(self, name: str, value: Any) -> None:
        assert name in {"use_property_split", "use_property_decorate", "scale_y", "ui_units_x", "alert",
                        "enabled", "active"}, name

    def _child(self, *args: Any, **kwargs: Any) -> "Layout":
        return Layout(self.log)

    row = column = box = split = _child

    def _icon(self, icon: str) -> None:
        assert icon in ICONS, f"unknown icon {icon!r}"

    def label(self, text: str = "", icon: str = "NONE") -> None:
        self._icon(icon)
        self.log.append(("label", text))

    def prop(self, data: Any, name: str, **kwargs: Any) -> None:
        assert name in data.bl_rna.properties, f"{type(data).__name__} has no property {name!r}"
        self.log.append(("prop", name))

    def operator(self, idname: str, text: str = "", icon: str = "NONE") -> Any:
        self._icon(icon)
        module, name = idname.split(".")
        op = getattr(getattr(bpy.ops, module), name)
        props = op.get_rna_type().properties
        self.log.append(("operator", idname))

        class Props:
            def __setattr__(self, key: str, value: Any) -> None:
                assert key in props, f"{idname} has no property {key!r}"
        return Props()

    def progress(self, factor: float, type: str, text: str) -> None:
        assert 0.0 <= factor <= 1.0 and type == "BAR"
        self.log.append(("progress", text))

    def separator(self) -> None:
        pass


def draw(fn: Any) -> list[tuple[str, str]]:
    log: list[tuple[str, str]] = []
    fn(SimpleNamespace(layout=Layout(log)), bpy.context)
    return log


def texts(log: list[tuple[str, str]]) -> str:
    return " ".join(text for _kind, text in log)   # wrapped lines read as one text


def test_panels_show_jobs_progress_and_errors(addon: Any, clean_scene: Any) -> None:
    table = addon.jobs.TABLE
    running = addon.jobs.JobRecord("local-a", "body", {}, "Hero", bpy.context.scene.name, job_id="j1",
                                   state="running", fraction=0.4, stage="painting texture")
    failed = addon.jobs.JobRecord("local-b", "body", {}, "Villain", bpy.context.scene.name, job_id="j2",
                                  state="failed", message="phenotypes.wingspan: not an Anny phenotype")
    unimported = addon.jobs.JobRecord("local-c", "body", {}, "Later", bpy.context.scene.name, job_id="j3",
                                      state="failed", message="switch to Object mode", artifacts=["kept"])
    table.records.update({r.local_id: r for r in (running, failed, unimported)})
    try:
        main = draw(addon.panels.AVATARFORGE_PT_main.draw)
        assert ("operator", "avatarforge.connect") in main
        body = draw(addon.panels.AVATARFORGE_PT_body.draw)
        assert ("operator", "avatarforge.generate_body") in body
        assert {("prop", p) for p in ("gender", "age", "muscle", "weight", "height", "proportions")} <= set(body)
        jobs = draw(addon.panels.AVATARFORGE_PT_jobs.draw)
        assert ("progress", "40%  painting texture") in jobs
        assert ("operator", "avatarforge.cancel_job") in jobs       # only the running job has Cancel
        assert jobs.count(("operator", "avatarforge.cancel_job")) == 1
        assert "not an Anny phenotype" in texts(jobs)
        assert jobs.count(("operator", "avatarforge.import_result")) == 1   # only where a result is kept
        status = draw(addon.panels.draw_status_bar)
        assert status == [("progress", "AvatarForge Hero: painting texture")]
        addon.operators.LAST_ERROR["message"] = "AvatarForge backend unavailable: no answer"
        assert "backend unavailable" in texts(draw(addon.panels.AVATARFORGE_PT_body.draw))
    finally:
        table.records.clear()


def test_preferences_show_backend_status(addon: Any, backend: Any) -> None:
    prefs = bpy.context.preferences.addons["bl_ext.user_default.avatarforge"].preferences
    table = addon.jobs.TABLE

    def draw_prefs() -> list[tuple[str, str]]:
        return draw(lambda self, ctx: addon.prefs.AvatarForgePreferences.draw(
            SimpleNamespace(layout=self.layout, bl_rna=prefs.bl_rna), ctx))

    before = texts(draw_prefs())
    assert "Connect to see the backend's version" in before
    table.ensure_link()
    try:
        deadline = time.monotonic() + 20
        while table.state != "connected":
            assert time.monotonic() < deadline, table.status_line()
            table.pump()
            time.sleep(0.05)
        log = draw_prefs()
        shown = texts(log)
        assert "Backend avatarforge-backend" in shown and "devices: cpu" in shown
        assert "body: anny" in shown
        assert "smpl (unavailable:" in shown          # no licensed SMPL files on the test machine
        assert ("operator", "avatarforge.disconnect") in log
        assert "Connected: avatarforge-backend" in texts(draw(addon.panels.AVATARFORGE_PT_main.draw))
        # Reset takes the backend's phenotype defaults from its welcome.
        defaults = addon.operators.backend_phenotype_defaults()
        assert defaults["age"] == pytest.approx(2 / 3, abs=0.01) and defaults["height"] == 0.5
        bpy.context.scene.avatarforge.age = 0.1
        assert bpy.ops.avatarforge.reset_phenotypes() == {"FINISHED"}
        assert bpy.context.scene.avatarforge.age == pytest.approx(2 / 3, abs=0.01)
    finally:
        table.disconnect()
