"""GraphSH's command line, mapped onto this framework's engine.

Users of the public GraphSH code type::

    python main_gcn.py --gcn dc_preagg --keypoints cpn_ft_h36m_dbb
    python main_gcn.py --gcn dc_preagg --evaluate checkpoint/ckpt_best.pth.tar

Here the same options pick ``asset/yaml/GraphSH_<gcn>_<gt|cpn>.yml`` and become config overrides;
training and evaluation then run exactly as ``main/train.py`` / ``main/test.py`` would.
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lib.engine.run import run_cli, test_main, train_main  # noqa: E402

KEYPOINTS = {"gt": "gt", "cpn_ft_h36m_dbb": "cpn", "detectron_ft_h36m": "cpn"}


def build_parser():
    p = argparse.ArgumentParser(description="GraphSH-style training/evaluation (see README).")
    p.add_argument("--gcn", default="dc_preagg", help="graph convolution variant")
    p.add_argument("-k", "--keypoints", default="gt", choices=sorted(KEYPOINTS))
    p.add_argument("--evaluate", default="", metavar="CKPT", help="evaluate this checkpoint")
    p.add_argument("--synthetic", action="store_true",
                   help="use the embedded synthetic Human3.6M (data/Synthetic) instead of data/")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch_size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--lr_decay", type=int, default=None, help="decay every N optimiser steps")
    p.add_argument("--lr_gamma", type=float, default=None)
    p.add_argument("--hid_dim", type=int, default=None)
    p.add_argument("--num_layers", type=int, default=None, help="number of stacked hourglasses")
    p.add_argument("--dropout", type=float, default=None)
    p.add_argument("--max_norm", type=float, default=None)
    p.add_argument("--no_max", action="store_true", help="no gradient-norm clipping")
    p.add_argument("--downsample", type=int, default=None, help="frame stride (train and test)")
    p.add_argument("--flip", action="store_true", help="flip augmentation and flip test")
    p.add_argument("--gpu", default=None, help="GPU ids, e.g. 0")
    p.add_argument("--max_steps", type=int, default=None, help="cap optimiser steps per epoch")
    return p


def to_engine_args(args) -> tuple:
    """(command, argv) for train_main / test_main."""
    kp = KEYPOINTS[args.keypoints]
    cfg = ROOT / "asset" / "yaml" / f"GraphSH_{args.gcn}_{kp}.yml"
    if args.synthetic:
        cfg = ROOT / "asset" / "yaml" / f"GraphSH_synthetic_{kp}.yml"
    if not cfg.is_file():
        from lib.models.gconv import GCONV_VARIANTS
        from lib.config import ConfigError
        raise ConfigError(f"unknown --gcn '{args.gcn}'; valid: {', '.join(sorted(GCONV_VARIANTS))}")
    opts = ["MODEL.gcn", args.gcn, "DATASET.keypoints", args.keypoints]
    simple = {"TRAIN.epochs": args.epochs, "TRAIN.batch_size": args.batch_size,
              "TRAIN.lr": args.lr, "TRAIN.lr_factor": args.lr_gamma,
              "MODEL.hid_dim": args.hid_dim, "MODEL.num_stacks": args.num_layers,
              "MODEL.p_dropout": args.dropout, "TRAIN.max_norm": args.max_norm,
              "DATASET.train_stride": args.downsample, "DATASET.test_stride": args.downsample,
              "TRAIN.max_steps_per_epoch": args.max_steps}
    for key, value in simple.items():
        if value is not None:
            opts += [key, str(value)]
    if args.lr_decay:
        opts += ["TRAIN.step_unit", "iteration",
                 "TRAIN.lr_step", str([args.lr_decay * k for k in range(1, 101)])]
    if args.no_max:
        opts += ["TRAIN.max_norm", "0.0"]
    if args.flip:
        opts += ["TRAIN.flip_aug", "true", "TEST.flip_test", "true"]
    argv = ["--cfg", str(cfg)]
    if args.gpu is not None:
        argv += ["--gpu", args.gpu]
    if args.evaluate:
        return test_main, argv + ["--weights", args.evaluate, "--opts"] + opts
    return train_main, argv + ["--opts"] + opts


def main(argv=None):
    args = build_parser().parse_args(argv)
    command, engine_argv = to_engine_args(args)
    return command(engine_argv)


if __name__ == "__main__":
    run_cli(main)
