"""Evaluate: python main/test.py --cfg asset/yaml/<experiment>.yml [--gpu 0,1] [--weights CKPT] [--opts K V ...]"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.engine.run import run_cli, test_main  # noqa: E402

if __name__ == "__main__":
    run_cli(test_main)
