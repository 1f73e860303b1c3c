"""Test setup: the repository root on sys.path, one thread (the CI machine has 2 cores)."""
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
