"""Appearance from text (AvatarCLIP S2 embedded tier): parsing through the MiniLM
encoder, style presets, and the clothing painter checked texel by texel against
Anny's own segmentation and rest-pose geometry."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from avatarforge.backend.text.appearance import Appearance, Garment, parse_appearance, vocabulary
from avatarforge.backend.text.styles import PRESETS, style_preset

SIZE = 256


@pytest.fixture(scope="module")
def encoder():
    from avatarforge.backend.models.encoders import load_text_encoder

    return load_text_encoder("minilm")


@pytest.fixture(scope="module")
def mesh(anny_model):
    return anny_model.build({})


def slots(appearance: Appearance) -> dict[str, tuple[str, str]]:
    return {g.slot: (g.kind, g.colour_name) for g in appearance.garments}


# -- parsing ------------------------------------------------------------------------

def test_garments_and_colours(encoder):
    a = parse_appearance("a man in a red shirt and blue jeans", encoder)
    assert slots(a) == {"top": ("shirt", "red"), "bottom": ("jeans", "blue")}
    assert a.garment("top").coverage.sleeve == 1.0 and a.garment("bottom").coverage.leg == 1.0
    assert a.style is None and a.skin_tone is None and a.hair.colour is None


def test_colours_patterns_and_slots_go_to_their_garment(encoder):
    a = parse_appearance("a tall woman with long blonde hair wearing a red and white striped dress "
                         "and black high heels", encoder)
    dress = a.garment("dress")
    assert (dress.kind, dress.colour_name, dress.pattern, dress.pattern_colour_name) == \
        ("dress", "red", "striped", "white")
    assert slots(a)["shoes"] == ("high heels", "black")
    assert a.hair.colour_name == "blonde" and a.hair.length == 1.0
    assert "bottom" not in slots(a) and "top" not in slots(a)


def test_trailing_colour_and_default_colour(encoder):
    assert slots(parse_appearance("a shirt in teal", encoder)) == {"top": ("shirt", "teal")}
    boots = parse_appearance("a girl in rubber boots", encoder).garment("shoes")
    assert boots.kind == "boots" and boots.colour_score is None      # the garment's own default colour


def test_unlisted_words_work_through_the_embeddings(encoder):
    from avatarforge.backend.text.appearance import COLOURS, GARMENTS

    listed = {a for g in GARMENTS for a in g.aliases} | set(COLOURS)
    for word in ("hoody", "bluish", "sneaker", "teeshirt", "greenish"):
        assert word not in listed
    a = parse_appearance("a woman in a bluish hoody and a sneaker", encoder)
    assert slots(a)["top"] == ("hoodie", "blue") and slots(a)["shoes"][0] == "sneakers"
    assert slots(parse_appearance("a greenish teeshirt", encoder)) == {"top": ("t-shirt", "green")}


@pytest.mark.parametrize("prompt", ["a banana on a table", "an old man", "a tall skinny person",
                                    "ein Mann mit Hut", "人", "a cat"])
def test_unrelated_words_make_no_garments(encoder, prompt):
    a = parse_appearance(prompt, encoder)
    assert a.garments == [] and a.style is None and a.skin_tone is None


def test_non_ascii_prompt(encoder):
    a = parse_appearance("Une femme — in a crimson blouse, café-au-lait skirt ✨ and ümlaut boots", encoder)
    assert slots(a)["top"] == ("blouse", "crimson")
    assert "bottom" in slots(a) and "shoes" in slots(a)


def test_hair_skin_and_suit(encoder):
    assert parse_appearance("a bald man", encoder).hair.length == 0.0
    a = parse_appearance("a dark-skinned man with short grey hair in a charcoal suit", encoder)
    assert a.skin_tone_name == "dark" and a.skin_tone is not None
    assert a.hair.colour_name == "grey" and a.hair.length == pytest.approx(0.35)
    assert slots(a) == {"outer": ("suit", "charcoal"), "bottom": ("trousers", "charcoal")}
    assert parse_appearance("anime girl with pink hair", encoder).hair.colour_name == "pink"


@pytest.mark.parametrize("prompt, style", [("a cartoon boy in a green hoodie", "toon"),
                                           ("anime girl in a school uniform", "anime"),
                                           ("a claymation girl in a yellow raincoat", "clay"),
                                           ("a metallic robot", "metal"),
                                           ("a man in a red shirt", None)])
def test_style_words_choose_presets(encoder, prompt, style):
    assert parse_appearance(prompt, encoder).style == style


def test_style_presets_are_complete():
    keys = set(style_preset("realistic"))
    assert {"style", "shading", "roughness", "metallic", "specular", "outline"} <= keys
    for name in PRESETS:
        preset = style_preset(name)
        assert set(preset) == keys and preset["style"] == name
        assert 0 <= preset["roughness"] <= 1 and 0 <= preset["metallic"] <= 1
    assert style_preset("toon")["shading"] == "toon" and style_preset("toon")["outline"] is True
    assert style_preset("metal")["metallic"] == 1.0 and style_preset("clay")["roughness"] > 0.9


def test_json_and_vocabulary_cache(encoder):
    a = parse_appearance("a woman in a navy polka dot dress", encoder)
    data = json.loads(json.dumps(a.to_json()))
    assert data["garments"][0]["kind"] == "dress" and data["garments"][0]["pattern"] == "dotted"
    assert data["scores"]["garment.dress"] > 0.6 and data["version"]
    assert vocabulary(encoder) is vocabulary(encoder)


# -- painting -----------------------------------------------------------------------

def texel_regions(mesh, size: int) -> dict[str, np.ndarray]:
    """Ground-truth regions from Anny's segmentation and rest-pose geometry
    (not from the painter's own bone groups)."""
    from avatarforge.backend.render.skin_texture import TexelParts, rasterize_uv, surface_positions

    raster = rasterize_uv(mesh.uvs, size)
    parts = TexelParts(mesh, raster)
    p = surface_positions(raster, mesh.vertices, mesh.faces)
    x, z = np.abs(p[..., 0]), p[..., 2]
    body = parts.mask("body")
    return {"chest": body & (x < 0.1) & (z > 1.15) & (z < 1.4),
            "upper_arm": body & (x > 0.22) & (x < 0.33) & (z > 1.3),
            "forearm": body & (x > 0.42) & (z > 1.1) & (z < 1.25),
            "thigh": body & (x > 0.05) & (z > 0.65) & (z < 0.85),
            "upper_thigh": body & (x > 0.05) & (z > 0.78) & (z < 0.9),
            "shin": body & (z > 0.15) & (z < 0.4),
            "hand": parts.mask("hand.L", "hand.R"), "foot": parts.mask("foot.L", "foot.R"),
            "crown": parts.mask("head") & (z > 1.8), "face": parts.mask("head") & (z > 1.6) & (z < 1.75) &
            (p[..., 1] < -0.1),
            "covered": raster.covered}


def painted(mesh, encoder, prompt: str, seed: int = 0) -> np.ndarray:
    from avatarforge.backend.render.clothing_texture import paint_avatar_texture

    png = paint_avatar_texture(mesh, parse_appearance(prompt, encoder), SIZE, seed)
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32) / 255


def fraction(img: np.ndarray, region: np.ndarray, test) -> float:
    px = img[region]
    assert len(px) > 20, "region has too few texels to judge"
    return float(np.mean(test(px[:, 0], px[:, 1], px[:, 2])))


def red(r, g, b):
    return (r > 0.35) & (r > 2 * g) & (r > 2 * b)


def blue(r, g, b):
    return (b > r + 0.08) & (b > g + 0.04)


def skin(r, g, b):
    return (r > g) & (g > b) & (r - b < 0.45) & (r > 0.4)


def test_red_shirt_on_torso_and_arms_blue_jeans_on_legs(mesh, encoder):
    img = painted(mesh, encoder, "a man in a red shirt and blue jeans")
    regions = texel_regions(mesh, SIZE)
    for where in ("chest", "upper_arm", "forearm"):
        assert fraction(img, regions[where], red) > 0.9, where
    for where in ("thigh", "shin"):
        assert fraction(img, regions[where], blue) > 0.9, where
    for where in ("hand", "face"):
        assert fraction(img, regions[where], skin) > 0.8, where


def test_lengths_land_on_the_right_regions(mesh, encoder):
    img = painted(mesh, encoder, "a woman in a red t-shirt, blue shorts and red sneakers")
    regions = texel_regions(mesh, SIZE)
    assert fraction(img, regions["chest"], red) > 0.9
    assert fraction(img, regions["forearm"], skin) > 0.9        # short sleeves
    assert fraction(img, regions["upper_thigh"], blue) > 0.8    # shorts cover the upper thigh...
    assert fraction(img, regions["shin"], skin) > 0.9           # ...not the shin
    assert fraction(img, regions["foot"], red) > 0.8            # shoes on the feet
    img = painted(mesh, encoder, "a woman in a long blue dress and a red hat")
    assert fraction(img, regions["shin"], blue) > 0.9           # a long dress covers the legs
    assert fraction(img, regions["chest"], blue) > 0.9
    assert fraction(img, regions["crown"], red) > 0.9           # hat on top of the head
    assert fraction(img, regions["face"], skin) > 0.8


def test_seams_show_no_background_and_garments_continue_across_them(mesh, encoder):
    from scipy import ndimage

    img = painted(mesh, encoder, "a man in a red shirt and blue jeans")
    covered = texel_regions(mesh, SIZE)["covered"]
    _, (rows, cols) = ndimage.distance_transform_edt(~covered, return_indices=True)
    np.testing.assert_array_equal(img[~covered], img[rows, cols][~covered])   # gutters dilated
    # The same vertex seen from two UV islands (a seam) has the same garment colour on both sides.
    uv = mesh.uvs.reshape(-1, 2)
    vert = mesh.faces.reshape(-1)
    centroid = np.repeat(mesh.uvs.mean(axis=1), 3, axis=0)
    inside = uv + (centroid - uv) * np.minimum(1.0, 2.5 / SIZE / np.maximum(
        np.linalg.norm(centroid - uv, axis=1, keepdims=True), 1e-9))
    col = np.clip((inside[:, 0] * SIZE).astype(int), 0, SIZE - 1)
    row = np.clip(((1 - inside[:, 1]) * SIZE).astype(int), 0, SIZE - 1)
    z = mesh.vertices[vert, 2]
    torso_legs = (z > 0.2) & (z < 1.4) & (np.abs(mesh.vertices[vert, 0]) < 0.2)
    diffs = []
    for v in np.unique(vert[torso_legs]):
        corners = np.nonzero((vert == v) & torso_legs)[0]
        keys = {tuple(np.round(uv[c], 4)) for c in corners}
        if len(keys) > 1:                                   # a seam vertex
            colours = img[row[corners], col[corners]]
            diffs.append(float(np.abs(colours.max(axis=0) - colours.min(axis=0)).max()))
    assert len(diffs) > 50
    assert np.median(diffs) < 0.12 and np.mean(np.array(diffs) > 0.3) < 0.05


def test_painting_is_deterministic_per_seed(mesh, encoder):
    from avatarforge.backend.render.clothing_texture import paint_avatar_texture

    a = parse_appearance("a woman in a green camouflage jacket and grey leggings", encoder)
    first, again, other = (paint_avatar_texture(mesh, a, SIZE, s) for s in (3, 3, 4))
    assert first == again and first != other


def test_skin_tone_and_hair_colour_from_words(mesh, encoder):
    regions = texel_regions(mesh, SIZE)
    dark = painted(mesh, encoder, "a dark-skinned man with short white hair")
    pale = painted(mesh, encoder, "a pale-skinned man with short black hair")
    assert dark[regions["hand"]].mean() < pale[regions["hand"]].mean() - 0.15
    assert dark[regions["crown"]].mean() > 0.7 and pale[regions["crown"]].mean() < 0.2


def test_garment_dataclass_defaults():
    g = Garment(slot="top", kind="shirt", colour=(1.0, 0.0, 0.0), colour_name="red")
    assert g.pattern == "solid" and g.pattern_colour is None
