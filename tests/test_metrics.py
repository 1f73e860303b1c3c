"""Pose metrics against hand-computed values and their defining invariances."""
import math

import numpy as np
import pytest
import torch

from lib.geometry.metrics import (format_action_table, mpjpe, mpjpe_per_sample, mpjve,
                                  n_mpjpe, n_mpjpe_per_sample, pa_mpjpe, pa_mpjpe_per_sample,
                                  per_action_table, rigid_align)
from lib.geometry.skeleton import ACTIONS


def random_rotation(rng):
    q = rng.normal(size=4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


@pytest.fixture
def poses():
    rng = np.random.default_rng(0)
    return rng.normal(scale=300.0, size=(5, 4, 17, 3))   # (B, T, J, 3) mm


def test_mpjpe_hand_computed_345():
    gt = np.zeros((2, 3, 3))
    pred = gt.copy()
    pred[0, 0] = [3, 4, 0]       # 5
    pred[0, 1] = [0, 6, 8]       # 10
    pred[1, 2] = [5, 0, 12]      # 13
    # sample 0: (5 + 10 + 0) / 3 = 5 ; sample 1: 13 / 3
    np.testing.assert_allclose(mpjpe_per_sample(pred, gt), [5.0, 13.0 / 3])
    assert mpjpe(pred, gt) == pytest.approx(28.0 / 6)


def test_mpjpe_of_shifted_copy_is_shift_norm(poses):
    shift = np.array([10.0, -20.0, 5.0])
    assert mpjpe(poses + shift, poses) == pytest.approx(np.linalg.norm(shift))
    np.testing.assert_allclose(mpjpe_per_sample(poses + shift, poses),
                               np.full(poses.shape[:2], np.linalg.norm(shift)))


def test_pa_mpjpe_of_similarity_copy_is_zero(poses):
    rng = np.random.default_rng(1)
    B, T = poses.shape[:2]
    R = np.stack([random_rotation(rng) for _ in range(B * T)]).reshape(B, T, 3, 3)
    scale = rng.uniform(0.5, 2.0, size=(B, T, 1, 1))
    trans = rng.normal(scale=1000.0, size=(B, T, 1, 3))
    moved = scale * poses @ np.swapaxes(R, -1, -2) + trans
    assert mpjpe(moved, poses) > 100           # really moved
    err = pa_mpjpe_per_sample(moved, poses)
    assert err.shape == (B, T)
    assert err.max() < 1e-9
    np.testing.assert_allclose(rigid_align(moved, poses), poses, atol=1e-9)


def test_pa_mpjpe_does_not_undo_a_reflection(poses):
    mirrored = poses * np.array([-1.0, 1.0, 1.0])
    # A mirror image of a generic 3D point set is not a rotation of it.
    assert pa_mpjpe_per_sample(mirrored, poses).min() > 1.0
    # Without the fix, an improper orthogonal map would align it exactly: check that the
    # returned alignment is a proper similarity (its linear part has positive determinant).
    aligned = rigid_align(mirrored[0, 0], poses[0, 0])
    A, *_ = np.linalg.lstsq(np.c_[mirrored[0, 0], np.ones(17)], aligned, rcond=None)
    assert np.linalg.det(A[:3]) > 0


def test_pa_mpjpe_is_bounded_by_rigid_mpjpe(poses):
    rng = np.random.default_rng(2)
    noisy = poses + rng.normal(scale=20.0, size=poses.shape)
    pa = pa_mpjpe_per_sample(noisy, poses)
    assert np.all(pa <= mpjpe_per_sample(noisy, poses) + 1e-9)
    assert np.all(pa > 0)
    assert pa_mpjpe(noisy, poses) == pytest.approx(pa.mean())


def test_n_mpjpe_of_scaled_copy_is_zero(poses):
    scale = np.linspace(0.5, 2.0, 20).reshape(5, 4, 1, 1)
    assert mpjpe(scale * poses, poses) > 10
    assert n_mpjpe_per_sample(scale * poses, poses).max() < 1e-9
    assert n_mpjpe(scale * poses, poses) < 1e-9
    # ...but scale-only alignment does not undo a shift.
    assert n_mpjpe(poses + 100.0, poses) > 10


def test_n_mpjpe_hand_computed():
    gt = np.array([[[1.0, 0, 0], [0, 1.0, 0]]])
    pred = np.array([[[2.0, 0, 0], [0, 0, 2.0]]])
    # s = <gt,pred>/<pred,pred> = 2/8 = 1/4 ; s*pred = (0.5,0,0), (0,0,0.5)
    # errors: 0.5 and sqrt(1 + 0.25)
    expect = (0.5 + math.sqrt(1.25)) / 2
    assert n_mpjpe(pred, gt) == pytest.approx(expect)


def test_mpjve_constant_velocity_shift_is_zero():
    rng = np.random.default_rng(3)
    gt = np.cumsum(rng.normal(size=(30, 17, 3)), axis=0)
    velocity = np.array([3.0, -1.0, 2.0])
    shifted = gt + np.arange(30)[:, None, None] * velocity   # offset grows linearly
    assert mpjpe(shifted, gt) > 10
    np.testing.assert_allclose(mpjve(shifted, gt), np.linalg.norm(velocity), rtol=1e-12)
    assert mpjve(gt + 50.0, gt) == pytest.approx(0.0, abs=1e-12)


def test_mpjve_hand_computed_and_time_axis():
    gt = np.zeros((3, 1, 3))
    pred = np.zeros((3, 1, 3))
    pred[1, 0] = [3, 4, 0]       # velocities: (3,4,0), (-3,-4,0) -> errors 5, 5
    assert mpjve(pred, gt) == pytest.approx(5.0)
    # time on axis 1 of (B, T, J, 3): same numbers
    assert mpjve(pred[None], gt[None], time_axis=1) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="time_axis"):
        mpjve(pred, gt, time_axis=-1)


def test_torch_numpy_agreement_and_shapes(poses):
    rng = np.random.default_rng(4)
    pred = poses + rng.normal(scale=30.0, size=poses.shape)
    tp, tg = torch.tensor(pred, dtype=torch.float32), torch.tensor(poses, dtype=torch.float32)
    for fn in (mpjpe, pa_mpjpe, n_mpjpe):
        out = fn(tp, tg)
        assert isinstance(out, torch.Tensor) and out.dim() == 0
        assert out.item() == pytest.approx(float(fn(pred, poses)), rel=1e-5)
    for fn in (mpjpe_per_sample, pa_mpjpe_per_sample, n_mpjpe_per_sample):
        out = fn(tp, tg)
        assert tuple(out.shape) == (5, 4) and out.dtype == torch.float32
        np.testing.assert_allclose(out.numpy(), fn(pred, poses), rtol=1e-4)
    ra = rigid_align(tp, tg)
    assert ra.dtype == torch.float32 and ra.shape == tp.shape
    np.testing.assert_allclose(ra.numpy(), rigid_align(pred, poses), atol=1e-2)
    assert mpjve(tp, tg).item() == pytest.approx(float(mpjve(pred, poses)), rel=1e-5)
    # numpy gt with a torch prediction is accepted
    assert mpjpe(tp, poses).item() == pytest.approx(float(mpjpe(pred, poses)), rel=1e-5)


def test_single_pose_and_flat_batch():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(17, 3)), rng.normal(size=(17, 3))
    assert np.ndim(pa_mpjpe_per_sample(a, b)) == 0
    flat = pa_mpjpe_per_sample(np.stack([a, b]), np.stack([b, a]))
    assert flat.shape == (2,)
    assert flat[0] == pytest.approx(float(pa_mpjpe_per_sample(a, b)))


def test_mpjpe_is_differentiable():
    pred = torch.zeros(2, 17, 3, requires_grad=True)
    gt = torch.ones(2, 17, 3)
    mpjpe(pred, gt).backward()
    # d/dpred mean ||pred-gt|| = (pred-gt)/||pred-gt|| / (B*J)
    np.testing.assert_allclose(pred.grad.numpy(), -1 / math.sqrt(3) / 34, rtol=1e-6)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="same shape"):
        mpjpe(np.zeros((2, 17, 3)), np.zeros((2, 16, 3)))
    with pytest.raises(ValueError, match="3D points"):
        rigid_align(np.zeros((17, 2)), np.zeros((17, 2)))


def test_degenerate_prediction_does_not_crash():
    gt = np.random.default_rng(6).normal(size=(17, 3))
    pred = np.zeros((17, 3))
    aligned = rigid_align(pred, gt)
    np.testing.assert_allclose(aligned, np.broadcast_to(gt.mean(0), gt.shape), atol=1e-12)


def test_per_action_table_hand_computed():
    # Directions (2): 10, 20 ; Walking (14): 40 ; WalkTogether (16): 1, 2, 3
    err = np.array([10.0, 20.0, 40.0, 1.0, 2.0, 3.0])
    pa = err / 2
    act = np.array([2, 2, 14, 16, 16, 16])
    t = per_action_table(err, pa, act)
    assert list(t["actions"]) == ["Directions", "Walking", "WalkTogether"]
    assert t["actions"]["Directions"] == {"mpjpe": 15.0, "pa_mpjpe": 7.5, "frames": 2}
    assert t["actions"]["WalkTogether"]["mpjpe"] == pytest.approx(2.0)
    assert t["average"]["mpjpe"] == pytest.approx((15 + 40 + 2) / 3)
    assert t["average"]["pa_mpjpe"] == pytest.approx((15 + 40 + 2) / 6)
    assert t["average"]["num_actions"] == 3
    assert t["total"]["mpjpe"] == pytest.approx(76 / 6)
    assert t["total"]["frames"] == 6
    text = format_action_table(t)
    lines = text.splitlines()
    assert len(lines) == 2 + 15 + 1 + 2
    assert all(name in text for name in ACTIONS)
    walking = next(line for line in lines if line.startswith("Walking "))
    assert walking.split() == ["Walking", "40.00", "20.00", "1"]
    assert "Average (3 actions)" in text and "Total (frame-weighted)" in text
    assert len({len(line) for line in lines[2:-3] + lines[-1:]}) == 1   # fixed width


def test_per_action_table_all_actions_and_errors():
    act = np.repeat(np.arange(2, 17), 2)
    err = np.arange(30, dtype=float)
    t = per_action_table(torch.tensor(err), None, act)
    assert t["average"]["num_actions"] == 15
    assert "Average (15 actions)" in format_action_table(t)
    assert math.isnan(t["total"]["pa_mpjpe"])
    with pytest.raises(ValueError, match="have no name"):
        per_action_table(err[:2], None, np.array([1, 2]))
    with pytest.raises(ValueError, match="same length"):
        per_action_table(err, err[:3], act)


# ----------------------------------------------------------------------------- the headline
def _dataset(errors_mm, actions, info):
    """A LiftingDataset whose prediction error per sample is known: gt all zeros, the
    prediction moves every non-root joint by ``e`` mm along x, so MPJPE = e * 16/17."""
    from lib.data.lifting import LiftingDataset
    n = len(errors_mm)
    gt = np.zeros((n, 17, 3), np.float32)
    arrays = {"input_2d": np.zeros((n, 17, 2), np.float32), "target_3d": gt,
              "root_cam": np.zeros((n, 3), np.float32),
              "subject": np.full(n, 9, np.int16), "action": np.asarray(actions, np.int16),
              "subaction": np.ones(n, np.int16), "camera": np.ones(n, np.int16),
              "frame": np.arange(n, dtype=np.int32), "has_mesh": np.zeros(n, bool)}
    pred = np.zeros((n, 17, 3))
    pred[:, 1:, 0] = np.asarray(errors_mm)[:, None] / 1000.0 * 17 / 16   # metres
    return LiftingDataset(arrays, name="test", info=info), torch.tensor(pred, dtype=torch.float32)


def test_headline_is_the_action_mean_beside_the_frame_mean():
    # two actions with different sample counts: Directions (id 2) 10, 20 mm; Walking (15) 40 mm
    from lib.engine.evaluate import compute_metrics, metrics_record, headline_text
    from lib.data.formats.human36m import human36m_info
    info = human36m_info("json", joint_set="h36m17", keypoints=("gt",), distort_by_default=False)
    ds, pred = _dataset([10.0, 20.0, 40.0], [2, 2, 15], info)
    m = compute_metrics(pred, ds)
    assert m["mpjpe"] == pytest.approx((15 + 40) / 2, abs=1e-3)          # 27.5, the headline
    h = m["headline"]
    assert h["kind"] == "action_mean"
    assert h["mpjpe_action_mean"] == pytest.approx(27.5, abs=1e-3)
    assert h["mpjpe_frame_mean"] == pytest.approx(70 / 3, abs=1e-3)     # 23.33
    rec = metrics_record(m, "test")
    assert rec["test_mpjpe"] == rec["test_mpjpe_action_mean"] == pytest.approx(27.5, abs=1e-3)
    assert rec["test_mpjpe_frame_mean"] == pytest.approx(23.333, abs=1e-3)
    assert rec["test_headline"] == "action_mean"
    assert "27.50 mm" in headline_text(m) and "mean of the 2 actions" in headline_text(m)
    assert "frame mean 23.33" in headline_text(m)
    lines = format_action_table(m["table"]).splitlines()
    assert "<- headline (action mean)" in lines[-2] and "headline" not in lines[-1]


def test_headline_without_actions_is_the_frame_mean():
    from dataclasses import replace
    from lib.engine.evaluate import compute_metrics, metrics_record
    from lib.data.formats.human36m import human36m_info
    info = replace(human36m_info("x", "h36m17", ("gt",), False), actions=None)
    ds, pred = _dataset([10.0, 20.0, 40.0], [2, 2, 15], info)   # two sequences: 15 and 40 mm
    m = compute_metrics(pred, ds)
    assert m["table"]["group_by"] == "sequence"
    assert m["mpjpe"] == pytest.approx(70 / 3, abs=1e-3)
    rec = metrics_record(m, "test")
    assert rec["test_headline"] == "frame_mean" and rec["test_mpjpe_action_mean"] is None
    lines = format_action_table(m["table"]).splitlines()
    assert "<- headline (frame mean)" in lines[-1]


def test_mean_pose_reference_uses_the_headline():
    # gt: sample poses offset along x by 0, 0, 30 mm on every non-root joint; mean pose given
    from lib.engine.evaluate import mean_pose_mpjpe
    from lib.data.formats.human36m import human36m_info
    info = human36m_info("json", joint_set="h36m17", keypoints=("gt",), distort_by_default=False)
    ds, _ = _dataset([0.0, 0.0, 0.0], [2, 2, 15], info)
    ds.tensors["target_3d"][2, 1:, 0] = 0.030
    zero = torch.zeros(1, 17, 3)
    # errors 0, 0, 30*16/17: action mean (0 + 28.235) / 2, not the frame mean 9.41
    assert mean_pose_mpjpe(None, ds, zero) == pytest.approx(30 * 16 / 17 / 2, abs=1e-3)


# ----------------------------------------------------------------------------- per-joint table
def _standing(facing: str) -> np.ndarray:
    """One H36M-17 pose (mm, camera coordinates, y down) of a person facing the camera
    ('camera': their left is the camera's +x) or facing the camera's +x ('right': their left
    is +z); only the hips matter for the body frame."""
    from lib.geometry.skeleton import H36M17
    rng = np.random.default_rng(1)
    pose = rng.normal(scale=200.0, size=(H36M17.num_joints, 3))
    left_dir = {"camera": np.array([1.0, 0.0, 0.0]), "right": np.array([0.0, 0.0, 1.0])}[facing]
    pose[H36M17.hips[0]] = 100.0 * left_dir + np.array([0.0, 5.0, 0.0])
    pose[H36M17.hips[1]] = -100.0 * left_dir + np.array([0.0, 5.0, 0.0])
    return pose


def test_body_frame_axes_hand_computed():
    from lib.geometry.metrics import body_frames
    from lib.geometry.skeleton import H36M17
    frames = body_frames(np.stack([_standing("camera"), _standing("right")]), H36M17.hips)
    # facing the camera: left +x, up -y, forward towards the camera (-z)
    np.testing.assert_allclose(frames[0], [[1, 0, 0], [0, -1, 0], [0, 0, -1]], atol=1e-12)
    # facing the camera's +x: left +z, up -y, forward +x
    np.testing.assert_allclose(frames[1], [[0, 0, 1], [0, -1, 0], [1, 0, 0]], atol=1e-12)
    # hips on top of each other (degenerate): the camera's axes, never NaN
    flat = _standing("camera")
    flat[H36M17.hips[0]] = flat[H36M17.hips[1]]
    np.testing.assert_allclose(body_frames(flat[None], H36M17.hips)[0],
                               [[1, 0, 0], [0, -1, 0], [0, 0, -1]])


def test_per_joint_table_bias_in_the_body_frame():
    from lib.geometry.metrics import format_joint_table, per_joint_table
    from lib.geometry.skeleton import H36M17
    gt = np.stack([_standing("camera"), _standing("right")])
    pred = gt.copy()
    wrist, knee = H36M17.index("L_Wrist"), H36M17.index("R_Knee")
    # the wrist 30 mm towards the camera in the first pose, 30 mm along the camera's +x in the
    # second: both 30 mm forward of the body; the knee 20 mm lower (+y) in both
    pred[0, wrist, 2] -= 30.0
    pred[1, wrist, 0] += 30.0
    pred[:, knee, 1] += 20.0
    t = per_joint_table(pred, gt, H36M17)
    w, k = t["joints"]["L_Wrist"], t["joints"]["R_Knee"]
    assert (w["bias_left"], w["bias_up"], w["bias_forward"]) == pytest.approx((0, 0, 30), abs=1e-9)
    assert (k["bias_left"], k["bias_up"], k["bias_forward"]) == pytest.approx((0, -20, 0), abs=1e-9)
    assert w["mpjpe"] == pytest.approx(30.0) and k["mpjpe"] == pytest.approx(20.0)
    assert t["joints"]["Pelvis"]["mpjpe"] == 0.0 and t["frames"] == 2
    # the mean over the joints is the frame-mean MPJPE
    per_joint = [t["joints"][n]["mpjpe"] for n in t["order"]]
    assert np.mean(per_joint) == pytest.approx(float(mpjpe(pred, gt)))
    # PA per joint: a pose rotated and scaled as a whole has none
    rot = random_rotation(np.random.default_rng(2))
    t_pa = per_joint_table(1.3 * gt @ rot.T, gt, H36M17)
    assert max(r["pa_mpjpe"] for r in t_pa["joints"].values()) < 1e-6
    assert max(r["mpjpe"] for r in t_pa["joints"].values()) > 10.0
    text = format_joint_table(t)
    assert len(text.splitlines()) == 2 + H36M17.num_joints
    assert "L_Wrist" in text and "30.0" in text and "-20.0" in text
    # every column right-aligned under its header, however long the header
    header, rule, *rows = text.splitlines()
    assert header.index("forward bias") + len("forward bias") == len(rule) == len(rows[0])
    assert header[header.index("forward bias") - 1] == " "      # not glued to "up bias"
    with pytest.raises(ValueError, match="h36m17"):
        per_joint_table(pred[:, :16], gt[:, :16], H36M17)


def test_compute_metrics_reports_per_joint():
    from lib.engine.evaluate import compute_metrics, metrics_record, report
    from lib.data.formats.human36m import human36m_info
    info = human36m_info("json", joint_set="h36m17", keypoints=("gt",), distort_by_default=False)
    ds, pred = _dataset([10.0, 20.0, 40.0], [2, 2, 15], info)   # every non-root joint off in x
    m = compute_metrics(pred, ds)
    joints = m["per_joint"]["joints"]
    assert joints["Pelvis"]["mpjpe"] == pytest.approx(0.0, abs=1e-4)
    # non-root joints: (10 + 20 + 40) / 3 * 17 / 16 mm each; the frame mean over all 17 joints
    assert joints["L_Wrist"]["mpjpe"] == pytest.approx(70 / 3 * 17 / 16, abs=1e-3)
    rec = metrics_record(m, "test")
    assert rec["test_per_joint"]["order"][0] == "Pelvis"
    assert "L_Wrist" in report(m) and "Directions" in report(m)
