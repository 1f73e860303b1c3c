"""main/infer.py: detector formats, the joint mapping, gap filling, outputs and bad input.

Inputs are made from 3D joints seen through a real Human3.6M camera: generated synthetic
subjects always, and the real CMU clips when they are present beside the checkout.
"""
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from lib.engine.infer_run import infer_main
from lib.engine.run import train_main
from lib.geometry.camera import h36m_camera, project_to_pixels
from lib.geometry.metrics import mpjpe_per_sample
from lib.infer.layouts import (COCO17_NAMES, LAYOUTS, OPENPOSE_BODY25_NAMES, coco17_from_h36m17,
                               to_h36m17)
from lib.infer.pipeline import fill_gaps
from lib.infer.readers import KeypointInputError, read_keypoints

CAM = h36m_camera(1, 2)      # the training subject's own camera (its world frame)
W, H = CAM.width, CAM.height
H17 = ("Pelvis", "R_Hip", "R_Knee", "R_Ankle", "L_Hip", "L_Knee", "L_Ankle", "Torso", "Neck",
       "Nose", "Head", "L_Shoulder", "L_Elbow", "L_Wrist", "R_Shoulder", "R_Elbow", "R_Wrist")


# ----------------------------------------------------------------------------- mapping
def test_coco_mapping_hand_computed():
    rng = np.random.default_rng(0)
    coco = rng.uniform(0, 1000, (3, 17, 2))
    out, conf = to_h36m17(coco, np.ones((3, 17)), LAYOUTS["coco17"])
    c = {n: coco[:, i] for i, n in enumerate(COCO17_NAMES)}
    pelvis = (c["left_hip"] + c["right_hip"]) / 2
    thorax = (c["left_shoulder"] + c["right_shoulder"]) / 2
    expect = {"Pelvis": pelvis, "Neck": thorax, "Torso": (pelvis + thorax) / 2,
              "Nose": c["nose"], "Head": (c["left_eye"] + c["right_eye"]) / 2,
              "R_Knee": c["right_knee"], "L_Wrist": c["left_wrist"]}
    for name, value in expect.items():
        np.testing.assert_allclose(out[:, H17.index(name)], value, atol=1e-9, err_msg=name)
    # a derived joint is as confident as its weakest source
    scores = np.ones((1, 17))
    scores[0, COCO17_NAMES.index("left_hip")] = 0.2
    _, conf = to_h36m17(coco[:1], scores, LAYOUTS["coco17"])
    assert conf[0, H17.index("Pelvis")] == 0.2 and conf[0, H17.index("Torso")] == 0.2
    assert conf[0, H17.index("R_Hip")] == 1.0


def test_coco_made_from_h36m_maps_back_except_the_derived_joints():
    kp17 = np.random.default_rng(2).uniform(0, 1000, (4, 17, 2))
    back, _ = to_h36m17(coco17_from_h36m17(kp17), np.ones((4, 17)), LAYOUTS["coco17"])
    derived = [H17.index(n) for n in ("Pelvis", "Torso", "Neck")]
    exact = [i for i in range(17) if i not in derived]
    np.testing.assert_array_equal(back[:, exact], kp17[:, exact])
    np.testing.assert_allclose(back[:, H17.index("Pelvis")],
                               (kp17[:, H17.index("L_Hip")] + kp17[:, H17.index("R_Hip")]) / 2)


def test_body25_and_coco_agree_on_the_same_body():
    rng = np.random.default_rng(1)
    coco = rng.uniform(0, 1000, (2, 17, 2))
    by_name = dict(zip(COCO17_NAMES, np.moveaxis(coco, 1, 0)))
    body25 = np.stack([by_name.get(n, np.full((2, 2), 7.0)) for n in OPENPOSE_BODY25_NAMES], 1)
    a, _ = to_h36m17(coco, np.ones((2, 17)), LAYOUTS["coco17"])
    b, _ = to_h36m17(body25, np.ones((2, 25)), LAYOUTS["openpose_body25"])
    np.testing.assert_allclose(a, b)
    rows = dict(LAYOUTS["openpose_body25"].table())
    assert rows["Pelvis"] == "mean(left_hip, right_hip)" and rows["Nose"] == "nose"


def test_fill_gaps_interpolates_per_person_and_joint():
    xy = np.zeros((5, 1, 2))
    xy[:, 0, 0] = [0, 99, 99, 30, 40]          # frames 0, 1, 2 (gaps), 3, 4
    missing = np.zeros((5, 1), bool)
    missing[1:3] = True
    frames = np.array([0, 1, 2, 3, 4])
    out, still = fill_gaps(xy, missing, frames, np.zeros(5, int))
    np.testing.assert_allclose(out[:, 0, 0], [0, 10, 20, 30, 40])
    assert not still.any()
    # another person's track is separate: its only observation is copied, never mixed
    persons = np.array([0, 0, 1, 1, 1])
    missing = np.array([[False], [True], [True], [True], [False]])
    out, still = fill_gaps(xy, missing, frames, persons)
    np.testing.assert_allclose(out[:, 0, 0], [0, 0, 40, 40, 40])


# ----------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A Martinez model trained briefly on synthetic S1/S5, and S1 joints for the inputs."""
    from lib.data.formats.h36m_json import read_h36m_json
    from lib.data.synthetic.generate import generate_synthetic_h36m
    base = tmp_path_factory.mktemp("infer")
    data = base / "synth"
    generate_synthetic_h36m(out_dir=data, seed=4, frames_per_sequence=40, subjects=(1, 5, 9),
                            actions=("Walking", "Eating", "Posing"), log=lambda *a: None)
    cfg = {"output_dir": str(base / "experiment"), "cache_dir": str(base / "cache"),
           "DATASET": {"format": "json", "root": str(data), "num_joints": 17,
                       "train_subjects": [1, 5], "test_subjects": [9], "train_stride": 1,
                       "test_stride": 2, "val_fraction": 0.0, "require_smpl": False},
           "MODEL": {"name": "Martinez", "linear_size": 128, "num_stage": 1},
           "TRAIN": {"epochs": 6, "batch_size": 64, "lr": 0.002, "num_threads": 1,
                     "print_freq": 0, "select_on": "test", "lr_step": [4]}}
    path = base / "m.yml"
    path.write_text(yaml.safe_dump(cfg))
    train_main(["--cfg", str(path)])
    weights = next((base / "experiment").glob("exp_*/checkpoint/final.pth.tar"))
    # a training sequence: these tests check the pipeline (mapping, units, normalisation), not
    # how far a 240-step model generalises
    corpus = read_h36m_json(data)
    seq = [q for q in corpus.sequences if q.subject == 1][0]
    x_cam = CAM.world_to_camera(seq.joints_world.astype(np.float64))
    kp = project_to_pixels(x_cam, CAM.f, CAM.c)
    gt = x_cam - x_cam[:, :1]
    # the floor to beat: predicting the mean training pose (root-relative, camera frame)
    train = [c.world_to_camera(q.joints_world.astype(np.float64)) for q in corpus.sequences
             if q.subject in (1, 5) for c in corpus.cameras[q.subject].values()]
    mean = np.mean([(x - x[:, :1]).mean(0) for x in train], 0)
    mean_pose = float(mpjpe_per_sample(np.broadcast_to(mean, gt.shape), gt).mean())
    return {"cfg": path, "weights": weights, "kp17": kp, "gt": gt, "mean_pose": mean_pose,
            "base": base}


def _run(trained, inp, out, *extra, weights=None):
    return infer_main(["--cfg", str(trained["cfg"]), "--weights",
                       str(weights or trained["weights"]),
                       "--input", str(inp), "--out", str(out), *extra])


def test_npy_h36m17_end_to_end_beats_the_mean_pose(trained, tmp_path):
    inp = tmp_path / "kp.npy"
    np.save(inp, trained["kp17"])
    res = _run(trained, inp, tmp_path / "out", "--layout", "h36m17", "--image-size",
               str(W), str(H))
    with np.load(tmp_path / "out" / "poses_3d.npz") as z:
        assert z["poses_3d"].shape == (40, 17, 3) and z["poses_3d"].dtype == np.float32
        assert list(z["joint_names"]) == list(H17)
        np.testing.assert_array_equal(z["frame_ids"], np.arange(40))
        assert z["valid"].all() and (z["person_ids"] == 0).all()
        pose = z["poses_3d"].astype(np.float64)
    np.testing.assert_allclose(pose[:, 0], 0.0, atol=1e-6)          # root-relative
    err = float(mpjpe_per_sample(pose, trained["gt"]).mean())
    assert err < 0.8 * trained["mean_pose"], (err, trained["mean_pose"])
    doc = json.loads((tmp_path / "out" / "poses_3d.json").read_text())
    np.testing.assert_allclose(np.array(doc["poses_3d"]), pose, atol=0.006)
    assert res["skipped"] == 0


def test_coco_results_two_people_gaps_and_a_skipped_frame(trained, tmp_path):
    coco = coco17_from_h36m17(trained["kp17"])
    entries = []
    for t in range(len(coco)):
        kp = np.concatenate([coco[t], np.full((17, 1), 0.9)], 1)
        if t == 5:
            kp[COCO17_NAMES.index("left_wrist"), 2] = 0.05         # low score: filled
        if t == 9:
            kp[:10, 2] = 0.0                                       # too few joints: skipped
        entries.append({"image_id": 100 + t, "category_id": 1, "score": 0.95,
                        "keypoints": kp.ravel().tolist()})
        if t % 10 == 0:                                            # a second, weaker person
            other = kp.copy()
            other[:, 0] += 300
            entries.append({"image_id": 100 + t, "category_id": 1, "score": 0.5,
                            "keypoints": other.ravel().tolist()})
    inp = tmp_path / "results.json"
    inp.write_text(json.dumps(entries))
    res = _run(trained, inp, tmp_path / "out", "--image-size", str(W), str(H), "--vis",
               "--vis-frames", "3")
    pics = sorted((tmp_path / "out" / "vis").glob("*.png"))
    assert [p.name for p in pics] == ["frame000100_person0.png", "frame000120_person0.png",
                                      "frame000139_person0.png"]
    with np.load(tmp_path / "out" / "poses_3d.npz") as z:
        persons, frames, valid = z["person_ids"], z["frame_ids"], z["valid"]
        pose = z["poses_3d"]
    assert len(frames) == 44 and (persons == 1).sum() == 4
    assert res["skipped"] == 1 and not valid[(frames == 109) & (persons == 0)].any()
    assert np.isnan(pose[~valid]).all() and np.isfinite(pose[valid]).all()
    assert res["filled_per_joint"] == {"L_Wrist": 1}
    # the COCO path costs accuracy only through the derived joints: still far below the mean
    main = (persons == 0) & valid
    err = float(mpjpe_per_sample(pose[main].astype(np.float64),
                                 trained["gt"][frames[main] - 100]).mean())
    assert err < 0.8 * trained["mean_pose"]


def test_openpose_folder_matches_the_coco_path(trained, tmp_path):
    coco = coco17_from_h36m17(trained["kp17"][:6])
    by_name = dict(zip(COCO17_NAMES, np.moveaxis(coco, 1, 0)))
    folder = tmp_path / "openpose"
    folder.mkdir()
    for t in range(6):
        kp = np.zeros((25, 3))
        for i, n in enumerate(OPENPOSE_BODY25_NAMES):
            if n in by_name:
                kp[i] = [*by_name[n][t], 0.9]
        (folder / f"clip_{t:012d}_keypoints.json").write_text(json.dumps(
            {"version": 1.3, "people": [{"pose_keypoints_2d": kp.ravel().tolist()}]}))
    track = read_keypoints(folder)
    assert track.layout == "openpose_body25" and len(track.xy) == 6
    _run(trained, folder, tmp_path / "op", "--image-size", str(W), str(H))
    np.save(tmp_path / "c.npy", np.concatenate([coco, np.full((6, 17, 1), 0.9)], 2))
    _run(trained, tmp_path / "c.npy", tmp_path / "co", "--layout", "coco17", "--image-size",
         str(W), str(H))
    with np.load(tmp_path / "op" / "poses_3d.npz") as a, np.load(tmp_path / "co" /
                                                                "poses_3d.npz") as b:
        np.testing.assert_allclose(a["poses_3d"], b["poses_3d"], atol=1e-4)


def test_coco_annotation_layout_carries_the_image_size(trained, tmp_path):
    coco = coco17_from_h36m17(trained["kp17"][:3])
    doc = {"images": [{"id": t, "width": W, "height": H} for t in range(3)],
           "annotations": [{"image_id": t, "keypoints": np.concatenate(
               [coco[t], np.full((17, 1), 2.0)], 1).ravel().tolist()} for t in range(3)]}
    (tmp_path / "ann.json").write_text(json.dumps(doc))
    track = read_keypoints(tmp_path / "ann.json")
    assert track.image_size == (W, H) and track.scores.max() == 1.0   # visibility 2 -> 1
    res = _run(trained, tmp_path / "ann.json", tmp_path / "out", weights="latest")
    assert res["rows"] == 3
    explicit = _run(trained, tmp_path / "ann.json", tmp_path / "out2")
    np.testing.assert_array_equal(res["poses_3d"], explicit["poses_3d"])


@pytest.mark.parametrize("content, expect", [
    ("", "is empty"),
    ("{not json", "not valid JSON"),
    ('{"foo": 1}', "neither COCO"),
    ('[{"image_id": 1, "keypoints": [1, 2, 3, 4]}]', "not a multiple of 3"),
    ('[{"image_id": 1, "keypoints": ' + json.dumps([1.0, 2.0, 1.0] * 5) + "}]",
     "5 joints match no known layout"),
    ('[{"image_id": 1, "keypoints": ' + json.dumps([float("nan"), 2.0, 1.0] * 17)
     .replace("NaN", "NaN") + "}]", "NaN"),
])
def test_bad_inputs_are_clear_errors_and_write_nothing(trained, tmp_path, content, expect):
    inp = tmp_path / "bad.json"
    inp.write_text(content)
    with pytest.raises(KeypointInputError, match=expect) as info:
        _run(trained, inp, tmp_path / "out", "--image-size", str(W), str(H))
    assert str(inp) in str(info.value)
    assert not (tmp_path / "out").exists()


def test_missing_or_negative_image_size_and_wrong_checkpoint(trained, tmp_path):
    from lib.experiment import CheckpointError
    inp = tmp_path / "kp.npy"
    np.save(inp, trained["kp17"][:4])
    with pytest.raises(KeypointInputError, match="--image-size WIDTH HEIGHT"):
        _run(trained, inp, tmp_path / "out", "--layout", "h36m17")
    with pytest.raises(KeypointInputError, match="not positive"):
        _run(trained, inp, tmp_path / "out", "--layout", "h36m17", "--image-size", "-5", "10")
    with pytest.raises(KeypointInputError, match="--layout coco17 or --layout h36m17"):
        _run(trained, inp, tmp_path / "out", "--image-size", "5", "10")
    other = yaml.safe_load(Path(trained["cfg"]).read_text())
    other["MODEL"] = {"name": "SemGCN", "hid_dim": 16}
    other_cfg = tmp_path / "semgcn.yml"
    other_cfg.write_text(yaml.safe_dump(other))
    with pytest.raises(CheckpointError):
        infer_main(["--cfg", str(other_cfg), "--weights", str(trained["weights"]), "--input",
                    str(inp), "--layout", "h36m17", "--image-size", str(W), str(H),
                    "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out" / "poses_3d.npz").exists()


def test_real_cmu_clip_through_the_coco_path(trained, tmp_path, mocap_dir):
    """A real CMU walk, seen by an H36M camera, written as COCO results: the model trained on
    synthetic data lifts it, and each output is a full, finite, root-relative pose."""
    from lib.data.mocap.to_h36m import ImportOptions, import_clips
    cam = h36m_camera(9, 2)
    asf = mocap_dir / "02" / "02.asf"
    amc = mocap_dir / "02" / "02_01.amc"
    corpus = import_clips(asf, [amc], subject=101, actions="Walking",
                          options=ImportOptions(max_frames=240, camera_subject=9))
    world = corpus.sequences[0].joints_world.astype(np.float64)
    x_cam = cam.world_to_camera(world)
    kp17 = project_to_pixels(x_cam, cam.f, cam.c)
    coco = coco17_from_h36m17(kp17)
    entries = [{"image_id": t, "keypoints": np.concatenate([coco[t], np.ones((17, 1))], 1)
                .ravel().tolist(), "score": 1.0} for t in range(len(coco))]
    (tmp_path / "cmu.json").write_text(json.dumps(entries))
    res = _run(trained, tmp_path / "cmu.json", tmp_path / "out", "--image-size", str(W),
               str(H), "--video", "--fps", "50")
    with np.load(tmp_path / "out" / "poses_3d.npz") as z:
        pose = z["poses_3d"].astype(np.float64)
        assert z["valid"].all() and np.isfinite(pose).all()
    import imageio.v2 as imageio
    reader = imageio.get_reader(res["video"])     # the whole walk, at the import's 50 fps
    try:
        assert reader.count_frames() == len(coco) and reader.get_meta_data()["fps"] == 50
    finally:
        reader.close()
    gt = x_cam - x_cam[:, :1]
    err = mpjpe_per_sample(pose, gt).mean()
    print(f"CMU 02_01 via COCO results: {err:.1f} mm")
    assert err < 400


def test_export_then_infer_on_onnx_runtime_matches_pytorch(trained, tmp_path):
    from lib.engine.export_run import export_main
    onnx_file = tmp_path / "m.onnx"
    res = export_main(["--cfg", str(trained["cfg"]), "--weights", str(trained["weights"]),
                       "--format", "onnx", "--out", str(onnx_file)])
    assert res["max_abs_diff"]["pose"] < 1e-5
    inp = tmp_path / "kp.npy"
    np.save(inp, trained["kp17"])
    common = ["--cfg", str(trained["cfg"]), "--input", str(inp), "--layout", "h36m17",
              "--image-size", str(W), str(H)]
    a = infer_main(common + ["--weights", str(trained["weights"]), "--out", str(tmp_path / "a")])
    b = infer_main(common + ["--onnx", str(onnx_file), "--out", str(tmp_path / "b"), "--video"])
    np.testing.assert_allclose(a["poses_3d"], b["poses_3d"], atol=1e-2)      # mm
    import imageio.v2 as imageio
    reader = imageio.get_reader(b["video"])
    try:
        assert reader.count_frames() == len(trained["kp17"])
    finally:
        reader.close()
    with pytest.raises(KeypointInputError, match="either --weights"):
        infer_main(common + ["--weights", str(trained["weights"]), "--onnx", str(onnx_file)])


# ----------------------------------------------------------------------------- input registry
def test_input_formats_are_a_registry_sniffed_in_order(tmp_path):
    from lib.engine.infer_run import infer_parser
    from lib.infer.readers import (INPUT_FORMATS, KeypointTrack, detect_format,
                                   input_format_names, register_input)
    assert list(INPUT_FORMATS) == ["npy", "h36m", "openpose", "coco"]
    assert input_format_names() == ("auto", "npy", "h36m", "openpose", "coco")
    np.save(tmp_path / "a.npy", np.zeros((2, 16, 2)))
    (tmp_path / "r.json").write_text(json.dumps([{"image_id": 1, "keypoints": [1.0] * 51}]))
    (tmp_path / "ann.json").write_text(json.dumps({"images": [], "annotations": []}))
    (tmp_path / "o.json").write_text(json.dumps({"people": []}))
    (tmp_path / "frames").mkdir()
    assert [detect_format(tmp_path / n) for n in ("a.npy", "r.json", "ann.json", "o.json",
                                                    "frames")] == ["npy", "coco", "coco",
                                                                   "openpose", "openpose"]

    # a new format is one decorated reader: auto finds it by its content test, the command
    # line offers it, and a second registration of the name is refused
    @register_input("csv_test", lambda probe: probe.path.suffix == ".csv")
    def read_csv(probe, opts):
        """x,y of 16 H36M joints per line (test only)."""
        xy = np.loadtxt(probe.path, delimiter=",", ndmin=2).reshape(-1, 16, 2)
        n = len(xy)
        return KeypointTrack(xy, np.ones((n, 16)), "h36m16", np.arange(n), np.zeros(n, int),
                             source=str(probe.path))
    try:
        np.savetxt(tmp_path / "kp.csv", np.arange(3 * 32, dtype=float).reshape(3, 32),
                   delimiter=",")
        track = read_keypoints(tmp_path / "kp.csv")
        assert track.input_format == "csv_test" and track.xy.shape == (3, 16, 2)
        assert track.xy[2, 15, 1] == 3 * 32 - 1
        args = infer_parser().parse_args(["--cfg", "c.yml", "--input", "kp.csv",
                                          "--input-format", "csv_test"])
        assert args.input_format == "csv_test"
        with pytest.raises(ValueError, match="registered twice"):
            register_input("csv_test", lambda probe: False)(read_csv)
    finally:
        del INPUT_FORMATS["csv_test"]
    assert "csv_test" not in input_format_names()
    with pytest.raises(KeypointInputError, match="unknown --input-format 'csv_test'"):
        read_keypoints(tmp_path / "kp.csv", "csv_test")
    with pytest.raises(KeypointInputError, match="no --input given"):
        read_keypoints(None, "coco")


# ----------------------------------------------------------------------------- video
def _red_pixels(frame):
    f = frame.astype(int)
    return int(((f[..., 0] > 150) & (f[..., 1] < 90) & (f[..., 2] < 90)).sum())


def _expected_first_frame(trained, pose, title):
    from lib.geometry.skeleton import H36M17
    from lib.vis.skeleton_plot import InputPoseFigure
    fig = InputPoseFigure(H36M17, (W, H))
    fig.update(trained["kp17"][0], (W, H), pose, title)
    try:
        return fig.rgb()
    finally:
        fig.close()


def test_video_mp4_of_the_whole_track_and_gif_without_ffmpeg(trained, tmp_path, monkeypatch):
    import imageio.v2 as imageio
    from PIL import Image
    inp = tmp_path / "kp.npy"
    np.save(inp, trained["kp17"][:30])
    common = ["--layout", "h36m17", "--image-size", str(W), str(H), "--video"]
    res = _run(trained, inp, tmp_path / "mp4", *common, "--fps", "20")
    path = tmp_path / "mp4" / "video.mp4"
    assert res["video"] == str(path) and res["video_frames_per_s"] > 0
    reader = imageio.get_reader(str(path))
    try:
        assert reader.count_frames() == 30 and reader.get_meta_data()["fps"] == 20
        first, last = reader.get_data(0), reader.get_data(29)
    finally:
        reader.close()
    assert first.shape == (400, 800, 3)
    # the frame is the --vis look of row 0 (up to H.264 loss), right side red in both panels
    expect = _expected_first_frame(trained, res["poses_3d"][0], "person 0, frame 0")
    assert np.abs(first.astype(int) - expect).mean() < 4
    assert _red_pixels(first[:, :400]) > 50 and _red_pixels(first[:, 400:]) > 20
    assert np.abs(first.astype(int) - last).mean() > 0.5          # the person moves
    # no ffmpeg: an animated GIF at the default frame rate, same frames
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "no-ffmpeg"))
    res = _run(trained, inp, tmp_path / "gif", *common)
    gif = tmp_path / "gif" / "video.gif"
    assert res["video"] == str(gif) and not (tmp_path / "gif" / "video.mp4").exists()
    with Image.open(gif) as im:
        assert im.n_frames == 30 and im.info["duration"] == 40          # 25 fps
    frames = imageio.mimread(str(gif))
    assert len(frames) == 30
    assert np.abs(frames[0][..., :3].astype(int) - expect).mean() < 4
    assert not [p for p in (tmp_path / "gif").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("extra, expect", [
    (["--video", "--fps", "0"], "--fps 0 is not a frame rate"),
    (["--video", "--fps", "nan"], "is not a frame rate"),
    (["--fps", "30"], "--fps applies with --video only"),
    (["--video", "--video-track", "3"], "--video-track 3 has no rows"),
    (["--split", "train"], "--split applies to --input-format h36m only"),
    (["--subjects", "9"], "--subjects applies to --input-format h36m only"),
])
def test_bad_video_and_dataset_flags_are_errors(trained, tmp_path, extra, expect):
    inp = tmp_path / "kp.npy"
    np.save(inp, trained["kp17"][:4])
    with pytest.raises(KeypointInputError, match=expect):
        _run(trained, inp, tmp_path / "out", "--layout", "h36m17", "--image-size", str(W),
             str(H), *extra)
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- HGN meshes
@pytest.fixture(scope="module")
def hgn(tmp_path_factory):
    """An (untrained) small HGN saved as a framework checkpoint, with its YAML."""
    import torch
    from lib.body.synthetic_model import write_synthetic_body_model
    from lib.config import load_config
    from lib.experiment import save_checkpoint
    from lib.registry import build_model
    base = tmp_path_factory.mktemp("hgn")
    write_synthetic_body_model(base / "smpl", seed=0)
    opts = ["MODEL.name", "HGN", "MODEL.hid_dim", "16", "DATASET.num_joints", "17",
            "smpl_dir", str(base / "smpl"), "cache_dir", str(base / "cache"),
            "output_dir", str(base / "experiment")]
    cfg = load_config(None, opts)
    path = base / "hgn.yml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    cfg = load_config(str(path))
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    save_checkpoint(base / "hgn.pth.tar", epoch=1, model=model, cfg=cfg)
    return {"cfg": path, "weights": base / "hgn.pth.tar", "model": model, "config": cfg,
            "base": base}


def _read_obj(path):
    lines = path.read_text().splitlines()
    v = np.array([[float(x) for x in ln.split()[1:]] for ln in lines if ln.startswith("v ")])
    f = np.array([[int(x) for x in ln.split()[1:]] for ln in lines if ln.startswith("f ")])
    return v, f


def _hgn_reference(hgn, kp17, row):
    """The mesh heads of one row by hand: the model on the encoded input, mm, shifted with the
    pose's root joint like poses_3d."""
    import torch
    from lib.data import codec
    x = torch.from_numpy(codec.encode_input(kp17[row:row + 1], W, H))
    with torch.no_grad():
        out = hgn["model"](x)
    root = out["pose"][0, 0].double().numpy() * 1000.0
    return {h: out[h][0].double().numpy() * 1000.0 - root for h in ("mesh_fine", "mesh_mid")}


def test_hgn_vis_writes_coarse_meshes_of_the_sampled_rows(hgn, trained, tmp_path):
    from lib.engine.visualize import mesh_faces
    from lib.registry import ModelContext
    inp = tmp_path / "kp.npy"
    np.save(inp, trained["kp17"][:4])
    res = infer_main(["--cfg", str(hgn["cfg"]), "--weights", str(hgn["weights"]), "--input",
                      str(inp), "--layout", "h36m17", "--image-size", str(W), str(H), "--vis",
                      "--vis-frames", "2", "--out", str(tmp_path / "out")])
    mesh_dir = tmp_path / "out" / "mesh"
    assert sorted(p.name for p in mesh_dir.iterdir()) == [
        "frame000000_person0_mesh_fine.obj", "frame000000_person0_mesh_mid.obj",
        "frame000003_person0_mesh_fine.obj", "frame000003_person0_mesh_mid.obj"]
    assert len(list((tmp_path / "out" / "vis").glob("*.png"))) == 2
    faces = mesh_faces(ModelContext(hgn["config"]))
    for row in (0, 3):
        ref = _hgn_reference(hgn, trained["kp17"], row)
        for head in ("mesh_fine", "mesh_mid"):
            v, f = _read_obj(mesh_dir / f"frame{row:06d}_person0_{head}.obj")
            assert v.shape == ref[head].shape and len(f) == len(faces[head]) > 0
            np.testing.assert_array_equal(f - 1, faces[head])
            assert f.min() >= 1 and f.max() <= len(v)
            np.testing.assert_allclose(v, ref[head], atol=1e-3)
    assert len(faces["mesh_mid"]) < len(faces["mesh_fine"])
    assert sum(p.endswith(".obj") for p in res["files"]) == 4
    # without --vis no meshes
    infer_main(["--cfg", str(hgn["cfg"]), "--weights", str(hgn["weights"]), "--input",
                str(inp), "--layout", "h36m17", "--image-size", str(W), str(H), "--out",
                str(tmp_path / "plain")])
    assert not (tmp_path / "plain" / "mesh").exists()


@pytest.mark.slow
def test_hgn_meshes_and_video_on_onnx_runtime(hgn, trained, tmp_path):
    """HGN's ONNX export carries the mesh heads: --onnx --vis writes the same meshes."""
    from lib.engine.export_run import export_model
    onnx_file = tmp_path / "hgn.onnx"
    export_model(hgn["model"], 17, "onnx", onnx_file)
    inp = tmp_path / "kp.npy"
    np.save(inp, trained["kp17"][:4])
    res = infer_main(["--cfg", str(hgn["cfg"]), "--onnx", str(onnx_file), "--input", str(inp),
                      "--layout", "h36m17", "--image-size", str(W), str(H), "--vis",
                      "--vis-frames", "1", "--video", "--out", str(tmp_path / "out")])
    ref = _hgn_reference(hgn, trained["kp17"], 0)
    for head in ("mesh_fine", "mesh_mid"):
        v, _ = _read_obj(tmp_path / "out" / "mesh" / f"frame000000_person0_{head}.obj")
        np.testing.assert_allclose(v, ref[head], atol=1e-2)
    assert res["video"].endswith("video.mp4")


# ----------------------------------------------------------------------------- h36m input
def _synthetic_rows(trained, subject):
    """{(action, subaction, camera, frame): (GT root-relative camera mm, pixels)} by hand."""
    from lib.data.formats.h36m_json import read_h36m_json
    corpus = read_h36m_json(trained["base"] / "synth", subjects=[subject])
    out = {}
    for seq in corpus.sequences:
        for c, cam in corpus.cameras[subject].items():
            x = cam.world_to_camera(seq.joints_world.astype(np.float64))
            kp = project_to_pixels(x, cam.f, cam.c)
            for k, f in enumerate(seq.frame_idx):
                out[(seq.action_idx, seq.subaction_idx, c, int(f))] = (x[k] - x[k, :1], kp[k])
    return out


def test_h36m_input_reproduces_test_py_and_carries_the_gt(trained, tmp_path):
    import imageio.v2 as imageio
    from lib.engine.run import test_main
    ref = test_main(["--cfg", str(trained["cfg"]), "--weights", str(trained["weights"])])
    res = infer_main(["--cfg", str(trained["cfg"]), "--weights", str(trained["weights"]),
                      "--input-format", "h36m", "--video", "--out", str(tmp_path / "out")])
    assert res["mpjpe"] == pytest.approx(ref["test_mpjpe"], abs=1e-3)
    assert res["pa_mpjpe"] == pytest.approx(ref["test_pa_mpjpe"], abs=1e-3)
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["mpjpe"] == \
        pytest.approx(res["mpjpe"])
    hand = _synthetic_rows(trained, 9)
    with np.load(tmp_path / "out" / "poses_3d.npz") as z:
        assert (z["subject"] == 9).all() and z["valid"].all()
        assert len(z["frame_ids"]) == len(hand) // 2                 # test_stride 2
        for r in range(0, len(z["frame_ids"]), 37):
            key = (int(z["action"][r]), int(z["subaction"][r]), int(z["camera"][r]),
                   int(z["frame_ids"][r]))
            np.testing.assert_allclose(z["gt_poses_3d"][r], hand[key][0], atol=0.01)
        track0 = int((z["person_ids"] == 0).sum())
    # the 2D handed to the pipeline are the camera's pixels
    from lib.config import load_config
    track = read_keypoints(None, "h36m", cfg=load_config(str(trained["cfg"])))
    r = 5
    key = (int(track.extras["action"][r]), int(track.extras["subaction"][r]),
           int(track.extras["camera"][r]), int(track.frame_ids[r]))
    np.testing.assert_allclose(track.xy[r], hand[key][1], atol=1e-3)
    # the video follows sequence-camera track 0 at the dataset's 50 fps over the stride of 2
    reader = imageio.get_reader(res["video"])
    try:
        assert reader.count_frames() == track0 == 20 and reader.get_meta_data()["fps"] == 25
    finally:
        reader.close()


def test_h36m_dataset_root_is_sniffed_and_split_subjects_chosen(trained, tmp_path):
    from lib.config import load_config
    from lib.infer.readers import detect_format
    data = trained["base"] / "synth"
    assert detect_format(data) == "openpose"                  # without a YAML: a folder
    assert detect_format(data, load_config(str(trained["cfg"]))) == "h36m"
    res = infer_main(["--cfg", str(trained["cfg"]), "--weights", str(trained["weights"]),
                      "--input", str(data), "--split", "train", "--subjects", "5",
                      "--out", str(tmp_path / "out")])
    with np.load(tmp_path / "out" / "poses_3d.npz") as z:
        assert (z["subject"] == 5).all()
        assert len(z["frame_ids"]) == len(_synthetic_rows(trained, 5))     # train_stride 1
        err = mpjpe_per_sample(z["poses_3d"].astype(np.float64),
                               z["gt_poses_3d"].astype(np.float64)).mean()
        assert res["rows"] == len(z["frame_ids"])
    assert err < trained["mean_pose"]
    base = ["--cfg", str(trained["cfg"]), "--weights", str(trained["weights"]),
            "--input-format", "h36m", "--out", str(tmp_path / "bad")]
    with pytest.raises(KeypointInputError, match="no val split"):
        infer_main(base + ["--split", "val"])
    with pytest.raises(KeypointInputError, match="Drop --image-size"):
        infer_main(base + ["--image-size", "1000", "1000"])
    with pytest.raises(KeypointInputError, match="--layout applies to .npy"):
        infer_main(base + ["--layout", "h36m17"])
    assert not (tmp_path / "bad").exists()


def test_h36m_input_of_a_16_joint_model_matches_test_py(trained, tmp_path):
    """GraphSH/SemGCN-style 16 joints: the dataset's 16 joints go through the H36M-16 layout
    (Nose rebuilt, then dropped again) and the model sees exactly test.py's inputs."""
    import torch
    from lib.config import load_config
    from lib.engine.run import test_main
    from lib.experiment import save_checkpoint
    from lib.geometry.skeleton import H36M16
    from lib.registry import build_model
    doc = yaml.safe_load(Path(trained["cfg"]).read_text())
    doc["DATASET"]["num_joints"] = 16
    doc["MODEL"] = {"name": "SemGCN", "hid_dim": 16}
    path = tmp_path / "semgcn.yml"
    path.write_text(yaml.safe_dump(doc))
    cfg = load_config(str(path))
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "s.pth.tar", epoch=1, model=build_model(cfg), cfg=cfg)
    ref = test_main(["--cfg", str(path), "--weights", str(tmp_path / "s.pth.tar")])
    res = infer_main(["--cfg", str(path), "--weights", str(tmp_path / "s.pth.tar"),
                      "--input-format", "h36m", "--out", str(tmp_path / "out")])
    assert res["mpjpe"] == pytest.approx(ref["test_mpjpe"], abs=1e-3)
    with np.load(tmp_path / "out" / "poses_3d.npz") as z:
        assert list(z["joint_names"]) == list(H36M16.joint_names)
        assert z["poses_3d"].shape[1:] == (16, 3) and z["gt_poses_3d"].shape[1:] == (16, 3)
