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


def test_clean_hgn_yaml_lists_exactly_its_five_differences():
    cfg = load_config(str(YAML / "HGN_human36J_train_human36.yml"))
    assert protocol_name(cfg) == CLEAN
    diffs = recipe_differences(cfg)
    assert [d.split(":")[0] for d in diffs] == ["DATASET.val_fraction", "TRAIN.epochs",
                                                "TRAIN.lr_step", "TRAIN.select_on",
                                                "TRAIN.select_metric"]
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


def test_selection_value_follows_select_metric():
    from lib.engine.trainer import selection_value
    # two actions of 2 and 1 samples: 10, 20 | 50 -> action mean (15 + 50) / 2, frame mean 80 / 3
    metrics = {"mpjpe": 32.5, "headline": {"mpjpe_frame_mean": 80 / 3}}
    assert selection_value(metrics, "headline") == 32.5
    assert selection_value(metrics, "frame_mean") == pytest.approx(26.6667, abs=1e-4)


def test_protocol_card_names_the_training_protocol():
    from lib.engine.evaluate import protocol_card

    class _Dataset:                       # only what the card reads: length and stats
        stats, info = {}, None

        def __len__(self):
            return 7

    cfg = load_config(str(YAML / "HGN_human36J_train_human36_official.yml"))
    card = protocol_card(cfg, "test", _Dataset())
    first, second = card.splitlines()[:2]
    assert first.startswith("protocol: split=test (7 samples)")
    assert second.startswith("protocol: official")
    assert "recipe: exactly the HGN public code" in card
    unknown = protocol_card(cfg, "test", _Dataset(), train_cfg=None)
    assert "training protocol: unknown" in unknown
