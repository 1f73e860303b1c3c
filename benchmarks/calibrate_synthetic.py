"""Compare the synthetic generator's motion with real motion capture (CMU ASF/AMC clips).

    python benchmarks/calibrate_synthetic.py --mocap DIR [--out DIR] [--frames 100] [--seed 0]

``--mocap`` holds CMU subjects as ``DIR/<subject>/<subject>.asf`` + ``<subject>_NN.amc``. The
real clips are converted to H36M-17 world joints at 50 fps as ``data/import_mocap.py`` does;
the synthetic clips are generated in memory (nothing written but the report). The report
(``--out``/report.md, plus PNG histograms) gives joint-angle ranges and distributions,
bone-length ratios, root height, trunk tilt and twist, root speed, where the pelvis and the
centre of mass stand over the feet (standing and walking frames), and the pose coverage: the
share of real frames whose root-relative, heading-free, scale-normalised pose lies within
40/60/80 mm (mean per joint, RMS nearest neighbour) of a synthetic pose.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lib.data.synthetic import calibration as cal  # noqa: E402
from lib.data.synthetic.calibration import (CalibrationError, real_clips,  # noqa: E402
                                            synthetic_clips)


def _hist(ax, real, synth, name):
    lo = min(np.percentile(real, 0.5), np.percentile(synth, 0.5))
    hi = max(np.percentile(real, 99.5), np.percentile(synth, 99.5))
    bins = np.linspace(lo, hi, 40)
    ax.hist(real, bins, density=True, alpha=0.55, label="real (CMU)")
    ax.hist(synth, bins, density=True, alpha=0.55, label="synthetic")
    ax.set_title(name, fontsize=9)


def write_report(real: dict, synth: dict, out: Path, title_extra: str = "") -> dict:
    """Report and plots into ``out``; returns the numbers."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    out.mkdir(parents=True, exist_ok=True)
    real_all, real_starts = cal.stack([c for clips in real.values() for c in clips])
    syn_all, syn_starts = cal.stack([c for clips in synth.values() for c in clips])
    rs = cal.joint_statistics(real_all, clip_starts=real_starts)
    ss = cal.joint_statistics(syn_all, clip_starts=syn_starts)
    cov = cal.coverage(real_all, syn_all)
    per_subject = {s: cal.coverage(np.concatenate(c), syn_all)["fraction_within"]
                   for s, c in real.items()}
    lines = [f"# Synthetic motion against real capture{title_extra}", "",
             f"Real: {len(real_all)} frames at 50 fps from CMU subjects "
             f"{', '.join(real)}; synthetic: {len(syn_all)} frames "
             f"({sum(len(v) for v in synth.values())} clips).", "",
             "## Pose coverage", "",
             "Share of real frames whose canonical pose (root-relative, heading removed, scaled "
             f"to a summed bone length of {cal.REFERENCE_BONE_SUM_MM:.0f} mm) has a synthetic "
             "pose within the distance (RMS over joints of the nearest neighbour):", "",
             "| real frames | " + " | ".join(f"<= {t:.0f} mm" for t in cov["fraction_within"])
             + " | median distance |", "|---|" + "---|" * (len(cov["fraction_within"]) + 1)]
    lines.append("| all | " + " | ".join(f"{v:.1%}" for v in cov["fraction_within"].values())
                 + f" | {np.median(cov['nearest_rms_mm']):.0f} mm |")
    for s, fr in per_subject.items():
        lines.append(f"| CMU {s} | " + " | ".join(f"{v:.1%}" for v in fr.values()) + " | |")
    lines += ["", "## Distributions (real 1-99th percentile vs synthetic 0.5-99.5th; "
              "coverage: share of the real range the synthetic range spans)", "",
              "| statistic | real | synthetic | coverage |", "|---|---|---|---|"]
    ranges = {}
    for k in rs:
        a, b = np.percentile(rs[k], [1, 99])
        c, d = np.percentile(ss[k], [0.5, 99.5])
        ranges[k] = cal.range_coverage(rs[k], ss[k])
        lines.append(f"| {k} | {a:.2f} .. {b:.2f} | {c:.2f} .. {d:.2f} | {ranges[k]:.0%} |")
    lines += ["", "## Where the body stands over its feet", "",
              "Pelvis and centre of mass (Dempster's segment masses) ahead of the ankles' "
              "midpoint, mm along the facing direction: median [10th, 90th percentile] of the "
              "standing frames (knees and trunk within 20 deg of straight, pelvis slower than "
              "0.3 m/s) and the walking frames (faster than 0.6 m/s).", "",
              "| activity | source | frames | pelvis ahead | centre of mass ahead |",
              "|---|---|---|---|---|"]
    balance = {f"CMU {s}": cal.balance_by_activity(c) for s, c in real.items()}
    balance["synthetic"] = cal.balance_by_activity([c for clips in synth.values() for c in clips])
    q = lambda a: (f"{np.median(a):.0f} [{np.percentile(a, 10):.0f}, {np.percentile(a, 90):.0f}]"
                   if len(a) else "–")
    for activity in ("standing", "walking"):
        for src, b in balance.items():
            d = b[activity]
            lines.append(f"| {activity} | {src} | {len(d['com_ahead_of_ankles'])} | "
                         f"{q(d['pelvis_ahead_of_ankles'])} | {q(d['com_ahead_of_ankles'])} |")
    lines += ["", "## Proportions (median bone length, mm)", "",
              "| bone | " + " | ".join(f"CMU {s}" for s in real) + " | synthetic min .. max |",
              "|---|" + "---|" * (len(real) + 1)]
    real_props = {s: cal.proportions(np.concatenate(c)) for s, c in real.items()}
    syn_props = [cal.proportions(c) for clips in synth.values() for c in clips]
    for bone in real_props[next(iter(real))]:
        vals = [p[bone] for p in syn_props]
        lines.append(f"| {bone} | " + " | ".join(f"{real_props[s][bone]:.0f}" for s in real)
                     + f" | {min(vals):.0f} .. {max(vals):.0f} |")
    keys = list(rs)
    cols = 4
    rows = int(np.ceil(len(keys) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.6 * rows))
    for ax, k in zip(axes.ravel(), keys):
        _hist(ax, rs[k], ss[k], k)
    for ax in axes.ravel()[len(keys):]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "distributions.png", dpi=80)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.hist(cov["nearest_rms_mm"], bins=50)
    ax.set_xlabel("distance of a real pose to the nearest synthetic pose (mm)")
    fig.tight_layout()
    fig.savefig(out / "coverage.png", dpi=80)
    plt.close(fig)
    lines += ["", "![distributions](distributions.png)", "", "![coverage](coverage.png)", ""]
    (out / "report.md").write_text("\n".join(lines))
    return {"coverage": cov["fraction_within"], "per_subject": per_subject,
            "range_coverage": ranges}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mocap", type=Path, required=True, help="folder of CMU subjects")
    p.add_argument("--out", type=Path, default=ROOT / "experiment" / "calibration",
                   help="report folder (default: %(default)s)")
    p.add_argument("--frames", type=int, default=100, help="synthetic frames per sequence")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    try:
        real = real_clips(args.mocap)
    except CalibrationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    synth = synthetic_clips(args.seed, args.frames)
    result = write_report(real, synth, args.out)
    print((args.out / "report.md").read_text())
    print(f"wrote {args.out} in {time.perf_counter() - t0:.0f} s; pose coverage "
          + ", ".join(f"{v:.1%} within {k:.0f} mm" for k, v in result["coverage"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
