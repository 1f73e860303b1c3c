"""What main/export.py does: a trained model as ONNX or TorchScript, checked against PyTorch.

The exported graph takes ``input_2d`` (batch, J, 2) normalised screen coordinates (as the
lifting codec encodes them) and returns the model's heads as separate outputs in a fixed
order (``pose`` first; HGN adds ``mesh_mid`` and ``mesh_fine``), root-relative metres.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from lib.config import load_config
from lib.engine.run import load_trained_model, trained_model_parser
from lib.errors import PoseError
from lib.fileio import atomic_write
from lib.experiment import get_logger

FORMATS = ("onnx", "torchscript")
CHECK_TOLERANCE = 1e-4       # metres; float32 round-off is ~1e-7


class ExportError(PoseError, ValueError):
    """The export failed or its outputs disagree with PyTorch's."""


class HeadsAsTuple(torch.nn.Module):
    """Exporters want tensors, not dicts: the heads in a fixed order."""

    def __init__(self, model, heads):
        super().__init__()
        self.model = model
        self.heads = tuple(heads)

    def forward(self, input_2d):
        out = self.model(input_2d)
        return tuple(out[h] for h in self.heads)


def export_parser() -> argparse.ArgumentParser:
    p = trained_model_parser("Export a trained lifting model to ONNX or TorchScript, checked "
                             "against PyTorch.")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--out", required=True, help="output file, e.g. model.onnx")
    return p


def check_batch(num_joints: int, n: int = 64, seed: int = 0) -> torch.Tensor:
    """Inputs in the codec's range: x in [-1, 1], y in about +-0.6 (a 4:3..16:9 frame)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, num_joints, 2, generator=g) * 2 - 1
    x[..., 1] *= 0.6
    return x


def _export_onnx(wrapped, x, path: Path, heads):
    """The TorchScript-based exporter (fast); the torch.export one where it lacks an operator."""
    try:
        torch.onnx.export(wrapped, (x,), str(path), dynamo=False, input_names=["input_2d"],
                          output_names=list(heads), opset_version=17,
                          dynamic_axes={"input_2d": {0: "batch"},
                                        **{h: {0: "batch"} for h in heads}})
    except torch.onnx.errors.UnsupportedOperatorError:
        batch = torch.export.Dim("batch", min=1)
        program = torch.onnx.export(wrapped, (x,), dynamo=True, input_names=["input_2d"],
                                    output_names=list(heads), dynamic_shapes=({0: batch},),
                                    verbose=False)
        program.save(str(path))


def onnx_session(path, threads: int = 0):
    """An ONNX Runtime CPU session; ``threads`` > 0 caps its intra-op threads."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_onnx(path, x: np.ndarray, threads: int = 0) -> list:
    return onnx_session(path, threads).run(None, {"input_2d": x.astype(np.float32)})


def export_model(model, num_joints: int, fmt: str, out: Path) -> dict:
    """Write ``out`` (via a temporary name) and return {head: max |diff|} against PyTorch."""
    x = check_batch(num_joints)
    with torch.no_grad():
        ref = model(x)
    heads = ["pose"] + sorted(k for k in ref if k != "pose")
    wrapped = HeadsAsTuple(model, heads).eval()
    out = Path(out)

    def write(tmp):
        if fmt == "onnx":
            _export_onnx(wrapped, x[:2], tmp, heads)
            got = run_onnx(tmp, x.numpy())
        else:
            with torch.no_grad():
                scripted = torch.jit.trace(wrapped, x[:2])
            scripted.save(str(tmp))
            loaded = torch.jit.load(str(tmp))
            with torch.no_grad():
                got = [t.numpy() for t in loaded(x)]
        found = {h: float(np.abs(np.asarray(g) - ref[h].numpy()).max())
                 for h, g in zip(heads, got)}
        if max(found.values()) > CHECK_TOLERANCE:
            raise ExportError(f"the exported {fmt} model disagrees with PyTorch on a check batch "
                              f"(max |diff| per head, metres: {found}); nothing written to {out}")
        return found
    diffs = atomic_write(out, write)      # the temporary file never outlives a failure
    return diffs


def export_main(argv=None) -> dict:
    args = export_parser().parse_args(argv)
    cfg = load_config(args.cfg)
    log = get_logger()
    model, path, kind = load_trained_model(cfg, args.weights)
    diffs = export_model(model, cfg.DATASET.num_joints, args.format, Path(args.out))
    msg = ", ".join(f"{h} {d:.2e}" for h, d in diffs.items())
    log.info("exported %s (%s) from %s to %s; max |diff| vs PyTorch on 64 inputs (m): %s",
             cfg.MODEL.name, kind, path, args.out, msg)
    print(f"{args.out}: max |diff| vs PyTorch (m): {msg}")
    return {"out": args.out, "max_abs_diff": diffs}


class OnnxLifter(torch.nn.Module):
    """An exported ONNX model behind the PyTorch interface predict() uses (ONNX Runtime, CPU)."""

    def __init__(self, path, threads: int = 0):
        super().__init__()
        self.session = onnx_session(path, threads)
        self.heads = [o.name for o in self.session.get_outputs()]
        self.num_joints = self.session.get_inputs()[0].shape[1]

    def forward(self, input_2d):
        outs = self.session.run(None, {"input_2d": input_2d.detach().cpu().numpy()
                                       .astype(np.float32)})
        return {h: torch.from_numpy(o) for h, o in zip(self.heads, outs)}
