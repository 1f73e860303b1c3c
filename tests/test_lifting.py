"""Dataset arrays and cache: inputs, targets and HGN mesh targets against direct computations."""
import os

import numpy as np
import pytest
import torch

from lib.data.formats.h36m_json import read_h36m_json
from lib.data.lifting import (BatchLoader, LiftingDataset, LiftingSpec, MeshTargets, build_arrays,
                          cached_arrays)
from lib.data.synthetic.generate import generate_synthetic_h36m
from lib.body.smpl import BodyModel
from lib.engine.evaluate import compute_metrics
from lib.geometry.camera import normalize_screen_coordinates
from lib.graphs.mesh_graphs import build_mesh_hierarchy, select_levels


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("lift") / "Synthetic"
    generate_synthetic_h36m(out_dir=out, seed=7, frames_per_sequence=12, subjects=(1, 9),
                            actions=("Walking", "Eating"), invalid_fit_rate=0.1,
                            log=lambda *a: None)
    return out


@pytest.fixture(scope="module")
def mesh(synth):
    body = BodyModel.from_dir(synth / "smpl")
    h = build_mesh_hierarchy(body.faces, body.num_vertices, fingerprint=body.fingerprint)
    fine, mid = select_levels(h)
    return MeshTargets(body, h.full_to_level[fine.index], h.full_to_level[mid.index],
                       fingerprint="t")


def test_inputs_and_targets(synth):
    corpus = read_h36m_json(synth, subjects=[1])
    arrays = build_arrays(corpus, LiftingSpec(num_joints=17, stride=3))
    seq = corpus.sequences[0]
    cam = corpus.cameras[1][2]
    rows = np.nonzero((arrays["camera"] == 2) & (arrays["action"] == seq.action_idx)
                      & (arrays["subaction"] == seq.subaction_idx))[0]
    frames = np.arange(0, seq.num_frames, 3)
    assert arrays["frame"][rows].tolist() == seq.frame_idx[frames].tolist()
    xc = seq.joints_world[frames] @ cam.R.T + cam.t                     # mm, camera frame
    uv = xc[..., :2] / xc[..., 2:] * cam.f + cam.c                      # the JSON has no distortion
    np.testing.assert_allclose(arrays["input_2d"][rows],
                               normalize_screen_coordinates(uv, cam.width, cam.height), atol=1e-5)
    np.testing.assert_allclose(arrays["target_3d"][rows], (xc - xc[:, :1]) / 1000, atol=1e-6)
    assert np.abs(arrays["target_3d"][:, 0]).max() == 0                 # root exactly zero


def test_mesh_targets_equal_direct_smpl_per_camera(synth, mesh):
    corpus = read_h36m_json(synth, subjects=[9])
    arrays = build_arrays(corpus, LiftingSpec(num_joints=17, stride=4, with_mesh=True,
                                              require_smpl=True), mesh)
    seq = corpus.sequences[1]
    frames = np.arange(0, seq.num_frames, 4)
    frames = frames[seq.smpl.valid[frames]]
    pf = mesh.pool_fine.toarray() if hasattr(mesh.pool_fine, "toarray") else mesh.pool_fine
    pm = mesh.pool_mid.toarray() if hasattr(mesh.pool_mid, "toarray") else mesh.pool_mid
    for cam_idx, cam in corpus.cameras[9].items():
        verts, _ = mesh.body.camera_frame_mesh(seq.smpl.pose[frames], seq.smpl.shape[frames],
                                               seq.smpl.trans[frames], cam.R, cam.t)
        pelvis = seq.joints_world[frames, 0] @ cam.R.T + cam.t
        expect_fine = (pf.T @ verts.double().numpy() - pelvis[:, None]) / 1000
        expect_mid = (pm.T @ verts.double().numpy() - pelvis[:, None]) / 1000
        rows = np.nonzero((arrays["camera"] == cam_idx) & (arrays["action"] == seq.action_idx)
                          & (arrays["subaction"] == seq.subaction_idx))[0]
        np.testing.assert_allclose(arrays["mesh_fine"][rows], expect_fine, atol=2e-5)
        np.testing.assert_allclose(arrays["mesh_mid"][rows], expect_mid, atol=2e-5)


def test_frames_without_fit_are_counted(synth, mesh):
    corpus = read_h36m_json(synth, subjects=[1])
    total = sum(s.num_frames for s in corpus.sequences)
    invalid = sum(int((~s.smpl.valid).sum()) for s in corpus.sequences)
    assert invalid > 0
    kept = build_arrays(corpus, LiftingSpec(num_joints=17, with_mesh=True, require_smpl=False), mesh)
    dropped = build_arrays(corpus, LiftingSpec(num_joints=17, with_mesh=True, require_smpl=True), mesh)
    assert kept["stats"]["no_smpl_frames"] == invalid == dropped["stats"]["dropped_no_smpl"]
    assert len(kept["input_2d"]) == 4 * total and len(dropped["input_2d"]) == 4 * (total - invalid)
    assert (~kept["has_mesh"]).sum() == 4 * invalid
    excl = build_arrays(corpus, LiftingSpec(num_joints=17, exclude=(corpus.sequences[0].key,)))
    assert excl["stats"]["excluded_frames"] == corpus.sequences[0].num_frames


def test_cache_hit_and_invalidation(synth, tmp_path):
    corpus = read_h36m_json(synth, subjects=[1])
    src = synth / "Human36M" / "annotations" / "Human36M_subject1_joint_3d.json"
    spec = LiftingSpec(num_joints=16, stride=2)
    calls = []

    def build():
        calls.append(1)
        return build_arrays(corpus, spec)

    a = cached_arrays(tmp_path, "x", [src], spec, build)
    b = cached_arrays(tmp_path, "x", [src], spec, build)
    assert len(calls) == 1 and b["stats"]["cache"].startswith("hit")
    np.testing.assert_array_equal(a["input_2d"], b["input_2d"])
    cached_arrays(tmp_path, "x", [src], LiftingSpec(num_joints=16, stride=3), build)
    assert len(calls) == 2                                              # other settings
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 10 ** 9))
    cached_arrays(tmp_path, "x", [src], spec, build)
    assert len(calls) == 3                                              # source changed


def test_loader_covers_every_sample_once_and_shards(synth):
    corpus = read_h36m_json(synth, subjects=[1])
    ds = LiftingDataset(build_arrays(corpus, LiftingSpec(num_joints=17, stride=5)))
    seen = torch.cat([b["frame"] * 100 + b["camera"] * 10 + b["action"]
                      for b in BatchLoader(ds, 7, shuffle=True, seed=1)])
    assert len(seen) == len(ds)
    shards = [torch.cat([b["input_2d"] for b in BatchLoader(ds, 5, shuffle=True, seed=1, rank=r,
                                                            world_size=2)]) for r in (0, 1)]
    assert abs(len(shards[0]) - len(shards[1])) == 0 and len(shards[0]) >= len(ds) // 2


def test_metrics_table_against_hand_computed():
    n = 6
    target = np.random.default_rng(0).normal(size=(n, 17, 3)).astype(np.float32) * 0.2
    target -= target[:, :1]
    action = np.array([2, 2, 2, 3, 3, 4], np.int16)
    ds = LiftingDataset({"input_2d": np.zeros((n, 17, 2), np.float32), "target_3d": target,
                         "action": action})
    pred = torch.from_numpy(target.copy()).double()
    pred[:3, 5] += torch.tensor([0.030, 0.040, 0.0], dtype=torch.float64)   # 50 mm on one joint
    pred[5] += 1.0                                       # a global shift is removed by re-centring
    m = compute_metrics(pred, ds)
    per_action = {a: v["mpjpe"] for a, v in m["table"]["actions"].items()}
    assert per_action["Directions"] == pytest.approx(50 / 17, abs=1e-4)
    assert per_action["Discussion"] == pytest.approx(0, abs=1e-4)
    assert per_action["Eating"] == pytest.approx(0, abs=1e-4)
    assert m["table"]["average"]["mpjpe"] == pytest.approx(50 / 17 / 3, abs=1e-4)
    assert m["table"]["total"]["mpjpe"] == pytest.approx(3 * 50 / 17 / 6, abs=1e-4)


# ----------------------------------------------------------------------------- samples = images
def _drop_images(root, subject, cam, frames):
    """Remove camera ``cam``'s images (and annotations) of ``frames`` of S1 act 2 sub 1."""
    import json
    from lib.data.formats.h36m_json import annotation_path
    path = annotation_path(root, subject, "data")
    data = json.loads(path.read_text())
    gone = {im["id"] for im in data["images"]
            if (im["action_idx"], im["subaction_idx"], im["cam_idx"]) == (2, 1, cam)
            and im["frame_idx"] in frames}
    data["images"] = [im for im in data["images"] if im["id"] not in gone]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] not in gone]
    path.write_text(json.dumps(data))
    return len(gone)


def test_samples_follow_the_images_of_each_camera(tmp_path, caplog):
    """A camera listing fewer images than the others gives fewer samples, as HGN's loader
    (which enumerates images) does; the skipped (frame, camera) pairs are counted and logged."""
    import logging
    from tests.test_formats import NUM_FRAMES, make_corpus
    from data.convert import json_to_npz, npz_to_json
    from lib.data.formats.h36m_json import write_h36m_json
    from lib.data.formats.h36m_npz import read_h36m_npz
    root = tmp_path / "json"
    write_h36m_json(make_corpus(subjects=(1,)), root)
    frames = [2 + 5 * i for i in range(NUM_FRAMES)]          # S1 act 2 sub 1 frame numbers
    assert _drop_images(root, 1, 3, frames[1:4]) == 3
    with caplog.at_level(logging.INFO):
        corpus = read_h36m_json(root)
    seq = corpus.sequence(1, 2, 1)
    assert seq.num_frames == NUM_FRAMES                      # the other cameras keep them
    np.testing.assert_array_equal(seq.frames_of_camera(3), [1, 0, 0, 0, 1, 1])
    assert seq.frames_of_camera(1).all()
    assert "cameras [(3, 3)] have fewer images" in caplog.text
    with caplog.at_level(logging.INFO):
        arrays = build_arrays(corpus, LiftingSpec(num_joints=17))
    n_seq = len(corpus.sequences)
    assert len(arrays["input_2d"]) == n_seq * 4 * NUM_FRAMES - 3
    assert arrays["stats"]["no_image_samples"] == 3
    assert "3 (frame, camera) pairs skipped" in caplog.text
    cam3 = (arrays["subject"] == 1) & (arrays["action"] == 2) & (arrays["subaction"] == 1) \
        & (arrays["camera"] == 3)
    assert sorted(arrays["frame"][cam3].tolist()) == [frames[0], frames[4], frames[5]]
    # stride: only every 2nd frame position; camera 3 lacks positions 1..3 -> keeps 0 and 4
    strided = build_arrays(corpus, LiftingSpec(num_joints=17, stride=2))
    assert strided["stats"]["no_image_samples"] == 1
    # the npz carries which images exist, so JSON -> npz -> JSON gives the same images back
    json_to_npz(root, tmp_path / "npz")
    np.testing.assert_array_equal(
        read_h36m_npz(tmp_path / "npz").sequence(1, 2, 1).frames_of_camera(3), [1, 0, 0, 0, 1, 1])
    npz_to_json(tmp_path / "npz", tmp_path / "back")
    back = build_arrays(read_h36m_json(tmp_path / "back"), LiftingSpec(num_joints=17))
    assert len(back["input_2d"]) == len(arrays["input_2d"])
