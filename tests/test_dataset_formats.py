"""Dataset formats as plug-ins, the lifting codec, and tables/cards that follow the data."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from lib.data import codec
from lib.data.corpus import PoseCorpus, Sequence
from lib.data.formats import DatasetFormat, DatasetInfo, FORMATS, get_format, register_format
from lib.engine.run import train_main
from lib.geometry.camera import h36m_cameras


# ----------------------------------------------------------------------------- codec
def test_encode_input_hand_computed():
    kp = np.array([[[500.0, 500.0], [1000.0, 0.0], [0.0, 1000.0]]])
    out = codec.encode_input(kp, 1000, 1000)
    np.testing.assert_array_equal(out, [[[0, 0], [1, -1], [-1, 1]]])
    assert out.dtype == np.float32
    # non-square image: y keeps the aspect ratio (spans +-h/w)
    out = codec.encode_input(np.array([[[0.0, 0.0]]]), 1000, 500)
    np.testing.assert_allclose(out, [[[-1.0, -0.5]]])


def test_encode_target_and_decode_round_trip():
    x = np.array([[[100.0, 200.0, 3000.0], [1100.0, 200.0, 3000.0], [100.0, -300.0, 3500.0]]])
    root = x[:, 0]
    t = codec.encode_target(x, root)
    np.testing.assert_array_equal(t, [[[0, 0, 0], [1, 0, 0], [0, -0.5, 0.5]]])
    back = codec.decode_pose(t, codec.encode_root(root))
    np.testing.assert_allclose(back, x, atol=1e-3)
    # torch and numpy agree; the root is re-centred even when the network moves it
    moved = torch.from_numpy(t + 0.25)
    np.testing.assert_array_equal(codec.decode_pose(moved).numpy(), codec.decode_pose(t + 0.25))
    np.testing.assert_allclose(codec.decode_pose(moved).numpy(), t.astype(np.float64) * 1000,
                               atol=1e-4)


# ----------------------------------------------------------------------------- a test-only format
TINY = "tiny_test_format"


@register_format
class TinyFormat(DatasetFormat):
    """One .npz of world joints (mm) per subject: ``seq<k>`` -> (N, 17, 3); no action labels."""

    name = TINY

    def info(self, cfg):
        return DatasetInfo(name=TINY, subjects=(101, 102, 103), actions=None, fps=30.0,
                           joint_set="h36m17")

    def source_files(self, cfg, subjects):
        return [p for s in subjects if (p := Path(cfg.DATASET.root) / f"S{s}.npz").is_file()]

    def read(self, cfg, subjects):
        seqs, cams = [], {}
        for s in subjects:
            with np.load(Path(cfg.DATASET.root) / f"S{s}.npz") as z:
                for k in sorted(z.files):
                    seqs.append(Sequence(subject=s, action_idx=int(k[3:]), subaction_idx=1,
                                         joints_world=z[k]))
            cams[s] = h36m_cameras(1)
        return PoseCorpus(seqs, cams, source=f"{TINY}:{cfg.DATASET.root}")


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    """The tiny layout, filled with the poses of a small synthetic Human3.6M."""
    from lib.data.formats.h36m_json import read_h36m_json
    from lib.data.synthetic.generate import generate_synthetic_h36m
    base = tmp_path_factory.mktemp("tinyfmt")
    synth = base / "synth"
    generate_synthetic_h36m(out_dir=synth, seed=5, frames_per_sequence=20, subjects=(1, 5, 9),
                            actions=("Walking", "Sitting"), log=lambda *a: None)
    corpus = read_h36m_json(synth)
    root = base / "tiny"
    root.mkdir()
    for new, old in zip((101, 102, 103), (1, 5, 9)):
        seqs = [q for q in corpus.sequences if q.subject == old]
        np.savez(root / f"S{new}.npz", **{f"seq{i + 1}": q.joints_world.astype(np.float64)
                                           for i, q in enumerate(seqs)})
    return root


def _tiny_cfg(tmp_path, root, **dataset):
    cfg = {"output_dir": str(tmp_path / "experiment"), "cache_dir": str(tmp_path / "cache"),
           "DATASET": {"format": TINY, "root": str(root), "num_joints": 17,
                       "train_subjects": [101, 102], "test_subjects": [103],
                       "train_stride": 1, "test_stride": 1, "val_fraction": 0.0,
                       "require_smpl": False, **dataset},
           "MODEL": {"name": "Martinez", "linear_size": 32, "num_stage": 1},
           "TRAIN": {"epochs": 1, "batch_size": 32, "num_threads": 1, "print_freq": 0,
                     "select_on": "test"}}
    path = tmp_path / "tiny.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_registry_knows_builtin_and_test_formats():
    assert {"json", "npz", TINY} <= set(FORMATS) | {get_format("json").name,
                                                    get_format("npz").name}
    assert get_format("npz").info(None).keypoints == ("gt", "cpn_ft_h36m_dbb",
                                                      "detectron_ft_h36m")
    assert get_format("json").info(None).keypoints == ("gt",)


def test_a_new_format_trains_and_reports_per_sequence(tmp_path, tiny_files):
    summary = train_main(["--cfg", str(_tiny_cfg(tmp_path, tiny_files))])
    table = summary["test_table"]
    assert table["group_by"] == "sequence"
    # 2 actions x 2 sub-actions of the synthetic subject, each one tiny-format sequence
    assert table["order"] == [f"S103 act{k} sub1" for k in (1, 2, 3, 4)]
    frames = [table["actions"][n]["frames"] for n in table["order"]]
    assert frames == [20 * 4] * 4                                    # 20 frames x 4 cameras
    assert table["total"]["frames"] == sum(frames)
    # the per-sequence means average to the table's average
    mean = np.mean([table["actions"][n]["mpjpe"] for n in table["order"]])
    assert table["average"]["mpjpe"] == pytest.approx(mean)
    log = next((tmp_path / "experiment").glob("exp_*/log.txt")).read_text()
    assert "Sequence" in log and "Average (4 sequences)" in log
    assert "excluded sequences=none" in log


def test_hgn_on_a_format_without_meshes_says_the_mesh_loss_is_off(tmp_path, tiny_files):
    path = _tiny_cfg(tmp_path, tiny_files)
    cfg = yaml.safe_load(path.read_text())
    cfg["smpl_dir"] = str(tiny_files.parent / "synth" / "smpl")
    cfg["MODEL"] = {"name": "HGN", "hid_dim": 8}
    cfg["TRAIN"]["max_steps_per_epoch"] = 2
    path.write_text(yaml.safe_dump(cfg))
    train_main(["--cfg", str(path)])
    log = next((tmp_path / "experiment").glob("exp_*/log.txt")).read_text()
    assert "no training sample has a mesh target" in log and "mesh losses are off" in log


def test_protocol_card_names_only_what_was_excluded(tmp_path):
    """Test subject 9 without the corrupted actions: nothing is excluded, and the card says so."""
    from lib.data.synthetic.generate import generate_synthetic_h36m
    from lib.engine.run import test_main as evaluate_main
    data = tmp_path / "synth"
    generate_synthetic_h36m(out_dir=data, seed=2, frames_per_sequence=12, subjects=(1, 9),
                            actions=("Walking", "Greeting"), log=lambda *a: None)
    cfg = {"output_dir": str(tmp_path / "experiment"), "cache_dir": str(tmp_path / "cache"),
           "smpl_dir": str(data / "smpl"),
           "DATASET": {"format": "json", "root": str(data), "num_joints": 17,
                       "train_subjects": [1], "test_subjects": [9], "train_stride": 1,
                       "test_stride": 1, "val_fraction": 0.0, "require_smpl": False},
           "MODEL": {"name": "Martinez", "linear_size": 32, "num_stage": 1},
           "TRAIN": {"epochs": 1, "batch_size": 32, "num_threads": 1, "print_freq": 0,
                     "select_on": "test"}}
    path = tmp_path / "c.yml"
    path.write_text(yaml.safe_dump(cfg))
    summary = train_main(["--cfg", str(path)])
    log = next((tmp_path / "experiment").glob("exp_*/log.txt")).read_text()
    # S9 Greeting sub-action 2 is one of the three corrupted sequences; it alone is named
    assert "excluded sequences=S9 act5 sub2 (corrupted" in log
    assert "act10" not in log.split("excluded sequences=")[1].split("\n")[0]
    assert summary["test_table"]["actions"]["Greeting"]["frames"] == 12 * 4
