"""The battery: many bad inputs through the real command-line functions.

Each case runs main/train.py's, main/test.py's or main/main_gcn.py's function in-process under
``run_cli`` (a few run the scripts as subprocesses) and must end with exit code 2 and one
paragraph on stderr that names the problem: no traceback, and nothing that existed before
(data files, checkpoints, other files) changed. The test prints ``N/M clear``.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import pytest
import torch
import yaml

from lib.engine.run import run_cli, train_main
from lib.engine.run import test_main as evaluate_main  # aliased: pytest would collect test_main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    """2 subjects x 2 actions x 1 sub-action x 8 frames of synthetic Human3.6M."""
    from lib.data.synthetic.generate import generate_synthetic_h36m
    out = tmp_path_factory.mktemp("battery") / "Synthetic"
    generate_synthetic_h36m(out_dir=out, seed=5, frames_per_sequence=8, subjects=(1, 9),
                            actions=("Walking", "Eating"), subactions=(1,), log=lambda *a: None)
    return out


def base_cfg(work: Path, root: Path, **sections) -> dict:
    cfg = {"output_dir": str(work / "experiment"), "cache_dir": str(work / "cache"),
           "smpl_dir": str(root / "smpl"),
           "DATASET": {"format": "npz", "root": str(root), "num_joints": 16,
                       "train_subjects": [1], "test_subjects": [9], "train_stride": 2,
                       "test_stride": 2, "val_fraction": 0.0, "require_smpl": False},
           "MODEL": {"name": "Martinez", "linear_size": 16},
           "TRAIN": {"epochs": 1, "batch_size": 16, "num_threads": 1, "print_freq": 0,
                     "select_on": "test"},
           "TEST": {"batch_size": 64}}
    for section, values in sections.items():
        if isinstance(values, dict) and section != "MODEL":     # a MODEL is given whole
            cfg.setdefault(section, {}).update(values)
        else:
            cfg[section] = values
    return cfg


def write_yaml(path: Path, content) -> str:
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return str(path)


def good_checkpoint(work: Path, epoch=1) -> str:
    """A checkpoint of the base config's Martinez (as train.py writes it)."""
    from lib.config import load_config
    from lib.experiment import save_checkpoint
    from lib.registry import build_model
    cfg = load_config(write_yaml(work / "ck.yml", base_cfg(work, work)))
    model = build_model(cfg)
    return str(save_checkpoint(work / f"good{epoch}.pth.tar", epoch=epoch, model=model, cfg=cfg))


class _RunsCode:
    def __reduce__(self):
        return (print, ("code from the file ran",))


# ----------------------------------------------------------------------------- the cases
@dataclass
class Case:
    name: str
    make: Callable            # (work, root) -> (fn, argv)
    expect: str               # a phrase the message must hold (case-insensitive)
    forbid: str = ""                     # a phrase the message must not hold
    needs_no_cuda: bool = False
    needs_non_root: bool = False         # root ignores file permissions


def _cfg_case(expect, content=None, **sections):
    def make(work, root):
        text = content if content is not None else base_cfg(work, root, **sections)
        return train_main, ["--cfg", write_yaml(work / "bad.yml", text)]
    return make


def _opts_case(*opts, fn=None):
    def make(work, root):
        cfg = write_yaml(work / "good.yml", base_cfg(work, root))
        return fn or train_main, ["--cfg", cfg, "--opts", *opts]
    return make


def _weights_case(write):
    def make(work, root):
        path = work / "weights.pth.tar"
        write(path, work)
        cfg = write_yaml(work / "good.yml", base_cfg(work, root))
        return evaluate_main, ["--cfg", cfg, "--weights", str(path)]
    return make


def _truncated(path, work):
    data = Path(good_checkpoint(work)).read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _other_root(mutate, **sections):
    """A copy of the tiny data with ``mutate(copy_root)`` applied; the config reads the copy."""
    def make(work, root):
        import shutil
        copy = work / "data_copy"
        shutil.copytree(root, copy)
        mutate(copy)
        cfg = write_yaml(work / "good.yml", base_cfg(work, copy, **sections))
        return train_main, ["--cfg", cfg]
    return make


def _truncate_file(name):
    def mutate(root):
        p = root / name
        p.write_bytes(p.read_bytes()[:200])
    return mutate


def _edit_3d(change):
    """Rewrite the copy's data_3d_h36m.npz with ``change(content)`` applied (the content is
    this test's own generated file, so plain np.load with pickles is safe here)."""
    import numpy as np

    def mutate(root):
        path = root / "data_3d_h36m.npz"
        with np.load(path, allow_pickle=True) as z:
            content = {k: z[k].item() if z[k].dtype == object else z[k] for k in z.files}
        change(content)
        np.savez_compressed(path, **{k: np.array(v, dtype=object) if isinstance(v, dict)
                                     else v for k, v in content.items()})
    return mutate


def _nan_mm(content):
    content["positions_3d_mm"]["S1"]["Walking 1"][3, 5, 0] = float("nan")


def _empty_sequence(content):
    for key in ("positions_3d", "positions_3d_mm"):
        arr = content[key]["S1"]["Walking 1"]
        content[key]["S1"]["Walking 1"] = arr[:0]


def _under_file(key):
    def make(work, root):
        (work / "blocker").write_text("a file, not a folder")
        cfg = base_cfg(work, root, **{key: str(work / "blocker" / "sub")})
        return train_main, ["--cfg", write_yaml(work / "bad.yml", cfg)]
    return make


def _read_only(key):
    def make(work, root):
        import os
        ro = work / "read_only"
        ro.mkdir()
        os.chmod(ro, 0o555)
        cfg = base_cfg(work, root, **{key: str(ro / "sub")})
        return train_main, ["--cfg", write_yaml(work / "bad.yml", cfg)]
    return make


def _resume_past_end(work, root):
    cfg = write_yaml(work / "good.yml", base_cfg(work, root))
    return train_main, ["--cfg", cfg, "--resume", good_checkpoint(work, epoch=3)]


def _gcn(*extra):
    def make(work, root):
        sys.path.insert(0, str(ROOT / "main"))
        import main_gcn
        return main_gcn.main, ["--gcn", "no_such_conv", *extra]
    return make


CASES = [
    # configs
    Case("missing yaml", lambda w, r: (train_main, ["--cfg", str(w / "nope.yml")]),
         "does not exist"),
    Case("empty yaml", _cfg_case("is empty", content=""), "is empty"),
    Case("yaml not a mapping", _cfg_case("", content="- 1\n- 2\n"), "expected a mapping"),
    Case("yaml syntax error", _cfg_case("", content="TRAIN: {lr: [1,\n"), "cannot be read as YAML"),
    Case("unknown key", _cfg_case("", TRAIN={"learning_rate": 0.1}), "unknown config key"),
    Case("wrong type", _cfg_case("", TRAIN={"epochs": "many"}), "must be of type int"),
    Case("negative max_steps_per_epoch", _cfg_case("", TRAIN={"max_steps_per_epoch": -1}),
         "max_steps_per_epoch must be >= 0"),
    Case("zero stride", _cfg_case("", DATASET={"test_stride": 0}), "must be >= 1"),
    Case("zero lr", _cfg_case("", TRAIN={"lr": 0.0}), "TRAIN.lr must be > 0"),
    Case("lr beyond float32", _cfg_case("", TRAIN={"lr": 1e300}), "finite float32 value"),
    Case("val_fraction 1.5", _cfg_case("", DATASET={"val_fraction": 1.5}), "val_fraction"),
    Case("select on val without a val split", _cfg_case("", TRAIN={"select_on": "val"}),
         "no validation split to select on"),
    Case("unknown select_metric", _cfg_case("", TRAIN={"select_metric": "best"}),
         "TRAIN.select_metric"),
    Case("unknown model", _cfg_case("", MODEL={"name": "Nope"}), "unknown model 'Nope'"),
    Case("another model's option", _cfg_case("", MODEL={"name": "HGN", "p_dropout": 0.5}),
         "has no such option"),
    Case("cpn keypoints with json", _cfg_case("", DATASET={"format": "json",
                                                           "keypoints": "cpn_ft_h36m_dbb"}),
         "not available with format 'json'"),
    Case("unknown format", _cfg_case("", DATASET={"format": "csv"}), "unknown dataset format"),
    Case("missing _BASE_", _cfg_case("", content="_BASE_: nowhere.yml\n"), "which does not exist"),
    Case("_BASE_ cycle", _cfg_case("", content="_BASE_: bad.yml\n"), "_BASE_ cycle"),
    Case("list of the wrong type", _opts_case("DATASET.test_subjects", "[nine]"),
         "must be of type list"),
    Case("odd --opts", _opts_case("TRAIN.epochs"), "KEY VALUE pairs"),
    Case("--opts unknown key", _opts_case("TRAIN.epoch", "3"), "Did you mean 'TRAIN.epochs'"),
    # checkpoints
    Case("--weights missing", lambda w, r: (evaluate_main, [
        "--cfg", write_yaml(w / "good.yml", base_cfg(w, r)), "--weights", str(w / "no.pth")]),
         "does not exist"),
    Case("--weights garbage", _weights_case(lambda p, w: p.write_bytes(b"garbage" * 10)),
         "corrupt"),
    Case("--weights truncated", _weights_case(_truncated), "Re-create it"),
    Case("--weights runs code", _weights_case(
        lambda p, w: torch.save({"model_state_dict": {}, "x": _RunsCode()}, p)),
         "could run code"),
    Case("--weights not a dict", _weights_case(lambda p, w: torch.save([1, 2, 3], p)),
         "must be a dict"),
    Case("--weights of another model", _weights_case(
        lambda p, w: torch.save({"model_state_dict": torch.nn.Linear(2, 2).state_dict(),
                                 "version": "x"}, p)), "does not fit the model"),
    Case("latest without runs", _opts_case("TEST.weight_path", "latest", fn=evaluate_main),
         "no finished Martinez run"),
    Case("--resume missing", lambda w, r: (train_main, [
        "--cfg", write_yaml(w / "good.yml", base_cfg(w, r)), "--resume", str(w / "no.pth")]),
         "does not exist"),
    Case("--resume of another model", lambda w, r: (train_main, [
        "--cfg", write_yaml(w / "good.yml", base_cfg(w, r, TRAIN={"epochs": 3})), "--resume",
        str(torch.save({"epoch": 1, "model_state_dict": torch.nn.Linear(2, 2).state_dict(),
                        "version": "x"}, w / "other.pth.tar") or w / "other.pth.tar")]),
         "does not fit the model"),
    Case("--resume at TRAIN.epochs", _resume_past_end,
         "checkpoint is at epoch 3 and TRAIN.epochs is 1"),
    # devices
    Case("--gpu without CUDA", lambda w, r: (train_main, [
        "--cfg", write_yaml(w / "good.yml", base_cfg(w, r)), "--gpu", "0"]), "no CUDA GPU",
         needs_no_cuda=True),
    Case("--gpu not a number", lambda w, r: (train_main, [
        "--cfg", write_yaml(w / "good.yml", base_cfg(w, r)), "--gpu", "first"]),
         "comma-separated GPU ids"),
    # data
    Case("data root missing", lambda w, r: (train_main, [
        "--cfg", write_yaml(w / "bad.yml", base_cfg(w, w / "no_data"))]),
         "2 input file(s) of this run are missing"),
    Case("json root missing", lambda w, r: (train_main, [
        "--cfg", write_yaml(w / "bad.yml", base_cfg(
            w, w / "no_data", DATASET={"format": "json", "num_joints": 17}))]),
         "input file(s) of this run are missing"),
    Case("SMPL missing for a real-data YAML", lambda w, r: (train_main, [
        "--cfg", write_yaml(w / "bad.yml", base_cfg(
            w, r, smpl_dir=str(w / "no_smpl"), MODEL={"name": "HGN", "hid_dim": 8},
            DATASET={"format": "json", "num_joints": 17}))]),
         "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl [1]. [1] Download the SMPL model files",
         forbid="synthesize.py"),
    Case("17 joints from 16-joint 2D", _cfg_case("", DATASET={"num_joints": 17}),
         "have 16 joints"),
    Case("no test samples", _cfg_case("", DATASET={"test_subjects": [11]}), "S11"),
    Case("truncated 3D npz", _other_root(_truncate_file("data_3d_h36m.npz")),
         "data_3d_h36m.npz"),
    Case("truncated 2D npz", _other_root(_truncate_file("data_2d_h36m_gt.npz")),
         "data_2d_h36m_gt.npz"),
    Case("truncated JSON annotation", _other_root(
        _truncate_file("Human36M/annotations/Human36M_subject1_joint_3d.json"),
        DATASET={"format": "json", "num_joints": 17}),
         "Human36M_subject1_joint_3d.json: not valid JSON"),
    Case("synthetic frames mismatch", _cfg_case("", DATASET={"synthetic": True,
                                                             "synthetic_frames": 5}),
         "8 frames per sequence"),
    Case("NaN in positions_3d_mm", _other_root(_edit_3d(_nan_mm)),
         "key 'positions_3d_mm/S1/Walking 1': contains NaN/inf in 1 frames"),
    Case("zero-length sequence", _other_root(_edit_3d(_empty_sequence)),
         "key 'positions_3d/S1/Walking 1': has no frames"),
    # file system
    Case("output_dir under a file", _under_file("output_dir"), "a file is in the way"),
    Case("cache_dir under a file", _under_file("cache_dir"), "a file is in the way"),
    Case("output_dir is a file", lambda w, r: (train_main, [
        "--cfg", write_yaml(w / "bad.yml", base_cfg(w, r, output_dir=str(w / "precious.txt")))]),
         "a file is in the way"),
    Case("output_dir read-only", _read_only("output_dir"), "permission denied",
         needs_non_root=True),
    # the GraphSH command line
    Case("main_gcn unknown --gcn", _gcn("--synthetic"),
         "'MODEL.gcn' of model 'GraphSH' must be one of"),
    Case("main_gcn unknown --gcn, real data", _gcn(), "unknown --gcn 'no_such_conv'; valid:"),
]


def snapshot(*folders) -> dict:
    """Every file under ``folders`` (what must not change): size and modification time, and
    for files under 1 MB the sha256 of the content too."""
    out = {}
    for folder in folders:
        for p in sorted(Path(folder).rglob("*")):
            if p.is_file():
                st = p.stat()
                digest = (hashlib.sha256(p.read_bytes()).hexdigest() if st.st_size < 2 ** 20
                          else None)
                out[str(p)] = (st.st_size, st.st_mtime_ns, digest)
    return out


def is_one_paragraph(err: str) -> bool:
    """What the terminal shows after the progress bars (tqdm redraws with \\r and clears
    them) is one block starting 'error (', without a traceback or blank line."""
    text = err.split("\r")[-1].strip()
    return (text.startswith("error (") and "Traceback" not in text and "\n\n" not in text)


def check_case(case: Case, work: Path, root: Path, capsys) -> Optional[str]:
    """None if the case gives a clear error and damages nothing; else what went wrong."""
    work.mkdir()
    (work / "precious.txt").write_text("notes that must survive")
    fn, argv = case.make(work, root)
    before = snapshot(root, work)
    capsys.readouterr()
    try:
        run_cli(fn, argv)
        return "no error: the command succeeded"
    except SystemExit as exc:
        code = exc.code
    except BaseException as exc:            # a traceback the user would see
        return f"uncaught {type(exc).__name__}: {exc}"
    err = capsys.readouterr().err
    after = snapshot(root, work)
    changed = sorted(k for k in before if after.get(k) != before[k])
    if code != 2:
        return f"exit code {code}"
    if not is_one_paragraph(err):
        return f"not one paragraph: {err[-400:]!r}"
    if case.expect.lower() not in " ".join(err.split()).lower():
        return f"message lacks {case.expect!r}: {err[-400:]!r}"
    if case.forbid and case.forbid in " ".join(err.split()):
        return f"message holds {case.forbid!r}: {err[-400:]!r}"
    if changed:
        return f"changed files: {changed}"
    leftovers = [p for p in work.rglob("*.tmp*")]
    if leftovers:
        return f"temporary files left: {leftovers}"
    return None


def test_bad_input_battery(tmp_path, tiny_root, capsys):
    import os
    cases = [c for c in CASES if not (c.needs_no_cuda and torch.cuda.is_available())
             and not (c.needs_non_root and os.geteuid() == 0)]
    failures, seconds = {}, {}
    for i, case in enumerate(cases):
        t0 = time.perf_counter()
        problem = check_case(case, tmp_path / f"case{i:02d}", tiny_root, capsys)
        if problem:
            failures[case.name] = problem
        seconds[case.name] = time.perf_counter() - t0
    clear = len(cases) - len(failures)
    with capsys.disabled():
        print(f"\nbad-input battery: {clear}/{len(cases)} clear")
        for name, problem in failures.items():
            print(f"  NOT CLEAR {name}: {problem}")
        for name, sec in sorted(seconds.items(), key=lambda kv: -kv[1])[:12]:
            print(f"  {sec:5.2f} s {name}")
    assert not failures, failures


def test_a_failed_run_is_marked_in_its_folder(tmp_path, tiny_root, capsys):
    cfg = write_yaml(tmp_path / "bad.yml", base_cfg(tmp_path, tiny_root,
                                                    DATASET={"num_joints": 17}))
    with pytest.raises(SystemExit):
        run_cli(train_main, ["--cfg", cfg])
    (run,) = (tmp_path / "experiment").glob("exp_*_train_Martinez")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "have 16 joints" in metrics["error"]
    assert "error (DataFormatError)" in (run / "log.txt").read_text()


def test_a_bug_keeps_its_traceback(tmp_path, tiny_root):
    """Only the project's errors are the user's: a plain ValueError is not swallowed."""
    def buggy(argv):
        raise ValueError("a bug")
    with pytest.raises(ValueError, match="a bug"):
        run_cli(buggy, [])


@pytest.mark.slow
@pytest.mark.parametrize("script,args,expect", [
    ("data/synthesize.py", ["--out", "{work}/s", "--frames", "1"], "must be >= 2"),
    ("data/synthesize.py", ["--out", "{work}/s", "--frames", "4", "--subjects", "42"],
     "subjects [42] have no Human3.6M cameras"),
    ("main/train.py", ["--cfg", "{work}/nope.yml"], "does not exist"),
    ("main/test.py", ["--cfg", "{cfg}", "--weights", "{work}/garbage.pth.tar"], "corrupt"),
])
def test_scripts_exit_2_without_traceback(tmp_path, tiny_root, script, args, expect):
    (tmp_path / "garbage.pth.tar").write_bytes(b"not a checkpoint")
    cfg = write_yaml(tmp_path / "good.yml", base_cfg(tmp_path, tiny_root))
    argv = [a.format(work=tmp_path, cfg=cfg) for a in args]
    res = subprocess.run([sys.executable, str(ROOT / script), *argv], cwd=ROOT,
                         capture_output=True, text=True, timeout=120,
                         env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert res.returncode == 2, res.stderr[-2000:]
    assert "Traceback" not in res.stderr and expect in res.stderr


def test_missing_files_are_checked_per_split(tmp_path, tiny_root):
    """test.py needs only the test subjects' files; train.py all of them, listed at once."""
    import shutil
    from lib.config import load_config
    from lib.data.build import check_sources
    from lib.errors import MissingFileError
    root = tmp_path / "json"
    shutil.copytree(tiny_root, root)
    for f in (root / "Human36M" / "annotations").glob("Human36M_subject1_*.json"):
        f.unlink()
    cfg = load_config(write_yaml(tmp_path / "c.yml", base_cfg(
        tmp_path, root, DATASET={"format": "json", "num_joints": 17})))
    check_sources(cfg, ("test",))                       # S9 is complete: no error
    with pytest.raises(MissingFileError) as info:
        check_sources(cfg, ("train", "val", "test"))
    text = str(info.value)
    assert text.startswith("4 input file(s) of this run are missing")
    for part in ("data", "camera", "joint_3d", "smpl_param"):
        assert f"Human36M_subject1_{part}.json" in text
    assert "subject9" not in text


def test_test_py_mean_pose_reference_without_a_stored_mean_pose(tmp_path, tiny_root):
    """A checkpoint without the mean pose (official or older): test.py reads the training
    split for the reference, and gets what train.py got."""
    from lib.experiment import load_checkpoint, save_checkpoint
    cfg = write_yaml(tmp_path / "good.yml", base_cfg(tmp_path, tiny_root))
    summary = train_main(["--cfg", cfg])
    final = next((tmp_path / "experiment").glob("exp_*/checkpoint/final.pth.tar"))
    ckpt = load_checkpoint(final)
    old = tmp_path / "old.pth.tar"
    save_checkpoint(old, epoch=1, model=_StateOnly(ckpt["model_state_dict"]))
    assert "mean_pose" not in load_checkpoint(old)
    out = evaluate_main(["--cfg", cfg, "--weights", str(old)])
    assert out["mean_pose_test_mpjpe"] == pytest.approx(summary["mean_pose_test_mpjpe"],
                                                        rel=1e-9)
    assert out["test_mpjpe"] == pytest.approx(summary["test_mpjpe"], rel=1e-6)


class _StateOnly:
    def __init__(self, sd):
        self.sd = sd

    def state_dict(self):
        return self.sd


def test_test_py_checks_the_weights_before_generating_data(tmp_path, capsys):
    """A wrong --weights is reported before the synthetic set is generated or data read."""
    root = tmp_path / "fresh" / "Synthetic"
    cfg = write_yaml(tmp_path / "c.yml", base_cfg(tmp_path, root, DATASET={"synthetic": True}))
    with pytest.raises(SystemExit) as e:
        run_cli(evaluate_main, ["--cfg", cfg, "--weights", str(tmp_path / "missing.pth.tar")])
    assert e.value.code == 2 and "does not exist" in capsys.readouterr().err
    assert not root.exists() and not (tmp_path / "cache").exists()
