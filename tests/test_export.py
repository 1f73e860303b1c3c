"""main/export.py: every model to ONNX and TorchScript, outputs equal PyTorch's."""
import numpy as np
import onnxruntime  # noqa: F401  (a requirement; fail loudly if missing)
import pytest
import torch

from lib.config import load_config
from lib.engine.export_run import ExportError, check_batch, export_model, run_onnx
from lib.registry import build_model, model_entry, model_names

SMALL = {"HGN": ["MODEL.hid_dim", "16"], "GraphSH": ["MODEL.hid_dim", "16", "MODEL.num_stacks",
                                                     "1"],
         "SemGCN": ["MODEL.hid_dim", "16"], "Martinez": ["MODEL.linear_size", "32"]}


@pytest.fixture(scope="module")
def body_dir(tmp_path_factory):
    from lib.body.synthetic_model import write_synthetic_body_model
    d = tmp_path_factory.mktemp("body")
    write_synthetic_body_model(d / "smpl", seed=0)
    return d


def _model(name, body_dir):
    joints = model_entry(name).num_joints[0]
    cfg = load_config(None, ["MODEL.name", name, "DATASET.num_joints", str(joints), "smpl_dir",
                             str(body_dir / "smpl"), "cache_dir", str(body_dir / "cache")]
                      + SMALL.get(name, []))
    torch.manual_seed(0)
    return build_model(cfg).eval(), joints


# HGN's ONNX export goes through torch.export (its graph convolution uses aten::diag, which the
# faster exporter lacks) and takes ~35 s: slow-marked.
CASES = [pytest.param(m, f, marks=pytest.mark.slow) if (m, f) == ("HGN", "onnx") else (m, f)
         for m in model_names() if m in SMALL for f in ("onnx", "torchscript")]


@pytest.mark.parametrize("name, fmt", CASES)
def test_export_matches_pytorch(name, fmt, body_dir, tmp_path):
    model, joints = _model(name, body_dir)
    out = tmp_path / f"{name}.{fmt}"
    diffs = export_model(model, joints, fmt, out)
    heads = ["pose", "mesh_fine", "mesh_mid"] if name == "HGN" else ["pose"]
    assert list(diffs) == heads
    assert max(diffs.values()) < 1e-5 and out.is_file()
    assert not list(tmp_path.glob(".*tmp"))
    if fmt == "onnx":          # another batch size than the export's: the batch axis is dynamic
        x = check_batch(joints, n=5, seed=3)
        with torch.no_grad():
            ref = model(x)["pose"].numpy()
        np.testing.assert_allclose(run_onnx(out, x.numpy())[0], ref, atol=1e-5)


def test_a_disagreeing_export_writes_nothing(body_dir, tmp_path, monkeypatch):
    """A model whose traced graph differs from eager (data-dependent branch) is refused."""
    class Branchy(torch.nn.Module):
        def forward(self, x):
            pose = torch.zeros(x.shape[0], 16, 3)
            return {"pose": pose + (1.0 if float(x.sum()) > 0 else -1.0)}
    out = tmp_path / "b.torchscript"
    with pytest.raises(ExportError, match="disagrees"):
        export_model(Branchy(), 16, "torchscript", out)
    assert not out.exists() and not list(tmp_path.iterdir())
