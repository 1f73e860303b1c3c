"""The run folder (experiment/exp_<local time>/), its log, metrics and checkpoints.

The folder (``exp_<time>_<train|test>_<model>``) is created when a run starts, never at
import, and never replaces another run's folder: a name clash within the same second gets a
numeric suffix. Its metrics.json says how the run ended (``status``: running, finished, failed,
interrupted). Checkpoints are written atomically (lib.fileio.atomic_write), never with
non-finite weights, and load on CPU whatever device wrote them.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import pickle
import random
import re
import sys
from pathlib import Path

import numpy as np
import torch

from lib import __version__
from lib.config import save_config
from lib.errors import PoseError
from lib.fileio import atomic_write, atomic_write_text, file_system_error, make_dirs
from lib.models.utils import strip_module_prefix  # noqa: F401  (re-exported)

LOG_NAME = "pose"


class CheckpointError(PoseError, RuntimeError):
    """A checkpoint that cannot be used: missing, corrupt, or from another architecture."""


# Which code wrote a checkpoint; the one classification used by every loader and message.
KIND_FRAMEWORK = "this framework's checkpoint"
KIND_OFFICIAL = "official HGN checkpoint"
KIND_BARE = "bare state dict"
# Keys our checkpoints carry and the original code's never do (see save_checkpoint).
FRAMEWORK_MARKER_KEYS = ("version", "config")


def checkpoint_kind(ckpt) -> str:
    """KIND_* of a checkpoint dict, as torch.load or load_checkpoint returns it."""
    if not isinstance(ckpt, dict):
        raise ValueError(f"a checkpoint must be a dict, got {type(ckpt).__name__}")
    if "kind" in ckpt and "path" in ckpt:      # load_checkpoint saw the file as written
        return ckpt["kind"]
    if "model_state_dict" in ckpt or "state_dict" in ckpt:
        framework = any(ckpt.get(k) is not None for k in FRAMEWORK_MARKER_KEYS)
        return KIND_FRAMEWORK if framework else KIND_OFFICIAL
    if ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return KIND_BARE
    raise ValueError(f"checkpoint has no 'model_state_dict' (keys: {sorted(ckpt)[:10]}); "
                     f"expected a file written by the original HGN code or by this framework")


def describe_checkpoint(ckpt: dict) -> str:
    """One line for the log: the kind, the framework version if any, the epoch."""
    kind = checkpoint_kind(ckpt)
    version = f" (version {ckpt['version']})" if ckpt.get("version") is not None else ""
    epoch = f", epoch {ckpt['epoch']}" if ckpt.get("epoch") is not None else ""
    return f"{kind}{version}{epoch}"


RUN_PREFIX = "exp_"


def run_dir_name(now, tag: str = "") -> str:
    """exp_YYYY-MM-DD_HH-MM-SS[_<tag>] (local time), e.g. exp_2026-11-22_14-03-55_train_HGN."""
    return f"{RUN_PREFIX}{now:%Y-%m-%d_%H-%M-%S}" + (f"_{tag}" if tag else "")


def create_run_dir(output_dir="experiment", now=None, tag: str = "") -> Path:
    """output_dir/:func:`run_dir_name` with checkpoint/, graph/, vis/; a clash gets _2, _3."""
    now = now or _dt.datetime.now()
    make_dirs(output_dir)
    base = Path(output_dir) / run_dir_name(now, tag)
    run, n = base, 1
    while True:
        try:
            run.mkdir(exist_ok=False)
            break
        except FileExistsError:
            n += 1
            run = base.with_name(f"{base.name}_{n}")
        except OSError as exc:
            raise file_system_error(run, exc, "create the run folder") from None
    for sub in ("checkpoint", "graph", "vis"):
        (run / sub).mkdir()
    return run


def setup_logging(run_dir=None, rank=0) -> logging.Logger:
    """Console (rank 0 only) and run_dir/log.txt handlers on the 'pose' logger.

    Every module logs under that tree ('pose.data.h36m_json', ...), so reader and model lines
    reach log.txt; it does not propagate to the root, so nothing prints twice."""
    log = logging.getLogger(LOG_NAME)
    log.setLevel(logging.INFO)
    log.propagate = False
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()
    fmt = logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S")
    if rank == 0:
        console = logging.StreamHandler(sys.stdout)
        console.setFormatter(fmt)
        log.addHandler(console)
        if run_dir is not None:
            fh = logging.FileHandler(Path(run_dir) / "log.txt")
            fh.setFormatter(fmt)
            log.addHandler(fh)
    else:
        log.addHandler(logging.NullHandler())
    return log


def get_logger() -> logging.Logger:
    return logging.getLogger(LOG_NAME)


class Experiment:
    """Everything a run writes goes through here (only rank 0 writes)."""

    def __init__(self, cfg, run_dir: Path):
        self.cfg = cfg
        self.dir = Path(run_dir)
        self.checkpoint_dir = self.dir / "checkpoint"
        self.graph_dir = self.dir / "graph"
        self.vis_dir = self.dir / "vis"
        save_config(cfg, self.dir / "config.yml")

    @classmethod
    def start(cls, cfg, kind: str = ""):
        """A new run folder; ``kind`` ('train', 'test') and the model name go into its name."""
        tag = "_".join(t for t in (kind, str(cfg.MODEL.name)) if t) if kind else ""
        exp = cls(cfg, create_run_dir(cfg.output_dir, tag=re.sub(r"[^\w.-]", "-", tag)))
        exp.write_metrics({"status": STATUS_RUNNING})
        return exp

    def write_metrics(self, metrics: dict, name="metrics.json"):
        atomic_write_text(self.dir / name, json.dumps(metrics, indent=2, default=_json_default))

    def mark(self, status: str, error: BaseException | None = None, metrics: dict | None = None):
        """metrics.json with ``status`` (STATUS_*) and, for a failure, the error."""
        out = dict(metrics or {}, status=status)
        if error is not None:
            out["error"] = f"{type(error).__name__}: {error}"
        self.write_metrics(out)


STATUS_RUNNING, STATUS_FINISHED = "running", "finished"
STATUS_FAILED, STATUS_INTERRUPTED = "failed", "interrupted"


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))


# ----------------------------------------------------------------------------- RNG state
def seed_everything(seed: int):
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Every RNG's state, as tensors and plain Python values only (so checkpoints load with
    torch.load(weights_only=True))."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(),
             "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)),
                       "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict):
    random.setstate(state["python"])
    npy = state["numpy"]
    if isinstance(npy, dict):
        npy = (npy["name"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
               npy["cached"])
    np.random.set_state(npy)       # a tuple with an ndarray in checkpoints of version <= 0.1
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------- checkpoints
def unwrap(model):
    """The bare module inside DataParallel / DistributedDataParallel / torch.compile."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def save_checkpoint(path, *, epoch, model, optimizer=None, scheduler=None, train_log=None,
                    test_log=None, cfg=None, extra=None):
    """Write a checkpoint dict atomically: the public HGN code's keys (docs/hgn.md) plus RNG
    states, the config and the framework version."""
    state = {
        "epoch": epoch,
        "model_state_dict": strip_module_prefix(unwrap(model).state_dict()),
        "optim_state_dict": optimizer.state_dict() if optimizer is not None else None,
        "scheduler_state_dict": scheduler.state_dict() if scheduler is not None else None,
        "rng_state": rng_state(),
        "train_log": train_log if train_log is not None else [],
        "test_log": test_log if test_log is not None else {},
        "config": cfg.to_dict() if cfg is not None else None,
        "version": __version__,
    }
    if extra:
        state.update(extra)
    bad = non_finite_parameters(state["model_state_dict"])
    if bad:
        raise CheckpointError(f"refusing to write checkpoint '{path}': the weights hold NaN or "
                              f"inf ({', '.join(bad[:4])}{' ...' if len(bad) > 4 else ''}); "
                              f"a checkpoint with non-finite weights is never written.")

    def write(tmp):
        with open(tmp, "wb") as fh:          # a file object: a full disk raises OSError
            torch.save(state, fh)
    atomic_write(path, write)
    return Path(path)


def non_finite_parameters(state_dict: dict) -> list:
    """Names of floating-point tensors of ``state_dict`` that hold NaN or inf."""
    return [k for k, v in state_dict.items()
            if isinstance(v, torch.Tensor) and v.is_floating_point()
            and not bool(torch.isfinite(v).all())]


def _numpy_array_globals() -> list:
    """What numpy arrays and scalars in a checkpoint (older RNG states, logs of the original
    code) unpickle through: array and scalar constructors and dtypes, nothing that can call
    arbitrary code. Also under their numpy 1.x names."""
    core = getattr(np, "_core", None) or np.core
    dtypes = [type(np.dtype(t)) for t in ("?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8",
                                          "f2", "f4", "f8")]
    out = [np.ndarray, np.dtype, *dtypes, core.multiarray._reconstruct, core.multiarray.scalar]
    for fn in (core.multiarray._reconstruct, core.multiarray.scalar):
        out.append((fn, f"numpy.core.multiarray.{fn.__name__}"))
    return out


_NUMPY_ARRAY_GLOBALS = _numpy_array_globals()

RECREATE_CHECKPOINT = ("Re-create it by training again (python main/train.py --cfg ...; an "
                       "interrupted run resumes from its checkpoint<epoch>.pth.tar), use another "
                       "checkpoint of the same run folder, or download the official HGN "
                       "final.pth.tar again.")


def load_checkpoint(path) -> dict:
    """Load on CPU with torch.load(weights_only=True): a checkpoint from a stranger cannot run
    code. Clear errors for a missing, corrupt or unsafe file."""
    path = Path(path)
    if path.is_dir():
        path = path / "final.pth.tar"
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint '{path}' does not exist. Train a model first (python main/train.py "
            f"--cfg ...; checkpoints go to experiment/exp_*/checkpoint/) or set "
            f"TEST.weight_path to an existing .pth.tar file.")
    try:
        with torch.serialization.safe_globals(_NUMPY_ARRAY_GLOBALS):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)|but got <class '([\w.]+)'>",
                          str(exc))
        if found is None:
            detail = str(exc).split(". ")[0][:120]     # torch appends a page of advice
            raise CheckpointError(f"checkpoint '{path}' is corrupt or not a PyTorch checkpoint "
                                  f"(UnpicklingError: {detail}). {RECREATE_CHECKPOINT}") from None
        raise CheckpointError(
            f"checkpoint '{path}' holds Python objects other than tensors, numbers, strings and "
            f"containers ({found.group(1) or found.group(2)}); unpickling "
            f"them could run code from the file, so it is refused. If you wrote the file "
            f"yourself and trust it, load it in Python with torch.load(..., weights_only=False) "
            f"and save only its state dict: torch.save({{'model_state_dict': "
            f"ckpt['model_state_dict']}}, 'clean.pth.tar').") from None
    except Exception as exc:  # torch raises many types for truncated/corrupt files
        raise CheckpointError(f"checkpoint '{path}' is corrupt, truncated or not a PyTorch "
                              f"checkpoint ({type(exc).__name__}: {exc}). "
                              f"{RECREATE_CHECKPOINT}") from None
    try:
        kind = checkpoint_kind(ckpt)
    except ValueError as exc:
        raise CheckpointError(f"checkpoint '{path}': {exc}") from None
    if kind == KIND_BARE:
        ckpt = {"model_state_dict": ckpt}
    elif "model_state_dict" not in ckpt:
        ckpt = dict(ckpt, model_state_dict=ckpt["state_dict"])
    ckpt["model_state_dict"] = strip_module_prefix(ckpt["model_state_dict"])
    ckpt["path"] = str(path)
    ckpt["kind"] = kind
    return ckpt


def load_model_weights(model, state_dict: dict, source: str = "checkpoint"):
    """load_state_dict(strict) with an error that names missing/unexpected/mis-shaped keys."""
    target = unwrap(model)
    own = target.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = sorted(f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
                    for k in set(own) & set(state_dict)
                    if hasattr(state_dict[k], "shape") and state_dict[k].shape != own[k].shape)
    if missing or unexpected or shapes:
        def head(items):
            return ", ".join(items[:6]) + (f" ... (+{len(items) - 6})" if len(items) > 6 else "")
        parts = []
        if missing:
            parts.append(f"missing keys: {head(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {head(unexpected)}")
        if shapes:
            parts.append(f"shape mismatches: {head(shapes)}")
        raise CheckpointError(f"{source} does not fit the model "
                              f"'{type(target).__name__}' built from the config: "
                              + "; ".join(parts) + ". Check MODEL.* in the config (and the "
                              "graphs it builds) against the run that wrote the checkpoint.")
    target.load_state_dict(state_dict, strict=True)
