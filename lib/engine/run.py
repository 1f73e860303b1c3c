"""What main/train.py and main/test.py do, as functions (tests call them directly)."""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import textwrap
import time
from pathlib import Path

import torch

from lib.config import load_config
from lib.engine.devices import cleanup, setup_runtime, wrap_model
from lib.engine.evaluate import (compute_metrics, headline_text, mean_pose_mpjpe, metrics_record,
                                 predict, protocol_card, report)
from lib.engine.trainer import SELECTION_METRICS, Trainer, check_resume_epoch
from lib.errors import PoseError, RunInterrupted
from lib.experiment import (LOG_NAME, STATUS_FAILED, STATUS_FINISHED, STATUS_INTERRUPTED,
                            CheckpointError, Experiment, describe_checkpoint, load_checkpoint,
                            load_model_weights, seed_everything, setup_logging)
from lib.models.utils import count_parameters
from lib.progress import progress
from lib.registry import ModelContext, build_model, model_entry

# Only the project's own errors are the user's to fix; anything else is a bug and keeps its
# traceback. ConfigError, CheckpointError, DeviceError, TrainingDiverged, the data errors, ...
# all derive from PoseError (lib/errors.py).
USER_ERRORS = (PoseError,)
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130          # the shell's code for Ctrl-C (128 + SIGINT)

def common_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--cfg", required=True, help="experiment YAML, e.g. asset/yaml/HGN_synthetic_train.yml")
    p.add_argument("--gpu", default=None, help="GPU ids for DataParallel, e.g. 0,1 (default: CPU)")
    p.add_argument("--opts", nargs=argparse.REMAINDER, default=[],
                   help="config overrides as KEY VALUE pairs, e.g. TRAIN.epochs 3")
    return p


def run_cli(fn, argv=None):
    """Run ``fn(argv)``; user errors become one readable paragraph and exit code 2, Ctrl-C
    exit code 130 (after a training run saved what it had)."""
    before = set(logging.getLogger(LOG_NAME).handlers)
    try:
        return fn(argv)
    except USER_ERRORS as exc:
        name = type(exc).__name__
        msg = textwrap.fill(f"error ({name}): {exc}", width=100, break_long_words=False,
                            break_on_hyphens=False)
        print(msg, file=sys.stderr)
        _append_to_run_log(msg, before)
        raise SystemExit(getattr(exc, "exit_code", EXIT_USER_ERROR)) from None
    except KeyboardInterrupt:
        msg = "interrupted (Ctrl-C) outside the training loop; no checkpoint was written for it"
        print(msg, file=sys.stderr)
        _append_to_run_log(msg, before)
        raise SystemExit(EXIT_INTERRUPTED) from None


def _append_to_run_log(msg, handlers_before):
    """Put the error in the log.txt of the run folder this call opened, if it opened one.

    Only file handlers added during the call count: an earlier run in the same process keeps
    its handler until the next run replaces it, and its log must not get this error.
    """
    for h in logging.getLogger(LOG_NAME).handlers:
        if isinstance(h, logging.FileHandler) and h not in handlers_before:
            h.emit(logging.LogRecord(LOG_NAME, logging.ERROR, __file__, 0, msg, None, None))
            h.flush()


def _set_threads(cfg) -> int:
    """Apply TRAIN.num_threads (0: torch's default) and record the count used in the config,
    so config.yml, the checkpoints and metrics.json say it: results depend on it."""
    if cfg.TRAIN.num_threads:
        torch.set_num_threads(cfg.TRAIN.num_threads)
    cfg.TRAIN.num_threads = torch.get_num_threads()
    return cfg.TRAIN.num_threads


def _prepare(cfg, runtime, splits):
    seed_everything(cfg.seed)
    _ensure_data(cfg, runtime, splits)
    ctx = ModelContext(cfg)
    entry = model_entry(cfg.MODEL.name)
    mesh = ctx.mesh_targets() if entry.needs_mesh else None
    return ctx, mesh


def _ensure_data(cfg, runtime, splits):
    """Generate the synthetic default before anything reads it (its body model included),
    then check that every input file of ``splits`` is there (all missing ones in one error).

    One process generates; the others of a distributed run wait for it.
    """
    from lib.data.build import check_sources, ensure_synthetic
    if runtime.is_main:
        ensure_synthetic(cfg)
    if runtime.distributed:
        torch.distributed.barrier()
    check_sources(cfg, splits)


def _log_model(cfg, model, log):
    describe = getattr(model, "describe", None)
    text = describe() if callable(describe) else f"{count_parameters(model):,} parameters"
    log.info("model %s: %s", cfg.MODEL.name, text)


def _build(cfg, ctx, runtime, log):
    model = build_model(cfg, ctx)
    _log_model(cfg, model, log)
    model = model.to(runtime.device)
    if cfg.TRAIN.compile:
        model = torch.compile(model)
    return model


def resume_command(args) -> str:
    """The train.py command line that continues this run from checkpoint ``args.resume``."""
    cmd = ["python", "main/train.py", "--cfg", str(args.cfg)]
    if args.gpu is not None:
        cmd += ["--gpu", str(args.gpu)]
    cmd += ["--resume", str(args.resume)]
    if args.opts:
        cmd += ["--opts", *map(str, args.opts)]
    return shlex.join(cmd)


def train_main(argv=None):
    p = common_parser("Train a pose-lifting model (HGN, GraphSH, SemGCN, Martinez).")
    p.add_argument("--resume", default=None, help="checkpoint to continue from (same config)")
    args = p.parse_args(argv)
    cfg = load_config(args.cfg, args.opts)
    rt = setup_runtime(args.gpu)
    threads = _set_threads(cfg)
    resume = None
    if args.resume:                      # checked before any folder is made or data read
        resume = load_checkpoint(args.resume)
        check_resume_epoch(resume, cfg)
    exp = Experiment.start(cfg, "train") if rt.is_main else None
    log = setup_logging(exp.dir if exp else None, rank=rt.rank)
    try:
        if exp:
            log.info("run folder: %s", exp.dir)
        log.info("device: %s, %d CPU threads (TRAIN.num_threads; bit-exact resume needs the "
                 "same count)", rt.describe(), threads)
        ctx, mesh = _prepare(cfg, rt, ("train", "val", "test"))
        datasets = _datasets(cfg, ("train", "val", "test"), mesh)
        model = _build(cfg, ctx, rt, log)
        model = wrap_model(model, rt)
        trainer = Trainer(cfg, model, datasets, rt, exp, log)
        log.info("model selection: the best %s on the %s split",
                 SELECTION_METRICS[cfg.TRAIN.select_metric], trainer.selection_split)
        if resume is not None:
            trainer.resume(resume)
        from lib.vis.curves import plot_training_curves
        try:
            summary = trainer.fit(plot_fn=plot_training_curves)
        except KeyboardInterrupt:
            raise _interrupted(trainer, args, exp) from None
        if rt.is_main:
            result = _final_test(cfg, trainer, datasets["test"], log)
            result["mean_pose_test_mpjpe"] = mean_pose_mpjpe(datasets["train"], datasets["test"])
            log.info("for reference, predicting the mean training pose gives %.2f mm on test "
                     "(headline: %s)", result["mean_pose_test_mpjpe"],
                     result["test_headline"].replace("_", " "))
            summary.update(result)
            summary["train_samples_per_s_last_epoch"] = getattr(trainer, "last_epoch_rate", None)
            summary["num_threads"] = threads
            exp.mark(STATUS_FINISHED, metrics=summary)
            log.info("metrics: %s", exp.dir / "metrics.json")
        return summary
    except RunInterrupted:
        raise
    except BaseException as exc:
        _mark_failed(exp, exc)
        raise
    finally:
        cleanup(rt)


def _mark_failed(exp, exc):
    """status in metrics.json: interrupted for Ctrl-C, failed (with the error) otherwise."""
    if exp is None:
        return
    try:
        if isinstance(exc, KeyboardInterrupt):
            exp.mark(STATUS_INTERRUPTED, exc)
        else:
            exp.mark(STATUS_FAILED, exc)
    except PoseError:          # the folder itself became unwritable: the error says enough
        pass


def _interrupted(trainer, args, exp) -> RunInterrupted:
    """Ctrl-C during training: a resumable checkpoint, the command that resumes it."""
    path = trainer.save_interrupted()
    if path is None:                       # a non-main rank: rank 0 reports
        return RunInterrupted("interrupted (Ctrl-C)")
    args.resume = str(path)
    epoch = trainer._snapshot["epoch"]
    state = f"the state at the end of epoch {epoch}" if epoch else "the state before epoch 1"
    msg = (f"interrupted (Ctrl-C) during epoch {epoch + 1}; {state} is saved in {path}. "
           f"Resume exactly there with: {resume_command(args)}")
    exp.mark(STATUS_INTERRUPTED, metrics={"resume_from": str(path), "resume_epoch": epoch,
                                          "resume_command": resume_command(args)})
    return RunInterrupted(msg)


def _datasets(cfg, splits, mesh):
    from lib.data.build import build_datasets
    return build_datasets(cfg, splits=splits, mesh=mesh)


def _final_test(cfg, trainer, test_ds, log) -> dict:
    metrics = trainer.evaluate("test")
    log.info("final model on the test split: %s\n%s\n%s", headline_text(metrics),
             report(metrics), protocol_card(cfg, "test", test_ds))
    return metrics_record(metrics, "test")


def resolve_weight_path(cfg) -> str:
    """TEST.weight_path, where 'latest' means the newest run's final.pth.tar of this model."""
    path = cfg.TEST.weight_path
    if path != "latest":
        return path
    runs = sorted(Path(cfg.output_dir).glob("exp_*/checkpoint/final.pth.tar"),
                  key=lambda p: p.stat().st_mtime, reverse=True)
    for candidate in runs:
        run = Path(candidate).parents[1]
        try:
            import yaml
            name = yaml.safe_load((run / "config.yml").read_text())["MODEL"]["name"]
        except (OSError, KeyError, TypeError, ValueError):
            continue
        if name == cfg.MODEL.name and _run_status(run) in (None, STATUS_FINISHED):
            return str(candidate)
    raise CheckpointError(f"TEST.weight_path is 'latest' but no finished {cfg.MODEL.name} run "
                          f"(experiment/exp_*/checkpoint/final.pth.tar) exists under "
                          f"'{cfg.output_dir}'. Train one first, or pass --weights PATH.")


def _run_status(run: Path):
    """metrics.json's status of a run folder (None for runs from before it was recorded)."""
    try:
        return json.loads((run / "metrics.json").read_text()).get("status")
    except (OSError, ValueError, AttributeError):
        return None


def test_main(argv=None):
    p = common_parser("Evaluate a trained model on the test split.")
    p.add_argument("--weights", default=None, help="checkpoint (overrides TEST.weight_path)")
    args = p.parse_args(argv)
    cfg = load_config(args.cfg, args.opts)
    if args.weights:
        cfg.TEST.weight_path = args.weights
    rt = setup_runtime(args.gpu)
    threads = _set_threads(cfg)
    ckpt = load_checkpoint(resolve_weight_path(cfg))    # before any data is made or read
    exp = Experiment.start(cfg, "test")
    log = setup_logging(exp.dir)
    try:
        log.info("run folder: %s", exp.dir)
        log.info("device: %s, %d CPU threads", rt.describe(), threads)
        ctx, mesh = _prepare(cfg, rt, ("test",))
        datasets = _datasets(cfg, ("test",), mesh)
        model = build_model(cfg, ctx)
        _log_model(cfg, model, log)
        kind = load_weights(model, ckpt, cfg)
        log.info("loaded %s: %s", ckpt["path"], kind)
        model = wrap_model(model, rt)
        ds = datasets["test"]
        t0 = time.perf_counter()
        pred = predict(model, ds, rt.device, batch_size=cfg.TEST.batch_size,
                       flip_test=cfg.TEST.flip_test,
                       progress=progress(desc="evaluating test", unit="batch"))
        elapsed = time.perf_counter() - t0
        metrics = compute_metrics(pred["pose"], ds)
        card = protocol_card(cfg, "test", ds, train_cfg=_training_config(ckpt))
        log.info("results on the test split:\n%s\n%s", report(metrics), card)
        log.info("test: %s (%.0f poses/s)", headline_text(metrics),
                 len(ds) / max(elapsed, 1e-9))
        reference = _mean_pose_reference(cfg, ckpt, ds, log)
        out = {"checkpoint": ckpt["path"], "checkpoint_kind": kind,
               **metrics_record(metrics, "test"), "mean_pose_test_mpjpe": reference,
               "protocol": card, "poses_per_s": len(ds) / max(elapsed, 1e-9),
               "num_threads": threads}
        if cfg.TEST.vis:
            from lib.engine.visualize import write_visuals
            written = write_visuals(cfg, ctx, ds, pred, metrics, exp.vis_dir)
            log.info("wrote %d files to %s", len(written), exp.vis_dir)
        exp.mark(STATUS_FINISHED, metrics=out)
        return out
    except BaseException as exc:
        _mark_failed(exp, exc)
        raise
    finally:
        cleanup(rt)


def _training_config(ckpt):
    """The config the checkpoint was trained with (ours store it), or None (official files,
    or a stored config without the keys the protocol card reads)."""
    from lib.config import _wrap
    saved = ckpt.get("config")
    try:
        cfg = _wrap(saved)
        cfg.TRAIN.select_on, cfg.DATASET.val_fraction, cfg.MODEL.name   # noqa: B018
    except (AttributeError, TypeError):
        return None
    return cfg


def _mean_pose_reference(cfg, ckpt, test_ds, log):
    """The mean-pose MPJPE on test, as train.py reports it: from the mean training pose the
    checkpoint stores, else from the training split (read from its cache, no mesh targets)."""
    pose = ckpt.get("mean_pose")
    if pose is not None and tuple(pose.shape[1:]) == tuple(test_ds.tensors["target_3d"].shape[1:]):
        value, source = mean_pose_mpjpe(None, test_ds, pose), "stored in the checkpoint"
    else:
        log.info("the checkpoint stores no mean training pose (an official or older one): "
                 "reading the training split for the mean-pose reference")
        try:
            from lib.data.build import check_sources
            check_sources(cfg, ("train",))
            value = mean_pose_mpjpe(_datasets(cfg, ("train",), None)["train"], test_ds)
        except PoseError as exc:
            log.info("no mean-pose reference: the training split cannot be read (%s)", exc)
            return None
        source = "from the training split"
    log.info("for reference, predicting the mean training pose (%s) gives %.2f mm on test",
             source, value)
    return value


def load_weights(model, ckpt, cfg) -> str:
    """Strict load, or the model's own checkpoint adapter where it registered one."""
    source = f"checkpoint '{ckpt['path']}'"
    adapter = model_entry(cfg.MODEL.name).load_weights
    if adapter is not None:
        return adapter(model, ckpt, source)
    load_model_weights(model, ckpt["model_state_dict"], source)
    return describe_checkpoint(ckpt)


def trained_model_parser(description: str, weights_required: bool = True):
    """--cfg and --weights, as every command that loads a trained model takes them."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--cfg", required=True, help="the YAML the model was trained with")
    p.add_argument("--weights", required=weights_required, default=None,
                   help="checkpoint (.pth.tar) of that model, or 'latest' (newest finished run)")
    return p


def load_trained_model(cfg, weights: str):
    """(model in eval mode, checkpoint path, description) for the YAML's model."""
    cfg.TEST.weight_path = weights
    path = resolve_weight_path(cfg)
    ckpt = load_checkpoint(path)
    model = build_model(cfg, ModelContext(cfg))
    kind = load_weights(model, ckpt, cfg)
    return model.eval(), path, kind
