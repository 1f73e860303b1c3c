"""Run folders, checkpoints (atomic, CPU-loadable, module. prefix), clear errors."""
import datetime as dt
import re

import pytest
import torch

from lib.config import default_config
from lib.experiment import (CheckpointError, Experiment, create_run_dir, load_checkpoint,
                            load_model_weights, save_checkpoint, strip_module_prefix)


def test_run_dir_layout_and_no_overwrite(tmp_path):
    now = dt.datetime(2026, 11, 22, 9, 5, 7)
    a = create_run_dir(tmp_path, now)
    b = create_run_dir(tmp_path, now)      # same second: a new folder, the first untouched
    assert a.name == "exp_2026-11-22_09-05-07"
    assert b != a and b.name.startswith(a.name)
    for sub in ("checkpoint", "graph", "vis"):
        assert (a / sub).is_dir() and (b / sub).is_dir()


def test_experiment_writes_config_and_metrics(tmp_path):
    cfg = default_config()
    cfg.output_dir = str(tmp_path)
    exp = Experiment.start(cfg)
    assert re.fullmatch(r"exp_\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d(_\d+)?", exp.dir.name)
    assert (exp.dir / "config.yml").is_file()
    exp.write_metrics({"mpjpe": 1.5})
    assert '"mpjpe": 1.5' in (exp.dir / "metrics.json").read_text()


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))


def test_checkpoint_round_trip_and_module_prefix(tmp_path):
    m = _model()
    opt = torch.optim.Adam(m.parameters())
    p = save_checkpoint(tmp_path / "c.pth.tar", epoch=3, model=torch.nn.DataParallel(m),
                        optimizer=opt, cfg=default_config())
    ck = load_checkpoint(p)
    assert ck["epoch"] == 3 and "version" in ck
    assert not any(k.startswith("module.") for k in ck["model_state_dict"])
    # a checkpoint written with the DataParallel prefix (as other code does) loads on CPU
    prefixed = {"module." + k: v for k, v in m.state_dict().items()}
    torch.save({"epoch": 1, "model_state_dict": prefixed}, tmp_path / "dp.pth.tar")
    ck2 = load_checkpoint(tmp_path / "dp.pth.tar")
    m2 = _model()
    with torch.no_grad():
        for prm in m2.parameters():
            prm.add_(1.0)
    load_model_weights(m2, ck2["model_state_dict"])
    for a, b in zip(m.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)
    assert strip_module_prefix({"module._orig_mod.w": 1}) == {"w": 1}


def test_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pth.tar")
    (tmp_path / "bad.pth.tar").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path / "bad.pth.tar")
    other = torch.nn.Linear(5, 3)
    with pytest.raises(CheckpointError, match=r"shape mismatches: 0\.weight"):
        load_model_weights(_model(), {"0.weight": other.weight, "0.bias": other.bias,
                                      **{k: v for k, v in _model().state_dict().items()
                                         if k.startswith("1.")}})
    with pytest.raises(CheckpointError, match="missing keys: 1.bias"):
        sd = _model().state_dict()
        del sd["1.bias"]
        load_model_weights(_model(), sd)


def test_one_checkpoint_classification_for_every_loader(tmp_path):
    from lib.experiment import KIND_BARE, KIND_FRAMEWORK, KIND_OFFICIAL, describe_checkpoint
    from lib.models.official_hgn import classify_checkpoint
    weights = {"module.w": torch.ones(2)}
    files = {"bare": (weights, KIND_BARE),
             "official": ({"epoch": 3, "model_state_dict": weights}, KIND_OFFICIAL),
             "ours": ({"epoch": 3, "model_state_dict": weights, "version": "0.1"}, KIND_FRAMEWORK)}
    for name, (content, kind) in files.items():
        torch.save(content, tmp_path / f"{name}.pth.tar")
        ckpt = load_checkpoint(tmp_path / f"{name}.pth.tar")
        assert describe_checkpoint(ckpt).startswith(kind)
        assert classify_checkpoint(ckpt).kind == kind == classify_checkpoint(content).kind
        assert list(classify_checkpoint(ckpt).state_dict) == ["w"]


class _RunsCode:
    """Unpickling this calls print (a stand-in for os.system): what a crafted file can do."""

    def __reduce__(self):
        return (print, ("code from the checkpoint ran",))


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path, capsys):
    import torch
    from lib.experiment import CheckpointError, load_checkpoint
    bad = tmp_path / "bad.pth.tar"
    torch.save({"model_state_dict": {}, "epoch": 1, "payload": _RunsCode()}, bad)
    with pytest.raises(CheckpointError, match="could run code from the file") as info:
        load_checkpoint(bad)
    assert "print" in str(info.value)
    assert "code from the checkpoint ran" not in capsys.readouterr().out


def test_checkpoints_hold_only_safe_types_and_restore_every_rng(tmp_path):
    import random
    import numpy as np
    import torch
    from lib.experiment import load_checkpoint, save_checkpoint, set_rng_state
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [2, 4])
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.randn()                                  # a cached gaussian is part of the state
    path = save_checkpoint(tmp_path / "c.pth.tar", epoch=3, model=model, optimizer=opt,
                           scheduler=sched)
    expect = (random.random(), np.random.randn(), float(torch.rand(1)))
    torch.load(path, weights_only=True)                # no numpy or other globals inside
    set_rng_state(load_checkpoint(path)["rng_state"])
    assert (random.random(), np.random.randn(), float(torch.rand(1))) == expect


def test_run_folder_names_say_train_or_test_and_the_model(tmp_path):
    import json
    cfg = default_config("Martinez")
    cfg.output_dir = str(tmp_path)
    exp = Experiment.start(cfg, "train")
    assert re.fullmatch(r"exp_\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_train_Martinez", exp.dir.name)
    assert json.loads((exp.dir / "metrics.json").read_text()) == {"status": "running"}
    again = Experiment.start(cfg, "train")          # the same second: a suffix, both kept
    assert again.dir != exp.dir and again.dir.name.startswith(exp.dir.name.split("_train")[0])
    test = Experiment.start(cfg, "test")
    assert test.dir.name.endswith("_test_Martinez")
    assert sorted(p.name for p in tmp_path.glob("exp_*")) == sorted(
        p.name for p in (exp.dir, again.dir, test.dir))
    exp.mark("failed", RuntimeError("boom"), metrics={"epochs_done": 2})
    assert json.loads((exp.dir / "metrics.json").read_text()) == {
        "epochs_done": 2, "status": "failed", "error": "RuntimeError: boom"}


def test_a_run_folder_under_a_file_is_a_clear_error(tmp_path):
    from lib.errors import FileSystemError
    (tmp_path / "blocker").write_text("a file, not a folder")
    with pytest.raises(FileSystemError, match="a file is in the way") as info:
        create_run_dir(tmp_path / "blocker" / "experiment")
    assert "blocker" in str(info.value)
    assert (tmp_path / "blocker").read_text() == "a file, not a folder"


def test_checkpoint_with_non_finite_weights_is_never_written(tmp_path):
    m = _model()
    with torch.no_grad():
        m[0].weight[0, 0] = float("nan")
    with pytest.raises(CheckpointError, match=r"NaN or inf \(0\.weight\)"):
        save_checkpoint(tmp_path / "c.pth.tar", epoch=1, model=m)
    assert list(tmp_path.iterdir()) == []


def test_truncated_checkpoint_says_how_to_recreate_it(tmp_path):
    good = save_checkpoint(tmp_path / "c.pth.tar", epoch=1, model=_model())
    data = good.read_bytes()
    (tmp_path / "cut.pth.tar").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt, truncated") as info:
        load_checkpoint(tmp_path / "cut.pth.tar")
    assert "Re-create it by training again" in str(info.value)


# ----------------------------------------------------------------------------- atomic writes
def test_atomic_write_replaces_only_on_success_and_leaves_no_temp_file(tmp_path):
    import errno
    from lib.errors import FileSystemError
    from lib.fileio import atomic_write, atomic_write_text
    target = tmp_path / "sub" / "file.json"
    atomic_write_text(target, "first")
    assert target.read_text() == "first"

    def full_disk(tmp):
        tmp.write_text("half of the new content")
        raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(FileSystemError, match="the disk is full") as info:
        atomic_write(target, full_disk)
    assert str(target) in str(info.value)
    assert target.read_text() == "first"                       # the old file is untouched
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.json"]

    def bug(tmp):
        tmp.write_text("x")
        raise KeyError("a bug, not the user's problem")
    with pytest.raises(KeyError):                              # not turned into a user error
        atomic_write(target, bug)
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.json"]


def test_checkpoint_write_on_a_full_disk_is_a_clear_error(tmp_path, monkeypatch):
    """torch.save writes through a file object, so a full disk surfaces as OSError(ENOSPC)
    and becomes a FileSystemError; the half-written temp file is gone."""
    import builtins
    import errno
    import io
    from lib.errors import FileSystemError
    real_open = builtins.open

    class Full(io.RawIOBase):
        def writable(self):
            return True

        def write(self, b):
            raise OSError(errno.ENOSPC, "No space left on device")

    def fake_open(path, mode="r", *a, **kw):
        if "w" in mode and str(path).endswith(".tar"):
            real_open(path, mode).close()           # the temp file exists, as on a real disk
            return Full()
        return real_open(path, mode, *a, **kw)
    monkeypatch.setattr(builtins, "open", fake_open)
    with pytest.raises(FileSystemError, match="disk is full"):
        save_checkpoint(tmp_path / "c.pth.tar", epoch=1, model=_model())
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
