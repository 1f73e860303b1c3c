"""BVH import: hand-computed forward kinematics, write/read round trip, agreement with ASF/AMC
on the real CMU clips (same skeleton written as BVH, also under the usual CMU-BVH joint names
and in centimetres), unit and format errors, the command line."""
import numpy as np
import pytest

from lib.data.mocap import bvh
from lib.data.mocap.asf_amc import MocapFormatError, read_amc, read_asf
from lib.data.mocap.to_h36m import (BVH_ALIASES, CMU_TO_H36M, ImportOptions, bvh_to_h36m32,
                                cmu_to_h36m32,
                                import_bvh_clips, import_clips)

# Root at (1, 2, 3) with a 90 deg Z turn in frame 2; joint A 10 units up the root's y axis,
# rotating by Z 90 then X 90 (intrinsic) in frame 1; an End Site 5 units along A's y axis.
TINY = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT A
  {
    OFFSET 0 10 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 5 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.02
1 2 3 0 0 0 90 90 0
1 2 3 90 0 0 0 0 0
"""


def write(tmp_path, text, name="clip.bvh"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_forward_kinematics_hand_computed(tmp_path):
    clip = bvh.read_bvh(write(tmp_path, TINY))
    assert [j.name for j in clip.joints] == ["Hips", "A"] and clip.fps == pytest.approx(50)
    pos = bvh.forward_kinematics(clip)
    np.testing.assert_allclose(pos["Hips"], [[1, 2, 3], [1, 2, 3]], atol=1e-12)
    # frame 1: A = root + (0, 10, 0); site = A + Rz(90)·Rx(90)·(0, 5, 0) = A + (0, 0, 5)
    # (the other composition order, Rx·Rz, would give A + (-5, 0, 0))
    # frame 2: Rz(90) maps (x, y, z) to (-y, x, z): A = root + (-10, 0, 0), site = A + (-5, 0, 0)
    np.testing.assert_allclose(pos["A"], [[1, 12, 3], [-9, 2, 3]], atol=1e-12)
    np.testing.assert_allclose(pos["A" + bvh.SITE_SUFFIX], [[1, 12, 8], [-14, 2, 3]], atol=1e-12)


def test_write_read_round_trip(tmp_path):
    clip = bvh.read_bvh(write(tmp_path, TINY))
    rng = np.random.default_rng(0)
    clip = bvh.BvhClip(clip.joints, 1 / 120, rng.uniform(-180, 180, (7, 9)), clip.source)
    back = bvh.read_bvh(bvh.write_bvh(tmp_path / "out.bvh", clip))
    assert [(j.name, j.parent, j.channels) for j in back.joints] == \
        [(j.name, j.parent, j.channels) for j in clip.joints]
    np.testing.assert_allclose(back.joints[1].site, [0, 5, 0])
    np.testing.assert_allclose(back.motion, clip.motion, atol=1e-6)
    assert back.fps == pytest.approx(120, rel=1e-9)


def test_resample_hits_source_frames(tmp_path):
    clip = bvh.read_bvh(write(tmp_path, TINY))
    clip = bvh.BvhClip(clip.joints, 0.01, np.cumsum(np.ones((9, 9)), axis=0), clip.source)
    half = clip.resample(50)
    assert half.num_frames == 5 and half.fps == pytest.approx(50)
    np.testing.assert_allclose(half.motion, clip.motion[::2])
    # angles are unwrapped before interpolation: 170 -> -170 passes through 180, not 0
    wrap = clip.motion[:2].copy()
    wrap[:, 3] = [170, -170]
    mid = bvh.BvhClip(clip.joints, 0.01, wrap, "").resample(200).motion[1, 3]
    assert abs(abs(mid) - 180) < 1e-9


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("HIERARCHY", "HIERARCHIE"), "not a BVH file"),
    (lambda t: t.replace("Zrotation Xrotation Yrotation\n    End", "Zrotation Xrotation Wrotation\n    End"),
     "unknown channels"),
    (lambda t: t.replace("OFFSET 0 10 0", "OFFSET 0 ten 0"), "clip.bvh:8: expected a number"),
    (lambda t: t.replace("Frames: 2", "Frames: 3"), "'Frames: 3' but 2 frame lines"),
    (lambda t: t.replace("1 2 3 90 0 0 0 0 0", "1 2 3 90 0 0 0 0"), "expected 2 frames x 9"),
    (lambda t: t.replace("1 2 3 90 0 0 0 0 0", "1 2 3 nan 0 0 0 0 0"), "NaN"),
    (lambda t: t.replace("Frame Time: 0.02", "Frame Time: 0"), "Frame Time must be positive"),
])
def test_malformed_files_name_file_and_problem(tmp_path, edit, message):
    with pytest.raises(MocapFormatError, match=message):
        bvh.read_bvh(write(tmp_path, edit(TINY)))


def test_missing_file_and_missing_joints(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.bvh"):
        bvh.read_bvh(tmp_path / "missing.bvh")
    with pytest.raises(ValueError, match="no joints for the CMU bones"):
        bvh_to_h36m32(bvh.read_bvh(write(tmp_path, TINY)), "cm")


# ----------------------------------------------------------------------------- real CMU clips
@pytest.fixture(scope="module")
def cmu(mocap_dir):
    skeleton = read_asf(mocap_dir / "02" / "02.asf")
    motion = read_amc(mocap_dir / "02" / "02_01.amc", skeleton, max_frames=240)
    return skeleton, motion


def test_asf_as_bvh_gives_the_same_h36m_joints(cmu, tmp_path):
    skeleton, motion = cmu
    path = bvh.write_bvh(tmp_path / "02_01.bvh", bvh.asf_to_bvh(skeleton, motion))
    clip = bvh.read_bvh(path)
    assert clip.num_frames == 240 and clip.fps == pytest.approx(120)
    want = cmu_to_h36m32(skeleton, motion)
    np.testing.assert_allclose(bvh_to_h36m32(clip, "mm"), want, atol=1e-3)   # written to 1 µm


def _as_cmu_bvh_names_in_cm(clip: bvh.BvhClip) -> bvh.BvhClip:
    """Rename joints the way the common CMU-BVH conversions do, and rescale mm -> cm."""
    to_alias = {bone: alias for alias, bone in BVH_ALIASES.items()}
    titled = {"hips": "Hips", "lowerback": "LowerBack", "spine": "Spine", "spine1": "Spine1",
              "neck": "Neck", "neck1": "Neck1", "head": "Head", "lthumb": "LThumb",
              "rthumb": "RThumb", "lhipjoint": "LHipJoint", "rhipjoint": "RHipJoint"}
    joints = []
    for j in clip.joints:
        alias = to_alias.get("root" if j.parent < 0 else j.name, j.name)
        name = titled.get(alias, alias.replace("left", "Left").replace("right", "Right")
                          .replace("upleg", "UpLeg").replace("forearm", "ForeArm")
                          .replace("toebase", "ToeBase").replace("fingerbase", "FingerBase")
                          .replace("handindex1", "HandIndex1").replace("leg", "Leg")
                          .replace("foot", "Foot").replace("shoulder", "Shoulder")
                          .replace("arm", "Arm").replace("hand", "Hand"))
        joints.append(bvh.BvhJoint(name, j.parent, j.offset / 10, j.channels,
                                   None if j.site is None else j.site / 10))
    motion = clip.motion.copy()
    motion[:, :3] /= 10                                   # root position channels
    return bvh.BvhClip(joints, clip.frame_time, motion, clip.source)


def test_cmu_bvh_names_and_centimetres(cmu, tmp_path):
    skeleton, motion = cmu
    renamed = _as_cmu_bvh_names_in_cm(bvh.asf_to_bvh(skeleton, motion))
    names = {j.name for j in renamed.joints}
    assert {"Hips", "LeftUpLeg", "RightForeArm", "LeftFingerBase", "Spine1", "Neck1"} <= names
    path = bvh.write_bvh(tmp_path / "cmu_names.bvh", renamed)
    np.testing.assert_allclose(bvh_to_h36m32(bvh.read_bvh(path), "cm"),
                               cmu_to_h36m32(skeleton, motion), atol=1e-3)
    # read with the wrong unit, the body is 10x too small: an error naming height and unit
    with pytest.raises(ValueError, match=r"0\.1\d* m tall with length unit 'mm'"):
        import_bvh_clips([path], unit="mm")


def test_import_matches_asf_import_and_cli(cmu, mocap_dir, tmp_path):
    from lib.data.formats.h36m_npz import read_h36m_npz
    from data.import_mocap import main
    skeleton, motion = cmu
    path = bvh.write_bvh(tmp_path / "02_01.bvh", bvh.asf_to_bvh(skeleton, motion))
    opts = ImportOptions(joint_set="h36m32", fps_out=None, max_frames=240)
    from_bvh = import_bvh_clips([path], subject=1, actions="Walking", options=opts, unit="mm")
    from_asf = import_clips(mocap_dir / "02" / "02.asf", [mocap_dir / "02" / "02_01.amc"],
                            subject=1, actions="Walking", options=opts)
    a, b = from_bvh.sequences[0], from_asf.sequences[0]
    assert a.key == b.key == (1, 14, 1) and not a.has_mesh
    np.testing.assert_allclose(a.joints_world, b.joints_world, atol=1e-2)
    np.testing.assert_allclose(a.keypoints_2d[1], b.keypoints_2d[1], atol=1e-2)
    out = tmp_path / "out"
    assert main(["--bvh", str(path), "--bvh-unit", "mm", "--out", str(out), "--format",
                 "npz"]) == 0
    seq = read_h36m_npz(out).sequence(1, 14, 1)
    assert seq.joints_world.shape == (100, 32, 3)          # 240 frames at 120 fps -> 100 at 50
    assert main(["--bvh", str(path), "--out", str(out)]) == 2        # cm: 10x too tall
    with pytest.raises(SystemExit):                                  # both inputs at once
        main(["--bvh", str(path), "--asf", str(mocap_dir / "02" / "02.asf"), "--out", str(out)])


def test_writer_keeps_motion_columns_with_their_joints(tmp_path):
    """Joints listed out of depth-first order: the file (depth-first) must carry each joint's
    own channels, so forward kinematics agrees before and after the round trip."""
    eye = np.zeros(3)
    rot = ("Zrotation", "Xrotation", "Yrotation")
    joints = [bvh.BvhJoint("root", -1, eye, bvh.POSITION_CHANNELS + rot),
              bvh.BvhJoint("A", 0, np.array([0.0, 10, 0]), rot),
              bvh.BvhJoint("B", 0, np.array([5.0, 0, 0]), rot, site=np.array([0.0, 0, 3])),
              bvh.BvhJoint("C", 1, np.array([0.0, 4, 0]), rot, site=np.array([1.0, 0, 0]))]
    motion = np.random.default_rng(1).uniform(-90, 90, (3, 15))
    clip = bvh.BvhClip(joints, 0.02, motion, "")
    back = bvh.read_bvh(bvh.write_bvh(tmp_path / "order.bvh", clip))
    assert [j.name for j in back.joints] == ["root", "A", "C", "B"]
    want, got = bvh.forward_kinematics(clip), bvh.forward_kinematics(back)
    assert set(want) == set(got)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], atol=1e-4)


# ----------------------------------------------------------------------------- joint maps
# A CMU-structured body (ASF bone names, each joint where its bone starts), centimetres, Y up.
_CMU_BODY = [  # (bone, parent, offset from the parent joint, End Site or None)
    ("root", None, (0, 0, 0), None),
    ("lowerback", "root", (0, 0, 0), None), ("upperback", "lowerback", (0, 12, 0), None),
    ("thorax", "upperback", (0, 12, 0), None), ("lowerneck", "thorax", (0, 20, 0), None),
    ("upperneck", "lowerneck", (0, 6, 0), None), ("head", "upperneck", (0, 6, 0), (0, 18, 2)),
]
for _s, _x in (("l", 1), ("r", -1)):
    _CMU_BODY += [
        (f"{_s}hipjoint", "root", (0, 0, 0), None),
        (f"{_s}femur", f"{_s}hipjoint", (9 * _x, -5, 0), None),
        (f"{_s}tibia", f"{_s}femur", (0, -42, 0), None),
        (f"{_s}foot", f"{_s}tibia", (0, -40, 0), None),
        (f"{_s}toes", f"{_s}foot", (0, -6, 12), (0, 0, 5)),
        (f"{_s}clavicle", "thorax", (0, 20, 0), None),
        (f"{_s}humerus", f"{_s}clavicle", (16 * _x, 0, 0), None),
        (f"{_s}radius", f"{_s}humerus", (28 * _x, 0, 0), None),
        (f"{_s}wrist", f"{_s}radius", (25 * _x, 0, 0), None),
        (f"{_s}hand", f"{_s}wrist", (3 * _x, 0, 0), None),
        (f"{_s}fingers", f"{_s}hand", (8 * _x, 0, 0), (4 * _x, 0, 0)),
        (f"{_s}thumb", f"{_s}wrist", (3 * _x, 0, 0), (3 * _x, 0, 3)),
    ]


def cmu_body_clip(rename=None, frames=20, seed=0):
    """The body above with random motion; ``rename`` maps bone -> joint name in the file."""
    rename = rename or {}
    rot = ("Zrotation", "Xrotation", "Yrotation")
    index, joints = {}, []
    for bone, parent, offset, site in _CMU_BODY:
        index[bone] = len(joints)
        joints.append(bvh.BvhJoint(rename.get(bone, bone), -1 if parent is None else index[parent],
                                   np.array(offset, float),
                                   (bvh.POSITION_CHANNELS + rot) if parent is None else rot,
                                   None if site is None else np.array(site, float)))
    rng = np.random.default_rng(seed)
    motion = rng.uniform(-20, 20, (frames, 6 + 3 * (len(joints) - 1)))
    motion[:, :3] = rng.uniform(-50, 50, 3) + [0, 95, 0]         # root position, cm
    return bvh.BvhClip(joints, 0.02, motion, "test body")


def _mixamo_names():
    from lib.data.mocap.to_h36m import JOINT_MAP_DIR
    import json
    joints = json.loads((JOINT_MAP_DIR / "mixamo.json").read_text())["joints"]
    names = {bone: name for name, bone in joints.items()}
    # bones Mixamo has no joint for get names no map lists
    return {b: names.get(b, f"mixamorig:Extra_{b}") for b, _, _, _ in _CMU_BODY}


def test_mixamo_named_bvh_gives_the_same_joints_as_cmu_names(tmp_path):
    from lib.data.mocap.to_h36m import load_joint_map
    cmu = bvh.write_bvh(tmp_path / "cmu.bvh", cmu_body_clip())
    mixamo = bvh.write_bvh(tmp_path / "mixamo.bvh", cmu_body_clip(_mixamo_names()))
    names = {j.name for j in bvh.read_bvh(mixamo).joints}
    assert {"mixamorig:Hips", "mixamorig:LeftUpLeg", "mixamorig:RightForeArm"} <= names
    opts = ImportOptions(joint_set="h36m32", fps_out=None)
    want = import_bvh_clips([cmu], options=opts, unit="cm").sequences[0].joints_world
    got = import_bvh_clips([mixamo], options=opts, unit="cm",
                           joint_map="mixamo").sequences[0].joints_world
    np.testing.assert_allclose(got, want, atol=1e-4)
    # the hand's end is where the fingers start, not its first child (the thumb)
    j32 = bvh_to_h36m32(bvh.read_bvh(cmu), "cm", joint_map=load_joint_map("cmu"))
    fk = bvh.forward_kinematics(bvh.read_bvh(cmu))
    np.testing.assert_allclose(j32[:, 22], (fk["lfingers"] * 10) @ CMU_TO_H36M.T, atol=1e-9)
    # without the map, the Mixamo names are not understood: the error names the way out
    with pytest.raises(ValueError, match="--joint-map"):
        import_bvh_clips([mixamo], options=opts, unit="cm")


def test_a_users_yaml_joint_map_and_bad_maps(tmp_path):
    from lib.data.mocap.asf_amc import MocapFormatError
    rename = {b: f"Bone_{b.upper()}" for b, _, _, _ in _CMU_BODY}
    path = bvh.write_bvh(tmp_path / "mine.bvh", cmu_body_clip(rename))
    yml = tmp_path / "map.yml"
    yml.write_text("".join(f'"Bone_{b.upper()}": {b}\n' for b, _, _, _ in _CMU_BODY))
    cmu = bvh.write_bvh(tmp_path / "cmu.bvh", cmu_body_clip())
    np.testing.assert_allclose(import_bvh_clips([path], joint_map=yml).sequences[0].joints_world,
                               import_bvh_clips([cmu]).sequences[0].joints_world, atol=1e-4)
    bad = tmp_path / "bad.json"
    bad.write_text('{"joints": {"Hips": "root", "LeftUpLeg": "left_thigh"}}')
    with pytest.raises(MocapFormatError, match=r"bad.json: entry 'LeftUpLeg': 'left_thigh' is "
                                               r"not a CMU bone name"):
        import_bvh_clips([path], joint_map=bad)
    with pytest.raises(MocapFormatError, match="not found.*shipped maps cmu, mixamo"):
        import_bvh_clips([path], joint_map=tmp_path / "absent.json")


def test_a_second_import_adds_and_a_clash_is_refused(tmp_path, capsys):
    from data.import_mocap import main
    from lib.data.formats.h36m_json import read_h36m_json
    from lib.data.formats.h36m_npz import read_h36m_npz
    cmu = bvh.write_bvh(tmp_path / "cmu.bvh", cmu_body_clip())
    mixamo = bvh.write_bvh(tmp_path / "mixamo.bvh", cmu_body_clip(_mixamo_names(), seed=1))
    out = tmp_path / "out"
    assert main(["--bvh", str(cmu), "--out", str(out), "--subject", "1"]) == 0
    assert main(["--bvh", str(mixamo), "--joint-map", "mixamo", "--out", str(out),
                 "--subject", "1", "--action", "Eating"]) == 0
    assert main(["--bvh", str(cmu), "--out", str(out), "--subject", "5"]) == 0
    npz, js = read_h36m_npz(out), read_h36m_json(out)
    keys = [(1, 4, 1), (1, 14, 1), (5, 14, 1)]
    assert sorted(s.key for s in npz.sequences) == keys == sorted(s.key for s in js.sequences)
    first = import_bvh_clips([cmu], options=ImportOptions(joint_set="h36m32"))
    np.testing.assert_allclose(npz.sequence(1, 14, 1).joints_world,
                               first.sequences[0].joints_world, atol=1e-3)
    # the same sequence again: refused, nothing changed on disk
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(["--bvh", str(mixamo), "--joint-map", "mixamo", "--out", str(out),
                 "--subject", "1"]) == 2
    err = capsys.readouterr().err
    assert "already holds S1 'Walking 1' (action 14, sub-action 1)" in err and "--overwrite" in err
    assert before == {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert main(["--bvh", str(mixamo), "--joint-map", "mixamo", "--out", str(out),
                 "--subject", "1", "--overwrite"]) == 0
    replaced = read_h36m_npz(out).sequence(1, 14, 1).joints_world
    assert np.abs(replaced - npz.sequence(1, 14, 1).joints_world).max() > 10
    assert len(read_h36m_npz(out).sequences) == 3
    # a folder with data files this project did not write is not touched
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    np.savez(foreign / "data_3d_h36m.npz", positions_3d=np.zeros(3))
    assert main(["--bvh", str(cmu), "--out", str(foreign), "--format", "npz"]) == 2
    assert "not written by this project's data tools" in capsys.readouterr().err
