"""Train and test a list of configs on the synthetic default and print one comparison table.

    python benchmarks/train_suite.py --suite baselines     # HGN, SemGCN, Martinez (same steps)
    python benchmarks/train_suite.py --suite graphsh       # the seven GraphSH README variants
    python benchmarks/train_suite.py --suite graphsh --opts TRAIN.epochs 2

Each row: test MPJPE / PA-MPJPE (mm), the mean-pose MPJPE of the same split, parameters,
training samples/s and wall time. Writes the table as JSON to --json if given.
"""
import argparse
import json
import logging
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
               + [("GraphSH dc_preagg (CPN)", "GraphSH_synthetic_cpn.yml", [])],
}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--suite", choices=sorted(SUITES), default="baselines")
    p.add_argument("--only", nargs="*", default=None, help="row names to run")
    p.add_argument("--json", default=None)
    p.add_argument("--opts", nargs=argparse.REMAINDER, default=[])
    args = p.parse_args(argv)
    from lib.engine.run import train_main
    from lib.models.utils import count_parameters
    rows = []
    for name, yml, opts in SUITES[args.suite]:
        if args.only and name not in args.only:
            continue
        t0 = time.perf_counter()
        summary = train_main(["--cfg", str(ROOT / "asset" / "yaml" / yml), "--opts",
                              "TRAIN.print_freq", "0", *opts, *args.opts])
        logging.getLogger("pose").handlers.clear()
        from lib.config import load_config
        from lib.registry import ModelContext, build_model
        cfg = load_config(ROOT / "asset" / "yaml" / yml, opts)
        params = count_parameters(build_model(cfg, ModelContext(cfg)))
        rows.append({"model": name, "test_mpjpe": summary["test_mpjpe"],
                     "test_pa_mpjpe": summary["test_pa_mpjpe"],
                     "mean_pose_mpjpe": summary["mean_pose_test_mpjpe"], "params": params,
                     "train_samples_per_s": summary["train_samples_per_s_last_epoch"],
                     "wall_s": time.perf_counter() - t0})
    print(f"\n{'model':28s} {'MPJPE':>8s} {'PA-MPJPE':>9s} {'mean-pose':>10s} {'params':>11s}"
          f" {'train/s':>9s} {'wall':>7s}")
    for r in rows:
        print(f"{r['model']:28s} {r['test_mpjpe']:8.2f} {r['test_pa_mpjpe']:9.2f} "
              f"{r['mean_pose_mpjpe']:10.2f} {r['params']:11,d} {r['train_samples_per_s']:9.0f} "
              f"{r['wall_s']:6.0f}s")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
