"""Motion files: BVH (parser, CMU hierarchy, rest poses, units, errors with line
numbers) and AMASS-style npz (SMPL / SMPL-H / SMPL-X layouts), onto SMPL-24,
plus the motion_import pipeline and its CLI."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

from avatarforge.backend.config import BackendConfig
from avatarforge.backend.core import rotations as R
from avatarforge.backend.motion.amass import amass_to_smpl
from avatarforge.backend.core.limits import MOTION_NPZ_MAX_BYTES
from avatarforge.backend.motion.bvh import MAX_DEPTH, bvh_forward_kinematics, bvh_to_smpl, parse_bvh
from avatarforge.backend.motion.skeleton import J, REST_ROTATION, forward_kinematics
from avatarforge.backend.pipelines import JobContext, load_pipelines
from avatarforge.protocol import ErrorCode, Motion, ProtocolError
from tests.support.server import REPO
from tests.support.synthetic_motion import amass_npz, cmu_bvh_from_smpl, smpl_test_motion, write_bvh


def same_up_to_height(a: np.ndarray, b: np.ndarray) -> float:
    """Largest joint distance after removing one constant vertical shift (imports are grounded)."""
    d = a - b
    d[..., 2] -= np.median(d[..., 2])
    return float(np.abs(d).max())


@pytest.fixture(scope="module")
def clip():
    return smpl_test_motion(48, 30.0, seed=2)


# -- BVH ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("a_pose, order, up", [(0.0, "ZXY", "Y"), (45.0, "ZXY", "Y"), (30.0, "XYZ", "Y"),
                                               (30.0, "YZX", "Z")])
def test_cmu_bvh_imports_with_correct_joint_positions(clip, a_pose, order, up):
    rot, trans = clip
    text = cmu_bvh_from_smpl(rot, trans, 30.0, a_pose_degrees=a_pose, order=order, up=up)
    imp = bvh_to_smpl(text)
    assert imp.info["skeleton"] == "cmu" and imp.info["unit"] == "cmu" and imp.info["up_axis"] == up
    assert imp.fps == pytest.approx(30.0, rel=1e-5)
    assert "LHipJoint" in imp.info["unmapped"]
    got = forward_kinematics(imp.rotations.astype(np.float64), imp.trans.astype(np.float64))
    assert same_up_to_height(got, forward_kinematics(rot, trans)) < 1e-4
    # Rest-pose aware: even with an A-pose rest the rotations are SMPL's own (twist included).
    angle = R.angle_between_matrices(R.axis_angle_to_matrix(imp.rotations.astype(np.float64)),
                                     R.axis_angle_to_matrix(rot))
    assert angle.max() < 1e-3


def test_bvh_rest_pose_facing_elsewhere_keeps_the_motion(clip):
    """A skeleton whose rest pose faces +X (not -Y) imports as the same motion, turned."""
    rot, trans = clip
    imp = bvh_to_smpl(cmu_bvh_from_smpl(rot, trans, 30.0, up="Z", yaw_degrees=90.0, a_pose_degrees=20.0))
    turn = R.axis_angle_to_matrix(np.array([0.0, 0.0, np.pi / 2]))
    got = forward_kinematics(imp.rotations.astype(np.float64), imp.trans.astype(np.float64))
    assert same_up_to_height(got, forward_kinematics(rot, trans) @ turn.T) < 1e-4


def test_bvh_joint_positions_match_the_files_own_fk(clip):
    """Independent of SMPL: the imported joints equal the BVH's own FK, in metres, Z up."""
    rot, trans = clip
    unit = 0.01
    text = cmu_bvh_from_smpl(rot, trans, 30.0, unit_m=unit, a_pose_degrees=20.0)
    parsed = parse_bvh(text)
    _, pos = bvh_forward_kinematics(parsed)                                   # Y up, centimetres
    names = parsed.names
    bvh_m = pos * unit @ np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]]).T     # Y up -> Z up (x, -z, y)
    imp = bvh_to_smpl(text)
    assert imp.info["unit"] == "cm" and imp.info["source_height_m"] == pytest.approx(1.5, abs=0.2)
    got = forward_kinematics(imp.rotations.astype(np.float64), imp.trans.astype(np.float64))
    for bvh_name, smpl in [("LeftHand", "left_wrist"), ("RightFoot", "right_ankle"), ("Head", "head"),
                           ("LeftForeArm", "left_elbow"), ("Hips", "pelvis")]:
        d = got[:, J[smpl]] - bvh_m[:, names.index(bvh_name)]
        d[:, 2] -= np.median(got[:, 0, 2] - bvh_m[:, 0, 2])
        assert np.abs(d).max() < 1e-4, bvh_name


def test_bvh_mixamo_names_and_explicit_scale(clip):
    rot, trans = clip
    rename = {"Hips": "mixamorig:Hips", "LowerBack": "mixamorig:Spine", "Spine": "mixamorig:Spine1",
              "Spine1": "mixamorig:Spine2", "Neck": "mixamorig:Neck", "Neck1": "mixamorig:Neck1",
              "Head": "mixamorig:Head"}
    for side in ("Left", "Right"):
        for part in ("UpLeg", "Leg", "Foot", "ToeBase", "Shoulder", "Arm", "ForeArm", "Hand"):
            rename[f"{side}{part}"] = f"mixamorig:{side}{part}"
    text = cmu_bvh_from_smpl(rot, trans, 30.0, unit_m=0.01, names=rename)
    imp = bvh_to_smpl(text, scale=0.01)
    assert imp.info["skeleton"] == "mixamo" and imp.info["unit"] == "given"
    got = forward_kinematics(imp.rotations.astype(np.float64), imp.trans.astype(np.float64))
    assert same_up_to_height(got, forward_kinematics(rot, trans)) < 1e-4
    with pytest.raises(ProtocolError) as err:
        bvh_to_smpl(text, scale=1.0)        # 150 m tall: a wrong scale is caught
    assert err.value.field == "scale"


def test_bvh_channel_orders_and_counts():
    """Position channels in the middle, a 0-channel joint and a Z-up file parse and evaluate."""
    names = ["Hips", "Chest", "Neck"]
    text = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Zrotation Xposition Yposition Zposition Xrotation Yrotation
  JOINT Chest
  {
    OFFSET 0 0 1
    CHANNELS 0
    JOINT Neck
    {
      OFFSET 0 0 1
      CHANNELS 3 Yrotation Xrotation Zrotation
      End Site
      {
        OFFSET 0 0 1
      }
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.5
0 1 2 3 0 0 0 0 0
90 0 0 0 0 0 90 0 0
"""
    clip = parse_bvh(text)
    assert [j.name for j in clip.joints] == names and clip.fps == 2.0
    rot_w, pos = bvh_forward_kinematics(clip)
    assert np.allclose(pos[0, 0], [1, 2, 3]) and np.allclose(pos[0, 2], [1, 2, 5])
    # Frame 2: hips turn 90 deg about Z (no effect on +Z offsets), neck 90 deg about Y.
    assert np.allclose(pos[1, 2], [0, 0, 2])
    expected = R.euler_to_matrix("Z", np.array([[90.0]]))[0] @ R.euler_to_matrix("YXZ", np.array([[90.0, 0, 0]]))[0]
    assert np.allclose(rot_w[1, 2], expected)


@pytest.mark.parametrize("mutate, line, words", [
    (lambda t: t.replace("HIERARCHY", "HIERARCHIE"), 1, "HIERARCHY"),
    (lambda t: t.replace("CHANNELS 3 Zrotation Xrotation Yrotation", "CHANNELS 3 Zrotation Xrot Yrotation", 1),
     None, "unknown channel"),
    (lambda t: t.replace("OFFSET", "OFFSET x", 1), 4, "number"),
    (lambda t: t.replace("Frames: 48", "Frames: 60"), None, "frame lines"),
    (lambda t: t.replace("Frame Time: 0.03333333", "Frame Time: 0"), None, "Frame Time"),
    (lambda t: "\n".join(t.splitlines()[:-3] + [t.splitlines()[-3] + " 7"] + t.splitlines()[-2:]), None,
     "values"),
    (lambda t: "\n".join(t.splitlines()[:-1] + [t.splitlines()[-1].replace(" ", " nan ", 1)]), None, "values"),
    (lambda t: t.split("MOTION")[0], None, "MOTION"),
])
def test_bad_bvh_gives_bad_request_with_line(clip, mutate, line, words):
    text = cmu_bvh_from_smpl(*clip, 30.0)
    bad = mutate(text)
    with pytest.raises(ProtocolError) as err:
        bvh_to_smpl(bad)
    e = err.value
    assert e.code == ErrorCode.BAD_REQUEST and e.field == "data" and words in e.message, e.message
    assert "line" in e.details and f"line {e.details['line']}:" in e.message
    if line is not None:
        assert e.details["line"] == line
    else:
        # The reported line really holds the problem (or the header naming it).
        assert 1 <= e.details["line"] <= len(bad.splitlines())


def test_unknown_skeleton_lists_unmapped_joints():
    offsets = np.array([[0, 0, 0], [0, 0.5, 0], [0, 0.5, 0]])
    text = write_bvh(["Root", "Mid", "Tip"], [-1, 0, 1], offsets, np.zeros((2, 3, 3)), np.zeros((2, 3)), 1 / 30)
    with pytest.raises(ProtocolError) as err:
        bvh_to_smpl(text)
    assert err.value.details["unmapped"] == ["Root", "Mid", "Tip"] and "pelvis" in err.value.details["missing_joints"]


# A skeleton no naming scheme knows: every CMU joint renamed (French-ish, as an exporter might).
MADE_UP = {"Hips": "Bassin", "LowerBack": "Dos1", "Spine": "Dos2", "Spine1": "Poitrine", "Neck": "Cou",
           "Head": "Tete", "LHipJoint": "HancheG", "RHipJoint": "HancheD", "Neck1": "Cou2"}
for _side, _s in (("Left", "G"), ("Right", "D")):
    MADE_UP.update({f"{_side}{part}": f"{fr}{_s}" for part, fr in (
        ("UpLeg", "Cuisse"), ("Leg", "Tibia"), ("Foot", "Pied"), ("ToeBase", "Orteil"), ("Shoulder", "Clavicule"),
        ("Arm", "Bras"), ("ForeArm", "AvantBras"), ("Hand", "Main"), ("FingerBase", "Paume"))})
MADE_UP.update({"LFingers": "DoigtsG", "RFingers": "DoigtsD", "LThumb": "PouceG", "RThumb": "PouceD"})


def made_up_joint_map() -> dict:
    from avatarforge.backend.motion.bvh import CMU

    return {MADE_UP[cmu]: joint for cmu, joint in CMU.items()}


def test_bvh_made_up_names_map_by_shape_and_joint_map_still_applies(clip):
    rot, trans = clip
    text = cmu_bvh_from_smpl(rot, trans, 30.0, a_pose_degrees=20.0, names=MADE_UP)
    auto = bvh_to_smpl(text)               # no naming scheme knows these names: mapped from the skeleton's shape
    assert auto.info["mapping_method"] == "topology" and auto.info["joint_mapping"] == made_up_joint_map()
    got = forward_kinematics(auto.rotations.astype(np.float64), auto.trans.astype(np.float64))
    assert same_up_to_height(got, forward_kinematics(rot, trans)) < 1e-4
    imp = bvh_to_smpl(text, joint_map=made_up_joint_map())
    assert imp.info["skeleton"] == "topology+joint_map" and "HancheG" in imp.info["unmapped"]
    got = forward_kinematics(imp.rotations.astype(np.float64), imp.trans.astype(np.float64))
    assert same_up_to_height(got, forward_kinematics(rot, trans)) < 1e-4
    # No humanoid shape and too few joints mapped: the same error, the map's joints no longer listed as missing.
    chain = write_bvh(["Bassin", "Dos1", "Tete"], [-1, 0, 1], np.array([[0, 0, 0], [0, 0.5, 0], [0, 0.5, 0]]),
                      np.zeros((2, 3, 3)), np.zeros((2, 3)), 1 / 30)
    with pytest.raises(ProtocolError) as err:
        bvh_to_smpl(chain, joint_map={"Bassin": "pelvis"})
    e = err.value
    assert e.code == ErrorCode.BAD_REQUEST and "left_knee" in e.details["missing_joints"]
    assert "pelvis" not in e.details["missing_joints"]
    assert "joint_map" in e.message and "--joint-map" in e.message and "Dos1" in e.message


def test_bvh_joint_map_overrides_the_automatic_names(clip):
    """On a CMU file: an explicit entry takes an SMPL joint from the CMU map, and null drops one."""
    rot, trans = clip
    text = cmu_bvh_from_smpl(rot, trans, 30.0)
    swapped = bvh_to_smpl(text, joint_map={"LeftHand": "left_elbow", "LeftForeArm": None})
    assert swapped.info["skeleton"] == "cmu+joint_map" and "LeftForeArm" in swapped.info["unmapped"]
    got = forward_kinematics(swapped.rotations.astype(np.float64), swapped.trans.astype(np.float64))
    want = forward_kinematics(rot, trans)
    assert same_up_to_height(got[:, :J["left_elbow"]], want[:, :J["left_elbow"]]) < 1e-4   # the rest is unchanged
    assert same_up_to_height(got, want) > 1e-2                                           # the left arm is not
    with pytest.raises(ProtocolError) as err:
        bvh_to_smpl(text, joint_map={"LeftPaw": "left_wrist"})
    assert err.value.field == "joint_map" and "LeftPaw" in err.value.message and "LeftHand" in err.value.message


# -- AMASS ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout, rate_key", [("smpl", "mocap_framerate"), ("smplh", "mocap_framerate"),
                                              ("smplx", "mocap_frame_rate")])
def test_amass_layouts(clip, layout, rate_key):
    rot, trans = clip
    middle = np.tile([0.3, 0.0, 0.1], (len(rot), 1))
    imp = amass_to_smpl(amass_npz(rot, trans, 60.0, layout, rate_key, hand_middle=middle))
    assert imp.fps == 60.0 and imp.info["layout"] == layout and imp.info["gender"] == "female"
    expected = rot.copy()
    if layout != "smpl":
        expected[:, [J["left_hand"], J["right_hand"]]] = middle[:, None]     # SMPL's hands from middle1
    assert np.allclose(imp.rotations, expected, atol=1e-5)
    got = forward_kinematics(imp.rotations.astype(np.float64), imp.trans.astype(np.float64))
    assert same_up_to_height(got, forward_kinematics(expected, trans)) < 1e-5


def test_amass_standing_frame_is_upright_and_faces_minus_y():
    """AMASS convention: a standing subject has root_orient ~ (pi/2, 0, 0) (SMPL's Y-up body
    stood up in the Z-up world); it must import upright, facing -Y, pelvis = trans + J_pelvis."""
    buf = io.BytesIO()
    np.savez(buf, poses=np.concatenate([[[np.pi / 2, 0, 0]], np.zeros((1, 153))], axis=1),
             trans=np.array([[1.0, 2.0, 0.9]]), mocap_framerate=np.array(120.0))
    imp = amass_to_smpl(buf.getvalue())
    assert np.allclose(imp.rotations[0], 0.0, atol=1e-6)
    joints = forward_kinematics(imp.rotations.astype(np.float64), imp.trans.astype(np.float64))[0]
    assert joints[J["head"], 2] > joints[J["pelvis"], 2] + 0.5
    assert joints[J["left_shoulder"], 0] > joints[J["right_shoulder"], 0]          # left at +X: facing -Y
    assert joints[J["pelvis"], :2] == pytest.approx([1.0 - 0.002, 2.0 - 0.223], abs=1e-6)
    assert np.allclose(REST_ROTATION @ [0, 0, 1], [0, -1, 0])


@pytest.mark.parametrize("change, field", [
    (lambda d: d.pop("mocap_framerate"), "data.mocap_framerate"),
    (lambda d: d.update(poses=np.zeros((5, 100))), "data.poses"),
    (lambda d: d.update(trans=np.zeros((4, 3))), "data.trans"),
    (lambda d: d.update(trans=np.full((5, 3), np.nan)), "data.trans"),
    (lambda d: d.update(mocap_framerate=np.array(0.0)), "data.mocap_framerate"),
])
def test_bad_npz_names_the_field(change, field):
    d = {"poses": np.zeros((5, 156)), "trans": np.zeros((5, 3)), "mocap_framerate": np.array(30.0)}
    change(d)
    buf = io.BytesIO()
    np.savez(buf, **d)
    with pytest.raises(ProtocolError) as err:
        amass_to_smpl(buf.getvalue())
    assert err.value.code == ErrorCode.BAD_REQUEST and err.value.field == field, str(err.value)


# -- the pipeline ------------------------------------------------------------------------------------
def run_import(params: dict) -> Motion:
    pipe = load_pipelines()["motion_import"]
    config = BackendConfig()
    (motion,) = pipe.run(pipe.normalise(params, config), JobContext(config=config))
    return motion


def test_pipeline_resamples_120_to_30_and_keeps_timing():
    rot, trans = smpl_test_motion(241, 120.0, seed=5)
    motion = run_import({"data": cmu_bvh_from_smpl(rot, trans, 120.0).encode(), "filename": "walk.BVH",
                         "fps": 30})
    assert motion.name == "walk" and motion.fps == 30.0 and motion.frames == 61
    assert motion.seconds == pytest.approx(2.0)
    ref = forward_kinematics(rot[::4], trans[::4])            # frame k at 30 fps = frame 4k at 120 fps
    assert same_up_to_height(motion.joints.astype(np.float64), ref) < 1e-3
    assert motion.contacts.shape == (61, 2) and motion.provenance["source"]["skeleton"] == "cmu"


@pytest.mark.parametrize("params, field", [
    ({"filename": "a.bvh"}, "data"),
    ({"data": b"x", "filename": "a.fbx"}, "filename"),
    ({"data": b"HIERARCHY", "filename": "a.bvh", "fps": 0}, "fps"),
    ({"data": b"HIERARCHY", "filename": "a.bvh", "fps": 1e6}, "fps"),
    ({"data": b"PK..", "filename": "a.npz", "scale": 0.01}, "scale"),
    ({"data": b"MOTION", "filename": "a.bvh"}, "data"),
    ({"data": b"HIERARCHY", "filename": "a.bvh", "colour": 1}, "colour"),
    ({"data": b"HIERARCHY", "filename": "a.bvh", "target": {"preset": "blender"}}, "target.preset"),
])
def test_pipeline_rejects_bad_params(params, field):
    with pytest.raises(ProtocolError) as err:
        load_pipelines()["motion_import"].normalise(params, BackendConfig())
    assert err.value.code == ErrorCode.BAD_REQUEST and err.value.field == field, str(err.value)


@pytest.mark.parametrize("joint_map, words", [
    (["Hips"], "non-empty map"),
    ({"Hips": "hips"}, "not an SMPL-24 joint"),
    ({"": "pelvis"}, "BVH joint names"),
    ({"Hips": "pelvis", "Root": "pelvis"}, "pelvis named more than once"),
])
def test_pipeline_rejects_bad_joint_map(joint_map, words):
    with pytest.raises(ProtocolError) as err:
        load_pipelines()["motion_import"].normalise({"data": b"HIERARCHY", "filename": "a.bvh",
                                                     "joint_map": joint_map}, BackendConfig())
    e = err.value
    assert e.code == ErrorCode.BAD_REQUEST and e.field == "joint_map" and words in e.message, str(e)
    with pytest.raises(ProtocolError) as err:     # AMASS files are SMPL already
        load_pipelines()["motion_import"].normalise({"data": b"PK..", "filename": "a.npz",
                                                     "joint_map": {"Hips": "pelvis"}}, BackendConfig())
    assert err.value.field == "joint_map"


def test_cli_motion_import_with_joint_map(tmp_path, clip):
    rot, trans = clip
    bvh = tmp_path / "odd.bvh"
    bvh.write_text(cmu_bvh_from_smpl(rot[:12], trans[:12], 30.0, names=MADE_UP))
    (tmp_path / "map.json").write_text(json.dumps(made_up_joint_map()))
    cli = [sys.executable, "-m", "avatarforge.backend.cli", "motion", "import", str(bvh), "--format", "json"]
    out = subprocess.run(cli + ["--joint-map", str(tmp_path / "map.json")], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    joints = np.array(json.loads(out.stdout)["joints"])
    assert same_up_to_height(joints, forward_kinematics(rot[:12], trans[:12])) < 1e-3
    chain = tmp_path / "chain.bvh"          # not a humanoid: no map, no import
    chain.write_text(write_bvh(["Root", "Mid", "Tip"], [-1, 0, 1], np.array([[0, 0, 0], [0, 0.5, 0], [0, 0.5, 0]]),
                               np.zeros((2, 3, 3)), np.zeros((2, 3)), 1 / 30))
    bad = subprocess.run(cli[:5] + [str(chain)] + cli[6:], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "joint_map" in bad.stderr and "--joint-map" in bad.stderr


def test_cli_motion_import_prints_json(tmp_path, clip):
    rot, trans = clip
    path = tmp_path / "clip.npz"
    path.write_bytes(amass_npz(rot, trans, 30.0, "smplh"))
    out = subprocess.run([sys.executable, "-m", "avatarforge.backend.cli", "motion", "import", str(path),
                          "--format", "json", "--fps", "15", "--out", str(tmp_path / "o.npz")],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    n = 25                                                               # round(47 / 2) + 1 frames at 15 fps
    assert data["fps"] == 15 and len(data["joint_names"]) == 24 and data["frames"] == n
    assert np.array(data["joints"]).shape == (n, 24, 3) and np.array(data["poses"]).shape == (n, 24, 3)
    assert np.array(data["joints"])[..., 2].min() > -0.05              # Z up, on the floor
    again = amass_to_smpl((tmp_path / "o.npz").read_bytes())           # --out writes an AMASS npz back
    assert np.allclose(again.trans, np.array(data["trans"]), atol=1e-4)
    bad = subprocess.run([sys.executable, "-m", "avatarforge.backend.cli", "motion", "import",
                          str(tmp_path / "o.bvh")], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "o.bvh" in bad.stderr


def test_motion_import_through_a_real_backend(tmp_path, clip):
    """The add-on's path: bytes and a user's rig over ZeroMQ to `avatarforge serve`, a Motion back."""
    from avatarforge.protocol.client import Client
    from tests.backend.test_retarget import blender_like_rig
    from tests.support.server import BackendProcess

    rot, trans = clip
    names, parents, mats, _ = blender_like_rig()
    target = {"bone_names": names, "parents": parents, "rest_matrices": mats.astype(np.float32)}
    with BackendProcess(tmp_path / "store", plugins=False) as proc, Client(proc.address, timeout_s=60) as client:
        client.connect()
        job = client.submit("motion_import", {"data": cmu_bvh_from_smpl(rot, trans, 30.0).encode(),
                                              "filename": "dance.bvh", "fps": 24.0, "target": target})
        (motion,) = client.wait(job["job_id"])
        assert isinstance(motion, Motion) and motion.fps == 24.0 and motion.name == "dance"
        assert motion.frames == 39 and motion.retargeted.rig == "mixamo"
        assert motion.retargeted.rotations.shape == (39, len(motion.retargeted.bone_names), 4)
        bad = cmu_bvh_from_smpl(rot, trans, 30.0).replace("Frame Time", "Frame Tim")
        with pytest.raises(ProtocolError) as err:
            client.wait(client.submit("motion_import", {"data": bad.encode(), "filename": "x.bvh"})["job_id"])
        assert err.value.code == ErrorCode.BAD_REQUEST and "line" in err.value.message
        assert err.value.details.get("line") == bad.splitlines().index("Frame Tim: 0.03333333") + 1


# -- hostile files: refused as BAD_REQUEST naming what is wrong, fast and small -------------------------
def npz_claiming(frames: int, width: int = 156, payload: int = 1 << 26) -> bytes:
    """An .npz whose poses.npy header claims (frames, width) float64 but holds
    only `payload` zero bytes: deflated, a few hundred KB (a decompression bomb)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("poses.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_2_0(
                member, {"descr": "<f8", "fortran_order": False, "shape": (frames, width)})
            member.write(bytes(payload))
    return buf.getvalue()


def test_npz_bomb_is_refused_from_its_headers_without_inflating():
    bomb = npz_claiming(3_000_000)
    assert len(bomb) < 1 << 20
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(ProtocolError) as err:
            amass_to_smpl(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    e = err.value
    assert e.code == ErrorCode.BAD_REQUEST and e.field == "data.poses", e.message
    assert f"{MOTION_NPZ_MAX_BYTES:,}" in e.message, e.message      # names the limit
    assert peak < 50 * 2 ** 20, f"peak {peak / 2 ** 20:.0f} MiB"
    assert time.monotonic() - started < 2.0


def test_npz_garbage_starting_with_pk_is_called_not_a_zip():
    with pytest.raises(ProtocolError) as err:
        run_import({"data": b"PK" + bytes(range(256)) * 4, "filename": "walk.npz"})
    e = err.value
    assert e.code == ErrorCode.BAD_REQUEST and e.field == "data", e.message
    assert "zip" in e.message and "pickle" not in e.message, e.message


def test_npz_poses_of_wrong_rank_name_the_real_shape():
    buf = io.BytesIO()
    np.savez(buf, poses=np.zeros((5, 52, 3)), trans=np.zeros((5, 3)), mocap_framerate=np.array(30.0))
    with pytest.raises(ProtocolError) as err:
        amass_to_smpl(buf.getvalue())
    e = err.value
    assert e.field == "data.poses" and "(T, 72|156|165)" in e.message and "(T, T)" not in e.message, e.message


def huge_value_bvh(clip) -> tuple[str, int]:
    """A CMU BVH with one frame value of 1e308 (finite, but overflows downstream) and its line."""
    lines = cmu_bvh_from_smpl(*clip, 30.0).splitlines()
    no = len(lines) - 5
    values = lines[no - 1].split()
    lines[no - 1] = " ".join(["1e308"] + values[1:])
    return "\n".join(lines) + "\n", no


def deep_bvh(depth: int) -> str:
    """A BVH whose joints nest `depth` deep (one chain)."""
    head = ["HIERARCHY", "ROOT J0", "{", "OFFSET 0 0 0", "CHANNELS 3 Zrotation Xrotation Yrotation"]
    for i in range(1, depth):
        head += [f"JOINT J{i}", "{", "OFFSET 0 1 0", "CHANNELS 3 Zrotation Xrotation Yrotation"]
    head += ["}"] * depth
    return "\n".join(head + ["MOTION", "Frames: 1", "Frame Time: 0.0333", " ".join(["0"] * 3 * depth)]) + "\n"


def test_bvh_huge_values_are_bad_request_naming_the_line(clip):
    text, no = huge_value_bvh(clip)
    for importer in (bvh_to_smpl, lambda t: run_import({"data": t.encode(), "filename": "walk.bvh"})):
        with pytest.raises(ProtocolError) as err:
            importer(text)
        e = err.value
        assert e.code == ErrorCode.BAD_REQUEST and e.details.get("line") == no, e.message
        assert f"line {no}:" in e.message and "1e308" in e.message, e.message


def test_bvh_too_deep_hierarchy_is_bad_request_naming_the_joint():
    text = deep_bvh(1000)
    for importer in (parse_bvh, lambda t: run_import({"data": t.encode(), "filename": "deep.bvh"})):
        with pytest.raises(ProtocolError) as err:
            importer(text)
        e = err.value
        assert e.code == ErrorCode.BAD_REQUEST and "line" in e.details, e.message
        assert f"J{MAX_DEPTH}" in e.message and str(MAX_DEPTH) in e.message, e.message
    parse_bvh(deep_bvh(MAX_DEPTH))            # the limit itself is allowed
