"""The synthetic Human3.6M: real layouts, deterministic, and 3D / 2D / mesh that agree."""
import json

import numpy as np
import pytest

from data.h36m_npz import read_h36m_npz
from data.Human36M.coco_json import read_h36m_json, read_h36m_regressor
from data.synthesize import SynthesisError, generate_synthetic_h36m
from lib.body.smpl import BodyModel, regress_joints
from lib.geometry.skeleton import ACTION_IDX, H36M17, convert_joints

ARGS = dict(seed=5, frames_per_sequence=30, subjects=(1, 9), actions=("Walking", "Sitting"),
            log=lambda *a: None)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("s") / "Synthetic"
    generate_synthetic_h36m(out_dir=out, **ARGS)
    return out


def test_real_layout(synth):
    ann = synth / "Human36M" / "annotations"
    for s in (1, 9):
        for part in ("data", "camera", "joint_3d", "smpl_param"):
            assert (ann / f"Human36M_subject{s}_{part}.json").is_file()
    for name in ("data_3d_h36m.npz", "data_2d_h36m_gt.npz", "data_2d_h36m_cpn_ft_h36m_dbb.npz",
                 "Human36M/J_regressor_h36m_correct.npy", "manifest.json",
                 "smpl/basicModel_neutral_lbs_10_207_0_v1.0.0.pkl"):
        assert (synth / name).is_file(), name
    data = json.loads((ann / "Human36M_subject1_data.json").read_text())
    img = data["images"][0]
    assert {"file_name", "width", "height", "action_idx", "subaction_idx", "cam_idx",
            "frame_idx"} <= set(img)
    # image sizes follow the calibration: cams 1 and 4 are 1000x1002
    sizes = {(i["cam_idx"], i["width"], i["height"]) for i in data["images"]}
    assert sizes == {(1, 1000, 1002), (2, 1000, 1000), (3, 1000, 1000), (4, 1000, 1002)}


def test_deterministic(synth, tmp_path):
    again = tmp_path / "again"
    generate_synthetic_h36m(out_dir=again, **ARGS)
    for name in ("data_3d_h36m.npz", "Human36M/annotations/Human36M_subject9_smpl_param.json"):
        a, b = (synth / name).read_bytes(), (again / name).read_bytes()
        if name.endswith(".json"):
            assert a == b
        else:
            za, zb = np.load(synth / name, allow_pickle=True), np.load(again / name, allow_pickle=True)
            pa, pb = za["positions_3d"].item(), zb["positions_3d"].item()
            for s in pa:
                for act in pa[s]:
                    assert np.array_equal(pa[s][act], pb[s][act])
    # an existing set with other parameters is not overwritten silently
    with pytest.raises(SynthesisError, match="--force"):
        generate_synthetic_h36m(out_dir=again, **dict(ARGS, seed=6))


def test_joints_are_the_regressed_mesh(synth):
    corpus = read_h36m_json(synth)
    body = BodyModel.from_dir(synth / "smpl")
    reg = read_h36m_regressor(synth)
    for seq in corpus.sequences[:3]:
        sm = seq.smpl
        v, _ = body.forward(sm.pose, sm.shape, sm.trans)
        joints = regress_joints(v, reg).numpy() * 1000.0
        ok = sm.valid
        assert np.abs(joints[ok] - seq.joints_world[ok]).max() < 0.05     # mm (float32 path)


def test_plausible_motion(synth):
    corpus = read_h36m_json(synth)
    ankles = [H36M17.index("R_Ankle"), H36M17.index("L_Ankle")]
    for seq in corpus.sequences:
        j = seq.joints_world
        assert np.isfinite(j).all()
        # bone lengths of one subject stay (nearly) constant: the body is rigid-limbed
        bones = np.linalg.norm(j[:, 1:] - j[:, list(H36M17.parents[1:])], axis=-1)
        assert (bones.std(0) / bones.mean(0)).max() < 0.05
        # smooth: accelerations bounded at 50 fps (m/s^2)
        acc = np.diff(j, 2, axis=0) * 50 ** 2 / 1000
        assert np.linalg.norm(acc, axis=-1).max() < 60
        if seq.action_idx == ACTION_IDX["Walking"]:
            lowest = j[:, ankles, 2].min(1)
            assert 0 < np.median(lowest) < 150          # ankles just above the floor (mm)


def test_2d_agrees_with_cameras_and_stays_in_image(synth):
    gt = read_h36m_npz(synth, keypoints="gt")
    cpn = read_h36m_npz(synth, keypoints="cpn_ft_h36m_dbb")
    diffs = []
    for seq, det in zip(gt.sequences, cpn.sequences):
        assert seq.key == det.key
        for cam_idx, cam in gt.cameras[seq.subject].items():
            proj = cam.project(cam.world_to_camera(seq.joints_world), distort=True)
            proj16 = convert_joints(proj, seq.joint_set, "h36m16") if seq.joint_set != "h36m16" else proj
            np.testing.assert_allclose(seq.keypoints_2d[cam_idx], proj16, atol=0.01)
            assert (proj >= 0).all() and (proj[..., 0] < cam.width).all() \
                and (proj[..., 1] < cam.height).all()
            kp17 = convert_joints(proj, seq.joint_set, "h36m17") if seq.joint_set == "h36m32" else proj
            diffs.append(np.linalg.norm(det.keypoints_2d[cam_idx] - kp17, axis=-1))
    err = np.concatenate([d.ravel() for d in diffs])
    assert 2.0 < np.median(err) < 20.0                   # a detector's few pixels, not GT
