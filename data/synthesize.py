"""Write the synthetic Human3.6M stand-in (the framework's embedded default dataset).

    python data/synthesize.py [--out data/Synthetic] [--seed 0] [--size default|large]
                              [--frames N] [--force]

The files it writes and how they are made: lib/data/synthetic/generate.py.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: put the repository root on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.data.synthetic.generate import (DEFAULT_OUT, FRAMES_PER_SEQUENCE,  # noqa: E402
                                         SynthesisError, generate_synthetic_h36m)
from lib.geometry.skeleton import ALL_SUBJECTS  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", choices=sorted(FRAMES_PER_SEQUENCE), default="default",
                   help="default: 100 frames per sequence; large: 1000")
    p.add_argument("--frames", type=int, default=None,
                   help="frames per sequence (overrides --size)")
    p.add_argument("--subjects", type=int, nargs="+", default=list(ALL_SUBJECTS))
    p.add_argument("--invalid-fit-rate", type=float, default=0.005,
                   help="fraction of frames written without an SMPL fit")
    p.add_argument("--force", action="store_true",
                   help="replace a synthetic set written with other parameters (never a folder "
                        "holding files this generator did not write)")
    args = p.parse_args(argv)
    try:
        generate_synthetic_h36m(args.out, seed=args.seed, frames_per_sequence=args.frames,
                                size=args.size, subjects=args.subjects,
                                invalid_fit_rate=args.invalid_fit_rate, force=args.force)
    except SynthesisError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
