"""Human3.6M file formats: COCO-style JSON, VideoPose3D npz, the h36m.zip preparation, conversion.

Corpora are built here (a standing pose walked around the capture space), independent of the
synthetic generator.
"""
import json
import logging
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from data.convert import json_to_npz, main as convert_main, npz_to_json
from lib.data.corpus import PoseCorpus, Sequence, SmplParams
from lib.data.errors import DataFormatError, MissingDataFileError, missing_file_error
from lib.data.formats.h36m_npz import FILE_3D, file_2d, read_h36m_npz, write_h36m_npz
from lib.data.formats.h36m_json import (annotation_path, read_h36m_json, read_h36m_regressor,
                                     write_h36m_json)
from data.prepare_data_h36m import main as prepare_main, prepare_from_archive
from lib.data.selection import subsample
from lib.geometry import h36m_calibration as calib
from lib.geometry.camera import Camera, h36m_cameras
from lib.geometry.skeleton import CORRUPTED_SEQUENCES, KEEP_17_TO_16, KEEP_32_TO_17, H36M32

ROOT = Path(__file__).resolve().parents[1]

# A standing person, world millimetres, z up (the Human3.6M world frame), H36M-17 order.
STANDING_17 = np.array([
    (0, 0, 950), (-130, 0, 940), (-140, 20, 520), (-150, 0, 90), (130, 0, 940), (140, 20, 520),
    (150, 0, 90), (0, 0, 1180), (0, 0, 1450), (0, -60, 1540), (0, 0, 1640), (170, 0, 1420),
    (200, 0, 1150), (210, 0, 900), (-170, 0, 1420), (-200, 0, 1150), (-210, 0, 900)], float)

SUBJECTS = (1, 5)
ACTIONS = (2, 12)          # Directions, Photo
NUM_FRAMES = 6
SMPL_VALID = np.array([1, 1, 0, 1, 0, 1], bool)


def walking_joints(rng, n=NUM_FRAMES, num_joints=17):
    """The standing pose turned about z and moved across the floor, plus a little jitter."""
    angle = rng.uniform(-np.pi, np.pi) + np.linspace(0, 0.5, n)
    cos, sin = np.cos(angle), np.sin(angle)
    rot = np.zeros((n, 3, 3))
    rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1], rot[:, 2, 2] = cos, -sin, sin, cos, 1
    offset = np.zeros((n, 1, 3))
    offset[:, 0, :2] = rng.uniform(-800, 800, 2) + np.linspace(0, 300, n)[:, None]
    joints = np.einsum("nij,kj->nki", rot, STANDING_17) + offset
    joints += rng.normal(0, 5, joints.shape)
    if num_joints == 32:   # the 15 extra mocap joints sit 10 mm from their nearest kept ancestor
        full = np.zeros((n, 32, 3))
        full[:, list(KEEP_32_TO_17)] = joints
        for j in range(32):
            if j not in KEEP_32_TO_17:
                full[:, j] = full[:, H36M32.parents[j]] + 10.0
        joints = full
    return joints


def make_corpus(subjects=SUBJECTS, num_joints=17, seed=0, smpl=True) -> PoseCorpus:
    """2 subjects x 2 actions x 2 sub-actions; SMPL fits on 4 of 6 frames, none for one sequence."""
    rng = np.random.default_rng(seed)
    sequences = []
    for subject in subjects:
        for action in ACTIONS:
            for sub in (1, 2):
                joints = walking_joints(rng, num_joints=num_joints)
                params = None
                if smpl and (action, sub) != (ACTIONS[-1], 2):
                    v = SMPL_VALID[:, None]
                    params = SmplParams(pose=rng.normal(0, 0.2, (NUM_FRAMES, 72)) * v,
                                        shape=rng.normal(0, 1, (NUM_FRAMES, 10)) * v,
                                        trans=rng.normal(0, 1, (NUM_FRAMES, 3)) * v,
                                        valid=SMPL_VALID.copy())
                sequences.append(Sequence(
                    subject=subject, action_idx=action, subaction_idx=sub, joints_world=joints,
                    joint_set="h36m32" if num_joints == 32 else "h36m17",
                    frame_idx=np.arange(NUM_FRAMES) * 5 + 2 * sub, smpl=params))
    return PoseCorpus(sequences, {s: h36m_cameras(s) for s in subjects}, "test")


def assert_cameras_equal(a: Camera, b: Camera):
    for name in ("R", "t", "f", "c", "k", "p"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert (a.width, a.height, a.name) == (b.width, b.height, b.name)


def assert_corpora_equal(a: PoseCorpus, b: PoseCorpus, check_2d=True):
    assert [s.key for s in sorted(a.sequences, key=lambda s: s.key)] == \
        [s.key for s in sorted(b.sequences, key=lambda s: s.key)]
    for sa in a.sequences:
        sb = b.sequence(*sa.key)
        assert sa.joint_set == sb.joint_set
        np.testing.assert_array_equal(sa.joints_world, sb.joints_world)
        np.testing.assert_array_equal(sa.frame_idx, sb.frame_idx)
        assert (sa.smpl is None) == (sb.smpl is None), sa.key
        if sa.smpl is not None:
            for name in ("pose", "shape", "trans", "valid"):
                np.testing.assert_array_equal(getattr(sa.smpl, name), getattr(sb.smpl, name))
        if check_2d:
            assert sorted(sa.keypoints_2d) == sorted(sb.keypoints_2d)
            for cam in sa.keypoints_2d:
                np.testing.assert_array_equal(sa.keypoints_2d[cam], sb.keypoints_2d[cam])
    assert sorted(a.cameras) == sorted(b.cameras)
    for subject, cams in a.cameras.items():
        assert sorted(cams) == sorted(b.cameras[subject])
        for idx, cam in cams.items():
            assert_cameras_equal(cam, b.cameras[subject][idx])


def load_json(path):
    with open(path) as fh:
        return json.load(fh)


def save_json(obj, path):
    with open(path, "w") as fh:
        json.dump(obj, fh)


def load_npz(path):
    with np.load(path, allow_pickle=True) as npz:
        return {k: npz[k].item() if npz[k].dtype == object else npz[k] for k in npz.files}


def save_npz(path, **content):
    np.savez_compressed(path, **content)


def project_vp3d(points_mm, subject, cam_idx):
    """VideoPose3D's projection written out independently: quaternion world->camera, then the
    clamped Brown distortion model on normalised coordinates."""
    q, centre = (np.asarray(v, float) for v in calib.EXTRINSICS[subject][cam_idx - 1])
    intr = calib.INTRINSICS[cam_idx - 1]
    w, u = q[0], -q[1:]                       # inverse quaternion rotates world into camera
    v = points_mm - centre
    uv = np.cross(u, v)
    cam = v + 2 * (w * uv + np.cross(u, uv))
    xy = np.clip(cam[..., :2] / cam[..., 2:], -1, 1)
    k, p = np.asarray(intr["radial_distortion"]), np.asarray(intr["tangential_distortion"])
    r2 = (xy ** 2).sum(-1, keepdims=True)
    radial = 1 + k[0] * r2 + k[1] * r2 ** 2 + k[2] * r2 ** 3
    tan = (xy * p).sum(-1, keepdims=True)
    xy = xy * (radial + tan) + p * r2
    return xy * np.asarray(intr["focal_length"]) + np.asarray(intr["center"])


@pytest.fixture
def json_root(tmp_path):
    root = tmp_path / "json"
    write_h36m_json(make_corpus(), root)
    return root


# ----------------------------------------------------------------------------- JSON
def test_json_write_read_round_trip_is_exact(tmp_path):
    corpus = make_corpus()
    regressor = np.random.default_rng(1).uniform(0, 1, (17, 40))
    paths = write_h36m_json(corpus, tmp_path, regressor=regressor)
    assert len(paths) == 4 * len(SUBJECTS) + 1
    back = read_h36m_json(tmp_path)
    assert_corpora_equal(corpus, back)
    # frames without a fit are invalid with zero parameters; one sequence has no SMPL at all
    assert back.sequence(1, 12, 2).smpl is None
    np.testing.assert_array_equal(back.sequence(5, 2, 1).smpl.valid, SMPL_VALID)
    np.testing.assert_array_equal(read_h36m_regressor(tmp_path), regressor)


def test_json_layout_fields(json_root):
    data = load_json(annotation_path(json_root, 5, "data"))
    assert len(data["images"]) == len(ACTIONS) * 2 * NUM_FRAMES * 4
    image = next(im for im in data["images"] if (im["action_idx"], im["subaction_idx"],
                                                  im["cam_idx"], im["frame_idx"]) == (12, 2, 3, 9))
    assert image["file_name"] == ("s_05_act_12_subact_02_ca_03/"
                                  "s_05_act_12_subact_02_ca_03_000010.jpg")
    assert (image["width"], image["height"], image["subject"]) == (1000, 1000, 5)
    assert image["action_name"] == "Photo"
    ann = next(a for a in data["annotations"] if a["image_id"] == image["id"])
    assert ann["keypoints_vis"] == [True] * 17
    # the box holds every projected joint of that frame
    joints = make_corpus().sequence(5, 12, 2).joints_world[1]   # frame_idx 9 = 5*1 + 2*2
    uv = project_vp3d(joints, 5, 3)
    x, y, w, h = ann["bbox"]
    assert (uv[:, 0] > x).all() and (uv[:, 0] < x + w).all()
    assert (uv[:, 1] > y).all() and (uv[:, 1] < y + h).all()
    ids = [im["id"] for s in SUBJECTS for im in
           load_json(annotation_path(json_root, s, "data"))["images"]]
    assert len(set(ids)) == len(ids)
    camera = load_json(annotation_path(json_root, 1, "camera"))
    assert sorted(camera) == ["1", "2", "3", "4"]
    np.testing.assert_allclose(camera["1"]["f"], (1145.0494384765625, 1143.7811279296875))
    smpl = load_json(annotation_path(json_root, 1, "smpl_param"))
    # sub-action 1 has frames 2, 7, 12, 17, 22, 27; the fits are on positions 0, 1, 3, 5
    assert sorted(smpl["2"]["1"], key=int) == ["2", "7", "17", "27"]
    assert sorted(smpl["2"]["1"]["2"]) == ["fitted_3d_pose", "pose", "shape", "trans"]


def test_json_accepts_smpl_camera_name_nested_trans_and_no_distortion(json_root):
    smpl_path = annotation_path(json_root, 1, "smpl_param")
    smpl = load_json(smpl_path)
    for by_frame in smpl["2"].values():
        for entry in by_frame.values():
            entry["trans"] = [entry["trans"]]
    smpl_path.unlink()
    save_json(smpl, annotation_path(json_root, 1, "smpl_camera"))
    cam_path = annotation_path(json_root, 1, "camera")
    cams = load_json(cam_path)
    for record in cams.values():
        del record["k"], record["p"]
    save_json(cams, cam_path)
    corpus = read_h36m_json(json_root, subjects=[1])
    expected = make_corpus()
    np.testing.assert_array_equal(corpus.sequence(1, 2, 2).smpl.trans,
                                  expected.sequence(1, 2, 2).smpl.trans)
    cam = corpus.cameras[1][4]
    np.testing.assert_array_equal(cam.k, np.zeros(3))
    np.testing.assert_array_equal(cam.p, np.zeros(2))
    assert (cam.width, cam.height, cam.name) == (1000, 1002, "60457274")


def test_json_frames_not_in_data_json_are_counted(json_root, caplog):
    path = annotation_path(json_root, 1, "joint_3d")
    joints = load_json(path)
    joints["2"]["1"]["1000"] = joints["2"]["1"]["2"]
    joints["7"] = {"1": {"0": joints["2"]["1"]["2"], "5": joints["2"]["1"]["2"]}}
    save_json(joints, path)
    with caplog.at_level(logging.INFO):
        corpus = read_h36m_json(json_root, subjects=[1])
    assert corpus.sequence(1, 2, 1).num_frames == NUM_FRAMES
    assert "ignored 3 frames of Human36M_subject1_joint_3d.json" in caplog.text


# ----------------------------------------------------------------------------- JSON <-> npz
def test_json_to_npz_to_json_is_exact(json_root, tmp_path):
    original = read_h36m_json(json_root)
    json_to_npz(json_root, tmp_path / "npz")
    npz_to_json(tmp_path / "npz", tmp_path / "back")
    assert_corpora_equal(original, read_h36m_json(tmp_path / "back"))
    # the public part of the npz is the real layout: float32 metres, 16 GT 2D joints
    positions = load_npz(tmp_path / "npz" / FILE_3D)["positions_3d"]
    assert sorted(positions) == ["S1", "S5"]
    assert sorted(positions["S1"]) == ["Directions", "Directions 1", "Photo", "Photo 1"]
    arr = positions["S5"]["Photo 2"]           # S5 (12, 2) by Human3.6M's table
    assert arr.dtype == np.float32 and arr.shape == (NUM_FRAMES, 32, 3)
    np.testing.assert_allclose(arr[:, list(KEEP_32_TO_17)] * 1000,
                               original.sequence(5, 12, 2).joints_world, atol=1e-3)
    two_d = load_npz(tmp_path / "npz" / file_2d("gt"))
    assert two_d["metadata"] == {"num_joints": 16, "keypoints_symmetry": [[4, 5, 6, 10, 11, 12],
                                                                          [1, 2, 3, 13, 14, 15]]}
    assert len(two_d["positions_2d"]["S1"]["Directions"]) == 4


def test_npz_to_json_to_npz_keeps_32_joint_corpus(tmp_path):
    corpus = make_corpus(num_joints=32)
    write_h36m_npz(corpus, tmp_path / "npz", joints_2d=17)
    back = read_h36m_npz(tmp_path / "npz", keypoints="gt")
    assert back.sequence(1, 2, 1).joint_set == "h36m32"
    assert back.sequence(1, 2, 1).keypoints_2d_joint_set == "h36m17"
    assert_corpora_equal(corpus, back, check_2d=False)
    npz_to_json(tmp_path / "npz", tmp_path / "json")
    as_json = read_h36m_json(tmp_path / "json")
    np.testing.assert_array_equal(as_json.sequence(5, 12, 1).joints_world,
                                  corpus.sequence(5, 12, 1).joints_world[:, list(KEEP_32_TO_17)])


def test_public_npz_layout_without_extras(tmp_path):
    corpus = make_corpus(num_joints=32)
    write_h36m_npz(corpus, tmp_path, extras=False)
    assert sorted(load_npz(tmp_path / FILE_3D)) == ["positions_3d"]
    back = read_h36m_npz(tmp_path)
    seq = back.sequence(5, 12, 2)      # 'Photo 2' by the table
    assert seq.joints_world.dtype == np.float32
    np.testing.assert_allclose(seq.joints_world, corpus.sequence(5, 12, 2).joints_world,
                               atol=1e-3)
    np.testing.assert_array_equal(seq.frame_idx, np.arange(NUM_FRAMES))
    assert seq.smpl is None
    assert_cameras_equal(back.cameras[5][2], h36m_cameras(5)[2])


class _RunsCode:
    """Unpickling this calls print (a stand-in for os.system): what a crafted npz can do."""

    def __reduce__(self):
        return (print, ("code from the npz ran",))


def test_an_npz_whose_objects_would_run_code_is_refused(tmp_path, capsys):
    corpus = make_corpus(num_joints=32)
    write_h36m_npz(corpus, tmp_path, extras=False)
    with np.load(tmp_path / FILE_3D, allow_pickle=True) as z:
        arrays = dict(z)
    np.savez(tmp_path / FILE_3D, **arrays, extra=np.array(_RunsCode(), dtype=object))
    with pytest.raises(DataFormatError, match="refusing to unpickle builtins.print"):
        read_h36m_npz(tmp_path)
    assert "code from the npz ran" not in capsys.readouterr().out
    # the same file without the payload reads, dict-of-arrays objects and all
    np.savez(tmp_path / FILE_3D, **arrays)
    assert len(read_h36m_npz(tmp_path).sequences) == len(corpus.sequences)


def test_gt_2d_is_the_distorted_projection(tmp_path):
    corpus = make_corpus()
    write_h36m_npz(corpus, tmp_path, joints_2d=16)
    views = load_npz(tmp_path / file_2d("gt"))["positions_2d"]["S5"]["Photo 2"]
    joints16 = corpus.sequence(5, 12, 2).joints_world[:, list(KEEP_17_TO_16)]
    for cam_idx, view in enumerate(views, start=1):
        assert view.dtype == np.float32 and view.shape == (NUM_FRAMES, 16, 2)
        cam = corpus.cameras[5][cam_idx]
        np.testing.assert_array_equal(
            view, cam.project(cam.world_to_camera(joints16), distort=True).astype(np.float32))
        np.testing.assert_allclose(view, project_vp3d(joints16, 5, cam_idx), atol=1e-3)
        # the distortion matters: the pinhole projection differs by more than a pixel
        pinhole = cam.project(cam.world_to_camera(joints16), distort=False)
        assert np.abs(pinhole - view).max() > 1.0


def test_16_and_17_joint_2d(tmp_path):
    corpus = make_corpus()
    write_h36m_npz(corpus, tmp_path / "j17", keypoints="cpn_ft_h36m_dbb", joints_2d=17)
    write_h36m_npz(corpus, tmp_path / "j16", keypoints="gt", joints_2d=16)
    c17 = read_h36m_npz(tmp_path / "j17", keypoints="cpn_ft_h36m_dbb")
    c16 = read_h36m_npz(tmp_path / "j16", keypoints="gt")
    s17, s16 = c17.sequence(1, 2, 2), c16.sequence(1, 2, 2)
    assert (s17.keypoints_2d_joint_set, s16.keypoints_2d_joint_set) == ("h36m17", "h36m16")
    for cam in range(1, 5):
        assert s17.keypoints_2d[cam].shape == (NUM_FRAMES, 17, 2)
        # dropping the nose (17-index 9) from the 17-joint file gives the 16-joint file
        np.testing.assert_array_equal(np.delete(s17.keypoints_2d[cam], 9, axis=1),
                                      s16.keypoints_2d[cam])
    meta = load_npz(tmp_path / "j17" / file_2d("cpn_ft_h36m_dbb"))["metadata"]
    assert meta["layout_name"] == "h36m" and meta["num_joints"] == 17
    # a corpus that carries 17-joint 2D writes them (reduced to 16) instead of re-projecting
    write_h36m_npz(c17, tmp_path / "again", joints_2d=16)
    again = read_h36m_npz(tmp_path / "again")
    np.testing.assert_array_equal(again.sequence(1, 2, 2).keypoints_2d[3],
                                  s16.keypoints_2d[3])
    with pytest.raises(ValueError, match="joints_2d must be 16 or 17"):
        write_h36m_npz(corpus, tmp_path / "bad", joints_2d=15)


def test_detections_are_trimmed_to_the_mocap_length(tmp_path, caplog):
    write_h36m_npz(make_corpus(), tmp_path, keypoints="cpn_ft_h36m_dbb", joints_2d=17)
    path = tmp_path / file_2d("cpn_ft_h36m_dbb")
    content = load_npz(path)
    views = content["positions_2d"]["S1"]["Directions"]      # S1 (2, 2)
    original = [v.copy() for v in views]
    content["positions_2d"]["S1"]["Directions"] = [
        np.concatenate([v, np.full((3 + i, 17, 2), 7.0, np.float32)]) for i, v in enumerate(views)]
    content["positions_2d"]["S2"] = {"Directions": [np.zeros((4, 17, 2), np.float32)] * 4}
    save_npz(path, **content)
    with caplog.at_level(logging.INFO):
        corpus = read_h36m_npz(tmp_path, keypoints="cpn_ft_h36m_dbb")
    seq = corpus.sequence(1, 2, 2)
    for cam in range(1, 5):
        np.testing.assert_array_equal(seq.keypoints_2d[cam], original[cam - 1])
    assert "trimmed 18 frames in 4 camera views" in caplog.text   # 3 + 4 + 5 + 6
    assert "ignoring subjects ['S2']" in caplog.text


# ----------------------------------------------------------------------------- errors
def test_missing_files_name_path_and_remedy(tmp_path, json_root):
    with pytest.raises(MissingDataFileError) as err:
        read_h36m_json(tmp_path / "nothing")
    assert str(tmp_path / "nothing" / "Human36M" / "annotations") in str(err.value)
    assert "synthesize.py" in str(err.value)
    annotation_path(json_root, 5, "smpl_param").unlink()
    with pytest.raises(MissingDataFileError, match="Human36M_subject5_smpl_param.json"):
        read_h36m_json(json_root)
    with pytest.raises(MissingDataFileError, match="J_regressor_h36m_correct.npy"):
        read_h36m_regressor(json_root)
    with pytest.raises(FileNotFoundError, match="gdown"):
        read_h36m_npz(tmp_path)
    write_h36m_npz(make_corpus(), tmp_path / "npz")
    with pytest.raises(MissingDataFileError) as err:
        read_h36m_npz(tmp_path / "npz", keypoints="cpn_ft_h36m_dbb")
    assert str(tmp_path / "npz" / "data_2d_h36m_cpn_ft_h36m_dbb.npz") in str(err.value)
    assert "https://dl.fbaipublicfiles.com/video-pose-3d/data_2d_h36m_cpn_ft_h36m_dbb.npz" \
        in str(err.value)
    assert isinstance(missing_file_error("x.npz", "how"), FileNotFoundError)


def _drop_cam_idx(root):
    path = annotation_path(root, 1, "data")
    data = load_json(path)
    del data["images"][3]["cam_idx"]
    save_json(data, path)
    return path, "images[3].cam_idx"


def _drop_frame(root):
    path = annotation_path(root, 1, "joint_3d")
    joints = load_json(path)
    del joints["12"]["2"]["9"]
    save_json(joints, path)
    return path, "12/2/9"


def _nan_joint(root):
    path = annotation_path(root, 1, "joint_3d")
    joints = load_json(path)
    joints["2"]["1"]["12"][4][1] = float("nan")
    save_json(joints, path)
    return path, "2/1/12"


def _nan_smpl(root):
    path = annotation_path(root, 5, "smpl_param")
    smpl = load_json(path)
    smpl["2"]["2"]["9"]["shape"][0] = float("nan")
    save_json(smpl, path)
    return path, "2/2/9/shape"


def _wrong_subject(root):
    path = annotation_path(root, 5, "data")
    data = load_json(path)
    data["images"][7]["subject"] = 3
    save_json(data, path)
    return path, "images[7].subject"


def _wrong_joint_shape(root):
    path = annotation_path(root, 1, "joint_3d")
    joints = load_json(path)
    joints["2"]["2"]["14"] = joints["2"]["2"]["14"][:16]
    save_json(joints, path)
    return path, "2/2/14"


def _wrong_pose_length(root):
    path = annotation_path(root, 1, "smpl_param")
    smpl = load_json(path)
    smpl["12"]["1"]["7"]["pose"] = smpl["12"]["1"]["7"]["pose"][:69]
    save_json(smpl, path)
    return path, "12/1/7/pose"


def _wrong_rotation_shape(root):
    path = annotation_path(root, 5, "camera")
    cams = load_json(path)
    cams["2"]["R"] = cams["2"]["R"][:2]
    save_json(cams, path)
    return path, "2/R"


def _unknown_action(root):
    path = annotation_path(root, 5, "data")
    data = load_json(path)
    data["images"][0]["action_idx"] = 17
    save_json(data, path)
    return path, "images[0].action_idx"


@pytest.mark.parametrize("corrupt", [_drop_cam_idx, _drop_frame, _nan_joint, _nan_smpl,
                                     _wrong_subject, _wrong_joint_shape, _wrong_pose_length,
                                     _wrong_rotation_shape, _unknown_action])
def test_malformed_json_names_file_and_key(json_root, corrupt):
    path, key = corrupt(json_root)
    with pytest.raises(DataFormatError) as err:
        read_h36m_json(json_root)
    assert str(path) in str(err.value) and f"'{key}'" in str(err.value)


def test_bad_regressor_is_rejected(tmp_path):
    path = tmp_path / "Human36M" / "J_regressor_h36m_correct.npy"
    path.parent.mkdir(parents=True)
    np.save(path, -np.ones((17, 5)))
    with pytest.raises(DataFormatError, match="negative"):
        read_h36m_regressor(tmp_path)
    np.save(path, np.ones((16, 5)))
    with pytest.raises(DataFormatError, match=r"\(16, 5\)"):
        read_h36m_regressor(tmp_path)


def _npz_edit(edit):
    """Apply ``edit(content_3d, content_2d)`` to the written npz pair; returns the key."""
    def apply(root):
        c3, c2 = load_npz(root / FILE_3D), load_npz(root / file_2d("gt"))
        path, key = edit(root, c3, c2)
        save_npz(root / FILE_3D, **c3)
        save_npz(root / file_2d("gt"), **c2)
        return path, key
    apply.__name__ = edit.__name__
    return apply


@_npz_edit
def npz_missing_positions(root, c3, c2):
    c3["legacy"] = c3.pop("positions_3d")
    return root / FILE_3D, "positions_3d"


@_npz_edit
def npz_nan_2d(root, c3, c2):
    c2["positions_2d"]["S5"]["Photo"][2][3, 4, 0] = np.nan
    return root / file_2d("gt"), "positions_2d/S5/Photo[2]"


@_npz_edit
def npz_wrong_3d_shape(root, c3, c2):
    c3["positions_3d"]["S1"]["Directions"] = np.zeros((NUM_FRAMES, 15, 3), np.float32)
    return root / FILE_3D, "positions_3d/S1/Directions"


@_npz_edit
def npz_bad_subject_key(root, c3, c2):
    c3["positions_3d"]["Subject1"] = c3["positions_3d"].pop("S1")
    return root / FILE_3D, "positions_3d/Subject1"


@_npz_edit
def npz_uncalibrated_subject(root, c3, c2):
    for key in list(c3):
        if key != "positions_3d":
            del c3[key]
    c3["positions_3d"]["S99"] = c3["positions_3d"].pop("S1")
    c2["positions_2d"]["S99"] = c2["positions_2d"].pop("S1")
    return root / FILE_3D, "positions_3d/S99"


@_npz_edit
def npz_missing_action_2d(root, c3, c2):
    del c2["positions_2d"]["S1"]["Photo 1"]
    return root / file_2d("gt"), "positions_2d/S1/Photo 1"


@_npz_edit
def npz_short_2d(root, c3, c2):
    c2["positions_2d"]["S5"]["Directions 1"][0] = c2["positions_2d"]["S5"]["Directions 1"][0][:4]
    return root / file_2d("gt"), "positions_2d/S5/Directions 1[0]"


@_npz_edit
def npz_mixed_joint_counts(root, c3, c2):
    c2["positions_2d"]["S5"]["Directions 1"][1] = np.zeros((NUM_FRAMES, 17, 2), np.float32)
    return root / file_2d("gt"), "positions_2d/S5/Directions 1[1]"


@pytest.mark.parametrize("corrupt", [npz_missing_positions, npz_nan_2d, npz_wrong_3d_shape,
                                     npz_bad_subject_key, npz_uncalibrated_subject,
                                     npz_missing_action_2d, npz_short_2d,
                                     npz_mixed_joint_counts])
def test_malformed_npz_names_file_and_key(tmp_path, corrupt):
    write_h36m_npz(make_corpus(), tmp_path)
    path, key = corrupt(tmp_path)
    with pytest.raises(DataFormatError) as err:
        read_h36m_npz(tmp_path)
    assert str(path) in str(err.value) and f"'{key}'" in str(err.value)


def test_unknown_subject_requested(tmp_path):
    write_h36m_npz(make_corpus(), tmp_path)
    with pytest.raises(DataFormatError, match="'positions_3d/S3'.*unknown subject"):
        read_h36m_npz(tmp_path, subjects=[1, 3])
    assert read_h36m_npz(tmp_path, subjects=[5]).subjects == [5]


def test_corrupt_npz_file(tmp_path):
    (tmp_path / FILE_3D).write_bytes(b"not a zip file at all")
    with pytest.raises(DataFormatError, match="not a readable .npz"):
        read_h36m_npz(tmp_path)


# ----------------------------------------------------------------------------- selection
def test_subsample_counts_every_frame(caplog):
    corpus = make_corpus()
    # the stride applies to the original frame numbers (5i + 2 * sub), not to array positions
    _, stats = subsample(corpus, stride=5)
    assert stats["frames_kept"] == 0 and stats["skipped_stride"] == 8 * NUM_FRAMES
    corpus = PoseCorpus([Sequence(s.subject, s.action_idx, s.subaction_idx, s.joints_world,
                                  frame_idx=np.arange(NUM_FRAMES) * 5, smpl=s.smpl)
                         for s in corpus.sequences], corpus.cameras)
    with caplog.at_level(logging.INFO):
        kept, stats = subsample(corpus, stride=10, exclude=[(1, 2, 1), (9, 5, 2)])
    # frame_idx 0, 5, ..., 25: the multiples of 10 are at positions 0, 2, 4
    assert stats["frames_in"] == 8 * NUM_FRAMES
    assert stats["skipped_excluded"] == NUM_FRAMES
    assert stats["sequences_excluded"] == [(1, 2, 1)]
    assert stats["frames_kept"] == 7 * 3 and stats["skipped_stride"] == 7 * 3
    # SMPL validity at positions 0, 2, 4 is (1, 0, 0): 2 unfitted frames in each of the 5 kept
    # sequences with SMPL, plus all 3 frames of the 2 sequences without SMPL
    assert stats["kept_without_smpl"] == 5 * 2 + 2 * 3
    assert stats["sequences_in"] == 8 and stats["sequences_kept"] == 7
    seq = kept.sequence(5, 2, 2)
    np.testing.assert_array_equal(seq.frame_idx, [0, 10, 20])
    np.testing.assert_array_equal(seq.joints_world, corpus.sequence(5, 2, 2).joints_world[::2])
    np.testing.assert_array_equal(seq.smpl.valid, [True, False, False])
    np.testing.assert_array_equal(seq.smpl.pose, corpus.sequence(5, 2, 2).smpl.pose[::2])
    assert "21 of 48 frames kept (stride 10)" in caplog.text
    assert "16 kept frames have no SMPL fit" in caplog.text
    with pytest.raises(ValueError, match="positive integer"):
        subsample(corpus, stride=0)
    full, stats = subsample(corpus, stride=1, exclude=CORRUPTED_SEQUENCES)
    assert stats["frames_kept"] == 8 * NUM_FRAMES and full.sequences[0] is corpus.sequences[0]


# ----------------------------------------------------------------------------- h36m.zip
def _write_h5(path, positions_mm, dataset="3D_positions"):
    with h5py.File(path, "w") as hf:
        hf.create_dataset(dataset, data=positions_mm)


def make_archive(tmp_path, files=None):
    """A tiny h36m.zip: (subject, file action name) -> (N, 32, 3) mm."""
    rng = np.random.default_rng(3)
    files = files or {("S1", "Directions"): walking_joints(rng, 5, 32),
                      ("S1", "TakingPhoto 1"): walking_joints(rng, 4, 32),
                      ("S11", "Directions"): walking_joints(rng, 3, 32),
                      ("S11", "Walking 1"): walking_joints(rng, 6, 32)}
    archive = tmp_path / "h36m.zip"
    staging = tmp_path / "staging"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for (subject, action), joints in files.items():
            h5 = staging / subject / f"{action}.h5"
            h5.parent.mkdir(parents=True, exist_ok=True)
            _write_h5(h5, joints.transpose(1, 2, 0).reshape(96, -1))   # (96, N) as the archive
            zf.write(h5, f"h36m/{subject}/MyPoses/3D_positions/{action}.h5")
        zf.writestr("h36m/S1/StackedHourglass/Directions.54138969.h5", b"unused")
    return archive, files


def test_prepare_from_tiny_archive(tmp_path, capsys):
    archive, files = make_archive(tmp_path)
    out = tmp_path / "out"
    assert prepare_main(["--from-archive", str(archive), "--output-dir", str(out)]) == 0
    assert archive.is_file()     # the user's archive stays
    positions = load_npz(out / FILE_3D)["positions_3d"]
    assert {s: sorted(a) for s, a in positions.items()} == {"S1": ["Directions", "Photo 1"],
                                                           "S11": ["Walking 1"]}
    arr = positions["S1"]["Photo 1"]
    assert arr.dtype == np.float32 and arr.shape == (4, 32, 3)
    np.testing.assert_array_equal(arr, (files["S1", "TakingPhoto 1"] / 1000).astype(np.float32))
    two_d = load_npz(out / file_2d("gt"))
    assert two_d["metadata"]["num_joints"] == 16 and "layout_name" not in two_d["metadata"]
    views = two_d["positions_2d"]["S11"]["Walking 1"]
    joints16 = positions["S11"]["Walking 1"].astype(np.float64)[:, [0, 1, 2, 3, 6, 7, 8, 12, 13,
                                                                  15, 17, 18, 19, 25, 26, 27]]
    for cam_idx, view in enumerate(views, start=1):
        np.testing.assert_allclose(view, project_vp3d(joints16 * 1000, 11, cam_idx), atol=1e-3)
    corpus = read_h36m_npz(out)
    assert corpus.sequence(1, 12, 1).joint_set == "h36m32"
    # outputs are not overwritten silently
    assert prepare_main(["--from-archive", str(archive), "--output-dir", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_prepare_errors(tmp_path, capsys):
    assert prepare_main(["--from-archive", str(tmp_path / "h36m.zip"),
                         "--output-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "h36m.zip") in err and "gdown" in err
    (tmp_path / "h36m.zip").write_bytes(b"PK\x03\x04 truncated download")
    assert prepare_main(["--from-archive", str(tmp_path / "h36m.zip"),
                         "--output-dir", str(tmp_path)]) == 2
    assert "not a readable zip archive" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    archive, _ = make_archive(bad, {("S1", "Eating"): walking_joints(np.random.default_rng(0),
                                                                     3, 32)})
    with zipfile.ZipFile(archive, "a") as zf:
        h5 = bad / "x.h5"
        _write_h5(h5, np.zeros((96, 2)), dataset="poses")
        zf.write(h5, "h36m/S5/MyPoses/3D_positions/Greeting.h5")
    with pytest.raises(DataFormatError, match="Greeting.h5: key '3D_positions': missing"):
        prepare_from_archive(archive, tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / FILE_3D).exists()


# ----------------------------------------------------------------------------- CLI
def test_convert_cli_round_trip(json_root, tmp_path, capsys):
    assert convert_main(["json2npz", "--src", str(json_root), "--dst", str(tmp_path / "n"),
                         "--joints-2d", "17"]) == 0
    assert convert_main(["npz2json", "--src", str(tmp_path / "n"), "--dst", str(tmp_path / "j"),
                         "--subjects", "5"]) == 0
    assert read_h36m_json(tmp_path / "j").subjects == [5]
    assert read_h36m_npz(tmp_path / "n").sequence(1, 2, 1).keypoints_2d_joint_set == "h36m17"
    assert convert_main(["npz2json", "--src", str(tmp_path / "none"), "--dst",
                         str(tmp_path / "j")]) == 2
    assert "data_3d_h36m.npz" in capsys.readouterr().err


def test_scripts_run_from_anywhere(tmp_path):
    """`python data/convert.py` works without the repo on PYTHONPATH and errors cleanly."""
    result = subprocess.run([sys.executable, str(ROOT / "data" / "convert.py"), "npz2json",
                             "--src", str(tmp_path), "--dst", str(tmp_path / "j")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "missing data file" in result.stderr and "Traceback" not in result.stderr


# ----------------------------------------------------------------------------- writer details
def test_json_writes_trans_nested_and_visibility_booleans(json_root):
    smpl = load_json(annotation_path(json_root, 1, "smpl_param"))
    entry = smpl["2"]["1"]["2"]
    assert len(entry["trans"]) == 1 and len(entry["trans"][0]) == 3     # [[x, y, z]]
    expected = make_corpus().sequence(1, 2, 1).smpl.trans[0]
    np.testing.assert_array_equal(entry["trans"][0], expected)
    ann = load_json(annotation_path(json_root, 1, "data"))["annotations"][0]
    assert ann["keypoints_vis"] == [True] * 17
    assert all(type(v) is bool for v in ann["keypoints_vis"])


def test_degenerate_boxes_are_dropped_as_the_official_loader_does(json_root, caplog):
    from lib.data.formats.h36m_json import degenerate_boxes
    # process_bbox: clip to the image, keep iff w*h > 0 and x2 >= x1 and y2 >= y1
    boxes = np.array([[10, 10, 50, 80], [10, 10, 0, 80], [10, 10, 50, -3], [1200, 10, 50, 50],
                      [-100, -100, 50, 50], [-100, -100, 150, 150], [999, 999, 1, 1]], float)
    np.testing.assert_array_equal(degenerate_boxes(boxes, np.full(7, 1000), np.full(7, 1000)),
                                  [False, True, True, True, False, False, False])
    # x=-100, w=50: x1 = 0, x2 = min(999, 0 + 49) = 49 >= 0, kept (as in Pose2Mesh's code)
    path = annotation_path(json_root, 1, "data")
    data = load_json(path)
    image = {im["id"]: im for im in data["images"]}
    hit = []
    for ann in data["annotations"]:
        im = image[ann["image_id"]]
        key = (im["action_idx"], im["subaction_idx"], im["cam_idx"], im["frame_idx"])
        if key == (2, 1, 2, 7):
            ann["bbox"][2] = 0.0                   # zero width
            hit.append(key)
        elif key == (12, 1, 4, 12):
            ann["bbox"][0] = 5000.0                # right of the image
            hit.append(key)
    data["annotations"] = [a for a in data["annotations"]
                           if (lambda im: (im["action_idx"], im["subaction_idx"], im["cam_idx"],
                                           im["frame_idx"]))(image[a["image_id"]])
                           != (2, 2, 1, 4)]        # one image without an annotation
    save_json(data, path)
    assert len(hit) == 2
    with caplog.at_level(logging.INFO):
        corpus = read_h36m_json(json_root, subjects=[1])
    assert "2 image(s) dropped for a degenerate box" in caplog.text
    assert "and 1 without an annotation" in caplog.text
    seq = corpus.sequence(1, 2, 1)
    assert not seq.frames_of_camera(2)[1] and seq.frames_of_camera(1)[1]   # frame 7 = pos 1
    assert not corpus.sequence(1, 2, 2).frames_of_camera(1)[0]
    from lib.data.lifting import LiftingSpec, build_arrays
    arrays = build_arrays(corpus, LiftingSpec(num_joints=17))
    assert len(arrays["input_2d"]) == len(ACTIONS) * 2 * NUM_FRAMES * 4 - 3


def test_npz_objects_pickle_only_numpy_124_globals(tmp_path):
    """The dicts in the npz files are pickled under names numpy 1.24 resolves too."""
    from lib.body.portable_pickle import pickled_globals
    write_h36m_npz(make_corpus(), tmp_path, keypoints="cpn_ft_h36m_dbb", joints_2d=17)
    allowed = {"numpy.core.multiarray._reconstruct", "numpy.core.multiarray.scalar",
               "numpy.ndarray", "numpy.dtype", "_codecs.encode"}
    for name in (FILE_3D, file_2d("cpn_ft_h36m_dbb")):
        with zipfile.ZipFile(tmp_path / name) as zf:
            for member in zf.namelist():
                with zf.open(member) as fp:
                    np.lib.format.read_magic(fp)
                    _, _, dtype = np.lib.format.read_array_header_1_0(fp)
                    if dtype.hasobject:
                        found = pickled_globals(fp.read())
                        assert found <= allowed and "numpy.core.multiarray._reconstruct" in found
    # numpy's own reader still opens them, and ours gives the corpus back
    with np.load(tmp_path / FILE_3D, allow_pickle=True) as z:
        assert z["positions_3d"].item()["S1"]["Directions"].shape == (NUM_FRAMES, 32, 3)
    back = read_h36m_npz(tmp_path, keypoints="cpn_ft_h36m_dbb")
    np.testing.assert_array_equal(back.sequence(5, 12, 2).joints_world[:, list(KEEP_32_TO_17)],
                                  make_corpus().sequence(5, 12, 2).joints_world)


def test_convert_replaces_only_its_own_outputs(json_root, tmp_path, capsys):
    dst = tmp_path / "npz"
    args = ["json2npz", "--src", str(json_root), "--dst", str(dst)]
    assert convert_main(args) == 0
    manifest = load_json(dst / "pose_data_manifest.json")
    assert sorted(manifest["files"]) == sorted([FILE_3D, file_2d("gt")])
    assert convert_main(args) == 0                       # its own, unchanged outputs: replaced
    # a file changed since (or real data) is refused, and left as it is
    np.savez(dst / FILE_3D, positions_3d=np.zeros(3))
    mine = (dst / FILE_3D).read_bytes()
    capsys.readouterr()
    assert convert_main(args) == 2
    err = capsys.readouterr().err
    assert str(dst / FILE_3D) in err and "--overwrite" in err
    assert (dst / FILE_3D).read_bytes() == mine
    assert convert_main(args + ["--overwrite"]) == 0
    assert len(read_h36m_npz(dst).sequences) == len(make_corpus().sequences)
    # npz2json into a folder holding real-looking JSON: refused without --overwrite
    back = tmp_path / "back"
    (back / "Human36M" / "annotations").mkdir(parents=True)
    annotation_path(back, 1, "joint_3d").write_text("{}")
    assert convert_main(["npz2json", "--src", str(dst), "--dst", str(back)]) == 2
    assert annotation_path(back, 1, "joint_3d").read_text() == "{}"
    assert not annotation_path(back, 1, "data").exists()
