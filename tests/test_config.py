"""Config validation: known keys only, types kept, --opts, choices, round trip to YAML."""
import pytest
import yaml

from lib.config import ConfigError, apply_opts, default_config, load_config, save_config


def write(tmp_path, text):
    p = tmp_path / "c.yml"
    p.write_text(text)
    return p


def test_defaults_and_override(tmp_path):
    cfg = load_config(write(tmp_path, "TRAIN:\n  lr: 0.005\n  epochs: 3\nMODEL:\n  name: SemGCN\n"))
    assert cfg.TRAIN.lr == 0.005 and cfg.TRAIN.epochs == 3 and cfg.MODEL.name == "SemGCN"
    assert cfg.TRAIN.batch_size == 64          # untouched default


def test_misspelt_key_names_closest(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key 'TRAIN\.learning_rat'"):
        load_config(write(tmp_path, "TRAIN:\n  learning_rat: 0.1\n"))
    with pytest.raises(ConfigError, match=r"Did you mean 'TRAIN\.batch_size'"):
        load_config(write(tmp_path, "TRAIN:\n  batch_sise: 32\n"))


def test_wrong_type_names_key(tmp_path):
    with pytest.raises(ConfigError, match=r"'TRAIN\.epochs' must be of type int"):
        load_config(write(tmp_path, "TRAIN:\n  epochs: many\n"))
    with pytest.raises(ConfigError, match=r"'DATASET\.train_subjects'"):
        load_config(write(tmp_path, "DATASET:\n  train_subjects: [1, S5]\n"))
    with pytest.raises(ConfigError, match=r"'TRAIN\.shuffle' must be of type bool"):
        load_config(write(tmp_path, "TRAIN:\n  shuffle: 1\n"))


def test_int_accepted_for_float(tmp_path):
    cfg = load_config(write(tmp_path, "TRAIN:\n  lr: 1\n"))
    assert isinstance(cfg.TRAIN.lr, float) and cfg.TRAIN.lr == 1.0


def test_opts_override_after_yaml(tmp_path):
    cfg = load_config(write(tmp_path, "TRAIN:\n  lr: 0.005\n"),
                      ["TRAIN.lr", "2e-4", "DATASET.test_subjects", "[9]", "TEST.vis", "true"])
    assert cfg.TRAIN.lr == 2e-4 and cfg.DATASET.test_subjects == [9] and cfg.TEST.vis is True
    with pytest.raises(ConfigError, match="KEY VALUE pairs"):
        apply_opts(default_config(), ["TRAIN.lr"])
    with pytest.raises(ConfigError, match="unknown config key 'TRAIN.lrr'"):
        apply_opts(default_config(), ["TRAIN.lrr", "1"])


def test_choices_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="TRAIN.optimizer"):
        load_config(write(tmp_path, "TRAIN:\n  optimizer: adamw\n"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yml")
    bad = write(tmp_path, "TRAIN: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot be read as YAML"):
        load_config(bad)


def test_save_round_trip(tmp_path):
    cfg = load_config(None, ["TRAIN.epochs", "7"])
    save_config(cfg, tmp_path / "saved.yml")
    again = load_config(tmp_path / "saved.yml")
    assert again.to_dict() == cfg.to_dict()
    assert yaml.safe_load((tmp_path / "saved.yml").read_text())["TRAIN"]["epochs"] == 7


# ----------------------------------------------------------------------------- _BASE_
def test_base_is_merged_under_the_child_relative_to_its_folder(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "a.yml").write_text("TRAIN:\n  lr: 0.1\n  epochs: 9\nseed: 1\n")
    (tmp_path / "base" / "b.yml").write_text("TRAIN:\n  epochs: 8\n")
    child = tmp_path / "child.yml"
    child.write_text("_BASE_: [base/a.yml, base/b.yml]\nTRAIN:\n  lr: 0.2\n")
    cfg = load_config(child)
    assert (cfg.TRAIN.lr, cfg.TRAIN.epochs, cfg.seed) == (0.2, 8, 1)   # later base, then child
    (tmp_path / "base" / "c.yml").write_text("_BASE_: a.yml\nseed: 2\n")   # relative to base/
    child.write_text("_BASE_: base/c.yml\n")
    cfg = load_config(child)
    assert (cfg.TRAIN.lr, cfg.seed) == (0.1, 2)
    save_config(cfg, tmp_path / "saved.yml")
    saved = yaml.safe_load((tmp_path / "saved.yml").read_text())
    assert "_BASE_" not in saved and saved["TRAIN"]["lr"] == 0.1 and saved["seed"] == 2


def test_base_cycle_and_missing_base_name_the_files(tmp_path):
    (tmp_path / "a.yml").write_text("_BASE_: b.yml\n")
    (tmp_path / "b.yml").write_text("_BASE_: a.yml\nseed: 3\n")
    with pytest.raises(ConfigError, match=r"cycle: .*a\.yml -> .*b\.yml -> .*a\.yml"):
        load_config(tmp_path / "a.yml")
    (tmp_path / "c.yml").write_text("_BASE_: gone.yml\n")
    with pytest.raises(ConfigError, match=r"c\.yml' names _BASE_ '.*gone\.yml'"):
        load_config(tmp_path / "c.yml")
    (tmp_path / "d.yml").write_text("TRAIN:\n  _BASE_: a.yml\n")
    with pytest.raises(ConfigError, match="only allowed at the top"):
        load_config(tmp_path / "d.yml")


def test_empty_yaml_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="is empty"):
        load_config(write(tmp_path, "# only a comment\n"))


# ----------------------------------------------------------------------------- MODEL options
@pytest.mark.parametrize("model, key", [("HGN", "p_dropout"), ("HGN", "non_local"),
                                        ("Martinez", "hid_dim"), ("GraphSH", "num_layers")])
def test_option_of_another_model_is_rejected(tmp_path, model, key):
    with pytest.raises(ConfigError, match=rf"'MODEL\.{key}'.*Model '{model}' has no such "
                                          rf"option.*its options are: name, "):
        load_config(write(tmp_path, f"MODEL:\n  name: {model}\n  {key}: 1\n"))


def test_model_defaults_come_from_the_declaration_and_are_saved_in_full(tmp_path):
    from lib.models.graph_sh import GraphSHOptions
    cfg = load_config(write(tmp_path, "MODEL:\n  name: GraphSH\n  gcn: vanilla\n"))
    assert dict(cfg.MODEL) == {"name": "GraphSH", **vars(GraphSHOptions(gcn="vanilla"))}
    save_config(cfg, tmp_path / "saved.yml")
    assert yaml.safe_load((tmp_path / "saved.yml").read_text())["MODEL"] == dict(cfg.MODEL)
    assert set(default_config().MODEL) == {"name", "hid_dim", "num_coarsening_levels",
                                           "graph_levels", "graph_targets"}   # HGN


def test_model_options_through_opts_keep_types_and_choices(tmp_path):
    yml = write(tmp_path, "MODEL:\n  name: GraphSH\n  gcn: dc_preagg\n")
    assert load_config(yml, ["MODEL.gcn", "vanilla"]).MODEL.gcn == "vanilla"
    with pytest.raises(ConfigError, match=r"'MODEL\.gcn' of model 'GraphSH' must be one of"):
        load_config(yml, ["MODEL.gcn", "bogus"])
    with pytest.raises(ConfigError, match=r"'MODEL\.hid_dim' must be of type int"):
        load_config(yml, ["MODEL.hid_dim", "wide"])
    with pytest.raises(ConfigError, match=r"'MODEL\.graph_targets' must be of type list"):
        load_config(None, ["MODEL.graph_targets", "[96, x]"])
    with pytest.raises(ConfigError, match=r"unknown model 'Nope'"):
        load_config(None, ["MODEL.name", "Nope"])
    # the model named last wins, and the earlier layer's options are checked against it
    with pytest.raises(ConfigError, match=r"Model 'SemGCN' has no such option \(MODEL.name "
                                          r"'SemGCN' was set later, over 'GraphSH'\)"):
        load_config(yml, ["MODEL.name", "SemGCN"])
    cfg = apply_opts(default_config(), ["MODEL.name", "Martinez", "MODEL.num_stage", "3"])
    assert dict(cfg.MODEL) == {"name": "Martinez", "linear_size": 1024, "num_stage": 3,
                               "p_dropout": 0.0}


# ----------------------------------------------------------------------------- DATASET & TRAIN
@pytest.mark.parametrize("text, match", [
    ("DATASET:\n  format: json\n  keypoints: cpn_ft_h36m_dbb\n", "not available with format 'json'"),
    ("DATASET:\n  format: npz\n  num_joints: 16\n  keypoints: cpn\n",
     "it has: gt, cpn_ft_h36m_dbb, detectron_ft_h36m"),
    ("DATASET:\n  format: npz\n  distort_projection: true\n", "projects nothing"),
    ("DATASET:\n  format: parquet\n", "unknown dataset format 'parquet'"),
    ("DATASET:\n  train_stride: 0\n", "stride must be >= 1"),
    ("DATASET:\n  test_stride: -2\n", "stride must be >= 1"),
    ("TRAIN:\n  max_steps_per_epoch: -1\n", "max_steps_per_epoch must be >= 0"),
    ("TRAIN:\n  lr: 0\n", "TRAIN.lr must be > 0"),
])
def test_dataset_and_train_values_that_cannot_work(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match):
        load_config(write(tmp_path, text))


def test_format_options_that_work(tmp_path):
    cfg = load_config(write(tmp_path, "DATASET:\n  format: json\n  distort_projection: true\n"))
    assert cfg.DATASET.distort_projection is True      # json projects its GT 2D: honoured
    cfg = load_config(write(tmp_path, "DATASET:\n  format: npz\n  keypoints: detectron_ft_h36m\n"))
    assert cfg.DATASET.keypoints == "detectron_ft_h36m"


def test_unknown_key_lists_the_section(tmp_path):
    with pytest.raises(ConfigError, match=r"Valid keys of TEST: batch_size, weight_path, vis, "
                                          r"vis_samples, flip_test"):
        load_config(write(tmp_path, "TEST:\n  bogus: 1\n"))
    with pytest.raises(ConfigError, match=r"Valid top-level keys: name, seed"):
        load_config(write(tmp_path, "bogus: 1\n"))


# ----------------------------------------------------------------------------- shipped YAMLs
YAML_DIR = __import__("pathlib").Path(__file__).resolve().parents[1] / "asset" / "yaml"
SHIPPED = sorted(YAML_DIR.rglob("*.yml"))


def test_graphsh_variants_state_only_what_differs():
    for path in YAML_DIR.glob("GraphSH_*_*.yml"):
        data = yaml.safe_load(path.read_text())
        assert "_BASE_" in data, path
        assert set(data) <= {"_BASE_", "name", "cache_dir", "DATASET", "MODEL", "TRAIN"}, path
    assert len(SHIPPED) > 20


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(YAML_DIR)))
def test_shipped_yaml_validates_and_rejects_an_unknown_key(tmp_path, path):
    cfg = load_config(path)
    assert cfg.name or path.parent.name == "base"
    for section in ("", "DATASET.", "MODEL.", "TRAIN.", "TEST.", "LOSS."):
        child = tmp_path / "child.yml"
        node = {"bogus_key": 1}
        if section:
            node = {section[:-1]: node}
        child.write_text(yaml.safe_dump({"_BASE_": str(path), **node}))
        with pytest.raises(ConfigError, match=rf"unknown config key '{section}bogus_key'"):
            load_config(child)


def test_lr_and_step_limits_are_validated(tmp_path):
    base = tmp_path / "c.yml"
    base.write_text("MODEL: {name: Martinez}\n")
    for opts, phrase in ((["TRAIN.lr", "1e300"], "finite float32"),
                         (["TRAIN.lr", "-1e-3"], "must be > 0"),
                         (["TRAIN.max_steps_per_epoch", "-2"], "max_steps_per_epoch must be >= 0")):
        with pytest.raises(ConfigError, match=phrase):
            load_config(base, opts)
    assert load_config(base, ["TRAIN.lr", "3e38"]).TRAIN.lr == 3e38
