"""Describe the person: style presets on the material (no backend, a hand-made
avatar), the panel, and end to end through the backend's `text_avatar` job:
generate from a prompt, find the texture on the material, see the chosen
parameters on the sliders, regenerate with edited sliders and a new seed."""
from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import numpy as np
import pytest

from .synthetic import tube_avatar

bpy = pytest.importorskip("bpy")

from .test_ui import draw, texts  # noqa: E402

TOON = {"style": "toon", "shading": "toon", "roughness": 0.9, "metallic": 0.0, "specular": 0.2, "subsurface": 0.0,
        "coat": 0.0, "outline": True, "outline_width": 0.004, "toon_steps": 3, "saturation": 1.25,
        "colorspace": "sRGB"}
METAL = {"style": "metal", "shading": "principled", "roughness": 0.25, "metallic": 1.0, "specular": 0.8,
         "subsurface": 0.0, "coat": 0.0, "outline": False, "outline_width": 0.0, "toon_steps": 0, "saturation": 0.6}


def styled_tube(addon: Any, settings: dict[str, Any]) -> Any:
    avatar = tube_avatar(addon.protocol)
    avatar.materials[0].settings = dict(settings)
    return addon.importers.rigged_avatar.import_rigged_avatar(avatar, bpy.context, name="Styled")


def texture_nodes(material: Any) -> list[Any]:
    return [n for n in material.node_tree.nodes if n.bl_idname == "ShaderNodeTexImage" and n.image is not None]


def upstream(socket: Any) -> set[str]:
    """Names of every node feeding `socket`, transitively."""
    seen: set[str] = set()
    stack = [link.from_node for link in socket.links]
    while stack:
        node = stack.pop()
        if node.name not in seen:
            seen.add(node.name)
            stack += [link.from_node for s in node.inputs for link in s.links]
    return seen


def render_pixels(addon: Any, scene: Any, objects: list[Any]) -> np.ndarray:
    """A 48 px, 4-sample Cycles CPU render of `objects`, as (H, W, 4) floats."""
    addon.render_setup.stage_avatar(scene, objects, 48, 4)
    path = os.path.join(tempfile.mkdtemp(), "toon.png")
    addon.render_setup.render_still(scene, path)
    img = bpy.data.images.load(path)
    px = np.array(img.pixels[:]).reshape(img.size[1], img.size[0], 4)
    bpy.data.images.remove(img)
    return px


def test_toon_preset_builds_npr_nodes_that_render_in_cycles(addon: Any, clean_scene: Any) -> None:
    built = styled_tube(addon, TOON)
    mat = built.mesh.data.materials[0]
    tree = mat.node_tree
    output = next(n for n in tree.nodes if n.bl_idname == "ShaderNodeOutputMaterial" and n.is_active_output)
    feeding = upstream(output.inputs["Surface"])
    assert {"AvatarForge Toon Mix", "AvatarForge Toon Ramp", "AvatarForge Facing", "AvatarForge Flat Colour"} <= feeding
    assert not any(n.bl_idname == "ShaderNodeShaderToRGB" for n in tree.nodes)      # EEVEE-only: not used
    ramp = tree.nodes["AvatarForge Toon Ramp"].color_ramp
    assert ramp.interpolation == "CONSTANT" and len(ramp.elements) == 3
    (texture,) = texture_nodes(mat)
    assert texture.name in feeding and texture.image.packed_file is not None       # the texture still drives colour
    assert tree.nodes["AvatarForge Saturation"].inputs["Saturation"].default_value == pytest.approx(1.25)
    bsdf = next(n for n in tree.nodes if n.bl_idname == "ShaderNodeBsdfPrincipled")
    assert bsdf.inputs["Roughness"].default_value == pytest.approx(0.9)
    assert bsdf.inputs["Specular IOR Level"].default_value == pytest.approx(0.2)
    assert mat["avatarforge_style"] == "toon" and mat["avatarforge_shading"] == "toon"
    assert mat["avatarforge_style_outline"] is True and mat["avatarforge_style_toon_steps"] == 3
    assert json.loads(mat["avatarforge_style_settings"]) == TOON
    outline = built.mesh.modifiers["AvatarForge Outline"]
    assert outline.type == "SOLIDIFY" and outline.use_flip_normals and outline.thickness == pytest.approx(0.004)
    assert [m.type for m in built.mesh.modifiers] == ["ARMATURE", "SOLIDIFY"]       # the shell follows the pose
    assert built.mesh.data.materials[outline.material_offset].name.endswith("_outline")
    # Cycles renders it: the tube shows its texture's orange, banded (more than one shade), not black.
    px = render_pixels(addon, bpy.context.scene, [built.mesh])
    body = px[(px[..., 0] > px[..., 2] + 0.05)]
    assert len(body) > 20, "the toon body did not render in Cycles"
    assert len(np.unique(np.round(body[:, 0], 2))) > 1


def test_metal_preset_sets_principled_values(addon: Any, clean_scene: Any) -> None:
    built = styled_tube(addon, METAL)
    mat = built.mesh.data.materials[0]
    bsdf = next(n for n in mat.node_tree.nodes if n.bl_idname == "ShaderNodeBsdfPrincipled")
    assert bsdf.inputs["Metallic"].default_value == 1.0
    assert bsdf.inputs["Roughness"].default_value == pytest.approx(0.25)
    assert "AvatarForge Toon Mix" not in mat.node_tree.nodes and "AvatarForge Outline" not in built.mesh.modifiers
    assert mat["avatarforge_style"] == "metal" and mat["avatarforge_shading"] == "principled"
    assert len(texture_nodes(mat)) == 1


def test_unknown_shading_is_refused_before_building(addon: Any, clean_scene: Any) -> None:
    with pytest.raises(addon.importers.ImportFailed, match="shading 'watercolour'"):
        styled_tube(addon, {"style": "x", "shading": "watercolour"})
    assert not bpy.data.objects


def test_describe_and_motion_panels(addon: Any, clean_scene: Any) -> None:
    s = bpy.context.scene.avatarforge
    s.text_has_params = False
    log = draw(addon.panels.AVATARFORGE_PT_describe.draw)
    assert ("prop", "text_prompt") in log and ("operator", "avatarforge.generate_text_avatar") in log
    assert ("prop", "gender") not in log
    s.text_has_params = True
    log = draw(addon.panels.AVATARFORGE_PT_describe.draw)
    assert ("prop", "gender") in log and log.count(("operator", "avatarforge.generate_text_avatar")) == 2
    log = draw(addon.panels.AVATARFORGE_PT_motion.draw)
    assert {("prop", p) for p in ("motion_prompt", "motion_seconds", "motion_target", "motion_preset")} <= set(log)
    assert ("operator", "avatarforge.animate") in log and ("operator", "avatarforge.import_motion") in log
    assert "a new SMPL-24 armature" in texts(log)
    s.text_has_params = False


# -- end to end -------------------------------------------------------------------
PROMPT = "a tall muscular old man, toon style"


@pytest.fixture(scope="module")
def text_job(af: Any, backend: Any) -> None:
    pipelines = af.connect()["pipelines"]
    assert "text_avatar" in pipelines, f"the backend has no text_avatar job (it has {sorted(pipelines)})"


def test_generate_from_prompt_then_regenerate(addon: Any, af: Any, backend: Any, text_job: None,
                                              clean_scene: Any) -> None:
    s = bpy.context.scene.avatarforge
    s.text_prompt, s.text_seed, s.texture_size, s.avatar_name = PROMPT, 0, 256, "Described"
    s.text_has_params = False
    assert bpy.ops.avatarforge.generate_text_avatar(wait=True) == {"FINISHED"}
    rig, mesh = [o for o in bpy.data.objects if o.type == "ARMATURE"][0], \
        [o for o in bpy.data.objects if o.type == "MESH"][0]
    mat = mesh.data.materials[0]
    (texture,) = texture_nodes(mat)
    assert texture.image.packed_file is not None and tuple(texture.image.size) == (256, 256)
    assert texture.name in upstream(next(n for n in mat.node_tree.nodes if n.bl_idname ==
                                         "ShaderNodeOutputMaterial" and n.is_active_output).inputs["Surface"])
    params = af.read_params(rig)
    assert params["text"]["prompt"] == PROMPT and rig["avatarforge_body_model"] == "anny"
    assert mat.get("avatarforge_style") == (params["text"]["style"] or "realistic")
    # The chosen parameters are on the sliders; edit one and regenerate with another seed.
    assert s.text_has_params
    for name in ("gender", "age", "height", "muscle"):
        assert getattr(s, name) == pytest.approx(params["phenotypes"][name], abs=1e-5)
    s.height, s.text_seed = 0.1, 5
    assert bpy.ops.avatarforge.generate_text_avatar(wait=True, regenerate=True) == {"FINISHED"}
    newest = max((o for o in bpy.data.objects if o.type == "ARMATURE"), key=lambda o: o.name)
    again = af.read_params(newest)
    assert newest != rig and again["phenotypes"]["height"] == pytest.approx(0.1, abs=1e-5)
    assert again["phenotypes"]["age"] == pytest.approx(params["phenotypes"]["age"], abs=1e-5)
    assert s.height == pytest.approx(0.1, abs=1e-5)
