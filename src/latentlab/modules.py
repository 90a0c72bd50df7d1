"""The plain module under training wrappers (ground floor: every layer may import it)."""

from __future__ import annotations

import contextlib

from torch import nn


def unwrap(m: nn.Module) -> nn.Module:
    """The plain module under Fabric/DDP/compile wrappers (state-dict keys without prefixes)."""
    while True:
        if hasattr(m, "_forward_module"):        # lightning _FabricModule
            m = m._original_module if hasattr(m, "_original_module") else m._forward_module
        elif hasattr(m, "_orig_mod"):            # torch.compile
            m = m._orig_mod
        elif isinstance(m, nn.parallel.DistributedDataParallel):
            m = m.module
        else:
            return m


def reinitialise(module: nn.Module) -> nn.Module:
    """Every layer below ``module`` re-initialised in place (the same architecture, no learned weights)."""
    for m in module.modules():
        if m is not module and hasattr(m, "reset_parameters"):
            m.reset_parameters()
    return module


@contextlib.contextmanager
def eval_mode(*modules: nn.Module):
    """The modules in evaluation mode inside the block, each back in its own mode after it."""
    was = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, w in zip(modules, was):
            m.train(w)
