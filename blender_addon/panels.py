"""The 3D viewport sidebar tab "AvatarForge" and the status-bar progress."""
from __future__ import annotations

import bpy

from . import compat, operators, prefs
from .jobs import TABLE, JobRecord
from .properties import EXTRA_PHENOTYPES, MAIN_PHENOTYPES

STATE_ICONS = {"done": "CHECKMARK", "failed": "ERROR", "cancelled": "CANCEL", "cancelling": "SORTTIME"}


def tier_note(model: str) -> str:
    """Why a body model cannot run on the connected backend, or ''."""
    body = ((TABLE.welcome or {}).get("pipelines") or {}).get("body") or {}
    tier = (body.get("tiers") or {}).get(model)
    if isinstance(tier, dict) and not tier.get("available", True):
        return tier.get("reason", f"{model} is not available on this backend")
    return ""


class SidebarPanel:
    """Where every AvatarForge panel lives: the 3D viewport's sidebar tab."""
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "AvatarForge"


class AVATARFORGE_PT_main(SidebarPanel, bpy.types.Panel):
    bl_label = "AvatarForge"
    bl_idname = "AVATARFORGE_PT_main"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        prefs.draw_connection(layout.box(), compact=True)


class AVATARFORGE_PT_body(SidebarPanel, bpy.types.Panel):
    bl_label = "Body"
    bl_idname = "AVATARFORGE_PT_body"
    bl_parent_id = "AVATARFORGE_PT_main"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        s = context.scene.avatarforge
        layout.use_property_split = True
        layout.use_property_decorate = False
        layout.prop(s, "avatar_name")
        layout.prop(s, "body_model")
        note = tier_note(s.body_model)
        if note:
            prefs.draw_wrapped(layout.column(align=True), note, 40, icon="INFO")
        if s.body_model == "anny":
            col = layout.column(align=True)
            for name, *_ in MAIN_PHENOTYPES:
                col.prop(s, name, slider=True)
            layout.prop(s, "show_more")
            if s.show_more:
                col = layout.column(align=True)
                for name, *_ in EXTRA_PHENOTYPES:
                    col.prop(s, name, slider=True)
            layout.operator("avatarforge.reset_phenotypes", icon="LOOP_BACK")
        layout.prop(s, "seed")
        layout.prop(s, "texture_size")
        row = layout.row()
        row.scale_y = 1.4
        row.operator("avatarforge.generate_body", icon="OUTLINER_OB_ARMATURE")
        if operators.LAST_ERROR["message"]:
            prefs.draw_wrapped(layout.box().column(align=True), operators.LAST_ERROR["message"], 40, icon="ERROR")


class AVATARFORGE_PT_describe(SidebarPanel, bpy.types.Panel):
    bl_label = "Describe the Person"
    bl_idname = "AVATARFORGE_PT_describe"
    bl_parent_id = "AVATARFORGE_PT_main"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        s = context.scene.avatarforge
        layout.prop(s, "text_prompt", text="", icon="TEXT")
        layout.use_property_split = True
        layout.use_property_decorate = False
        layout.prop(s, "text_encoder")
        layout.prop(s, "text_seed")
        row = layout.row()
        row.scale_y = 1.4
        row.operator("avatarforge.generate_text_avatar", text="Generate", icon="OUTLINER_OB_ARMATURE")
        if s.text_has_params:
            layout.label(text="Chosen parameters (edit, then Regenerate):")
            col = layout.column(align=True)
            for name, *_ in MAIN_PHENOTYPES:
                col.prop(s, name, slider=True)
            op = layout.operator("avatarforge.generate_text_avatar", text="Regenerate", icon="FILE_REFRESH")
            op.regenerate = True


class AVATARFORGE_PT_motion(SidebarPanel, bpy.types.Panel):
    bl_label = "Motion"
    bl_idname = "AVATARFORGE_PT_motion"
    bl_parent_id = "AVATARFORGE_PT_main"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        s = context.scene.avatarforge
        layout.prop(s, "motion_prompt", text="", icon="ARMATURE_DATA")
        layout.use_property_split = True
        layout.use_property_decorate = False
        col = layout.column(align=True)
        col.prop(s, "motion_seconds")
        col.prop(s, "motion_fps")
        col.prop(s, "motion_seed")
        draw_rig_choice(layout, context)
        layout.prop(s, "motion_bone_map")
        row = layout.row()
        row.scale_y = 1.4
        row.operator("avatarforge.animate", icon="PLAY")
        layout.prop(s, "motion_file_fps")
        layout.operator("avatarforge.import_motion", icon="IMPORT")
        layout.separator()
        layout.prop(s, "export_preset")
        layout.prop(s, "export_with_mesh")
        layout.operator("avatarforge.export_motion", icon="EXPORT")


def draw_rig_choice(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    """The Motion section's rig choice (shared by Motion from Video): field, what it animates, rig type."""
    s = context.scene.avatarforge
    layout.prop(s, "motion_target")
    try:
        rig = operators.motion_rig(context)
        layout.label(text=f"Animates: {rig.name}" if rig else "Animates: a new SMPL-24 armature",
                     icon="OUTLINER_OB_ARMATURE")
    except operators.ImportFailed as exc:
        prefs.draw_wrapped(layout.column(align=True), str(exc), 40, icon="ERROR")
    layout.prop(s, "motion_preset")


class AVATARFORGE_PT_video(SidebarPanel, bpy.types.Panel):
    bl_label = "Motion from Video"
    bl_idname = "AVATARFORGE_PT_video"
    bl_parent_id = "AVATARFORGE_PT_main"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        s = context.scene.avatarforge
        layout.prop(s, "video_path", text="", icon="FILE_MOVIE")
        layout.use_property_split = True
        layout.use_property_decorate = False
        draw_rig_choice(layout, context)
        col = layout.column(align=True)
        col.prop(s, "video_fps")
        col.prop(s, "video_focal_mm")
        col = layout.column(align=True)
        col.prop(s, "video_start")
        col.prop(s, "video_end")
        layout.prop(s, "video_reference")
        row = layout.row()
        row.scale_y = 1.4
        row.enabled = bool(s.video_path.strip())
        row.operator("avatarforge.motion_from_video", icon="TRACKER")
        running = [r for r in TABLE.active_records() if r.job == "video_motion"]
        for record in running[:1]:           # progress and cancel right here (the Jobs list has them too)
            draw_job(layout, record)


def draw_job(layout: bpy.types.UILayout, record: JobRecord) -> None:
    box = layout.box()
    row = box.row(align=True)
    row.label(text=record.label, icon=STATE_ICONS.get(record.state, "PLAY"))
    if record.active and record.state != "cancelling":
        op = row.operator("avatarforge.cancel_job", text="", icon="X")
        op.key = record.local_id
    if record.active:
        compat.progress_bar(box, record.fraction, f"{record.fraction * 100:.0f}%  {record.stage}")
    elif record.state == "done":
        box.label(text=("from cache: " if record.cached else "") + ", ".join(record.imported))
    if record.message:
        prefs.draw_wrapped(box.column(align=True), record.message, 40,
                           icon="ERROR" if record.state == "failed" else "INFO")
    if record.artifacts and not record.active:   # the result arrived but its import failed
        box.operator("avatarforge.import_result", icon="IMPORT").key = record.local_id


class AVATARFORGE_PT_jobs(SidebarPanel, bpy.types.Panel):
    bl_label = "Jobs"
    bl_idname = "AVATARFORGE_PT_jobs"
    bl_parent_id = "AVATARFORGE_PT_main"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        records = sorted(TABLE.records.values(), key=lambda r: r.created, reverse=True)
        if not records:
            layout.label(text="No jobs yet")
            return
        for record in records[:20]:
            draw_job(layout, record)
        if any(not r.active for r in records):
            layout.operator("avatarforge.clear_jobs", icon="TRASH")


def draw_status_bar(self: bpy.types.Header, context: bpy.types.Context) -> None:
    """Progress of the running jobs in the status bar."""
    active = TABLE.active_records()
    if not active:
        return
    row = self.layout.row(align=True)
    record = active[0]
    more = f" (+{len(active) - 1})" if len(active) > 1 else ""
    row.ui_units_x = 14
    compat.progress_bar(row, record.fraction, f"AvatarForge {record.name}: {record.stage}{more}")


classes = (AVATARFORGE_PT_main, AVATARFORGE_PT_body, AVATARFORGE_PT_describe, AVATARFORGE_PT_motion,
           AVATARFORGE_PT_video, AVATARFORGE_PT_jobs)


def register() -> None:
    compat.status_bar_header().append(draw_status_bar)


def unregister() -> None:
    compat.status_bar_header().remove(draw_status_bar)
