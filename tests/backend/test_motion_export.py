"""Exports of any Motion (issue 10): BVH on the SMPL-24 reference skeleton or on a
target rig, AMASS-style .npz, and glTF with the animation. Each is read back by
an independent reader (our importers, the BVH parser's FK, pygltflib plus a node
evaluator written here) and compared with the motion's joints."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pygltflib
import pytest

from avatarforge.backend.config import BackendConfig
from avatarforge.backend.core import rotations as R
from avatarforge.backend.core.axes import y_up_to_z_up
from avatarforge.backend.formats.gltf import write_animation_glb, write_glb
from avatarforge.backend.motion.amass import amass_to_smpl
from avatarforge.backend.motion.build import make_motion
from avatarforge.backend.motion.bvh import bvh_forward_kinematics, bvh_to_smpl, parse_bvh
from avatarforge.backend.motion.export import SUFFIXES, amass_npz_bytes, bvh_text, continuous_euler, export_rig, \
    write_motion
from avatarforge.backend.motion.retarget import tracks_heads
from avatarforge.backend.motion.skeleton import J, JOINT_NAMES, forward_kinematics, reference_skeleton
from avatarforge.backend.motion.to_smpl import grounded
from avatarforge.backend.pipelines import JobContext, load_pipelines
from avatarforge.protocol import ErrorCode, Motion, ProtocolError, RiggedAvatar
from tests.backend.test_retarget import blender_like_rig
from tests.support.synthetic_motion import cmu_bvh_from_smpl, smpl_test_motion

CM = 0.01
TOL_M = 1e-3             # the brief allows 1 cm; the writers are exact, so hold them to 1 mm


def joints_of(rotations, trans) -> np.ndarray:
    return forward_kinematics(np.asarray(rotations, np.float64), np.asarray(trans, np.float64))


def grounded_joints(motion: Motion) -> np.ndarray:
    """The motion's joints as our importers return them: standing on z = 0 (they ground every clip)."""
    return joints_of(motion.rotations, grounded(motion.rotations, motion.trans))


def run(job: str, **params) -> Motion:
    config = BackendConfig(motion_library=None)
    pipeline = load_pipelines()[job]
    (motion,) = pipeline.run(pipeline.normalise(params, config), JobContext(config=config))
    return motion


@pytest.fixture(scope="module")
def text_motion() -> Motion:
    """text -> motion output: a walk then a jump (root travel, a flight phase)."""
    return run("text_motion", prompt="walks forward, then jumps", seconds=3.0, fps=30.0)


@pytest.fixture(scope="module")
def imported_motion() -> Motion:
    """A motion imported from a CMU-style BVH file (A-pose rest) through the motion_import job."""
    rot, trans = smpl_test_motion(45, 30.0, seed=5)
    text = cmu_bvh_from_smpl(rot, trans, 30.0, a_pose_degrees=30.0)
    return run("motion_import", data=text.encode(), filename="take.bvh")


@pytest.fixture(scope="module")
def synthetic_motion() -> Motion:
    """A varied synthetic motion, not grounded (the exports must not move it), with a
    shoulder spinning through 180° (Euler wrap) and an elbow at 90° of X (ZXY's gimbal)."""
    rot, trans = smpl_test_motion(40, 30.0, seed=3)
    angle = np.linspace(2.5, 3.8, 40)
    rot[:, J["left_shoulder"]] = np.array([0.0, 0.6, 0.8]) * angle[:, None]
    rot[:, J["right_elbow"]] = np.array([np.pi / 2, 0.0, 0.0]) + 0.02 * np.sin(np.arange(40))[:, None]
    trans[:, 2] += 0.3
    return make_motion("synthetic", 30.0, rot, trans, {}, {})


# -- BVH on the reference skeleton ------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["text_motion", "imported_motion"])
def test_bvh_round_trips_through_our_importer(request, which):
    motion = request.getfixturevalue(which)
    text = bvh_text(motion)
    back = bvh_to_smpl(text)
    assert back.info["skeleton"] == "smpl" and back.info["unit"] == "cm" and back.info["up_axis"] == "Y"
    assert back.fps == pytest.approx(motion.fps, rel=1e-6)
    err = np.abs(joints_of(back.rotations, back.trans) - grounded_joints(motion)).max()
    assert err < TOL_M, f"{which}: {err * 1000:.3f} mm"
    # The exported motion is already on the ground (both pipelines ground): the importer moved nothing.
    assert np.abs(grounded_joints(motion) - motion.joints).max() < TOL_M


def test_bvh_file_follows_the_conventions(synthetic_motion):
    """Y up, centimetres, SMPL's names in a depth-first hierarchy, the root with 6
    channels, every joint ZXY, frame time 1/fps; its own FK equals the motion's
    joints exactly (not grounded: the file keeps the motion where it is)."""
    motion = synthetic_motion
    text = bvh_text(motion)
    clip = parse_bvh(text)
    assert sorted(clip.names) == sorted(JOINT_NAMES)
    assert clip.joints[0].name == "pelvis"
    assert clip.joints[0].channels == ["Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation"]
    assert all(j.channels == ["Zrotation", "Xrotation", "Yrotation"] for j in clip.joints[1:])
    assert clip.frame_time == pytest.approx(1 / 30.0, rel=1e-8)
    head = clip.names.index("head")
    assert 140 < (clip.joints[0].offset[1] + sum(clip.joints[k].offset[1] for k in _chain(clip, head))) < 170
    _, pos = bvh_forward_kinematics(clip)
    order = [J[n] for n in clip.names]
    got = y_up_to_z_up(pos) * CM
    assert np.abs(got - motion.joints[:, order]).max() < 1e-5
    # Leaves end in an End Site; a player interpolating frames never spins the long way.
    assert all(clip.joints[k].end_offsets for k in range(len(clip.joints))
               if not any(j.parent == k for j in clip.joints))
    euler = clip.frames[:, 6:].reshape(len(clip.frames), -1, 3)
    assert np.abs(np.diff(euler, axis=0)).max() < 60.0


def _chain(clip, k: int) -> list[int]:
    out = []
    while clip.joints[k].parent >= 0:
        out.append(k)
        k = clip.joints[k].parent
    return out


def test_bvh_in_metres(synthetic_motion):
    text = bvh_text(synthetic_motion, unit="m")
    clip = parse_bvh(text)
    _, pos = bvh_forward_kinematics(clip)
    order = [J[n] for n in clip.names]
    assert np.abs(y_up_to_z_up(pos) - synthetic_motion.joints[:, order]).max() < 1e-5
    assert bvh_to_smpl(text).info["unit"] == "m"


def test_continuous_euler_keeps_the_rotation_and_removes_jumps():
    rng = np.random.default_rng(0)
    # A rotation turning steadily about a tilted axis through several full turns.
    axis = np.array([0.3, 0.9, 0.3]) / np.linalg.norm([0.3, 0.9, 0.3])
    mats = R.axis_angle_to_matrix(axis[None] * np.linspace(0, 4 * np.pi, 200)[:, None])
    mats = mats @ R.axis_angle_to_matrix(rng.normal(size=3) * 0.3)
    raw = R.matrix_to_euler("ZXY", mats)
    smooth = continuous_euler(raw)
    assert np.abs(np.diff(raw, axis=0)).max() > 180            # the raw angles wrap
    assert np.abs(np.diff(smooth, axis=0)).max() < 20
    assert R.angle_between_matrices(R.euler_to_matrix("ZXY", smooth), mats).max() < 1e-9


# -- BVH on a target rig --------------------------------------------------------------------------------
def _user_rig(extra_root: bool):
    """blender_like_rig (Mixamo names, A-pose, random bone rolls, an unmapped twist
    bone), optionally under a "root" bone at the origin with an IK control as a second root."""
    names, parents, mats, index = blender_like_rig(arm_drop_degrees=35.0, seed=7)
    if extra_root:
        names = ["root"] + names + ["ik_control"]
        parents = [-1] + [p + 1 if p >= 0 else 0 for p in parents] + [-1]
        mats = np.concatenate([np.eye(4)[None], mats, np.eye(4)[None]])
        index = {k: v + 1 for k, v in index.items()}
    return {"preset": "auto", "bone_names": names, "parents": parents, "rest_matrices": mats}, index


@pytest.mark.parametrize("extra_root", [False, True])
def test_target_rig_bvh_reproduces_the_rig_pose(synthetic_motion, extra_root):
    """The rig's bone names and rest; its parsed FK equals the rig FK of the
    retargeted tracks (Blender's pose evaluation); a root-motion bone below
    the root gets position channels; a second root (a control) is left out."""
    target, _ = _user_rig(extra_root)
    rig = export_rig(synthetic_motion, target)
    clip = parse_bvh(bvh_text(synthetic_motion, target))
    names = target["bone_names"]
    assert clip.names[0] == ("root" if extra_root else "mixamorig:Hips")
    assert "ik_control" not in clip.names and "mixamorig:LeftArmTwist" in clip.names
    hips = clip.joints[clip.names.index("mixamorig:Hips")]
    assert hips.channels[:3] == ["Xposition", "Yposition", "Zposition"]
    _, pos = bvh_forward_kinematics(clip)
    heads = tracks_heads(rig.tracks, names, target["parents"], target["rest_matrices"])
    order = [names.index(n) for n in clip.names]
    err = np.abs(y_up_to_z_up(pos) * CM - heads[:, order]).max()
    assert err < 1e-5, f"{err * 1000:.4f} mm"


def test_target_rig_bvh_imports_back_as_the_motion(synthetic_motion):
    """Our importer knows Mixamo names: the rig's BVH comes back as the same SMPL motion
    (through two rest-pose-aware retargetings, A-pose and bone rolls included)."""
    target, _ = _user_rig(False)
    back = bvh_to_smpl(bvh_text(synthetic_motion, target))
    assert back.info["skeleton"] == "mixamo"
    got = joints_of(back.rotations, back.trans)
    want = grounded_joints(synthetic_motion)
    body = [J[n] for n in JOINT_NAMES if n not in ("left_hand", "right_hand")]    # Mixamo's Hand is the wrist
    assert np.abs(got[:, body] - want[:, body]).max() < CM


def test_anny_rig_bvh(text_motion, anny_model):
    """Onto Anny's 104-bone rig by preset name: every bone, FK equal to the tracks'."""
    from avatarforge.backend.motion.target_rigs import default_rig

    names, parents, rest = default_rig("anny")
    rig = export_rig(text_motion, "anny")
    clip = parse_bvh(bvh_text(text_motion, "anny"))
    assert sorted(clip.names) == sorted(names)
    _, pos = bvh_forward_kinematics(clip)
    heads = tracks_heads(rig.tracks, names, parents, rest)
    order = [names.index(n) for n in clip.names]
    assert np.abs(y_up_to_z_up(pos) * CM - heads[:, order]).max() < 1e-4


# -- AMASS npz --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout, width", [("smplh", 156), ("smpl", 72)])
@pytest.mark.parametrize("which", ["text_motion", "imported_motion", "synthetic_motion"])
def test_npz_round_trips_through_our_importer(request, which, layout, width):
    motion = request.getfixturevalue(which)
    data = amass_npz_bytes(motion, layout)
    with np.load(io.BytesIO(data)) as npz:
        assert npz["poses"].shape == (motion.frames, width) and npz["trans"].shape == (motion.frames, 3)
        assert float(npz["mocap_framerate"]) == motion.fps and str(npz["gender"]) == "neutral"
        assert npz["betas"].shape == ((16,) if layout == "smplh" else (10,))
    back = amass_to_smpl(data)
    assert back.info["layout"] == layout and back.fps == motion.fps
    err = np.abs(joints_of(back.rotations, back.trans) - grounded_joints(motion)).max()
    assert err < TOL_M, f"{which}/{layout}: {err * 1000:.3f} mm"
    # SMPL's hand joints travel in each SMPL-H hand's middle finger and come back.
    assert np.allclose(back.rotations[:, 22:], motion.rotations[:, 22:], atol=1e-5)


# -- glTF ---------------------------------------------------------------------------------------------------
def _accessor(doc: pygltflib.GLTF2, index: int) -> np.ndarray:
    acc = doc.accessors[index]
    view = doc.bufferViews[acc.bufferView]
    width = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}[acc.type]
    dtype = {pygltflib.FLOAT: np.float32, pygltflib.UNSIGNED_SHORT: np.uint16}[acc.componentType]
    start = view.byteOffset + (acc.byteOffset or 0)
    size = acc.count * width * np.dtype(dtype).itemsize
    return np.frombuffer(doc.binary_blob()[start:start + size], dtype).reshape(acc.count, width)


def evaluate_gltf(doc: pygltflib.GLTF2) -> tuple[np.ndarray, list[str]]:
    """World matrices (T, N, 4, 4) of every node at each key time of animation 0,
    composed from the node hierarchy as a glTF viewer does (Y up), and the node names."""
    anim = doc.animations[0]
    times = _accessor(doc, anim.samplers[0].input)[:, 0]
    n, t = len(doc.nodes), len(times)
    trans = np.array([nd.translation or [0, 0, 0] for nd in doc.nodes], np.float64)[None].repeat(t, 0)
    quats = np.array([nd.rotation or [0, 0, 0, 1] for nd in doc.nodes], np.float64)[None].repeat(t, 0)
    for ch in anim.channels:
        sampler = anim.samplers[ch.sampler]
        assert sampler.interpolation == "LINEAR"
        assert np.array_equal(_accessor(doc, sampler.input)[:, 0], times)
        values = _accessor(doc, sampler.output)
        (quats if ch.target.path == "rotation" else trans)[:, ch.target.node] = values
    parent = {c: i for i, nd in enumerate(doc.nodes) for c in (nd.children or [])}
    world = np.zeros((t, n, 4, 4))
    for j in _parents_first(parent, n):
        local = np.zeros((t, 4, 4))
        local[:, :3, :3] = R.quat_to_matrix(R.xyzw_to_wxyz(quats[:, j]))
        local[:, :3, 3] = trans[:, j]
        local[:, 3, 3] = 1.0
        world[:, j] = local if j not in parent else world[:, parent[j]] @ local
    return world, [nd.name for nd in doc.nodes]


def _parents_first(parent: dict[int, int], n: int) -> list[int]:
    depth = {}
    for j in range(n):
        d, k = 0, j
        while k in parent:
            k, d = parent[k], d + 1
        depth[j] = d
    return sorted(range(n), key=depth.get)


@pytest.mark.parametrize("which", ["text_motion", "imported_motion", "synthetic_motion"])
def test_glb_animates_the_reference_skeleton(request, which, tmp_path):
    motion = request.getfixturevalue(which)
    path = write_motion(motion, tmp_path / "take.glb", glb_writer=write_animation_glb)
    doc = pygltflib.GLTF2().load(str(path))
    (skin,) = doc.skins
    world, names = evaluate_gltf(doc)
    assert len(world) == motion.frames
    assert [names[j] for j in skin.joints] == list(JOINT_NAMES)
    heads = y_up_to_z_up(world[:, skin.joints][..., :3, 3])
    err = np.abs(heads - motion.joints).max()
    assert err < TOL_M, f"{which}: {err * 1000:.3f} mm"
    times = _accessor(doc, doc.animations[0].samplers[0].input)[:, 0]
    assert np.allclose(times, np.arange(motion.frames) / motion.fps, atol=1e-5)
    # Inverse bind matrices undo the rest pose: at rest every skinning matrix is the identity.
    ibm = _accessor(doc, skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)
    rest_world = _rest_world(doc, skin.joints)
    assert np.allclose(rest_world @ ibm, np.eye(4), atol=1e-5)
    # One root-motion translation channel, on the pelvis.
    paths = [(names[c.target.node], c.target.path) for c in doc.animations[0].channels]
    assert [p for p in paths if p[1] == "translation"] == [("pelvis", "translation")]


def _rest_world(doc: pygltflib.GLTF2, joints: list[int]) -> np.ndarray:
    parent = {c: i for i, nd in enumerate(doc.nodes) for c in (nd.children or [])}
    world = {}
    for j in _parents_first(parent, len(doc.nodes)):
        nd = doc.nodes[j]
        local = np.eye(4)
        local[:3, :3] = R.quat_to_matrix(R.xyzw_to_wxyz(np.array(nd.rotation or [0, 0, 0, 1], np.float64)))
        local[:3, 3] = nd.translation or [0, 0, 0]
        world[j] = local if j not in parent else world[parent[j]] @ local
    return np.array([world[j] for j in joints])


def test_gltf_json_and_target_rig(synthetic_motion, tmp_path):
    """.gltf (one JSON file, buffer embedded) on a user's rig: joints follow the rig's tracks."""
    target, _ = _user_rig(True)
    path = write_motion(synthetic_motion, tmp_path / "take.gltf", target, glb_writer=write_animation_glb)
    assert path.read_text().lstrip().startswith("{")
    doc = pygltflib.GLTF2().load(str(path))
    assert doc.buffers[0].uri.startswith("data:")
    doc.convert_buffers(pygltflib.BufferFormat.BINARYBLOB)
    world, names = evaluate_gltf(doc)
    rig = export_rig(synthetic_motion, target)
    heads = tracks_heads(rig.tracks, target["bone_names"], target["parents"], target["rest_matrices"])
    order = [names.index(n) for n in target["bone_names"]]
    assert np.abs(y_up_to_z_up(world[:, order][..., :3, 3]) - heads).max() < 1e-5


def _reference_avatar() -> RiggedAvatar:
    """A tiny mesh on the reference skeleton: a triangle around each joint, skinned rigidly to it."""
    skel = reference_skeleton()
    heads = skel.rest_matrices[:, :3, 3]
    corners = np.array([[0.01, 0, 0], [0, 0.01, 0], [0, 0, 0.01]], np.float32)
    vertices = (heads[:, None] + corners[None]).reshape(-1, 3)
    faces = np.arange(len(vertices), dtype=np.int32).reshape(-1, 3)
    uvs = np.full((len(faces), 3, 2), 0.5, np.float32)
    index = np.repeat(np.arange(24, dtype=np.int32), 3)[:, None]
    return RiggedAvatar("dummy", vertices, faces, uvs, skel, index, np.ones((len(vertices), 1), np.float32), [],
                        "smpl", {}, {})


def test_glb_with_the_avatar_mesh_skins_it(synthetic_motion, tmp_path):
    avatar = _reference_avatar()
    path = write_motion(synthetic_motion, tmp_path / "dressed.glb", glb_writer=write_animation_glb, avatar=avatar)
    doc = pygltflib.GLTF2().load(str(path))
    mesh_node = next(i for i, nd in enumerate(doc.nodes) if nd.mesh is not None)
    assert doc.nodes[mesh_node].skin == 0
    world, _ = evaluate_gltf(doc)
    skin = doc.skins[0]
    ibm = _accessor(doc, skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)
    prim = doc.meshes[0].primitives[0]
    pos = _accessor(doc, prim.attributes.POSITION).astype(np.float64)
    joint = _accessor(doc, prim.attributes.JOINTS_0)[:, 0].astype(int)
    skinning = world[:, skin.joints] @ ibm                                  # (T, J, 4, 4)
    posed = np.einsum("tvab,vb->tva", skinning[:, joint], np.c_[pos, np.ones(len(pos))])[..., :3]
    # Each triangle's first corner sits 1 cm along +X of its joint, and X stays the joint's rest x axis.
    source = _accessor(doc, prim.attributes._AVATARFORGE_VERTEX)[:, 0].astype(int)
    first = source % 3 == 0
    _, frames = forward_kinematics(synthetic_motion.rotations.astype(np.float64),
                                   synthetic_motion.trans.astype(np.float64), return_frames=True)
    owner = source[first] // 3
    rest_x = reference_skeleton().rest_matrices[0, :3, :3].T @ np.array([0.01, 0, 0])     # in the joint frame
    want = synthetic_motion.joints[:, owner] + np.einsum("tvab,b->tva", frames[:, owner], rest_x)
    assert np.abs(y_up_to_z_up(posed[:, first]) - want).max() < 1e-5


def test_avatar_glb_still_written(tmp_path):
    from tests.support.pipelines import tetra_avatar

    doc = pygltflib.GLTF2().load(str(write_glb(tetra_avatar(), tmp_path / "a.glb")))
    assert len(doc.skins) == 1 and not doc.animations and doc.nodes[-1].mesh == 0


# -- the dispatcher and bad input -------------------------------------------------------------------------
def test_write_motion_dispatches_on_the_suffix(synthetic_motion, tmp_path):
    for suffix in SUFFIXES:
        path = write_motion(synthetic_motion, tmp_path / "sub" / f"take{suffix.upper()}",
                            glb_writer=write_animation_glb)
        assert path.exists() and path.stat().st_size > 1000
    assert parse_bvh((tmp_path / "sub" / "take.BVH").read_text()).names[0] == "pelvis"
    assert zipfile.is_zipfile(tmp_path / "sub" / "take.NPZ")


def _refused(code: ErrorCode, field: str, fn, *args, **kwargs) -> str:
    with pytest.raises(ProtocolError) as err:
        fn(*args, **kwargs)
    assert err.value.code == code and err.value.field == field, (err.value.code, err.value.field, str(err.value))
    return str(err.value)


def test_bad_input_gets_actionable_errors(synthetic_motion, tmp_path):
    m = synthetic_motion
    msg = _refused(ErrorCode.BAD_REQUEST, "path", write_motion, m, tmp_path / "take.fbx")
    assert all(s in msg for s in SUFFIXES) and "take.fbx" in msg
    _refused(ErrorCode.BAD_REQUEST, "path", write_motion, m, tmp_path / "take")
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    for suffix in (".bvh", ".npz", ".glb"):
        msg = _refused(ErrorCode.BAD_REQUEST, "path", write_motion, m, blocker / f"take{suffix}",
                       glb_writer=write_animation_glb)
        assert "cannot write" in msg
    empty = Motion("empty", 30.0, np.zeros((0, 24, 3), np.float32), np.zeros((0, 3), np.float32))
    for suffix in (".bvh", ".npz", ".glb"):
        assert "empty" in _refused(ErrorCode.BAD_REQUEST, "motion.rotations", write_motion, empty,
                                   tmp_path / f"e{suffix}", glb_writer=write_animation_glb)
    nan = Motion("nan", 30.0, np.full((2, 24, 3), np.nan, np.float32), np.zeros((2, 3), np.float32))
    _refused(ErrorCode.BAD_REQUEST, "motion", bvh_text, nan)
    _refused(ErrorCode.BAD_REQUEST, "target_rig", write_motion, m, tmp_path / "x.npz", "anny")
    _refused(ErrorCode.BAD_REQUEST, "unit", bvh_text, m, unit="inch")
    _refused(ErrorCode.BAD_REQUEST, "layout", amass_npz_bytes, m, "smplx")
    _refused(ErrorCode.UNSUPPORTED, "path", write_motion, m, tmp_path / "x.glb")
    _refused(ErrorCode.BAD_REQUEST, "target_rig.preset", bvh_text, m, {"preset": "nope"})
    # An avatar whose skeleton is not the rig the motion is written on.
    target, _ = _user_rig(False)
    assert "retarget" in _refused(ErrorCode.BAD_REQUEST, "avatar", write_motion, m, tmp_path / "x.glb", target,
                                  glb_writer=write_animation_glb, avatar=_reference_avatar())
    assert not list(tmp_path.glob("x.*")) and not list(tmp_path.glob("e.*"))
