"""Training curves as PNG files in the run's graph/ folder (headless matplotlib)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _plot(values, title, ylabel, path, mark_min=True):
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    epochs = list(range(1, len(values) + 1))
    ax.plot(epochs, values, marker="o", markersize=3)
    if mark_min and values:
        i = min(range(len(values)), key=values.__getitem__)
        ax.annotate(f"min {values[i]:.4g} @ {i + 1}", (epochs[i], values[i]),
                    textcoords="offset points", xytext=(5, 10))
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_training_curves(train_log, eval_log, graph_dir):
    """train_loss.png (mean joint MSE per epoch) and joint_error.png (MPJPE, PA-MPJPE)."""
    graph_dir = Path(graph_dir)
    _plot(list(train_log), "training joint loss", "MSE (m^2)", graph_dir / "train_loss.png")
    split = eval_log.get("split", "val")
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for key, label in (("mpjpe", "MPJPE"), ("pa_mpjpe", "PA-MPJPE")):
        vals = eval_log.get(key, [])
        if vals:
            ax.plot(range(1, len(vals) + 1), vals, marker="o", markersize=3, label=label)
    mp = eval_log.get("mpjpe", [])
    if mp:
        i = min(range(len(mp)), key=mp.__getitem__)
        ax.annotate(f"best {mp[i]:.2f} mm @ {i + 1}", (i + 1, mp[i]), textcoords="offset points",
                    xytext=(5, 10))
    ax.set_xlabel("epoch")
    ax.set_ylabel("error (mm)")
    ax.set_title(f"{split} error")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(graph_dir / "joint_error.png")
    plt.close(fig)
