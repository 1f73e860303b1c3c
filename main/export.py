"""Export: python main/export.py --cfg CFG --weights CKPT --format onnx|torchscript --out FILE"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.engine.export_run import export_main  # noqa: E402
from lib.engine.run import run_cli  # noqa: E402

if __name__ == "__main__":
    run_cli(export_main)
