"""Every module logs under the 'pose' tree, so a run's log.txt gets the readers' lines too."""
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np

from lib.data.corpus import PoseCorpus, Sequence
from lib.data.formats.h36m_json import read_h36m_json, write_h36m_json
from lib.experiment import setup_logging
from lib.geometry.camera import h36m_cameras

ROOT = Path(__file__).resolve().parents[1]


def tiny_json(root):
    """One subject, one 4-frame sequence of a jittered standing-height cloud, in the JSON layout."""
    rng = np.random.default_rng(0)
    joints = rng.normal(0, 200, (4, 17, 3)) + np.array([0, 0, 1000])
    seq = Sequence(subject=1, action_idx=2, subaction_idx=1, joints_world=joints,
                   joint_set="h36m17", frame_idx=np.arange(4), smpl=None)
    write_h36m_json(PoseCorpus([seq], {1: h36m_cameras(1)}, "test"), root)
    return root


def test_reader_lines_reach_the_run_log(tmp_path):
    root = tiny_json(tmp_path / "json")
    run = tmp_path / "run"
    run.mkdir()
    log = setup_logging(run)
    read_h36m_json(root)
    for h in log.handlers:
        h.flush()
    text = (run / "log.txt").read_text()
    assert "S1: 1 sequences, 4 frames" in text


def test_command_line_tools_still_print_reader_lines(tmp_path):
    root = tiny_json(tmp_path / "json")
    res = subprocess.run([sys.executable, "data/convert.py", "json2npz", "--src", str(root),
                          "--dst", str(tmp_path / "npz")], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "S1: 1 sequences, 4 frames" in res.stderr + res.stdout
    assert logging.getLogger("pose.data.h36m_json").parent is logging.getLogger("pose")


def test_progress_bars_only_on_the_main_rank(monkeypatch):
    from lib.progress import progress
    monkeypatch.setenv("RANK", "0")
    bar = progress(range(3), desc="x")
    assert not bar.disable and list(bar) == [0, 1, 2]
    assert progress(range(3), enable=False).disable
    monkeypatch.setenv("RANK", "1")
    quiet = progress(desc="x")(range(4), total=4)       # the form predict(progress=...) takes
    assert quiet.disable and list(quiet) == [0, 1, 2, 3]
