"""Where a run executes: CPU, DataParallel over --gpu ids, or torchrun's DDP processes."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from lib.errors import PoseError


class DeviceError(PoseError, RuntimeError):
    pass


@dataclass
class Runtime:
    device: torch.device
    gpu_ids: list = field(default_factory=list)   # DataParallel ids (one process)
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def describe(self) -> str:
        if self.distributed:
            return (f"DistributedDataParallel, {self.world_size} processes "
                    f"({dist.get_backend()}), this rank {self.rank} on {self.device}")
        if len(self.gpu_ids) > 1:
            return f"DataParallel over GPUs {self.gpu_ids}"
        return str(self.device)


def parse_gpu_ids(text) -> list:
    if text is None or str(text).strip() == "":
        return []
    try:
        ids = [int(t) for t in str(text).split(",") if t.strip() != ""]
    except ValueError:
        raise DeviceError(f"--gpu takes comma-separated GPU ids such as 0,1; got '{text}'") from None
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if available == 0:
        raise DeviceError(f"--gpu {text} was given but this machine has no CUDA GPU visible to "
                          f"PyTorch (torch {torch.__version__}). Leave out --gpu to run on CPU.")
    bad = [i for i in ids if not 0 <= i < available]
    if bad:
        raise DeviceError(f"--gpu {text}: GPU id(s) {bad} do not exist; this machine has "
                          f"{available} GPU(s), ids 0..{available - 1}.")
    return ids


def setup_runtime(gpu: str | None = None) -> Runtime:
    """torchrun (WORLD_SIZE>1) -> DDP; --gpu ids -> CUDA (+DataParallel if several); else CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        if gpu:                           # checked as without torchrun: no CUDA, bad ids
            parse_gpu_ids(gpu)
        rank = int(os.environ["RANK"])
        local = int(os.environ.get("LOCAL_RANK", rank))
        use_cuda = torch.cuda.is_available() and (gpu is None or gpu != "")
        if use_cuda:
            ids = parse_gpu_ids(gpu) if gpu else list(range(torch.cuda.device_count()))
            dev_id = ids[local % len(ids)]
            torch.cuda.set_device(dev_id)
            device = torch.device("cuda", dev_id)
        else:
            device = torch.device("cpu")
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return Runtime(device, [], rank, world, local)
    ids = parse_gpu_ids(gpu)
    if ids:
        return Runtime(torch.device("cuda", ids[0]), ids)
    return Runtime(torch.device("cpu"))


def wrap_model(model: torch.nn.Module, rt: Runtime) -> torch.nn.Module:
    model = model.to(rt.device)
    if rt.distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP
        kwargs = {"device_ids": [rt.device.index]} if rt.device.type == "cuda" else {}
        if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model) if rt.device.type == "cuda" else model
        return DDP(model, **kwargs)
    if len(rt.gpu_ids) > 1:
        return torch.nn.DataParallel(model, device_ids=rt.gpu_ids)
    return model


def cleanup(rt: Runtime):
    if rt.distributed and dist.is_initialized():
        dist.destroy_process_group()
