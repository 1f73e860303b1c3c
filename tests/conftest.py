"""Test setup: the repository root on sys.path, one thread (the CI machine has 2 cores)."""
import logging
import os
import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Real CMU motion capture shipped beside the checkout (never copied into the repo).
MOCAP_DIR = ROOT.parent / "shared" / "mocap" / "cmu"


@pytest.fixture(scope="session")
def mocap_dir():
    if not MOCAP_DIR.is_dir():
        pytest.skip(f"real CMU clips not found at {MOCAP_DIR}")
    return MOCAP_DIR


@pytest.fixture(autouse=True)
def _fresh_pose_logger():
    """Undo a run's setup_logging after each test: its handlers are closed and the 'pose' tree
    propagates to the root again, so caplog sees reader messages whatever ran before."""
    yield
    log = logging.getLogger("pose")
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()
    log.propagate = True
    log.setLevel(logging.NOTSET)
