"""The `body` job: Anny (embedded) and the SMPL family through smplx, on a
synthetic model file in the SMPL format (licensed files are never shipped)."""
from __future__ import annotations

import io

import numpy as np
import pytest
import smplx
import torch
from PIL import Image

from avatarforge.backend.config import BackendConfig
from avatarforge.backend.pipelines import JobContext
from avatarforge.backend.pipelines.body import BodyPipeline
from avatarforge.protocol import ErrorCode, ProtocolError, RiggedAvatar, decode, encode
from tests.support.synthetic_smpl import write_synthetic_model

PIPELINE = BodyPipeline()


def build(params: dict, config: BackendConfig | None = None) -> RiggedAvatar:
    config = config or BackendConfig(models_dir=None)
    stages: list[str] = []
    ctx = JobContext(config=config, on_progress=lambda f, s: stages.append(s))
    (avatar,) = PIPELINE.run(PIPELINE.normalise(params, config), ctx)
    assert len(set(stages)) >= 2, stages   # the job reports where it is
    return avatar


@pytest.fixture(scope="module")
def anny_default() -> RiggedAvatar:
    return build({"texture_size": 256})


def height(avatar: RiggedAvatar) -> float:
    return float(avatar.vertices[:, 2].max() - avatar.vertices[:, 2].min())


def check_rigged(avatar: RiggedAvatar) -> None:
    """What every RiggedAvatar must satisfy, whatever made it."""
    RiggedAvatar.from_wire(decode(encode({"v": 1, "a": avatar.to_wire()}))["a"])   # passes the wire checks
    np.testing.assert_allclose(avatar.skin_weights.sum(axis=1), 1.0, atol=1e-5)
    assert (avatar.skin_weights.max(axis=1) > 0).all()
    assert avatar.uvs.min() >= 0.0 and avatar.uvs.max() <= 1.0
    rot = avatar.skeleton.rest_matrices[:, :3, :3]
    np.testing.assert_allclose(rot @ rot.transpose(0, 2, 1), np.broadcast_to(np.eye(3), rot.shape), atol=1e-4)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-4)    # proper rotations: bones import verbatim
    png = Image.open(io.BytesIO(avatar.materials[0].png))
    assert png.size[0] == png.size[1] >= 256 and avatar.materials[0].role == "base_color"
    assert avatar.provenance and avatar.params


def test_anny_avatar_is_rigged_in_metres_standing_on_the_ground(anny_default):
    a = anny_default
    check_rigged(a)
    assert len(a.skeleton) == 104 and a.body_model == "anny"
    assert 1.4 <= height(a) <= 2.1
    assert abs(a.vertices[:, 2].min()) < 0.01            # feet on z = 0
    names = a.skeleton.joint_names
    heads = a.skeleton.rest_matrices[:, :3, 3]
    head = next(i for i, n in enumerate(names) if n.lower() == "head")
    root = int(np.flatnonzero(a.skeleton.parents == -1)[0])
    assert heads[head, 2] > 1.2 and heads[head, 2] > heads[root, 2] + 0.4   # head up (+Z)
    assert a.vertices.dtype == np.float32 and a.faces.shape[1] == 3


def test_phenotypes_move_the_body_the_right_way(anny_default):
    short, tall = build({"phenotypes": {"height": 0.0}, "texture_size": 256}), \
        build({"phenotypes": {"height": 1.0}, "texture_size": 256})
    assert height(short) < height(anny_default) < height(tall)
    heavy = build({"phenotypes": {"weight": 1.0}, "texture_size": 256})
    # More weight: a wider body at the same topology (mean distance from the vertical axis).
    radial = lambda a: np.linalg.norm(a.vertices[:, :2] - a.vertices[:, :2].mean(0), axis=1).mean()
    assert radial(heavy) > radial(anny_default)
    female = build({"phenotypes": {"gender": 1.0}, "texture_size": 256})
    assert female.params["phenotypes"]["gender"] == 1.0
    assert not np.allclose(female.vertices, anny_default.vertices)


@pytest.mark.parametrize("params, field", [
    ({"phenotypes": {"height": 1.5}}, "phenotypes.height"),
    ({"phenotypes": {"lankiness": 0.5}}, "phenotypes.lankiness"),
    ({"phenotypes": {"height": "tall"}}, "phenotypes.height"),
    ({"model": "mannequin"}, "model"),
    ({"texture_size": 10}, "texture_size"),
    ({"skin_weights_k": 0}, "skin_weights_k"),
    ({"betas": [1.0]}, "betas"),                         # Anny is shaped by phenotypes
    ({"colour": "red"}, "colour"),
])
def test_bad_params_name_the_field_and_the_allowed_values(params, field):
    with pytest.raises(ProtocolError) as err:
        PIPELINE.normalise(params, BackendConfig(models_dir=None))
    assert err.value.code == ErrorCode.BAD_REQUEST and err.value.field == field
    assert field.split(".")[0] in err.value.message


def test_equal_requests_normalise_equally():
    config = BackendConfig(models_dir=None)
    a = PIPELINE.normalise({"phenotypes": {"height": 0.7, "gender": 0.2}}, config)
    b = PIPELINE.normalise({"phenotypes": {"gender": 0.2, "height": 0.7}, "seed": 0, "texture_size": 1024}, config)
    assert a == b


def test_smpl_missing_says_where_to_put_the_file(tmp_path):
    with pytest.raises(ProtocolError) as err:
        PIPELINE.normalise({"model": "smpl"}, BackendConfig(models_dir=tmp_path))
    assert err.value.code == ErrorCode.MODEL_MISSING
    assert "SMPL_NEUTRAL" in err.value.message and str(tmp_path) in err.value.message
    tiers = PIPELINE.describe(BackendConfig(models_dir=tmp_path))["tiers"]
    assert tiers["anny"]["available"] and not tiers["smpl"]["available"] and "SMPL_NEUTRAL" in tiers["smpl"]["reason"]


def test_synthetic_smpl_file_loads_through_smplx(tmp_path):
    path = write_synthetic_model(tmp_path, "smpl", "neutral", forward_ready=True)
    model = smplx.create(str(tmp_path), model_type="smpl", gender="neutral", ext=path.suffix[1:])
    out = model(betas=torch.zeros(1, 10))
    assert out.vertices.shape[1] == model.v_template.shape[0] and out.joints.shape[1] >= 24


def test_smpl_body_from_the_users_model_folder(tmp_path):
    write_synthetic_model(tmp_path, "smpl", "neutral")
    config = BackendConfig(models_dir=tmp_path)
    assert PIPELINE.tier("smpl").available(config).available
    mean = build({"model": "smpl", "texture_size": 256}, config)
    check_rigged(mean)
    assert len(mean.skeleton) == 24 and mean.skeleton.joint_names[0] == "pelvis"
    assert abs(mean.vertices[:, 2].min()) < 0.01 and 1.0 < height(mean) < 2.2   # Y-up file, Z-up avatar
    shaped = build({"model": "smpl", "betas": [2.0], "texture_size": 256}, config)
    assert not np.allclose(shaped.vertices, mean.vertices)
    with pytest.raises(ProtocolError) as err:
        PIPELINE.normalise({"model": "smpl", "betas": [0.0] * 11}, config)
    assert err.value.field == "betas"


# -- Anny in detail --------------------------------------------------------------

def test_local_change_names_are_the_models_own(anny_model):
    from avatarforge.backend.models.anny_model import local_change_names

    # normalise validates against a list read without loading the model: it must be the model's list.
    assert sorted(local_change_names()) == sorted(anny_model.torch_model.local_change_labels)


def test_local_changes_move_their_region(anny_model):
    def belly_front(mesh) -> float:
        v = mesh.vertices
        top = v[:, 2].max()
        belly = (v[:, 2] > 0.5 * top) & (v[:, 2] < 0.62 * top) & (np.abs(v[:, 0]) < 0.15)
        return float(v[belly, 1].min())   # the body faces -Y

    neutral = anny_model.build({})
    pregnant = anny_model.build({"local_changes": {"stomach-pregnant-incr": 1.0}})
    assert belly_front(pregnant) < belly_front(neutral) - 0.03
    np.testing.assert_allclose(pregnant.vertices[:, 2].max(), neutral.vertices[:, 2].max(), atol=0.02)


def test_anny_rest_frames_are_bone_frames(anny_model):
    """Rest matrices are Anny's bone frames: rigid, translated with the mesh onto the
    floor, and (as Blender bones) with Y pointing from a bone's head to its child."""
    mesh = anny_model.build({})
    heads = mesh.rest_matrices[:, :3, 3]
    along = []
    for j in range(len(mesh.parents)):
        children = np.flatnonzero(mesh.parents == j)
        if len(children) == 1:
            d = heads[children[0]] - heads[j]
            if np.linalg.norm(d) > 1e-3:
                along.append(mesh.rest_matrices[j, :3, 1] @ d / np.linalg.norm(d))
    assert np.mean(np.array(along) > 0.9) > 0.9, along
    foot = mesh.joint_names.index("foot.L")
    assert 0.0 < heads[foot, 2] < 0.15 and heads[foot, 0] > 0   # ankle just above the floor, left at +X
    assert mesh.params["ground_offset"][2] > 0.5               # Anny's origin is at the pelvis


def test_texture_is_deterministic_per_seed(anny_model):
    from avatarforge.backend.render.skin_texture import paint_anny_skin

    mesh = anny_model.build({})
    a, b, c = (paint_anny_skin(mesh, 256, seed) for seed in (7, 7, 8))
    assert a == b and a != c
    img = np.asarray(Image.open(io.BytesIO(a)).convert("RGB"), dtype=np.float32)
    mean = img.reshape(-1, 3).mean(axis=0)
    assert mean[0] > mean[1] > mean[2]   # skin-coloured overall


def test_texture_gutters_take_the_nearest_island_colour(anny_model):
    from scipy import ndimage

    from avatarforge.backend.render.skin_texture import paint_anny_skin, rasterize_uv

    mesh = anny_model.build({})
    img = np.asarray(Image.open(io.BytesIO(paint_anny_skin(mesh, 256, 0))).convert("RGB"))
    covered = rasterize_uv(mesh.uvs, 256).covered
    assert 0.2 < covered.mean() < 0.95                   # real islands, real gutters
    _, (rows, cols) = ndimage.distance_transform_edt(~covered, return_indices=True)
    np.testing.assert_array_equal(img[~covered], img[rows, cols][~covered])


def test_darker_phenotype_paints_darker_skin(anny_model):
    from avatarforge.backend.render.skin_texture import paint_anny_skin

    def brightness(phenotypes) -> float:
        mesh = anny_model.build({"phenotypes": phenotypes})
        return float(np.asarray(Image.open(io.BytesIO(paint_anny_skin(mesh, 256, 0)))).mean())

    assert brightness({"african": 1.0, "asian": 0.0, "caucasian": 0.0}) < \
        brightness({"african": 0.0, "asian": 0.0, "caucasian": 1.0}) - 30


def test_cancel_stops_the_job():
    from avatarforge.backend.pipelines import JobCancelled

    config = BackendConfig(models_dir=None)
    ctx = JobContext(config=config)
    ctx.cancel_event.set()
    with pytest.raises(JobCancelled):
        PIPELINE.run(PIPELINE.normalise({"texture_size": 256}, config), ctx)


# -- the SMPL family ---------------------------------------------------------------

def test_smpl_rest_frames_are_the_axis_conversion(tmp_path):
    from avatarforge.backend.core.axes import Y_UP_TO_Z_UP

    write_synthetic_model(tmp_path, "smpl", "neutral")
    avatar = build({"model": "smpl", "texture_size": 256}, BackendConfig(models_dir=tmp_path))
    rot = avatar.skeleton.rest_matrices[:, :3, :3]
    np.testing.assert_allclose(rot, np.broadcast_to(Y_UP_TO_Z_UP, rot.shape), atol=1e-6)
    names = avatar.skeleton.joint_names
    heads = avatar.skeleton.rest_matrices[:, :3, 3]
    assert heads[names.index("head"), 2] > heads[names.index("pelvis"), 2] + 0.4   # Y-up file, head up in Z
    assert heads[names.index("left_wrist"), 0] > 0.3                             # SMPL's left stays at +X
    assert "cylindrical" in avatar.provenance["uv_source"]


@pytest.mark.parametrize("model_type, joints, options", [
    ("smplh", 52, {}),
    ("smplx", 55, {}),
    ("smpl", 24, {"chumpy": True}),                      # like the original SMPL downloads
    ("smplh", 52, {"ext": "npz", "with_uvs": True}),
])
def test_smpl_family_files(tmp_path, model_type, joints, options):
    write_synthetic_model(tmp_path, model_type, "female", **options)
    config = BackendConfig(models_dir=tmp_path)
    assert PIPELINE.tier(model_type).available(config).available
    avatar = build({"model": model_type, "gender": "female", "betas": [1.0, -0.5], "skin_weights_k": 2,
                    "texture_size": 256}, config)
    check_rigged(avatar)
    assert len(avatar.skeleton) == joints and avatar.skin_weights.shape[1] == 2
    assert avatar.provenance["request"]["model"] == model_type
    if options.get("with_uvs"):
        assert avatar.provenance["uv_source"] == "model file (vt/ft)"
    with pytest.raises(ProtocolError) as err:   # only the female file is there
        PIPELINE.normalise({"model": model_type, "gender": "male"}, config)
    assert err.value.code == ErrorCode.MODEL_MISSING and f"{model_type.upper()}_MALE" in err.value.message


def test_betas_shape_the_body_the_way_the_file_says(tmp_path):
    write_synthetic_model(tmp_path, "smpl", "neutral")   # beta 0: taller
    config = BackendConfig(models_dir=tmp_path)
    tall, short = (build({"model": "smpl", "betas": [b], "texture_size": 256}, config) for b in (3.0, -3.0))
    assert height(tall) > height(short) + 0.1
    with pytest.raises(ProtocolError) as err:
        PIPELINE.normalise({"model": "smpl", "betas": [6.0]}, config)
    assert err.value.field == "betas[0]" and "[-5, 5]" in err.value.message


def test_out_of_range_phenotype_shows_enough_digits_to_see_why():
    with pytest.raises(ProtocolError) as err:
        PIPELINE.normalise({"phenotypes": {"height": 1.0000001}}, BackendConfig(models_dir=None))
    assert err.value.field == "phenotypes.height" and "1.0000001" in err.value.message, err.value.message
