"""The training loop every model runs through."""
from __future__ import annotations

import copy
import math
import time

import torch
import torch.nn.functional as F
from tqdm import tqdm

from lib.config import ConfigError
from lib.data.lifting import BatchLoader
from lib.engine.evaluate import compute_metrics, flip_inputs, headline_text, mean_pose, predict
from lib.errors import PoseError
from lib.experiment import (load_checkpoint, load_model_weights, non_finite_parameters,
                            rng_state, save_checkpoint, set_rng_state, get_logger, unwrap)
from lib.progress import progress
from lib.geometry.skeleton import skeleton_for_joints


class TrainingDiverged(PoseError, RuntimeError):
    """The loss or a weight became NaN/inf; nothing non-finite was saved."""


# Weights are checked for NaN/inf every this many steps and after an epoch's last step (a
# non-finite weight also makes the next loss non-finite, which is checked every step). One
# check costs about 1.7 ms on 2 CPU cores for 1-4 M parameters: 8% of a Martinez step if done
# every step, under 1% so.
WEIGHT_CHECK_EVERY = 10

# What model selection compares (TRAIN.select_metric), in words.
SELECTION_METRICS = {
    "headline": "MPJPE (headline: mean over the actions, frame mean without actions)",
    "frame_mean": "MPJPE (frame mean: pooled over all samples, as the originals select)",
}


def selection_value(metrics: dict, select_metric: str) -> float:
    """The number model selection minimises, from compute_metrics' result."""
    if select_metric == "frame_mean":
        return metrics["headline"]["mpjpe_frame_mean"]
    return metrics["mpjpe"]


def build_optimizer(cfg, params):
    t = cfg.TRAIN
    if t.optimizer == "adam":
        # fused Adam: one kernel for all parameters. On 2 CPU cores it makes training steps
        # 1.1x (GraphSH dc_preagg) to 1.9x (GraphSH nosharing, 20 M parameters) faster and
        # is neutral for HGN (benchmarks/bench_graphsh.py --adam, bench_hgn.py).
        return torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay, fused=True)
    if t.optimizer == "sgd":
        return torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    return torch.optim.RMSprop(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)


def build_scheduler(cfg, optimizer):
    t = cfg.TRAIN
    if t.scheduler == "step":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(t.lr_step),
                                                    gamma=t.lr_factor)
    if t.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=t.lr_factor,
                                                          patience=t.plateau_patience)
    return None


def lifting_loss(out: dict, batch: dict, cfg) -> tuple:
    """w_pose*MSE(joints) + w_fine*MSE(mesh_fine) + w_mid*MSE(mesh_mid), metres.

    Mesh terms use only the samples that have a mesh target (imported mocap has none).
    """
    w = cfg.LOSS
    pose = F.mse_loss(out["pose"].float(), batch["target_3d"])
    total = w.pose_weight * pose
    parts = {"pose": pose.detach()}
    if "mesh_fine" in out and "mesh_fine" in batch:
        has = batch["has_mesh"]
        if bool(has.any()):
            for name, weight in (("mesh_fine", w.mesh_fine_weight), ("mesh_mid", w.mesh_mid_weight)):
                term = F.mse_loss(out[name][has].float(), batch[name][has])
                total = total + weight * term
                parts[name] = term.detach()
    return total, parts


def check_resume_epoch(ckpt: dict, cfg) -> int:
    """The epoch a checkpoint ended; a ConfigError if TRAIN.epochs leaves nothing to train."""
    done = int(ckpt.get("epoch") or 0)
    if done >= cfg.TRAIN.epochs:
        raise ConfigError(
            f"--resume '{ckpt['path']}': the checkpoint is at epoch {done} and TRAIN.epochs is "
            f"{cfg.TRAIN.epochs}, so no epoch would run. To train further, raise TRAIN.epochs "
            f"above {done} (--opts TRAIN.epochs {done + 1} or more); to evaluate it, run "
            f"main/test.py --weights '{ckpt['path']}'.")
    return done


class Trainer:
    def __init__(self, cfg, model, datasets, runtime, experiment=None, log=None):
        self.cfg = cfg
        self.rt = runtime
        self.model = model
        self.datasets = datasets
        self.exp = experiment
        self.log = log or get_logger()
        self.optimizer = build_optimizer(cfg, model.parameters())
        self.scheduler = build_scheduler(cfg, self.optimizer)
        self.start_epoch = 1
        self.train_log = []
        self.eval_log = {"split": self.selection_split,
                         "metric": SELECTION_METRICS[cfg.TRAIN.select_metric],
                         "mpjpe": [], "pa_mpjpe": [], "mpjpe_frame_mean": []}
        self.best = math.inf
        self.best_epoch = None
        self.global_step = 0
        self.amp_dtype = None
        if cfg.TRAIN.amp and runtime.device.type == "cuda":
            self.amp_dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        ds = datasets["train"]
        self.loader = BatchLoader(ds, cfg.TRAIN.batch_size, shuffle=cfg.TRAIN.shuffle,
                                  seed=cfg.seed, rank=runtime.rank,
                                  world_size=runtime.world_size, drop_last=False,
                                  max_batches=cfg.TRAIN.max_steps_per_epoch)
        self.flip_perm = torch.as_tensor(skeleton_for_joints(ds.num_joints).flip_permutation,
                                         device=runtime.device)
        self._report_mesh_targets(ds)
        self.mean_pose = mean_pose(ds).float()      # stored in checkpoints for test.py
        self._snapshot = None
        if cfg.TRAIN.flip_aug and ds.has_mesh:
            raise ConfigError("TRAIN.flip_aug mirrors joints only; it cannot mirror the coarse-"
                             "mesh targets of this model. Set TRAIN.flip_aug false.")

    def _report_mesh_targets(self, ds):
        """A mesh model on data without (some) meshes says so instead of skipping silently."""
        from lib.registry import model_entry
        if not model_entry(self.cfg.MODEL.name).needs_mesh:
            return
        t = ds.tensors
        with_mesh = int(t["has_mesh"].sum()) if "mesh_fine" in t else 0
        if with_mesh == 0:
            self.log.warning("no training sample has a mesh target (e.g. imported motion "
                             "capture, or require_smpl false on frames without SMPL fits): the "
                             "mesh losses are off and %s trains on the joints only",
                             self.cfg.MODEL.name)
        elif with_mesh < len(ds):
            self.log.info("mesh targets on %d of %d training samples; the mesh losses use "
                          "those only", with_mesh, len(ds))

    @property
    def selection_split(self) -> str:
        if self.cfg.TRAIN.select_on == "val" and "val" in self.datasets:
            return "val"
        return "test"

    # ------------------------------------------------------------------ resume
    def resume(self, path_or_ckpt):
        """Continue from a checkpoint (a path, or what load_checkpoint returned)."""
        ckpt = (path_or_ckpt if isinstance(path_or_ckpt, dict)
                else load_checkpoint(path_or_ckpt))
        path = ckpt["path"]
        done = check_resume_epoch(ckpt, self.cfg)
        load_model_weights(self.model, ckpt["model_state_dict"], f"checkpoint '{path}'")
        if ckpt.get("optim_state_dict"):
            self.optimizer.load_state_dict(ckpt["optim_state_dict"])
        if self.scheduler is not None and ckpt.get("scheduler_state_dict"):
            self.scheduler.load_state_dict(ckpt["scheduler_state_dict"])
        if ckpt.get("rng_state"):
            set_rng_state(ckpt["rng_state"])
        saved = (ckpt.get("config") or {}).get("TRAIN", {}).get("num_threads")
        if saved and saved != torch.get_num_threads():
            self.log.warning("the checkpoint was written by a run with %d CPU threads, this one "
                             "uses %d: results depend on the thread count, so the resumed run "
                             "will not be bit-identical to an uninterrupted one (set "
                             "TRAIN.num_threads %d for that)", saved, torch.get_num_threads(),
                             saved)
        self.start_epoch = done + 1
        self.train_log = list(ckpt.get("train_log") or [])
        self.eval_log = dict(ckpt.get("test_log") or self.eval_log)
        trainer_state = ckpt.get("trainer_state", {})
        self.best = trainer_state.get("best", math.inf)
        self.best_epoch = trainer_state.get("best_epoch")
        self.global_step = trainer_state.get("global_step", 0)
        self.log.info("resumed from %s at epoch %d", path, self.start_epoch)

    # ------------------------------------------------------------------ one epoch
    def train_epoch(self, epoch: int) -> float:
        cfg, dev = self.cfg, self.rt.device
        self.model.train()
        self.loader.set_epoch(epoch)
        total, count = 0.0, 0
        t0 = time.perf_counter()
        bar = tqdm(self.loader, total=len(self.loader), desc=f"epoch {epoch}/{cfg.TRAIN.epochs}",
                   disable=not self.rt.is_main, mininterval=1.0, leave=False, dynamic_ncols=True)
        for i, batch in enumerate(bar):
            batch = {k: v.to(dev, non_blocking=True) for k, v in batch.items()}
            if cfg.TRAIN.flip_aug:
                batch = self._flip_half(batch)
            with torch.autocast(dev.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
                out = self.model(batch["input_2d"])
                loss, parts = lifting_loss(out, batch, cfg)
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"the training loss became {loss.item()} at epoch {epoch}, step {i}. "
                    f"Training stopped; {self._last_good()}. Lower TRAIN.lr, keep "
                    f"TRAIN.max_norm > 0, or check the input data for NaN/inf.")
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if cfg.TRAIN.max_norm > 0:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.TRAIN.max_norm)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if i % WEIGHT_CHECK_EVERY == 0:
                self._check_weights(epoch, i)
            self.global_step += 1
            if self.scheduler is not None and cfg.TRAIN.step_unit == "iteration" \
                    and cfg.TRAIN.scheduler == "step":
                self.scheduler.step()
            n = len(batch["input_2d"])
            total += parts["pose"].item() * n
            count += n
            recent = parts["pose"].item() if i == 0 else 0.9 * recent + 0.1 * parts["pose"].item()
            if self.rt.is_main and (i % 10 == 0):
                rate = count / max(time.perf_counter() - t0, 1e-9)
                bar.set_postfix(loss=f"{recent:.5f}", rate=f"{rate:.0f}/s")
            if self.rt.is_main and cfg.TRAIN.print_freq and i and i % cfg.TRAIN.print_freq == 0:
                self.log.info("epoch %d (%d/%d) joint loss %.6f", epoch, i, len(self.loader),
                              total / count)
        bar.close()
        if count:
            self._check_weights(epoch, i)      # the epoch's last step, before eval and saving
        mean = total / max(count, 1)
        if self.rt.distributed:
            t = torch.tensor([total, count], dtype=torch.float64, device=dev)
            torch.distributed.all_reduce(t)
            mean = (t[0] / t[1].clamp(min=1)).item()
        self.last_epoch_rate = count / max(time.perf_counter() - t0, 1e-9)
        return mean

    def _flip_half(self, batch):
        n = len(batch["input_2d"])
        sel = torch.rand(n, device=batch["input_2d"].device) < 0.5
        if not bool(sel.any()):
            return batch
        batch = dict(batch)
        for key in ("input_2d", "target_3d"):       # the same mirror for 2D and 3D poses
            v = batch[key].clone()
            v[sel] = flip_inputs(v[sel], self.flip_perm)
            batch[key] = v
        return batch

    def _check_weights(self, epoch, step):
        """A NaN/inf weight after a step stops the run like a non-finite loss (one fused norm
        over all weights; a non-finite entry makes it non-finite, and only then are the
        weights looked at one by one: a huge finite weight may overflow the norm alone)."""
        params = [q.detach() for q in self.model.parameters() if q.is_floating_point()]
        norms = torch._foreach_norm(params)
        if bool(torch.isfinite(torch.stack(norms)).all()):
            return
        bad = non_finite_parameters(dict(unwrap(self.model).named_parameters()))
        if not bad:
            return
        raise TrainingDiverged(
            f"a weight became NaN or inf at epoch {epoch}, step {step} "
            f"({', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}); training stopped and "
            f"nothing with these weights was saved; {self._last_good()}. Lower TRAIN.lr or "
            f"keep TRAIN.max_norm > 0.")

    def _last_good(self) -> str:
        """'the last good checkpoint is <file>' for a file that exists, or that none exists."""
        d = self.exp.checkpoint_dir if self.exp else None
        files = sorted(d.glob("*.pth.tar"), key=lambda f: f.stat().st_mtime) if d else []
        if files:
            return f"the last good checkpoint is {files[-1]}"
        return ("no checkpoint was written before this (it happened in the first epoch)"
                if d else "this process writes no checkpoints")

    def evaluate(self, split: str) -> dict:
        ds = self.datasets[split]
        model = unwrap(self.model) if self.rt.distributed else self.model
        bar = progress(desc=f"evaluating {split}", unit="batch", enable=self.rt.is_main)
        pred = predict(model, ds, self.rt.device, batch_size=self.cfg.TEST.batch_size,
                       flip_test=self.cfg.TEST.flip_test, amp_dtype=self.amp_dtype,
                       progress=bar)
        return compute_metrics(pred["pose"], ds)

    # ------------------------------------------------------------------ the loop
    def fit(self, plot_fn=None) -> dict:
        cfg = self.cfg
        split = self.selection_split
        self._take_snapshot(self.start_epoch - 1)
        for epoch in range(self.start_epoch, cfg.TRAIN.epochs + 1):
            t0 = time.perf_counter()
            loss = self.train_epoch(epoch)
            if self.scheduler is not None and cfg.TRAIN.step_unit == "epoch" \
                    and cfg.TRAIN.scheduler == "step":
                self.scheduler.step()
            self.train_log.append(loss)
            metrics = self.evaluate(split) if self.rt.is_main else None
            if self.scheduler is not None and cfg.TRAIN.scheduler == "plateau":
                # every rank steps with rank 0's metric, or the replicas' learning rates drift
                self.scheduler.step(self._from_rank0(metrics["mpjpe"] if metrics else 0.0))
            if not self.rt.is_main:
                continue
            self.eval_log["mpjpe"].append(metrics["mpjpe"])
            self.eval_log["pa_mpjpe"].append(metrics["pa_mpjpe"])
            self.eval_log.setdefault("mpjpe_frame_mean", []).append(
                metrics["headline"]["mpjpe_frame_mean"])
            value = selection_value(metrics, cfg.TRAIN.select_metric)
            improved = value < self.best
            if improved:
                self.best, self.best_epoch = value, epoch
            self.log.info("epoch %d: train joint loss %.6f | %s %s%s | %.0f samples/s, %.1f s, "
                          "lr %.2e", epoch, loss, split, headline_text(metrics),
                          " (best)" if improved else "", self.last_epoch_rate,
                          time.perf_counter() - t0, self.optimizer.param_groups[0]["lr"])
            if self.exp is not None:
                self._save(epoch, improved)
                if plot_fn is not None:
                    plot_fn(self.train_log, self.eval_log, self.exp.graph_dir)
            self._take_snapshot(epoch)
        return {"best_epoch": self.best_epoch, "best_" + split + "_mpjpe": self.best,
                "selection": f"{split} {self.eval_log['metric']}",
                "train_log": self.train_log, "eval_log": self.eval_log}

    # ------------------------------------------------------------------ Ctrl-C
    def _state(self, epoch) -> dict:
        return dict(epoch=epoch, model=self.model, optimizer=self.optimizer,
                    scheduler=self.scheduler, train_log=self.train_log, test_log=self.eval_log,
                    cfg=self.cfg, extra={"trainer_state": {"best": self.best,
                                                           "best_epoch": self.best_epoch,
                                                           "global_step": self.global_step},
                                         "mean_pose": self.mean_pose})

    def _take_snapshot(self, epoch):
        """An in-memory copy of everything a checkpoint of the end of ``epoch`` holds, so that
        Ctrl-C in the middle of the next epoch can still write an exactly resumable one."""
        if self.exp is None:
            return
        clone = copy.deepcopy
        self._snapshot = {
            "epoch": epoch,
            "model": {k: v.detach().clone() for k, v in unwrap(self.model).state_dict().items()},
            "optim": clone(self.optimizer.state_dict()),
            "sched": clone(self.scheduler.state_dict()) if self.scheduler is not None else None,
            "rng": rng_state(), "train_log": list(self.train_log),
            "eval_log": copy.deepcopy(self.eval_log),
            "trainer_state": {"best": self.best, "best_epoch": self.best_epoch,
                              "global_step": self.global_step}}

    def save_interrupted(self):
        """checkpoint/interrupted.pth.tar from the last epoch boundary (None without a run
        folder); resuming from it gives the same weights as a run that was never stopped."""
        snap = self._snapshot
        if snap is None or self.exp is None:
            return None
        path = self.exp.checkpoint_dir / "interrupted.pth.tar"
        save_checkpoint(path, epoch=snap["epoch"], model=_Frozen(snap["model"]),
                        optimizer=_Frozen(snap["optim"]),
                        scheduler=_Frozen(snap["sched"]) if snap["sched"] is not None else None,
                        train_log=snap["train_log"], test_log=snap["eval_log"], cfg=self.cfg,
                        extra={"trainer_state": snap["trainer_state"],
                               "mean_pose": self.mean_pose, "rng_state": snap["rng"]})
        return path

    def _from_rank0(self, value):
        """``value`` as rank 0 has it (unchanged when not distributed)."""
        if not self.rt.distributed:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.rt.device)
        torch.distributed.broadcast(t, src=0)
        return t.item()

    def _save(self, epoch, improved):
        cfg = self.cfg
        kw = self._state(epoch)
        d = self.exp.checkpoint_dir
        if cfg.TRAIN.save_every and epoch % cfg.TRAIN.save_every == 0:
            save_checkpoint(d / f"checkpoint{epoch}.pth.tar", **kw)
        if improved:
            save_checkpoint(d / "best.pth.tar", **kw)
        if epoch == cfg.TRAIN.epochs:
            save_checkpoint(d / "final.pth.tar", **kw)


class _Frozen:
    """A saved state dict posing as the module/optimiser it came from (for save_checkpoint)."""

    def __init__(self, state_dict):
        self._sd = state_dict

    def state_dict(self):
        return self._sd
