"""Synthetic Human3.6M generator: layout, determinism, geometry agreement, plausibility."""
import json
import time

import numpy as np
import pytest
import torch

from lib.data.formats.h36m_npz import read_h36m_npz
from lib.data.formats.h36m_json import annotation_path, read_h36m_json, read_h36m_regressor
from lib.data.synthetic.generate import SynthesisError, generate_synthetic_h36m, read_manifest
from lib.data.synthetic import motion
from lib.data.synthetic.detector_noise import JOINT_STD_PX, DetectorNoise
from lib.body.smpl import BodyModel, regress_joints
from lib.body.synthetic_model import build_synthetic_body_model
from lib.geometry.camera import h36m_cameras
from lib.geometry.skeleton import ACTION_IDX, H36M17, convert_joints

SUBJECTS = (1, 9)
ACTIONS = ("Walking", "Phoning", "Sitting")
STANDING = {ACTION_IDX[a] for a in ACTIONS if a not in motion.SEATED_ACTIONS}
FRAMES = 40
TINY = dict(subjects=SUBJECTS, actions=ACTIONS, frames_per_sequence=FRAMES,
            invalid_fit_rate=0.05, longer_2d_rate=0.5, log=lambda *_: None)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "Synthetic"
    summary = generate_synthetic_h36m(out, seed=3, **TINY)
    return out, summary


@pytest.fixture(scope="module")
def corpus(tiny):
    return read_h36m_json(tiny[0])


@pytest.fixture(scope="module")
def body(tiny):
    return BodyModel.from_dir(tiny[0] / "smpl", gender="neutral")


def test_real_layout_and_image_sizes(tiny):
    out, summary = tiny
    for s in SUBJECTS:
        for kind in ("data", "camera", "joint_3d", "smpl_param"):
            assert annotation_path(out, s, kind).is_file()
    for rel in ("Human36M/J_regressor_h36m_correct.npy", "data_3d_h36m.npz",
                "data_2d_h36m_gt.npz", "data_2d_h36m_cpn_ft_h36m_dbb.npz", "README.md",
                "manifest.json"):
        assert (out / rel).is_file(), rel
    for g in ("neutral", "f", "m"):
        assert (out / "smpl" / f"basicModel_{g}_lbs_10_207_0_v1.0.0.pkl").is_file()
    assert summary["num_sequences"] == len(SUBJECTS) * len(ACTIONS) * 2
    assert summary["num_frames"] == summary["num_sequences"] * FRAMES
    data = json.loads(annotation_path(out, 1, "data").read_text())
    sizes = {(im["cam_idx"], im["width"], im["height"]) for im in data["images"]}
    assert sizes == {(1, 1000, 1002), (2, 1000, 1000), (3, 1000, 1000), (4, 1000, 1002)}
    assert len(data["images"]) == 4 * len(ACTIONS) * 2 * FRAMES
    assert not list(out.parent.glob(".Synthetic.tmp-*"))   # the temp folder is gone


def test_deterministic_and_seed_dependent(tiny, tmp_path):
    out, _ = tiny
    again = tmp_path / "again"
    generate_synthetic_h36m(again, seed=3, **TINY)
    assert read_manifest(again)["files"] == read_manifest(out)["files"]   # same bytes
    other = tmp_path / "other"
    generate_synthetic_h36m(other, seed=4, **TINY)
    files_a, files_b = read_manifest(out)["files"], read_manifest(other)["files"]
    assert files_a["data_3d_h36m.npz"]["sha256"] != files_b["data_3d_h36m.npz"]["sha256"]


def test_existing_set_is_kept_refused_or_replaced(tiny, tmp_path):
    out = tmp_path / "s"
    generate_synthetic_h36m(out, seed=3, **TINY)
    messages = []
    kept = generate_synthetic_h36m(out, seed=3, **{**TINY, "log": messages.append})
    assert kept["skipped"] and "nothing to do" in messages[0]
    with pytest.raises(SynthesisError, match="--force"):
        generate_synthetic_h36m(out, seed=5, **TINY)
    replaced = generate_synthetic_h36m(out, seed=5, force=True, **TINY)
    assert not replaced["skipped"] and read_manifest(out)["parameters"]["seed"] == 5


def test_never_deletes_or_writes_into_what_it_did_not_write(tmp_path):
    """--force replaces only the generator's own files: a user's folder, or a set with the
    user's notes added, survives untouched, and the message does not advise --force."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    for force in (False, True):
        with pytest.raises(SynthesisError, match="did not write") as info:
            generate_synthetic_h36m(mine, seed=3, force=force, **TINY)
        assert "--force" not in str(info.value)
    assert (mine / "notes.txt").read_text() == "my notes"
    out = tmp_path / "s"
    generate_synthetic_h36m(out, seed=3, **TINY)
    (out / "Human36M" / "my_notes.md").write_text("keep me")
    with pytest.raises(SynthesisError, match=r"1 file\(s\) it did not write \(Human36M/my_notes"):
        generate_synthetic_h36m(out, seed=5, force=True, **TINY)
    assert (out / "Human36M" / "my_notes.md").read_text() == "keep me"
    assert read_manifest(out)["parameters"]["seed"] == 3


def test_a_synthetic_yaml_pointed_at_real_data_does_not_generate_into_it(tmp_path):
    from lib.config import load_config
    from lib.data.build import ensure_synthetic
    real = tmp_path / "real"
    (real / "Human36M" / "annotations").mkdir(parents=True)
    (real / "Human36M" / "annotations" / "Human36M_subject1_data.json").write_text("{}")
    cfg = load_config(None, ["DATASET.synthetic", "true", "DATASET.root", str(real)])
    with pytest.raises(SynthesisError, match="did not write"):
        ensure_synthetic(cfg)
    assert sorted(p.name for p in real.rglob("*")) == ["Human36M", "Human36M_subject1_data.json",
                                                       "annotations"]


def test_joints_inside_every_camera_image(corpus):
    for seq in corpus.sequences:
        for cam in corpus.cameras[seq.subject].values():
            uv = cam.project(cam.world_to_camera(seq.joints_world))
            assert (uv[..., 0] > 0).all() and (uv[..., 0] < cam.width).all()
            assert (uv[..., 1] > 0).all() and (uv[..., 1] < cam.height).all()


def test_fitted_body_agrees_roughly_with_the_rigid_joints(tiny, corpus, body):
    """The SMPL parameters are a fit to the skeleton's joints, as real SMPLify fits are: the
    body's regressed joints lie a few centimetres from the stored ones, never exactly on them,
    and frames marked without a fit are skipped."""
    out, summary = tiny
    reg = read_h36m_regressor(out)
    missing = 0
    for seq in corpus.sequences:
        sm = seq.smpl
        missing += int((~sm.valid).sum())
        v, _ = body.forward(sm.pose[sm.valid], sm.shape[sm.valid], sm.trans[sm.valid])
        joints = regress_joints(v, reg).double().numpy() * 1000
        err = np.linalg.norm(joints - seq.joints_world[sm.valid], axis=-1)
        assert 10.0 < err.mean() < 75.0, (seq.key, err.mean())
        # the pelvis sits on the pelvis, give or take the subject's fit (seed 3: S1 about 5 cm,
        # S9 8-9 cm in every clip)
        assert np.median(err[:, 0]) < 100.0
        assert err.max() < 200.0
    assert missing == summary["invalid_fits"] > 0


def test_model_loads_in_smplpytorch_and_agrees_with_cameras(tiny, corpus, body):
    """smplpytorch builds the same mesh from the files as our body model; the stored GT 2D is
    the projection of the stored joints (16 of them)."""
    from smplpytorch.pytorch.smpl_layer import SMPL_Layer
    out, _ = tiny
    layer = SMPL_Layer(gender="neutral", model_root=str(out / "smpl"))
    gt2d = read_h36m_npz(out, keypoints="gt")
    seq = corpus.sequences[0]
    sm, ok = seq.smpl, seq.smpl.valid
    v, _ = layer(torch.as_tensor(sm.pose[ok], dtype=torch.float32),
                 torch.as_tensor(sm.shape[ok], dtype=torch.float32),
                 torch.as_tensor(sm.trans[ok], dtype=torch.float32))
    ours, _ = body.forward(sm.pose[ok], sm.shape[ok], sm.trans[ok])
    np.testing.assert_allclose(v.numpy(), ours.numpy(), atol=1e-4)
    kp = gt2d.sequence(*seq.key).keypoints_2d
    for c, cam in corpus.cameras[seq.subject].items():
        uv = cam.project(cam.world_to_camera(convert_joints(seq.joints_world, "h36m17",
                                                            "h36m16")))
        np.testing.assert_allclose(uv, kp[c], atol=0.05)


def test_gt_2d_is_distorted_projection_of_3d(tiny, corpus):
    gt = np.load(tiny[0] / "data_2d_h36m_gt.npz", allow_pickle=True)
    assert gt["metadata"].item()["num_joints"] == 16
    seq = corpus.sequence(9, 14, 2)
    # the file's sub-action naming is the writer's business: read the arrays through it
    kp = read_h36m_npz(tiny[0], keypoints="gt").sequence(9, 14, 2).keypoints_2d
    arrays = [kp[c] for c in range(1, 5)]
    cams = h36m_cameras(9)
    for c in range(1, 5):
        j16 = convert_joints(seq.joints_world, "h36m17", "h36m16")
        expected = cams[c].project(cams[c].world_to_camera(j16), distort=True)
        np.testing.assert_allclose(arrays[c - 1], expected, atol=1e-3)
        assert np.abs(expected - cams[c].project(cams[c].world_to_camera(j16),
                                                 distort=False)).max() > 1.0


def test_cpn_like_2d_is_noisy_longer_sometimes_and_trimmed(tiny, corpus):
    raw = np.load(tiny[0] / "data_2d_h36m_cpn_ft_h36m_dbb.npz", allow_pickle=True)
    assert raw["metadata"].item()["layout_name"] == "h36m"
    lengths = [len(a[0]) for acts in raw["positions_2d"].item().values() for a in acts.values()]
    assert max(lengths) > FRAMES and min(lengths) == FRAMES
    cpn = read_h36m_npz(tiny[0], keypoints="cpn_ft_h36m_dbb")
    errors, lag1 = [], []
    for seq in cpn.sequences:
        assert seq.keypoints_2d[1].shape == (FRAMES, 17, 2)     # trimmed by the reader
        ref = corpus.sequence(*seq.key)
        for c, cam in corpus.cameras[seq.subject].items():
            exact = cam.project(cam.world_to_camera(ref.joints_world))
            err = seq.keypoints_2d[c] - exact
            errors.append(np.linalg.norm(err, axis=-1).mean())
            e = err[..., 0].reshape(FRAMES, -1)
            lag1.append(np.corrcoef(e[1:].ravel(), e[:-1].ravel())[0, 1])
    assert 3.0 < np.mean(errors) < 12.0
    assert np.mean(lag1) > 0.6                      # temporally correlated, not white


@pytest.fixture(scope="module")
def synth(tiny, body):
    from lib.data.synthetic.generate import SequenceSynthesizer
    model = build_synthetic_body_model(3)
    return SequenceSynthesizer(body, model, read_h36m_regressor(tiny[0]), 3)


def test_feet_on_the_floor(synth, corpus, body):
    """Standing, the lowest heel or toe point is on the clip's floor (within the root
    smoothing's few millimetres); no contact point ever goes below it; the fitted mesh's soles
    are near the floor too. The floors differ per clip, within GROUND_HEIGHT_M (version 9)."""
    foot = np.flatnonzero(np.isin(build_synthetic_body_model(0)["weights"].argmax(1),
                                  [7, 8, 10, 11]))
    floors = []
    for seq in corpus.sequences:
        clip = synth.motion(seq.subject, seq.action_name, seq.subaction_idx, FRAMES)
        floor = clip.floor_mm
        floors.append(floor)
        lowest = clip.contacts[:, :4, 2].min(1) - floor           # heels and toes, mm
        assert lowest.min() > -1e-6
        if seq.action_idx in STANDING:
            # touching: a few mm of hover from the smoothed support; during a fast heel
            # strike of a walk a few frames hover more
            gait = seq.action_name in motion.GAIT_ACTIONS
            peak, typical = (70.0, 20.0) if gait else (15.0, 10.0)
            assert lowest.max() < peak and np.median(lowest) < typical, (seq.key, lowest)
            sm, ok = seq.smpl, seq.smpl.valid
            v, _ = body.forward(sm.pose[ok], sm.shape[ok], sm.trans[ok])
            soles = v[:, foot, 2].min(1).values.numpy() - floor / 1000.0     # metres
            assert np.abs(soles).max() < 0.1
    lo, hi = (1000.0 * h for h in motion.GROUND_HEIGHT_M)
    assert lo <= min(floors) and max(floors) <= hi and max(floors) - min(floors) > 0.2 * (hi - lo)


def test_smooth_motion_and_rigid_bones(corpus):
    """Joints come from a rigid skeleton: every bone keeps its length to < 1 mm over all the
    sequences of a subject; subjects differ; the motion has no acceleration spikes."""
    fps = motion.FPS
    per_subject = {}
    for seq in corpus.sequences:
        x = seq.joints_world / 1000.0
        accel = np.linalg.norm(np.diff(x, 2, axis=0), axis=-1) * fps ** 2
        assert accel.max() < 60.0, (seq.key, accel.max())        # m/s^2
        bones = np.stack([np.linalg.norm(seq.joints_world[:, c] - seq.joints_world[:, p],
                                         axis=-1) for p, c in H36M17.bones], 1)
        per_subject.setdefault(seq.subject, []).append(bones)
    lengths = {}
    for subject, bones in per_subject.items():
        bones = np.concatenate(bones)
        assert (bones.max(0) - bones.min(0)).max() < 1.0, subject
        lengths[subject] = bones.mean(0)
    assert np.abs(lengths[1] - lengths[9]).max() > 10.0


def test_joint_limits_in_stored_pose(corpus):
    for seq in corpus.sequences:
        aa = seq.smpl.pose[seq.smpl.valid].reshape(-1, 24, 3)
        for knee in (4, 5):        # pure flexion about +x, never hyperextended
            assert (aa[:, knee, 0] >= 0).all() and np.abs(aa[:, knee, 1:]).max() < 1e-9
        assert (aa[:, 18, 1] <= 0).all() and np.abs(aa[:, 18, [0, 2]]).max() < 1e-9
        assert (aa[:, 19, 1] >= 0).all() and np.abs(aa[:, 19, [0, 2]]).max() < 1e-9
        assert np.rad2deg(np.linalg.norm(aa[:, [4, 5, 18, 19]], axis=-1)).max() <= 150.0 + 1e-6


def test_arm_ik_puts_the_wrist_on_the_target(body):
    _, rest_j = body.forward(np.zeros((1, 72)))
    rest = motion.RestSkeleton(rest_j[0].double().numpy())
    n = 3
    tr = motion._neutral_tracks(np.arange(n) / 50.0, rest, np.random.default_rng(0),
                                motion.Style())
    for name in tr.scalars:
        tr.scalars[name][:] = 0.0
    tr.heading = np.zeros(n)
    targets = np.array([[0.1, -0.3, 0.3], [-0.05, 0.2, 0.25], [0.3, 0.1, 0.1]])
    tr.set_arm("L", targets, [0.5, -1.0, 0.0])
    _, joints = body.forward(motion.compose_pose(tr, rest))
    joints = joints.double().numpy()
    to_smpl = motion.rot_x(np.array(-np.pi / 2))          # undo the y-up -> z-up turn
    reached = (joints[:, 20] - joints[:, 16]) @ to_smpl.T
    np.testing.assert_allclose(reached, targets, atol=0.015)


def test_detector_noise_statistics():
    rng = np.random.default_rng(0)
    clean = np.zeros((4000, 17, 2)) + 500.0
    noisy = DetectorNoise(outlier_rate=0.0, swap_rate=0.0).apply(clean, rng)
    std = (noisy - clean).std(0).mean(-1)
    np.testing.assert_allclose(std, JOINT_STD_PX, rtol=0.25)
    assert std[[13, 16]].min() > 1.5 * std[[0, 1, 4]].max()      # wrists noisier than hips
    heavy = DetectorNoise().apply(clean, np.random.default_rng(0))
    err = np.linalg.norm(heavy - clean, axis=-1)
    assert 4.0 < err.mean() < 10.0 and err.max() > 30.0             # heavy tail
    again = DetectorNoise().apply(clean, np.random.default_rng(0))
    np.testing.assert_array_equal(heavy, again)
    with pytest.raises(ValueError, match="17, 2"):
        DetectorNoise().apply(np.zeros((5, 16, 2)), rng)


@pytest.mark.slow
def test_full_default_set_within_a_minute(tmp_path):
    start = time.perf_counter()
    summary = generate_synthetic_h36m(tmp_path / "full", seed=0, log=lambda *_: None)
    assert summary["num_sequences"] == 7 * 15 * 2
    assert time.perf_counter() - start < 60.0


def test_outdated_set_is_regenerated_with_its_own_parameters(tmp_path):
    """A set from an older generator version is rewritten, keeping its size and subjects."""
    from lib.data.build import ensure_synthetic
    from lib.data.synthetic.generate import MANIFEST, VERSION
    from lib.config import default_config, merge
    out = tmp_path / "Synthetic"
    small = dict(subjects=(1,), actions=("Walking",), frames_per_sequence=6, log=lambda *_: None)
    generate_synthetic_h36m(out, seed=7, **small)
    manifest = read_manifest(out)
    manifest["parameters"]["version"] = VERSION - 1
    (out / MANIFEST).write_text(json.dumps(manifest))
    cfg = merge(default_config(), {"DATASET": {"synthetic": True, "root": str(out)}}, "test")
    ensure_synthetic(cfg)
    params = read_manifest(out)["parameters"]
    assert params["version"] == VERSION
    assert (params["seed"], params["subjects"], params["actions"],
            params["frames_per_sequence"]) == (7, [1], ["Walking"], 6)
    assert read_manifest(out)["files"] == manifest["files"]   # same bytes as before


def test_proportions_sampled_within_the_adult_ranges():
    """Every bone of every sampled subject lies within its range (times the overall scale);
    the spine chain of one subject is hand-checked against its offsets."""
    from lib.data.synthetic import skeleton as sk
    lo_scale, hi_scale = sk.SCALE_RANGE
    for seed in range(20):
        skel = sk.sample_skeleton(np.random.default_rng(seed))
        assert lo_scale <= skel.scale <= hi_scale
        for (bone, side), off in skel.offsets.items():
            comp = off * 1000.0 / skel.scale
            if side is not None:
                comp[0] *= sk.LATERAL[side]           # lateral: towards the bone's side
            ranges = np.array(sk.BONE_RANGES_MM[bone], float)
            stretch = np.array([1 - sk.ASYMMETRY, 1 + sk.ASYMMETRY])
            lo = (ranges[:, :1] * stretch).min(1) - 1e-9
            hi = (ranges[:, 1:] * stretch).max(1) + 1e-9
            assert np.all((lo <= comp) & (comp <= hi)), (bone, side, comp)
        L = skel.bone_lengths17()
        np.testing.assert_allclose(L[6], np.linalg.norm(skel.offset("torso")) * 1000)
        np.testing.assert_allclose(L[7], np.linalg.norm(skel.offset("neck")) * 1000)


def test_subject_design_is_a_latin_hypercube_per_split():
    """Each factor of the design puts exactly one subject in each of n equal strata, so the five
    training subjects span size and proportions evenly; a subject's row does not depend on which
    subjects a run generates, and another seed gives another design."""
    from lib.data.synthetic import skeleton as sk
    from lib.data.synthetic.generate import subject_design
    from lib.geometry.skeleton import TEST_SUBJECTS, TRAIN_SUBJECTS
    d = sk.subject_design(np.random.default_rng(3), 5)
    assert d.shape == (5, len(sk.DESIGN_FACTORS))
    for column in d.T:
        assert sorted(np.floor(column * 5).astype(int).tolist()) == [0, 1, 2, 3, 4]
    for group in (TRAIN_SUBJECTS, TEST_SUBJECTS):
        rows = np.stack([subject_design(0, s) for s in group])
        n = len(group)
        for column in rows.T:
            assert sorted(np.floor(column * n).astype(int).tolist()) == list(range(n))
    assert not np.allclose(subject_design(0, 1), subject_design(1, 1))
    np.testing.assert_array_equal(subject_design(0, 7), subject_design(0, 7))
    with pytest.raises(SynthesisError):
        subject_design(0, 2)


def test_design_sets_size_and_legs_against_trunk():
    """With the same random stream, a higher size quantile scales every bone up; a higher
    legs quantile lengthens thigh and shank and shortens the spine chain (long legs go with a
    short trunk); the arm quantile moves both arm bones. Ends of the ranges by hand: size 0 and
    1 give SCALE_RANGE's ends."""
    from lib.data.synthetic import skeleton as sk
    def skel(design):
        return sk.sample_skeleton(np.random.default_rng(11), design)
    mid = skel([0.5, 0.5, 0.5])
    assert skel([0.0, 0.5, 0.5]).scale == pytest.approx(sk.SCALE_RANGE[0])
    assert skel([1.0, 0.5, 0.5]).scale == pytest.approx(sk.SCALE_RANGE[1])
    big = skel([1.0, 0.5, 0.5])
    for bone in ("thigh", "torso", "upper_arm"):
        side = None if bone in sk.MIDLINE_BONES else "L"
        assert big.length(bone, side) == pytest.approx(
            mid.length(bone, side) * sk.SCALE_RANGE[1] / mid.scale)
    long_legs, short_legs = skel([0.5, 1.0, 0.5]), skel([0.5, 0.0, 0.5])
    for bone in ("thigh", "shank"):
        assert long_legs.length(bone, "R") > mid.length(bone, "R") > short_legs.length(bone, "R")
    for bone in ("torso", "neck", "nose", "head"):
        assert long_legs.length(bone) < mid.length(bone) < short_legs.length(bone)
    # the group decides GROUP_SHARE of where the thigh sits in its (negative, downward) range;
    # the side's asymmetry factor (the same draw in both) stretches the difference a little
    lo, hi = sk.BONE_RANGES_MM["thigh"][1]
    span = abs(hi - lo) * sk.GROUP_SHARE * mid.scale
    diff = (long_legs.length("thigh", "L") - short_legs.length("thigh", "L")) * 1000
    assert diff == pytest.approx(span, rel=sk.ASYMMETRY)
    long_arms = skel([0.5, 0.5, 1.0])
    assert long_arms.length("forearm", "L") > mid.length("forearm", "L")
    assert long_arms.length("upper_arm", "L") > mid.length("upper_arm", "L")
    assert long_arms.length("thigh", "L") == pytest.approx(mid.length("thigh", "L"))


def test_forward_kinematics_by_hand():
    """Rest pose: joints are sums of offsets. Knee bent 90 deg: the ankle swings behind the
    knee by the shank length (SMPL frame: y up, z forward, so knee flexion about +x moves it
    towards -z)."""
    from lib.data.synthetic import skeleton as sk
    skel = sk.sample_skeleton(np.random.default_rng(0))
    R = np.tile(np.eye(3), (2, 24, 1, 1))
    R[1, 4] = motion.rot_x(np.array(np.pi / 2))          # left knee
    P = sk.forward_kinematics(skel, R)
    J = {n: i for i, n in enumerate(H36M17.joint_names)}
    knee = skel.offset("hip", "L") + skel.offset("thigh", "L")
    np.testing.assert_allclose(P[0, J["L_Knee"]], knee)
    np.testing.assert_allclose(P[0, J["L_Ankle"]], knee + skel.offset("shank", "L"))
    shank = skel.length("shank", "L")
    np.testing.assert_allclose(P[1, J["L_Ankle"]], knee + [0.0, 0.0, -shank], atol=1e-12)
    np.testing.assert_allclose(P[1, J["R_Ankle"]], P[0, J["R_Ankle"]])


def test_body_fit_recovers_a_body_made_skeleton():
    """fit_body on the body's own regressed rest joints (a skeleton the body can represent)
    returns that body's betas and no offset: the least-squares fit is exact there."""
    from lib.body.synthetic_model import build_h36m_regressor
    from lib.data.synthetic import skeleton as sk
    model = build_synthetic_body_model(0)
    reg = build_h36m_regressor(model)
    beta = np.array([0.8, -0.5, 0.3, 0.0, 0.4, -0.2, 0.1, 0.0, -0.3, 0.2])
    joints = reg @ (model["v_template"] + model["shapedirs"] @ beta)
    got, offset = sk.fit_body(model["v_template"], model["shapedirs"], reg, joints,
                              ridge=1e-9)
    np.testing.assert_allclose(got, beta, atol=1e-3)
    np.testing.assert_allclose(offset, 0.0, atol=1e-5)


def test_root_position_by_hand():
    """Standing: lowest foot point to z = 0; seated on the floor: the seat bone at z = 0, the
    feet never below the floor; x, y follow the target. (Exact: no soft contact, no
    smoothing.) The smoothing only ever lifts, never lowers, the body."""
    pts = np.zeros((2, 4, 3))
    pts[:, 0, 2] = [-0.9, -0.5]       # foot point
    pts[:, 1, 2] = [-0.1, -0.12]      # seat point
    exact = dict(foot_ids=[0], seat_ids=[1], softness=0.0, smooth_frames=0)
    root = motion.root_position(pts, [[1.0, 2.0], [3.0, 4.0]], seated=[0.0, 1.0],
                                chair_height=0.0, **exact)
    np.testing.assert_allclose(root, [[1.0, 2.0, 0.9], [3.0, 4.0, 0.5]])
    root = motion.root_position(pts, [[0, 0], [0, 0]], seated=[0.0, 1.0], chair_height=0.45,
                                **exact)
    np.testing.assert_allclose(root[:, 2], [0.9, 0.57])
    z = np.random.default_rng(0).normal(size=200).cumsum()
    for h in (1, 3):
        smooth = motion.upper_envelope(z, h)
        assert (smooth >= z).all() and np.abs(np.diff(smooth, 2)).max() < np.abs(
            np.diff(z, 2)).max()
    np.testing.assert_allclose(motion.soft_min(np.array([[0.0, 1.0, 2.0]]), 0.01), 0.0,
                               atol=1e-12)
    np.testing.assert_allclose(motion.soft_min(np.array([[0.0, 0.0]]), 0.01),
                               -0.01 * np.log(2))


def test_camera_distance_and_poses_vary(synth):
    """Clips start at different places in the capture volume, so the distance to a camera (the
    body's size in its image) varies by more than a metre; SittingDown reaches the floor in
    some clips and a chair in others; the trunk leans by tens of degrees in some clips."""
    from lib.geometry.camera import h36m_cameras
    cam = h36m_cameras(1)[1]
    dist, lowest_pelvis, tilt = [], [], []
    for action in ("Waiting", "Posing", "Photo", "SittingDown", "Purchases"):
        for sub in range(1, 9):
            joints = synth.motion(1, action, sub, 150).joints
            dist.append(np.linalg.norm(joints[:, 0].mean(0) - cam.center_world))
            if action == "SittingDown":
                lowest_pelvis.append(joints[:, 0, 2].min())
            trunk = joints[:, 8] - joints[:, 0]
            tilt.append(np.degrees(np.arccos(trunk[:, 2] / np.linalg.norm(trunk, axis=-1))).max())
    assert max(dist) - min(dist) > 1000.0
    assert min(lowest_pelvis) < 300.0 < 400.0 < max(lowest_pelvis)
    assert max(tilt) > 35.0


def test_pulses_fit_a_bump_longer_than_the_period():
    """A bump of 2 x 0.6 + 0.9 = 2.1 s in a 1 s period is fitted into it (hold 0, ramps 0.5 s):
    it peaks at 1 at 0.5 s and is back to 0 as the next period starts (cut off instead, it
    would fall from 1 to 0 in one step); a bump that fits keeps its shape."""
    t = np.arange(0.0, 3.0, 1e-3)
    w = motion.pulses(t, 1.0, rise=0.6, hold=0.9, phase=0.0)
    assert np.abs(np.diff(w)).max() < 0.01
    at = lambda s: w[int(round(s / 1e-3))]
    assert at(0.5) == pytest.approx(1.0) and at(1.5) == pytest.approx(1.0)
    assert at(0.25) == pytest.approx(0.5)              # smootherstep(0.5) on the 0.5 s ramp
    assert at(0.999) < 1e-6 and at(1.0) == 0.0
    fits = motion.pulses(t, 10.0, rise=0.6, hold=0.9, phase=0.0)
    assert fits[300] == pytest.approx(0.5) and fits[1000] == 1.0 and fits[1400] == 1.0
    assert fits[1800] == pytest.approx(0.5) and fits[2100] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="period"):
        motion.pulses(t, 0.0, rise=0.6, hold=0.9, phase=0.0)


def test_hand_targets_move_smoothly_in_every_action(synth):
    """No action's hand path jumps, at the slowest and the fastest subject tempo: the largest
    acceleration of a hand target stays under 25 mm/frame^2 (62 m/s^2 at 50 fps; a wave at
    2.5 Hz reaches about 12). Version 7's Photo, Directions and Greeting cut their gesture
    off at the period's end when a fast tempo made the period shorter than the gesture: a
    hand target then moved up to 70 cm in a frame."""
    from dataclasses import replace
    info = synth.subject(5)
    worst = {}
    for action in motion.ACTIONS:
        for speed in (0.85, 1.15):
            style = replace(info["style"], speed=speed)
            for k in range(6):
                tr = motion.action_tracks(action, 150, info["rest"], np.random.default_rng(k),
                                          style)
                for hand in tr.hand.values():
                    accel = np.linalg.norm(np.diff(hand, 2, axis=0), axis=-1).max() * 1000.0
                    worst[action] = max(worst.get(action, 0.0), accel)
    assert max(worst.values()) < 25.0, worst


def test_step_values_hold_through_each_swing_and_blend_smoothly():
    """Per-step values change only around mid-stance (the cycle coordinate's integers), stay
    in their ranges, and the blend between two steps is smooth (no jump between frames)."""
    cycles = np.linspace(0.0, 12.0, 6001)
    rng = np.random.default_rng(0)
    v = motion._step_values(rng, cycles, obstacle_prob=0.5)
    g = cycles - np.floor(cycles)
    swing = (g > 0.16) & (g < 0.84)
    k = np.floor(cycles)
    for c in range(12):
        held = v[swing & (k == c)]
        assert np.ptp(held) < 1e-12                  # constant through the swing
    assert v.min() >= 0.0 and v.max() <= 1.0
    assert np.abs(np.diff(v)).max() < 0.02           # 0.3 cycles of blend: no jump
    every = motion._step_values(np.random.default_rng(1), cycles, obstacle_prob=1.0)
    none = motion._step_values(np.random.default_rng(1), cycles, obstacle_prob=0.0)
    assert every.min() >= 0.3 and none.max() <= 0.15


def test_rough_ground_gait_steps_over_things_with_bent_arms(synth):
    """Walking clips include steps over obstacles (one knee above 100 deg while the other leg
    stands with the knee below 50 deg) and elbow carriages from nearly straight to well bent,
    as real walking over uneven ground shows."""
    from lib.data.synthetic.calibration import joint_statistics
    step_over, elbow = 0, []
    for sub in range(1, 13):
        joints = synth.motion(5, "Walking", sub, 400).joints
        st = joint_statistics(joints)
        kl, kr = st["knee_flexion_left"], st["knee_flexion_right"]
        step_over += int((((kl > 100) & (kr < 50)) | ((kr > 100) & (kl < 50))).any())
        elbow.append(np.median(st["elbow_flexion_left"]))
    assert step_over >= 2
    assert min(elbow) < 40.0 and max(elbow) > 50.0


def test_stance_separation_statistic_by_hand():
    """knee/ankle separation: distance apart along the hip line, in hip widths; hand-built pose
    with hips 200 mm apart, knees 160 mm and ankles 100 mm (one foot 50 mm ahead, which the hip
    line does not see)."""
    from lib.data.synthetic.calibration import J, joint_statistics
    x = np.zeros((1, 17, 3))
    x[0, :, 2] = 900.0
    for side, sign in (("L", 1.0), ("R", -1.0)):
        x[0, J[f"{side}_Hip"]] = [100.0 * sign, 0.0, 900.0]
        x[0, J[f"{side}_Knee"]] = [80.0 * sign, 0.0, 480.0]
        x[0, J[f"{side}_Ankle"]] = [50.0 * sign, 50.0 if side == "L" else 0.0, 60.0]
    st = joint_statistics(x)
    assert st["knee_separation"][0] == pytest.approx(0.8)
    assert st["ankle_separation"][0] == pytest.approx(0.5)
    # turned about the vertical and crossed: the same numbers, then a negative one
    c, s = np.cos(0.7), np.sin(0.7)
    turned = x @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]).T
    assert joint_statistics(turned)["knee_separation"][0] == pytest.approx(0.8)
    x[0, [J["L_Ankle"], J["R_Ankle"]], 0] = [-30.0, 30.0]
    assert joint_statistics(x)["ankle_separation"][0] == pytest.approx(-0.3)


def test_head_carriage_and_spine_flexion_by_hand():
    """Both angles are taken in the chest's sagittal plane: a body facing -y (left hip at +x),
    the chest bent 30 deg forward over an upright lower trunk, the nose 45 deg further forward
    than the chest's line. Leaning the whole body forward changes neither; a head held back
    gives a negative carriage."""
    from lib.data.synthetic.calibration import J, joint_statistics
    d = np.deg2rad
    x = np.zeros((1, 17, 3))
    x[0, J["L_Hip"]], x[0, J["R_Hip"]] = [100.0, 0.0, 0.0], [-100.0, 0.0, 0.0]
    x[0, J["Torso"]] = [0.0, 0.0, 250.0]
    chest = 120.0 * np.array([0.0, -np.sin(d(30)), np.cos(d(30))])         # forward is -y
    x[0, J["Neck"]] = x[0, J["Torso"]] + chest
    x[0, J["Nose"]] = x[0, J["Neck"]] + 150.0 * np.array([0.0, -np.sin(d(75)), np.cos(d(75))])
    st = joint_statistics(x)
    assert st["spine_flexion"][0] == pytest.approx(30.0)
    assert st["head_carriage"][0] == pytest.approx(45.0)
    c, s = np.cos(d(20)), np.sin(d(20))            # the whole body leaning 20 deg forward
    leaning = joint_statistics(x @ np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]]).T)
    assert leaning["head_carriage"][0] == pytest.approx(45.0)
    assert leaning["spine_flexion"][0] == pytest.approx(30.0)
    x[0, J["Nose"]] = x[0, J["Neck"]] + 150.0 * np.array([0.0, -np.sin(d(20)), np.cos(d(20))])
    assert joint_statistics(x)["head_carriage"][0] == pytest.approx(-10.0)


def test_balance_statistics_by_hand():
    """pelvis / centre of mass ahead of the ankles: an upright body facing -y (left hip at +x)
    with everything above the knees moved 100 mm forward, the knees 50 mm, the ankles not.
    Dempster's fractions (Winter's table): 67.8 % of the mass above the hips moves 100 mm, the
    thighs (2 x 10 %, centre 43.3 % of the way down) 100 - 0.433 * 50 mm, the shanks (2 x 4.65 %)
    50 - 0.433 * 50 mm, the feet (2 x 1.45 %, at the ankles) not: 86.107 mm. Turning the body
    about the vertical changes neither number; a symmetric body's centre is on its midline."""
    from lib.data.synthetic.calibration import J, centre_of_mass, joint_statistics
    x = np.zeros((1, 17, 3))
    for name, z in (("Pelvis", 1000.0), ("Torso", 1250.0), ("Neck", 1500.0), ("Nose", 1600.0),
                    ("Head", 1700.0)):
        x[0, J[name]] = [0.0, 0.0, z]
    for side, sign in (("L", 1.0), ("R", -1.0)):
        for joint, lateral, z in (("Hip", 100.0, 1000.0), ("Knee", 100.0, 550.0),
                                  ("Ankle", 100.0, 100.0), ("Shoulder", 200.0, 1450.0),
                                  ("Elbow", 220.0, 1150.0), ("Wrist", 230.0, 900.0)):
            x[0, J[f"{side}_{joint}"]] = [sign * lateral, 0.0, z]
    assert centre_of_mass(x)[0, 0] == pytest.approx(0.0, abs=1e-9)
    st = joint_statistics(x)
    assert st["pelvis_ahead_of_ankles"][0] == pytest.approx(0.0, abs=1e-9)
    assert st["com_ahead_of_ankles"][0] == pytest.approx(0.0, abs=1e-9)
    legs = {J[f"{s}_{j}"] for s in "LR" for j in ("Knee", "Ankle")}
    upper = [i for i in range(17) if i not in legs]
    x[0, upper, 1] -= 100.0                            # forward is -y
    x[0, [J["L_Knee"], J["R_Knee"]], 1] -= 50.0
    expected = 67.8 + 0.2 * (100 - 0.433 * 50) + 0.093 * (50 - 0.433 * 50)
    st = joint_statistics(x)
    assert st["pelvis_ahead_of_ankles"][0] == pytest.approx(100.0)
    assert st["com_ahead_of_ankles"][0] == pytest.approx(expected)
    assert expected == pytest.approx(86.107, abs=1e-3)
    c, s = np.cos(2.0), np.sin(2.0)
    turned = joint_statistics(x @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]).T)
    assert turned["pelvis_ahead_of_ankles"][0] == pytest.approx(100.0)
    assert turned["com_ahead_of_ankles"][0] == pytest.approx(expected)


def test_stance_width_varies_and_walking_feet_converge(synth):
    """Standing clips differ in stance width (feet nearly together to wide apart), and a walking
    subject's knees and ankles stay inside the hip line, as real gait's 5-20 cm step width puts
    them (generator version 5 had every standing subject's knees 6 cm outside the hips)."""
    from lib.data.synthetic.calibration import joint_statistics
    standing, walking = [], []
    for sub in range(1, 9):
        joints = synth.motion(5, "Waiting", sub, 60).joints
        standing.append(np.median(joint_statistics(joints)["ankle_separation"]))
        joints = synth.motion(5, "Walking", sub, 100).joints
        st = joint_statistics(joints)
        walking.append((np.median(st["knee_separation"]), np.median(st["ankle_separation"])))
    assert min(standing) < 0.9 and max(standing) > 1.3, standing
    knees, ankles = np.array(walking).T
    # rough ground widens the steps a little, so the clips' medians, not each clip
    assert np.median(knees) < 1.0 and np.median(ankles) < 0.7 and ankles.max() < 1.0, walking


def _both_sides_median(info, tracks, statistic):
    """Median over frames and both sides of a calibration statistic (``statistic``_left /
    _right) of the skeleton the subject's tracks pose."""
    from lib.data.synthetic import skeleton
    from lib.data.synthetic.calibration import joint_statistics
    points = skeleton.forward_kinematics(info["skeleton"],
                                         motion.compose_rotations(tracks, info["rest"]))
    st = joint_statistics(points[:, :17] * 1000.0)
    return np.median(np.concatenate([st[f"{statistic}_left"], st[f"{statistic}_right"]]))


def test_walking_arms_swing_about_the_clips_centre(synth):
    """A gait's upper arm swings about the clip's arm-swing centre, measured against the chest's
    line: moving the centre back by 10 degrees (same clip otherwise) moves the arm's median
    carriage back by as much, and the centres drawn per clip (ARM_SWING_CENTRE_DEG) put the
    walking arm behind the chest's line, as real walkers hold it."""
    from dataclasses import replace
    info = synth.subject(5)

    def carriage(style):
        tr = motion.action_tracks("Walking", 100, info["rest"], np.random.default_rng(3), style)
        return _both_sides_median(info, tr, "upper_arm_carriage")

    forward, back = (carriage(replace(info["style"], arm_swing_centre=np.deg2rad(c)))
                     for c in (-2.0, -12.0))
    assert forward - back == pytest.approx(10.0, abs=2.0)
    drawn = [carriage(info["style"].for_clip(np.random.default_rng(k))) for k in range(6)]
    assert np.median(drawn) < 0.0, drawn


def test_upper_arm_carriage_by_hand():
    """Upper arm straight down along an upright chest: 0; swung 30 deg forward: 30; 20 deg
    back: -20; the same after leaning the whole body 25 deg forward (the chest's own frame)."""
    from lib.data.synthetic.calibration import J, joint_statistics
    d = np.deg2rad
    x = np.zeros((1, 17, 3))
    x[0, J["L_Hip"]], x[0, J["R_Hip"]] = [100.0, 0, 0], [-100.0, 0, 0]
    x[0, J["Torso"]], x[0, J["Neck"]] = [0, 0, 250.0], [0, 0, 500.0]
    x[0, J["L_Shoulder"]], x[0, J["R_Shoulder"]] = [180.0, 0, 480.0], [-180.0, 0, 480.0]
    # facing -y (the hips' x up = -y): forward is -y
    x[0, J["L_Elbow"]] = x[0, J["L_Shoulder"]] + 300.0 * np.array([0, -np.sin(d(30)), -np.cos(d(30))])
    x[0, J["R_Elbow"]] = x[0, J["R_Shoulder"]] + 300.0 * np.array([0, np.sin(d(20)), -np.cos(d(20))])
    st = joint_statistics(x)
    assert st["upper_arm_carriage_left"][0] == pytest.approx(30.0)
    assert st["upper_arm_carriage_right"][0] == pytest.approx(-20.0)
    c, s = np.cos(d(25)), np.sin(d(25))
    leaning = joint_statistics(x @ np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]]).T)
    assert leaning["upper_arm_carriage_left"][0] == pytest.approx(30.0)
    assert leaning["upper_arm_carriage_right"][0] == pytest.approx(-20.0)


def test_soft_knees_bend_standing_legs_only(synth):
    """A clip's soft knees (version 9) bend a standing clip's knees by that much more (the
    hips by half of it; same clip otherwise), leave a gait's legs and a seated frame's as
    they were, and the per-clip draws span SOFT_KNEES_DEG."""
    from dataclasses import replace
    info = synth.subject(5)

    def run(action, bend_deg):
        style = replace(info["style"], soft_knees=np.deg2rad(bend_deg))
        return motion.action_tracks(action, 100, info["rest"], np.random.default_rng(3), style)

    def knee_median(tr):
        return _both_sides_median(info, tr, "knee_flexion")

    straight, soft = run("Directions", 0.0), run("Directions", 12.0)
    assert knee_median(soft) - knee_median(straight) == pytest.approx(12.0, abs=2.0)
    hip = soft.sided["hip_flex"]["L"] - straight.sided["hip_flex"]["L"]
    assert np.median(hip) == pytest.approx(np.deg2rad(6.0), abs=np.deg2rad(1.0))
    walk0, walk1 = run("Walking", 0.0), run("Walking", 12.0)
    for s in ("L", "R"):
        np.testing.assert_array_equal(walk0.sided["knee_flex"][s], walk1.sided["knee_flex"][s])
    sit0, sit1 = run("Sitting", 0.0), run("Sitting", 12.0)
    seated = sit0.seated > 0.999
    assert seated.any()
    np.testing.assert_allclose(sit0.sided["knee_flex"]["L"][seated],
                               sit1.sided["knee_flex"]["L"][seated], atol=1e-3)
    drawn = np.rad2deg([info["style"].for_clip(np.random.default_rng(k)).soft_knees
                        for k in range(200)])
    lo, hi = motion.SOFT_KNEES_DEG
    assert lo <= drawn.min() < lo + 1.5 and hi - 1.5 < drawn.max() <= hi
