"""benchmarks/train_suite.py's seed statistics, by hand."""
import pytest

from benchmarks.train_suite import mean_std, print_table, summarise


def _run(seed, mpjpe):
    return {"seed": seed, "headline": "action_mean", "test_mpjpe": mpjpe,
            "test_mpjpe_frame_mean": mpjpe + 1, "test_pa_mpjpe": mpjpe / 2,
            "mean_pose_mpjpe": 200.0, "train_samples_per_s": 1000.0, "num_threads": 2,
            "wall_s": 10.0}


def test_mean_and_sample_std_over_seeds(capsys):
    assert mean_std([50.0]) == (50.0, 0.0)
    mean, std = mean_std([40.0, 50.0, 60.0])
    assert mean == 50.0 and std == pytest.approx(10.0)          # sample std: sqrt(200 / 2)
    row = summarise("X", [_run(123, 40.0), _run(124, 50.0), _run(125, 60.0)], params=7)
    assert row["seeds"] == [123, 124, 125] and row["wall_s"] == 30.0
    assert row["test_pa_mpjpe"] == 25.0 and row["test_pa_mpjpe_std"] == pytest.approx(5.0)
    assert row["mean_pose_mpjpe_std"] == 0.0
    print_table([row], seeds=3)
    out = capsys.readouterr().out
    assert "50.00 ± 10.00" in out and "over 3 seeds" in out
