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
