"""What main/train.py and main/test.py do, as functions (tests call them directly)."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import torch

from lib.config import ConfigError, load_config
from lib.engine.devices import DeviceError, cleanup, setup_runtime, wrap_model
from lib.engine.evaluate import (compute_metrics, mean_pose_mpjpe, predict, protocol_card,
                                 report)
from lib.engine.trainer import Trainer, TrainingDiverged
from lib.experiment import (LOG_NAME, CheckpointError, Experiment, describe_checkpoint,
                            load_checkpoint, load_model_weights, seed_everything, setup_logging)
from lib.models.utils import count_parameters
from lib.registry import ModelContext, build_model, model_entry

USER_ERRORS = (ConfigError, CheckpointError, DeviceError, TrainingDiverged, FileNotFoundError,
               ValueError)


def common_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--cfg", required=True, help="experiment YAML, e.g. asset/yaml/HGN_synthetic_train.yml")
    p.add_argument("--gpu", default=None, help="GPU ids for DataParallel, e.g. 0,1 (default: CPU)")
    p.add_argument("--opts", nargs=argparse.REMAINDER, default=[],
                   help="config overrides as KEY VALUE pairs, e.g. TRAIN.epochs 3")
    return p


def run_cli(fn, argv=None):
    """Run ``fn(argv)``; user errors become one readable paragraph and exit code 2."""
    before = set(logging.getLogger(LOG_NAME).handlers)
    try:
        return fn(argv)
    except USER_ERRORS as exc:
        name = type(exc).__name__
        msg = textwrap.fill(f"error ({name}): {exc}", width=100, break_long_words=False,
                            break_on_hyphens=False)
        print(msg, file=sys.stderr)
        _append_to_run_log(msg, before)
        raise SystemExit(2) from None


def _append_to_run_log(msg, handlers_before):
    """Put the error in the log.txt of the run folder this call opened, if it opened one.

    Only file handlers added during the call count: an earlier run in the same process keeps
    its handler until the next run replaces it, and its log must not get this error.
    """
    for h in logging.getLogger(LOG_NAME).handlers:
        if isinstance(h, logging.FileHandler) and h not in handlers_before:
            h.emit(logging.LogRecord(LOG_NAME, logging.ERROR, __file__, 0, msg, None, None))
            h.flush()


def _prepare(cfg, runtime):
    if cfg.TRAIN.num_threads:
        torch.set_num_threads(cfg.TRAIN.num_threads)
    seed_everything(cfg.seed)
    _ensure_data(cfg, runtime)
    ctx = ModelContext(cfg)
    entry = model_entry(cfg.MODEL.name)
    mesh = ctx.mesh_targets() if entry.needs_mesh else None
    return ctx, mesh


def _ensure_data(cfg, runtime):
    """Generate the synthetic default before anything reads it (its body model included).

    One process generates; the others of a distributed run wait for it.
    """
    from lib.data.build import ensure_synthetic
    if runtime.is_main:
        ensure_synthetic(cfg)
    if runtime.distributed:
        torch.distributed.barrier()


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


def train_main(argv=None):
    p = common_parser("Train a pose-lifting model (HGN, GraphSH, SemGCN, Martinez).")
    p.add_argument("--resume", default=None, help="checkpoint to continue from (same config)")
    args = p.parse_args(argv)
    cfg = load_config(args.cfg, args.opts)
    rt = setup_runtime(args.gpu)
    exp = Experiment.start(cfg) if rt.is_main else None
    log = setup_logging(exp.dir if exp else None, rank=rt.rank)
    try:
        if exp:
            log.info("run folder: %s", exp.dir)
        log.info("device: %s", rt.describe())
        ctx, mesh = _prepare(cfg, rt)
        datasets = _datasets(cfg, ("train", "val", "test"), mesh)
        model = _build(cfg, ctx, rt, log)
        model = wrap_model(model, rt)
        trainer = Trainer(cfg, model, datasets, rt, exp, log)
        if args.resume:
            trainer.resume(args.resume)
        from lib.vis.curves import plot_training_curves
        summary = trainer.fit(plot_fn=plot_training_curves)
        if rt.is_main:
            result = _final_test(cfg, trainer, datasets["test"], log)
            result["mean_pose_test_mpjpe"] = mean_pose_mpjpe(datasets["train"], datasets["test"])
            log.info("for reference, predicting the mean training pose gives %.2f mm on test",
                     result["mean_pose_test_mpjpe"])
            summary.update(result)
            summary["train_samples_per_s_last_epoch"] = getattr(trainer, "last_epoch_rate", None)
            exp.write_metrics(summary)
            log.info("metrics: %s", exp.dir / "metrics.json")
        return summary
    finally:
        cleanup(rt)


def _datasets(cfg, splits, mesh):
    from lib.data.build import build_datasets
    return build_datasets(cfg, splits=splits, mesh=mesh)


def _final_test(cfg, trainer, test_ds, log) -> dict:
    metrics = trainer.evaluate("test")
    log.info("final model on the test split:\n%s\n%s", report(metrics),
             protocol_card(cfg, "test", test_ds))
    return {"test_mpjpe": metrics["mpjpe"], "test_pa_mpjpe": metrics["pa_mpjpe"],
            "test_table": metrics["table"]}


def resolve_weight_path(cfg) -> str:
    """TEST.weight_path, where 'latest' means the newest run's final.pth.tar of this model."""
    path = cfg.TEST.weight_path
    if path != "latest":
        return path
    runs = sorted(Path(cfg.output_dir).glob("exp_*/checkpoint/final.pth.tar"),
                  key=lambda p: p.stat().st_mtime, reverse=True)
    for candidate in runs:
        saved = Path(candidate).parents[1] / "config.yml"
        try:
            import yaml
            name = yaml.safe_load(saved.read_text())["MODEL"]["name"]
        except (OSError, KeyError, TypeError, ValueError):
            continue
        if name == cfg.MODEL.name:
            return str(candidate)
    raise CheckpointError(f"TEST.weight_path is 'latest' but no finished {cfg.MODEL.name} run "
                          f"(experiment/exp_*/checkpoint/final.pth.tar) exists under "
                          f"'{cfg.output_dir}'. Train one first, or pass --weights PATH.")


def test_main(argv=None):
    p = common_parser("Evaluate a trained model on the test split.")
    p.add_argument("--weights", default=None, help="checkpoint (overrides TEST.weight_path)")
    args = p.parse_args(argv)
    cfg = load_config(args.cfg, args.opts)
    if args.weights:
        cfg.TEST.weight_path = args.weights
    rt = setup_runtime(args.gpu)
    exp = Experiment.start(cfg)
    log = setup_logging(exp.dir)
    try:
        log.info("run folder: %s", exp.dir)
        ctx, mesh = _prepare(cfg, rt)
        ckpt = load_checkpoint(resolve_weight_path(cfg))
        datasets = _datasets(cfg, ("test",), mesh)
        model = build_model(cfg, ctx)
        _log_model(cfg, model, log)
        kind = load_weights(model, ckpt, cfg)
        log.info("loaded %s: %s", ckpt["path"], kind)
        model = wrap_model(model, rt)
        ds = datasets["test"]
        t0 = time.perf_counter()
        pred = predict(model, ds, rt.device, batch_size=cfg.TEST.batch_size,
                       flip_test=cfg.TEST.flip_test)
        elapsed = time.perf_counter() - t0
        metrics = compute_metrics(pred["pose"], ds)
        card = protocol_card(cfg, "test", ds)
        print(report(metrics))
        print(card)
        log.info("test: MPJPE %.2f mm, PA-MPJPE %.2f mm (%.0f poses/s)", metrics["mpjpe"],
                 metrics["pa_mpjpe"], len(ds) / max(elapsed, 1e-9))
        out = {"checkpoint": ckpt["path"], "checkpoint_kind": kind, "test_mpjpe": metrics["mpjpe"],
               "test_pa_mpjpe": metrics["pa_mpjpe"], "test_table": metrics["table"],
               "protocol": card, "poses_per_s": len(ds) / max(elapsed, 1e-9)}
        exp.write_metrics(out)
        if cfg.TEST.vis:
            from lib.engine.visualize import write_visuals
            written = write_visuals(cfg, ctx, ds, pred, metrics, exp.vis_dir)
            log.info("wrote %d files to %s", len(written), exp.vis_dir)
        return out
    finally:
        cleanup(rt)


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
