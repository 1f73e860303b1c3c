"""Small helpers every model shares: parameter counts and a one-line summary for logs."""
from __future__ import annotations

import torch.nn as nn


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters (each shared tensor counted once)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def describe_model(module: nn.Module) -> str:
    """One line for the training log, e.g. ``GraphSH(gcn=dc_preagg, ...): 3,685,899 parameters (3.69M)``."""
    total = count_parameters(module)
    trainable = count_parameters(module, trainable_only=True)
    config = module.extra_repr()
    name = f"{type(module).__name__}({config})" if config and "\n" not in config else type(module).__name__
    frozen = "" if trainable == total else f", {trainable:,} trainable"
    return f"{name}: {total:,} parameters ({total / 1e6:.2f}M){frozen}"


def strip_module_prefix(state_dict: dict) -> dict:
    """Remove the 'module.' (DataParallel/DDP) and '_orig_mod.' (torch.compile) key prefixes."""
    out = {}
    for k, v in state_dict.items():
        while k.startswith("module.") or k.startswith("_orig_mod."):
            k = k.split(".", 1)[1]
        out[k] = v
    return out
