"""Protocol naming and the differences from each original's recipe, on the shipped YAMLs."""
from pathlib import Path

import pytest

from lib.config import load_config
from lib.protocols import (CLEAN, CUSTOM, OFFICIAL, RECIPES, describe_protocol, protocol_name,
                           recipe_differences)

YAML = Path(__file__).resolve().parents[1] / "asset" / "yaml"


@pytest.mark.parametrize("name", ["HGN_human36J_train_human36_official.yml",
                                  "GraphSH_dc_preagg_gt_official.yml",
                                  "GraphSH_dc_preagg_cpn_official.yml"])
def test_official_yamls_are_the_original_recipe_to_the_letter(name):
    cfg = load_config(str(YAML / name))
    assert protocol_name(cfg) == OFFICIAL
    diffs = recipe_differences(cfg)
    assert diffs == [], diffs          # the 2D source (GT or CPN) is not part of the recipe
    assert "protocol: official" in describe_protocol(cfg)


def test_clean_hgn_yaml_lists_exactly_its_four_differences():
    cfg = load_config(str(YAML / "HGN_human36J_train_human36.yml"))
    assert protocol_name(cfg) == CLEAN
    diffs = recipe_differences(cfg)
    assert [d.split(":")[0] for d in diffs] == ["DATASET.val_fraction", "TRAIN.epochs",
                                                "TRAIN.lr_step", "TRAIN.select_on"]
    epochs = next(d for d in diffs if d.startswith("TRAIN.epochs"))
    assert "100 here, 151 in the original" in epochs and "README says 100" in epochs
    card = describe_protocol(cfg)
    assert "validation hold-out of 10%" in card and "HGN public code" in card


def test_synthetic_runs_say_so_and_unknown_recipes_are_named():
    cfg = load_config(str(YAML / "HGN_synthetic_train.yml"))
    assert recipe_differences(cfg)[-1] == "data: the synthetic stand-in, not Human3.6M"
    cfg = load_config(str(YAML / "Martinez_synthetic.yml"))
    assert "Martinez" not in RECIPES
    assert recipe_differences(cfg) is None
    assert "no published recipe of Martinez on record" in describe_protocol(cfg)


def test_selection_on_test_with_an_unused_hold_out_is_custom():
    cfg = load_config(str(YAML / "HGN_human36J_train_human36.yml"),
                      ["TRAIN.select_on", "test"])
    assert protocol_name(cfg) == CUSTOM
    assert "held out unused" in describe_protocol(cfg)
