"""Lift 2D keypoints: python main/infer.py --cfg CFG --weights CKPT --input PATH [--out DIR] ..."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.engine.infer_run import infer_main  # noqa: E402
from lib.engine.run import run_cli  # noqa: E402

if __name__ == "__main__":
    run_cli(infer_main)
