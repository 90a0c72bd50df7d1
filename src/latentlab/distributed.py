"""The one answer to "how many processes share this batch?" for the layers that gather or reduce
(losses' gathered negatives, global BatchNorm, queue/bank updates): 1 without a process group."""

from __future__ import annotations

import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def close_process_group() -> None:
    """Tear the process group down before the interpreter exits (torchrun workers): left to exit-time
    destructors, gloo's threads sometimes abort the process ("terminate called without an active
    exception") after a run that succeeded."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
