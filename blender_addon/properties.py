"""Scene settings the panel edits: body model, phenotypes, seed, name; the
prompt of "Describe the person"; the Motion section (prompt, duration, file,
target rig and how its bones map, export preset); Motion from Video (the
video file, rates, focal length, range, how the footage is shown)."""
from __future__ import annotations

import json
from typing import Any

import bpy

from .exporters import DEFAULT_PRESET as DEFAULT_EXPORT_PRESET
from .exporters import fbx as fbx_export
from .importers.camera import REFERENCES as VIDEO_REFERENCES
from .protocol.limits import AUTO_RIG_PRESET, MOTION_FPS, MOTION_SECONDS, RIG_PRESETS

# (name, label, description, default). Anny phenotypes are in [0, 1]
# (DESIGN §6). Age is on Anny's own scale; its default is the backend's
# default body, a young adult (2/3), not Anny's 0.5 (about 18 years).
MAIN_PHENOTYPES: tuple[tuple[str, str, str, float], ...] = (
    ("gender", "Gender", "0 = male, 1 = female", 0.5),
    ("age", "Age", "Anny's scale: 0 baby, 1/3 child, 2/3 young adult (25 years), 1 old", 2.0 / 3.0),
    ("muscle", "Muscle", "Muscle tone, 0 = low, 1 = high", 0.5),
    ("weight", "Weight", "Body mass, 0 = light, 1 = heavy", 0.5),
    ("height", "Height", "0 = short, 1 = tall", 0.5),
    ("proportions", "Proportions", "0 = uncommon, 1 = ideal proportions", 0.5),
)
EXTRA_PHENOTYPES: tuple[tuple[str, str, str, float], ...] = (
    ("cupsize", "Cup Size", "Breast size", 0.5),
    ("firmness", "Firmness", "Breast firmness", 0.5),
    ("african", "African", "Ethnic blend weight (normalised with the other two by the model)", 0.5),
    ("asian", "Asian", "Ethnic blend weight", 0.5),
    ("caucasian", "Caucasian", "Ethnic blend weight", 0.5),
)
ALL_PHENOTYPES = MAIN_PHENOTYPES + EXTRA_PHENOTYPES

BODY_MODELS = [
    ("anny", "Anny", "Embedded body model (ships with the backend, runs anywhere)"),
    ("smpl", "SMPL", "Needs your licensed SMPL files on the backend"),
    ("smplh", "SMPL-H", "Needs your licensed SMPL-H files on the backend"),
    ("smplx", "SMPL-X", "Needs your licensed SMPL-X files on the backend"),
]


ENCODERS = [
    ("minilm", "MiniLM", "Sentence encoder shipped with the backend (runs anywhere)"),
    ("clip", "CLIP", "open_clip text encoder; needs its weights on the backend"),
]
# What the panel says about each retargeting preset (the presets themselves: protocol/limits.py).
_PRESET_WORDS = {
    "auto": ("Auto", "From the rig: avatars made here know their body model, other rigs are recognised by "
                     "their bone names"),
    "anny": ("Anny", "Anny's 104-bone rig (avatars of the Body panel)"),
    "smpl": ("SMPL", "SMPL's 24 joints (SMPL, SMPL-H, SMPL-X avatars)"),
    "mixamo": ("Mixamo", "Mixamo's rig (mixamorig:Hips ...)"),
    "rigify": ("Rigify", "Rigify's deform bones (DEF-...)"),
    "unreal": ("Unreal", "Unreal Engine's mannequin (pelvis, spine_01 ...)"),
}
TARGET_PRESETS = [(name, *_PRESET_WORDS[name]) for name in (AUTO_RIG_PRESET, *RIG_PRESETS)]
EXPORT_PRESETS = [(name, name.capitalize(), fbx_export.DESCRIPTIONS[name]) for name in fbx_export.PRESETS]
_REFERENCE_WORDS = {
    "background": ("Camera Background", "The video as the solved camera's background (look through the camera)"),
    "plane": ("Image Plane", "The video on a plane filling the camera's view, behind the subject"),
    "none": ("None", "No footage in the scene"),
}
REFERENCE_ITEMS = [(name, *_REFERENCE_WORDS[name]) for name in VIDEO_REFERENCES]
VIDEO_FILTER = "*.mp4;*.mov;*.m4v;*.avi;*.mkv;*.webm;*.mpg;*.mpeg;*.wmv;*.ogv"


def _phenotype_annotations() -> dict[str, Any]:
    return {name: bpy.props.FloatProperty(name=label, description=desc, default=default, min=0.0, max=1.0,
                                          subtype="FACTOR")
            for name, label, desc, default in ALL_PHENOTYPES}


class AvatarForgeSceneSettings(bpy.types.PropertyGroup):
    __annotations__ = {
        "body_model": bpy.props.EnumProperty(name="Body Model", items=BODY_MODELS, default="anny"),
        "avatar_name": bpy.props.StringProperty(name="Name", default="Avatar",
                                                description="Name of the collection and objects created"),
        "seed": bpy.props.IntProperty(name="Seed", default=0, min=0, description="Seed for the texture"),
        "show_more": bpy.props.BoolProperty(name="More Phenotypes", default=False),
        "texture_size": bpy.props.IntProperty(name="Texture Size", default=1024, min=256, max=4096,
                                              description="Edge of the skin texture in pixels"),
        **_phenotype_annotations(),
        # Describe the person (text_avatar)
        "text_prompt": bpy.props.StringProperty(name="Describe", default="",
                                                description="Who to make, in words (e.g. 'a tall old man in a red "
                                                            "coat, toon style')"),
        "text_encoder": bpy.props.EnumProperty(name="Text Encoder", items=ENCODERS, default="minilm"),
        "text_seed": bpy.props.IntProperty(name="Seed", default=0, min=0,
                                           description="Seed of the generation; change it to get another take"),
        "text_has_params": bpy.props.BoolProperty(
            name="Chosen Parameters", default=False, options={"HIDDEN"},
            description="The sliders hold what the last description chose (Regenerate sends them)"),
        "text_local_changes": bpy.props.StringProperty(
            name="Local Changes", default="", options={"HIDDEN"},
            description="JSON of the local shape changes the last description chose (kept on Regenerate)"),
        # Motion (text_motion, motion_import)
        "motion_prompt": bpy.props.StringProperty(name="Motion", default="waves hello, then jumps",
                                                  description="What the body does, in words"),
        "motion_seconds": bpy.props.FloatProperty(name="Duration", default=4.0, min=MOTION_SECONDS[0],
                                                  max=MOTION_SECONDS[1], unit="TIME_ABSOLUTE",
                                                  description="Length of the motion in seconds"),
        "motion_fps": bpy.props.FloatProperty(name="FPS", default=30.0, min=MOTION_FPS[0], max=MOTION_FPS[1],
                                              description="Frame rate of the motion (the scene takes it)"),
        "motion_seed": bpy.props.IntProperty(name="Seed", default=0, min=0),
        # No `poll` limiting it to armatures: a Python poll callback makes the
        # Blender 4.2 bpy module crash at exit. A skinned mesh picks its armature.
        "motion_target": bpy.props.PointerProperty(
            name="Target Rig", type=bpy.types.Object,
            description="The armature to animate; empty: the active armature, else a new SMPL-24 armature"),
        "motion_preset": bpy.props.EnumProperty(name="Rig Type", items=TARGET_PRESETS, default=AUTO_RIG_PRESET,
                                                description="How the rig's bones map to SMPL's joints"),
        "motion_bone_map": bpy.props.StringProperty(
            name="Bone Map", default="",
            description="Optional explicit map {rig bone: SMPL joint}: a text block name, a .json file or JSON"),
        "motion_file_fps": bpy.props.FloatProperty(name="Resample FPS", default=0.0, min=0.0, max=MOTION_FPS[1],
                                                   description="0: keep the file's frame rate"),
        "export_preset": bpy.props.EnumProperty(name="Export For", items=EXPORT_PRESETS, default=DEFAULT_EXPORT_PRESET,
                                                description="Axes, scale and bone settings of the FBX file"),
        "export_with_mesh": bpy.props.BoolProperty(name="With Mesh", default=True,
                                                   description="Export the meshes the rig deforms too"),
        # Motion from Video (video_motion); the target rig is the Motion section's
        "video_path": bpy.props.StringProperty(name="Video", subtype="FILE_PATH", default="",
                                               description="A video of one person (mp4, mov, ...)"),
        "video_fps": bpy.props.FloatProperty(name="FPS", default=0.0, min=0.0, max=MOTION_FPS[1],
                                             description="Frame rate of the motion; 0: the video's (the footage "
                                                         "then plays in step with the scene)"),
        "video_focal_mm": bpy.props.FloatProperty(name="Focal Length", default=0.0, min=0.0, max=2000.0,
                                                  description="35 mm-equivalent focal length of the camera that "
                                                              "shot it; 0: from the file's metadata, else a default"),
        "video_start": bpy.props.FloatProperty(name="Start", default=0.0, min=0.0, unit="TIME_ABSOLUTE",
                                               description="Seconds into the video where the motion starts"),
        "video_end": bpy.props.FloatProperty(name="End", default=0.0, min=0.0, unit="TIME_ABSOLUTE",
                                             description="Seconds into the video where it ends; 0: the end"),
        "video_reference": bpy.props.EnumProperty(name="Show Video", items=REFERENCE_ITEMS, default="background",
                                                  description="How the footage appears, lined up with the solved "
                                                              "camera"),
    }



# Module functions, not methods: a PropertyGroup with any Python method makes
# the Blender 4.2 bpy module crash when the interpreter exits.
def shown_phenotypes(s: AvatarForgeSceneSettings) -> dict[str, float]:
    """The phenotypes the panel shows (the extra ones only when expanded)."""
    shown = ALL_PHENOTYPES if s.show_more else MAIN_PHENOTYPES
    return {name: round(float(getattr(s, name)), 6) for name, *_ in shown}


def body_params(s: AvatarForgeSceneSettings) -> dict[str, Any]:
    """The `body` job's params from the panel's settings."""
    params: dict[str, Any] = {"model": s.body_model, "seed": int(s.seed), "texture_size": int(s.texture_size)}
    if s.body_model == "anny":
        params["phenotypes"] = shown_phenotypes(s)
    return params


def text_avatar_params(s: AvatarForgeSceneSettings, regenerate: bool) -> dict[str, Any]:
    """The `text_avatar` job's params from the panel: the prompt (and, when
    regenerating, the edited sliders and kept local changes as overrides)."""
    params: dict[str, Any] = {"prompt": s.text_prompt, "seed": int(s.text_seed), "encoder": s.text_encoder,
                              "texture_size": int(s.texture_size), "name": s.avatar_name or "Avatar"}
    if regenerate:
        params["phenotypes"] = shown_phenotypes(s)
        if s.text_local_changes:
            params["local_changes"] = json.loads(s.text_local_changes)
    return params


def adopt_avatar_params(s: AvatarForgeSceneSettings, params: dict[str, Any]) -> None:
    """Show what a description chose on the sliders, so the user can edit them and regenerate."""
    phenotypes = params.get("phenotypes") or {}
    for name, *_ in ALL_PHENOTYPES:
        value = phenotypes.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            setattr(s, name, min(1.0, max(0.0, float(value))))
    s.text_local_changes = json.dumps(params.get("local_changes") or {}, sort_keys=True)
    s.text_has_params = True


def motion_params(s: AvatarForgeSceneSettings) -> dict[str, Any]:
    """The `text_motion` job's params from the panel (the target is added by the operator)."""
    return {"prompt": s.motion_prompt, "seconds": round(float(s.motion_seconds), 4),
            "fps": round(float(s.motion_fps), 4), "seed": int(s.motion_seed), "encoder": s.text_encoder}


def video_params(s: AvatarForgeSceneSettings) -> dict[str, Any]:
    """The optional `video_motion` params the panel sets (0 = unset); the operator
    adds the file's bytes and the target rig."""
    params: dict[str, Any] = {}
    for key, value in (("fps", s.video_fps), ("focal_mm", s.video_focal_mm), ("start", s.video_start),
                       ("end", s.video_end)):
        if value > 0:
            params[key] = round(float(value), 6)
    return params


def reset_phenotypes(s: AvatarForgeSceneSettings, defaults: dict[str, float] | None = None) -> None:
    for name, _label, _desc, default in ALL_PHENOTYPES:
        setattr(s, name, float((defaults or {}).get(name, default)))


classes = (AvatarForgeSceneSettings,)


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.avatarforge = bpy.props.PointerProperty(type=AvatarForgeSceneSettings)


def unregister() -> None:
    del bpy.types.Scene.avatarforge
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
