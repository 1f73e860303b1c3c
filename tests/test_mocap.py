"""ASF/AMC import on the real CMU clips: parsing, forward kinematics, H36M mapping, CLI."""
import math
import time

import numpy as np
import pytest

from lib.data.mocap.asf_amc import (AmcMotion, MocapFormatError, euler_to_matrix,
                                forward_kinematics, read_amc, read_asf)
from lib.data.mocap.to_h36m import (FOOT_JOINTS_32, ImportOptions, clip_to_sequence,
                                cmu_to_h36m32, import_clips)
from lib.geometry.camera import h36m_cameras
from lib.geometry.skeleton import H36M17, H36M32, KEEP_32_TO_17

UNIT_MM = 25.4 / 0.45
# H36M-17 bones whose two ends lie on one rigid CMU chain (no dof in between). The other two,
# Pelvis-Torso (lowerback + upperback) and Neck-Nose (lowerneck + upperneck), flex with the spine.
FLEXIBLE_17 = {(0, 7), (8, 9)}
RIGID_17 = [b for b in H36M17.bones if b not in FLEXIBLE_17]
DEFAULT_CLIPS = [("02", "02_01"), ("03", "03_01"), ("01", "01_01")]
MAX_FRAMES = 300


def clip_paths(mocap_dir, subj, clip):
    return mocap_dir / subj / f"{subj}.asf", mocap_dir / subj / f"{clip}.amc"


@pytest.fixture(scope="module")
def loaded(mocap_dir):
    """(skeleton, motion of the first MAX_FRAMES frames) for each default clip."""
    out = {}
    for subj, clip in DEFAULT_CLIPS:
        asf, amc = clip_paths(mocap_dir, subj, clip)
        skel = read_asf(asf)
        out[clip] = (skel, read_amc(amc, skel, max_frames=MAX_FRAMES))
    return out


def bone_lengths(joints, bones):
    return np.stack([np.linalg.norm(joints[:, c] - joints[:, p], axis=-1) for p, c in bones], 1)


# ----------------------------------------------------------------------------- parsing
def test_asf_parse_units_bones_hierarchy(mocap_dir):
    skel = read_asf(mocap_dir / "02" / "02.asf")
    assert skel.length_scale == 0.45 and skel.angle_unit == "deg"
    assert skel.unit_mm == pytest.approx(56.4444, abs=1e-4)
    assert skel.root_order == ("TX", "TY", "TZ", "RX", "RY", "RZ")
    assert skel.root_axis_order == "XYZ"
    assert len(skel.bones) == 30
    femur = skel.bones["lfemur"]
    assert femur.id == 2
    np.testing.assert_allclose(femur.direction, [0.34202, -0.939693, 0], atol=1e-6)
    assert femur.length == pytest.approx(7.59371)
    np.testing.assert_allclose(femur.axis, [0, 0, 20])
    assert femur.axis_order == "XYZ" and femur.dof == ("rx", "ry", "rz")
    assert femur.limits == ((-160.0, 20.0), (-70.0, 70.0), (-60.0, 70.0))
    assert skel.bones["lhipjoint"].dof == ()
    assert skel.bones["lclavicle"].dof == ("ry", "rz")
    assert skel.parent["lhipjoint"] == "root" and skel.parent["ltibia"] == "lfemur"
    assert skel.parent["lclavicle"] == "thorax" and skel.parent["lthumb"] == "lwrist"
    order = skel.order
    assert all(order.index(skel.parent[b]) < order.index(b) for b in order
               if skel.parent[b] != "root")


def test_amc_first_frame_matches_the_text_and_max_frames(mocap_dir, loaded):
    skel, motion = loaded["02_01"]
    assert motion.num_frames == MAX_FRAMES
    assert motion.frame_numbers[0] == 1 and motion.frame_numbers[-1] == MAX_FRAMES
    np.testing.assert_allclose(motion.values["root"][0],
                               [10.4194, 16.7048, -30.1003, -2.48972, -9.82194, -3.00914])
    np.testing.assert_allclose(motion.values["lthumb"][0], [4.5141, 52.7793])
    np.testing.assert_allclose(motion.values["rradius"][0], [46.2257])
    assert motion.values["lfemur"].shape == (MAX_FRAMES, 3)
    # the whole file: as many frames as frame-number lines in the (CRLF) text
    raw = (mocap_dir / "02" / "02_01.amc").read_bytes()
    assert b"\r\n" in raw
    n_text = sum(1 for line in raw.splitlines() if line.strip().isdigit())
    full = read_amc(mocap_dir / "02" / "02_01.amc", skel)
    assert full.num_frames == n_text
    np.testing.assert_array_equal(full.values["lfemur"][:MAX_FRAMES], motion.values["lfemur"])


def test_bad_files_give_clear_errors(mocap_dir, tmp_path, loaded):
    skel, _ = loaded["02_01"]
    with pytest.raises(FileNotFoundError, match="nope.asf"):
        read_asf(tmp_path / "nope.asf")
    bad = tmp_path / "bad.amc"
    bad.write_text(":DEGREES\n1\nroot 0 0 0 0 0 0\nlfemur 1 2\n")
    with pytest.raises(MocapFormatError, match="bad.amc.*lfemur.*3 values"):
        read_amc(bad, skel)
    bad.write_text("1\nroot 0 0 0 0 0 0\nwing 1 2\n")
    with pytest.raises(MocapFormatError, match="bad.amc:3.*'wing'"):
        read_amc(bad, skel)
    bad.write_text("1\nroot 0 0 0 0 0 0\nlfemur 1 2 3\n2\nroot 0 0 0 0 0 0\n")
    with pytest.raises(MocapFormatError, match="lfemur.*1 of 2 frames"):
        read_amc(bad, skel)
    notasf = tmp_path / "x.asf"
    notasf.write_text(":version 1.10\n")
    with pytest.raises(MocapFormatError, match="x.asf.*bonedata"):
        read_asf(notasf)


# ----------------------------------------------------------------------------- kinematics
def test_euler_order_means_fixed_axes_in_sequence():
    a = np.deg2rad([30.0, -50.0, 70.0])
    Rx = euler_to_matrix(a[:1], "x")
    Ry = euler_to_matrix(a[1:2], "y")
    Rz = euler_to_matrix(a[2:], "z")
    np.testing.assert_allclose(euler_to_matrix(a, "XYZ"), Rz @ Ry @ Rx, atol=1e-12)
    np.testing.assert_allclose(Rz @ [1.0, 0, 0], [math.cos(a[2]), math.sin(a[2]), 0], atol=1e-12)


def test_fk_hand_computed_axis_frame(tmp_path):
    """One bone along +x, length 2, local axis frame C = Rz(90), dof rx = 90 deg.

    C·Rx(90)·C⁻¹ is a 90 deg rotation about C·x = +y, which takes +x to -z: the bone ends at
    (0, 0, -2) relative to the root. The root is translated by (1, 2, 3) and turned 90 deg about
    its y axis, which takes -z to -x: end = (1, 2, 3) + (-2, 0, 0).
    """
    asf = tmp_path / "toy.asf"
    asf.write_text(":units\n  length 1\n  angle deg\n:root\n  order TX TY TZ RX RY RZ\n"
                   "  axis XYZ\n  position 0 0 0\n  orientation 0 0 0\n:bonedata\n  begin\n"
                   "    id 1\n    name arm\n    direction 1 0 0\n    length 2\n"
                   "    axis 0 0 90 XYZ\n    dof rx\n    limits (-180 180)\n  end\n"
                   ":hierarchy\n  begin\n    root arm\n  end\n")
    amc = tmp_path / "toy.amc"
    amc.write_text(":FULLY-SPECIFIED\r\n:DEGREES\r\n1\r\nroot 0 0 0 0 0 0\r\narm 90\r\n"
                   "2\r\nroot 1 2 3 0 90 0\r\narm 90\r\n")
    skel = read_asf(asf)
    ends = forward_kinematics(skel, read_amc(amc, skel))
    np.testing.assert_allclose(ends["arm"][0], [0, 0, -2], atol=1e-12)
    np.testing.assert_allclose(ends["arm"][1], [-1, 2, 3], atol=1e-12)
    rest = forward_kinematics(skel)
    np.testing.assert_allclose(rest["arm"][0], [2, 0, 0], atol=1e-12)


def test_rest_pose_is_the_sum_of_asf_offsets(mocap_dir):
    skel = read_asf(mocap_dir / "02" / "02.asf")
    rest = forward_kinematics(skel)
    b = skel.bones
    expect = (b["lhipjoint"].direction * b["lhipjoint"].length
              + b["lfemur"].direction * b["lfemur"].length
              + b["ltibia"].direction * b["ltibia"].length)
    np.testing.assert_allclose(rest["ltibia"][0], expect, atol=1e-12)


# ----------------------------------------------------------------------------- real clips
@pytest.mark.parametrize("clip", [c for _, c in DEFAULT_CLIPS])
def test_bone_lengths_constant_over_clip(loaded, clip):
    skel, motion = loaded[clip]
    j17 = cmu_to_h36m32(skel, motion)[:, list(KEEP_32_TO_17)]
    lengths = bone_lengths(j17, RIGID_17)
    assert (lengths.std(0) / lengths.mean(0)).max() < 1e-6
    assert lengths.min() > 50          # mm: no collapsed bone
    # the whole 32-joint set: every bone that is one CMU link (or a dof-less chain) is rigid
    j32 = cmu_to_h36m32(skel, motion)
    l32 = bone_lengths(j32, H36M32.bones)
    rel = l32.std(0) / np.maximum(l32.mean(0), 1e-9)
    assert (rel < 1e-6).sum() >= 26
    # the flexible spine segments really flex, but only a little
    flex = bone_lengths(j17, sorted(FLEXIBLE_17))
    assert (flex.std(0) / flex.mean(0)).max() < 0.05


@pytest.mark.parametrize("subj", ["01", "02", "03"])
def test_subject_has_human_height(mocap_dir, subj):
    skel = read_asf(mocap_dir / subj / f"{subj}.asf")
    rest = cmu_to_h36m32(skel)[0]            # upright rest pose
    height = rest[15, 2] - rest[list(FOOT_JOINTS_32), 2].min()
    assert 1400 < height < 2000, f"subject {subj}: {height:.0f} mm"
    femur = np.linalg.norm(rest[2] - rest[1])
    assert 350 < femur < 520                  # an adult thigh


def test_walking_clip_on_floor_upright_and_not_sliding(loaded):
    skel, motion = loaded["02_01"]
    seq = clip_to_sequence(skel, motion, subject=1, action="Walking",
                           options=ImportOptions(fps_out=None))
    J = seq.joints_world.astype(np.float64)
    assert J[..., 2].min() > -1e-3                       # nothing under the floor...
    feet = J[:, [3, 6], 2]                               # ankles
    assert np.median(feet.min(1)) < 120                  # ...and a foot near it in most frames
    head_above_floor = J[:, 10, 2]
    assert 1400 < np.median(head_above_floor) < 2000
    assert np.all(J[:, 10, 2] > J[:, 0, 2]) and np.all(J[:, 0, 2] > J[:, [3, 6], 2].max(1))
    # Stance foot stays put: the slower ankle moves much slower than the body (a wrong Euler
    # convention in FK makes both feet skate at walking speed).
    speed = np.linalg.norm(np.diff(J, axis=0), axis=-1) * motion.fps   # mm/s
    slower_ankle = np.minimum(speed[:, 3], speed[:, 6])
    assert np.median(slower_ankle) < 0.3 * np.median(speed[:, 0])
    assert np.median(speed[:, 0]) > 500                  # it does walk


def test_left_is_left_after_the_axis_change(loaded):
    """A proper rotation CMU -> H36M: the left hip lies to the subject's left (z up)."""
    skel, motion = loaded["02_01"]
    J = cmu_to_h36m32(skel, motion)
    forward = (J[:, 5] + J[:, 10]) / 2 - (J[:, 3] + J[:, 8]) / 2      # toe tips - ankles
    forward[:, 2] = 0
    left = np.cross([0.0, 0.0, 1.0], forward)
    assert np.mean(np.sum((J[:, 6] - J[:, 1]) * left, axis=-1) > 0) > 0.95


@pytest.mark.parametrize("clip", [c for _, c in DEFAULT_CLIPS])
def test_projection_through_h36m_cameras_mostly_inside(loaded, clip):
    skel, motion = loaded[clip]
    seq = clip_to_sequence(skel, motion, subject=1, action="Walking")
    assert sorted(seq.keypoints_2d) == [1, 2, 3, 4]
    for idx, cam in h36m_cameras(ImportOptions().camera_subject).items():
        uv = seq.keypoints_2d[idx]
        assert uv.shape == (seq.num_frames, 17, 2)
        depth = cam.world_to_camera(seq.joints_world.astype(np.float64))[..., 2]
        assert depth.min() > 1000                         # well in front of the camera
        inside = ((uv[..., 0] >= 0) & (uv[..., 0] < cam.width)
                  & (uv[..., 1] >= 0) & (uv[..., 1] < cam.height))
        assert inside.mean() > 0.95, f"camera {idx}: {inside.mean():.3f}"
        np.testing.assert_allclose(uv, cam.project(cam.world_to_camera(
            seq.joints_world.astype(np.float64))), atol=1e-2)
    # centred in the capture volume
    np.testing.assert_allclose(seq.joints_world[:, 0, :2].mean(0), 0, atol=1e-2)


def test_resample_to_50fps_keeps_bones_rigid_and_hits_source_frames(loaded):
    skel, motion = loaded["03_01"]
    res = motion.resample(50)
    assert res.num_frames == int((MAX_FRAMES - 1) * 50 / 120) + 1
    # every 5th output frame (0.1 s) falls on every 12th source frame exactly
    for name in ("root", "lfemur", "head"):
        np.testing.assert_allclose(res.values[name][::5], motion.values[name][::12][:len(res.values[name][::5])],
                                   atol=1e-9)
    j17 = cmu_to_h36m32(skel, res)[:, list(KEEP_32_TO_17)]
    lengths = bone_lengths(j17, RIGID_17)
    assert (lengths.std(0) / lengths.mean(0)).max() < 1e-6
    # angles near +-180 are interpolated the short way round
    toy = AmcMotion(frame_numbers=np.arange(3), values={"root": np.array(
        [[0, 0, 0, 170.0, 0, 0], [0, 0, 0, -170.0, 0, 0], [0, 0, 0, -150.0, 0, 0]])}, fps=2.0)
    half = toy.resample(4.0).values["root"][:, 3]
    np.testing.assert_allclose(half, [170, 180, 190, 200, 210])


def test_import_clips_corpus_without_mesh(mocap_dir):
    asf, amc1 = clip_paths(mocap_dir, "02", "02_01")
    _, amc2 = clip_paths(mocap_dir, "02", "02_02")
    opts = ImportOptions(joint_set="h36m32", max_frames=120, camera_subject=9)
    corpus = import_clips(asf, [amc1, amc2], subject=101, actions="Walking", options=opts)
    assert corpus.subjects == [101]
    assert corpus.cameras[101][1].name == "54138969"
    np.testing.assert_allclose(corpus.cameras[101][1].center_world[0], 2044.4585, atol=1e-3)  # S9
    assert [s.key for s in corpus.sequences] == [(101, 14, 1), (101, 14, 2)]
    for seq in corpus.sequences:
        assert seq.smpl is None and not seq.has_mesh
        assert seq.joint_set == "h36m32" and seq.joints_world.shape == (50, 32, 3)
        assert seq.keypoints_2d_joint_set == "h36m32"
        np.testing.assert_array_equal(seq.frame_idx, np.arange(50))
    # the 17-joint import is the 32-joint one reduced
    c17 = import_clips(asf, [amc1], subject=101, actions=14,
                       options=ImportOptions(max_frames=120, camera_subject=9))
    np.testing.assert_allclose(c17.sequences[0].joints_world,
                               corpus.sequences[0].joints_world[:, list(KEEP_32_TO_17)])
    with pytest.raises(ValueError, match="2 actions for 1 AMC"):
        import_clips(asf, [amc1], actions=["Walking", "Eating"])
    with pytest.raises(ValueError, match="unknown Human3.6M action"):
        import_clips(asf, [amc1], actions="Flying", options=ImportOptions(max_frames=5))


def test_cli_end_to_end(mocap_dir, tmp_path):
    from lib.data.formats.h36m_npz import read_h36m_npz
    from lib.data.formats.h36m_json import read_h36m_json
    from data.import_mocap import main

    asf, amc1 = clip_paths(mocap_dir, "02", "02_01")
    _, amc2 = clip_paths(mocap_dir, "02", "02_03")
    out = tmp_path / "CMU"
    rc = main(["--asf", str(asf), "--amc", str(amc1), str(amc2), "--out", str(out),
               "--subject", "1", "--action", "Walking", "Eating", "--max-frames", "240",
               "--format", "npz", "json"])
    assert rc == 0
    expected = import_clips(asf, [amc1, amc2], subject=1, actions=["Walking", "Eating"],
                            options=ImportOptions(joint_set="h36m32", max_frames=240))
    from_npz = read_h36m_npz(out)
    from_json = read_h36m_json(out)
    for corpus, joint_set in ((from_npz, "h36m32"), (from_json, "h36m17")):
        assert sorted(s.key for s in corpus.sequences) == [(1, 4, 1), (1, 14, 1)]   # Eating = 4, Walking = 14
        for seq in corpus.sequences:
            assert not seq.has_mesh
            ref = next(s for s in expected.sequences if s.key == seq.key)
            want = ref.joints_world if joint_set == "h36m32" else \
                ref.joints_world[:, list(KEEP_32_TO_17)]
            np.testing.assert_allclose(seq.joints_world, want, atol=1e-2)
    seq_npz = from_npz.sequence(1, 14, 1)
    assert seq_npz.keypoints_2d[1].shape == (100, 16, 2)   # 240 frames at 120 fps -> 100 at 50
    # bad input: a clear message and exit status 2, no traceback
    assert main(["--asf", str(tmp_path / "missing.asf"), "--amc", str(amc1),
                 "--out", str(out)]) == 2


@pytest.mark.slow
def test_parse_all_clips_speed(mocap_dir, capsys):
    total, t0 = 0, time.perf_counter()
    for asf in sorted(mocap_dir.glob("*/*.asf")):
        skel = read_asf(asf)
        for amc in sorted(asf.parent.glob("*.amc")):
            motion = read_amc(amc, skel)
            j = cmu_to_h36m32(skel, motion)
            assert np.isfinite(j).all()
            total += motion.num_frames
    dt = time.perf_counter() - t0
    assert total == 77754      # as the README says
    with capsys.disabled():
        print(f"\nparsed + FK of 28 CMU clips: {total} frames in {dt:.2f} s = "
              f"{total / dt:.0f} frames/s")
