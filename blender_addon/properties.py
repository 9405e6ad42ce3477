"""Scene settings the panel edits: body model, phenotypes, seed, name."""
from __future__ import annotations

from typing import Any

import bpy

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
