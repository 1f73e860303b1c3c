"""Train and test a list of configs on the synthetic default and print one comparison table.

    python benchmarks/train_suite.py --suite baselines     # HGN, SemGCN, Martinez (same steps)
    python benchmarks/train_suite.py --suite graphsh       # the seven GraphSH README variants
    python benchmarks/train_suite.py --suite graphsh --opts TRAIN.epochs 2
    python benchmarks/train_suite.py --suite baselines --seeds 3   # mean +- std over 3 seeds
    python benchmarks/train_suite.py --suite transfer --mocap DIR   # benchmarks/transfer_suite.py

Each row: test MPJPE (the protocol's headline: the mean over the actions on Human3.6M-style
data) beside the frame-weighted mean, PA-MPJPE (headline), the mean-pose MPJPE of the same
split, parameters, training samples/s and wall time (mm). With ``--seeds N`` every row is
trained N times (config ``seed`` = the YAML's seed + 0..N-1) and the metrics are given as
mean +- sample standard deviation, so a table row is never one lucky run. Writes the table
(and every run) as JSON to --json if given.
"""
import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SUITES = {
    "baselines": [("HGN", "HGN_synthetic_train.yml", []),
                  ("SemGCN", "SemGCN_synthetic.yml", []),
                  ("Martinez", "Martinez_synthetic.yml", [])],
    "graphsh": [(f"GraphSH {g}", "GraphSH_synthetic_gt.yml", ["MODEL.gcn", g])
                for g in ("dc_vanilla", "dc_preagg", "semantic", "dc_postagg", "convst",
                          "nosharing", "modulated")]
               + [("GraphSH dc_preagg (CPN)", "GraphSH_synthetic_cpn.yml", []),
                  ("GraphSH dc_preagg (CPN, 17 joints)", "GraphSH_synthetic_cpn17.yml", [])],
}


def main(argv=None):
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--suite")
    if pre.parse_known_args(argv)[0].suite == "transfer":   # its own options and table
        from benchmarks.transfer_suite import main as transfer_main
        return transfer_main(argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--suite", choices=sorted(SUITES) + ["transfer"], default="baselines")
    p.add_argument("--only", nargs="*", default=None, help="row names to run")
    p.add_argument("--seeds", type=int, default=1, help="runs per row (different seeds)")
    p.add_argument("--json", default=None)
    p.add_argument("--opts", nargs=argparse.REMAINDER, default=[])
    args = p.parse_args(argv)
    if args.seeds < 1:
        p.error("--seeds must be >= 1")
    from lib.config import load_config
    from lib.models.utils import count_parameters
    from lib.registry import ModelContext, build_model
    rows = []
    for name, yml, opts in SUITES[args.suite]:
        if args.only and name not in args.only:
            continue
        cfg = load_config(ROOT / "asset" / "yaml" / yml, [*opts, *args.opts])
        runs = [_run_once(yml, [*opts, *args.opts], cfg.seed + k) for k in range(args.seeds)]
        rows.append(summarise(name, runs, count_parameters(build_model(cfg, ModelContext(cfg)))))
    print_table(rows, args.seeds)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return rows


METRICS = ("test_mpjpe", "test_mpjpe_frame_mean", "test_pa_mpjpe", "mean_pose_mpjpe")


def _run_once(yml: str, opts: list, seed: int) -> dict:
    """One training run of ``yml`` with ``seed`` (applied after every other override)."""
    from lib.engine.run import train_main
    t0 = time.perf_counter()
    summary = train_main(["--cfg", str(ROOT / "asset" / "yaml" / yml), "--opts",
                          "TRAIN.print_freq", "0", *opts, "seed", str(seed)])
    logging.getLogger("pose").handlers.clear()
    return {"seed": seed, "headline": summary["test_headline"],
            "test_mpjpe": summary["test_mpjpe"],
            "test_mpjpe_frame_mean": summary["test_mpjpe_frame_mean"],
            "test_pa_mpjpe": summary["test_pa_mpjpe"],
            "mean_pose_mpjpe": summary["mean_pose_test_mpjpe"],
            "train_samples_per_s": summary["train_samples_per_s_last_epoch"],
            "num_threads": summary.get("num_threads"), "wall_s": time.perf_counter() - t0}


def mean_std(values) -> tuple:
    """(mean, sample standard deviation; 0 for one value)."""
    values = [float(v) for v in values]
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarise(name: str, runs: list, params: int) -> dict:
    """One table row from the runs of one config: each metric's mean and std over seeds."""
    row = {"model": name, "headline": runs[0]["headline"], "seeds": [r["seed"] for r in runs],
           "params": params, "runs": runs,
           "train_samples_per_s": statistics.fmean(r["train_samples_per_s"] for r in runs),
           "wall_s": sum(r["wall_s"] for r in runs)}
    for key in METRICS:
        row[key], row[key + "_std"] = mean_std(r[key] for r in runs)
    return row


def _cell(row, key, seeds):
    return f"{row[key]:.2f}" + (f" ± {row[key + '_std']:.2f}" if seeds > 1 else "")


def print_table(rows, seeds: int):
    print("\nMPJPE / PA-MPJPE: the headline of the protocol (Human3.6M: mean over the actions); "
          "frame: the frame-weighted mean; mean-pose: predicting the mean training pose"
          + (f"; mean ± std over {seeds} seeds" if seeds > 1 else ""))
    w = 16 if seeds > 1 else 8
    print(f"{'model':36s} {'MPJPE':>{w}s} {'frame':>{w}s} {'PA-MPJPE':>{w}s} {'mean-pose':>{w}s} "
          f"{'params':>11s} {'train/s':>9s} {'wall':>7s}")
    for r in rows:
        cells = " ".join(f"{_cell(r, k, seeds):>{w}s}" for k in METRICS)
        print(f"{r['model']:36s} {cells} {r['params']:11,d} {r['train_samples_per_s']:9.0f} "
              f"{r['wall_s']:6.0f}s")


if __name__ == "__main__":
    main()
