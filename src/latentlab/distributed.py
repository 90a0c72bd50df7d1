"""The one answer to "how many processes share this batch?" for the layers that gather or reduce
(losses' gathered negatives, global BatchNorm, queue/bank updates): 1 without a process group."""

from __future__ import annotations

import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
