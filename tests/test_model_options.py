"""Models own their MODEL.* options: a new model is one registration, and every declared
option of every registered model really changes the built module (or says it is training-only)."""
from dataclasses import dataclass, fields

import pytest
import torch
import torch.nn as nn

from lib.config import ConfigError, load_config
from lib.registry import build_model, model_entry, model_names, option, register_model


# ----------------------------------------------------------------------------- a model in one file
@dataclass
class TinyOptions:
    width: int = option(8, "hidden units")
    act: str = option("relu", "activation", choices=("relu", "tanh"))
    warmup_epochs: int = option(0, "read by a training loop, not the module", training_only=True)


@register_model("TinyLifter", options=TinyOptions, num_joints=(16, 17))
def build_tiny(opts: TinyOptions, cfg, ctx):
    j = cfg.DATASET.num_joints

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(j * 2, opts.width),
                                     nn.ReLU() if opts.act == "relu" else nn.Tanh(),
                                     nn.Linear(opts.width, j * 3))

        def forward(self, x):
            return {"pose": self.net(x).view(x.shape[0], j, 3)}
    return Tiny()


def test_new_model_from_a_yaml(tmp_path):
    yml = tmp_path / "tiny.yml"
    yml.write_text("MODEL:\n  name: TinyLifter\n  width: 5\nDATASET:\n  num_joints: 16\n"
                   "  format: npz\n")
    cfg = load_config(yml)
    assert dict(cfg.MODEL) == {"name": "TinyLifter", "width": 5, "act": "relu",
                               "warmup_epochs": 0}
    model = build_model(cfg)
    assert model.net[1].out_features == 5
    assert model(torch.zeros(2, 16, 2))["pose"].shape == (2, 16, 3)
    yml.write_text("MODEL:\n  name: TinyLifter\n  hid_dim: 5\n")
    with pytest.raises(ConfigError, match=r"Model 'TinyLifter' has no such option; its options "
                                          r"are: name, width, act, warmup_epochs"):
        load_config(yml)
    with pytest.raises(ConfigError, match="must be one of"):
        load_config(None, ["MODEL.name", "TinyLifter", "MODEL.act", "gelu"])
    with pytest.raises(ConfigError, match="must be of type int"):
        load_config(None, ["MODEL.name", "TinyLifter", "MODEL.width", "1.5"])


def test_registration_checks_the_declaration():
    with pytest.raises(TypeError, match="must be a dataclass"):
        register_model("Bad", options={"width": 3})

    @dataclass
    class Named:
        name: str = "x"
    with pytest.raises(TypeError, match="reserved"):
        register_model("Bad", options=Named)
    assert "Bad" not in model_names()


def test_builtin_models_are_registered_from_their_modules():
    assert {"HGN", "GraphSH", "SemGCN", "Martinez"} <= set(model_names())
    from lib.models import baselines, graph_sh, hgn
    assert model_entry("GraphSH").builder is graph_sh.build_graph_sh
    assert model_entry("HGN").builder is hgn.build_hgn and model_entry("HGN").needs_mesh
    assert model_entry("Martinez").builder is baselines.build_martinez


# ----------------------------------------------------------------------------- option coverage
# Alternatives no type rule can guess (a None default); a new such option must be added here.
SPECIAL = {("HGN", "graph_levels"): [6, 8]}


def other_value(model, f, default):
    if (model, f.name) in SPECIAL:
        return SPECIAL[(model, f.name)]
    choices = f.metadata.get("choices")
    if choices:
        return next(c for c in choices if c != default)
    if isinstance(default, bool):
        return not default
    if isinstance(default, int):
        return default - 1 if default > 1 else default + 1
    if isinstance(default, float):
        return 0.5 if default == 0 else 0.0
    if isinstance(default, list):
        return [v // 2 for v in default]
    raise AssertionError(f"{model}.{f.name}: give an alternative value in SPECIAL")


@pytest.fixture(scope="module")
def body_dir(tmp_path_factory):
    from lib.body.synthetic_model import write_synthetic_body_model
    d = tmp_path_factory.mktemp("body")
    write_synthetic_body_model(d / "smpl", seed=0)
    return d


def signature(cfg):
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    j = cfg.DATASET.num_joints
    with torch.no_grad():
        out = model(torch.linspace(-1, 1, 2 * j * 2).view(2, j, 2))["pose"]
    shapes = [(n, tuple(t.shape)) for n, t in model.state_dict().items()]
    return repr(model), shapes, out


def base_opts(model, body_dir):
    joints = model_entry(model).num_joints[0]
    return ["MODEL.name", model, "DATASET.num_joints", str(joints), "smpl_dir",
            str(body_dir / "smpl"), "cache_dir", str(body_dir / "cache")]


@pytest.mark.parametrize("model", model_names())
def test_every_option_changes_the_module_or_is_training_only(model, body_dir):
    entry = model_entry(model)
    defaults = entry.defaults()
    ref = signature(load_config(None, base_opts(model, body_dir)))
    for f in fields(entry.options):
        if f.metadata.get("training_only"):
            continue
        value = other_value(model, f, defaults[f.name])
        cfg = load_config(None, base_opts(model, body_dir) + [f"MODEL.{f.name}", repr(value)])
        assert cfg.MODEL[f.name] == value
        rep, shapes, out = signature(cfg)
        changed = rep != ref[0] or shapes != ref[1] or not torch.equal(out, ref[2])
        assert changed, f"{model}: MODEL.{f.name}={value!r} builds the same module as " \
                        f"{defaults[f.name]!r}; use it or declare it training_only"


def test_training_only_option_really_leaves_the_module_alone(body_dir):
    ref = signature(load_config(None, base_opts("TinyLifter", body_dir)))
    alt = signature(load_config(None, base_opts("TinyLifter", body_dir)
                                + ["MODEL.warmup_epochs", "3"]))
    assert alt[0] == ref[0] and alt[1] == ref[1] and torch.equal(alt[2], ref[2])
