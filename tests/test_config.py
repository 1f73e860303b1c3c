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


@pytest.mark.parametrize("path", sorted(__import__("pathlib").Path(__file__).resolve()
                                        .parents[1].glob("asset/yaml/*.yml")))
def test_shipped_yamls_are_valid(path):
    load_config(path)
