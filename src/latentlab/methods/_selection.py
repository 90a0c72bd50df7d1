"""Validation-only model selection shared by the methods that keep their best network.

A method using it has ``best`` (a frozen copy of the network it trains), and ``best_score`` / ``best_step``
in its ``extra_state`` (checkpointed, so a resumed run keeps its choice). Lower scores are better.
"""

from __future__ import annotations

import torch

from ..modules import unwrap


def keep_if_better(method, net, score: float, done: int) -> bool:
    """Copy ``net``'s weights into ``method.best`` when ``score`` beats ``method.best_score``."""
    if score >= float(method.best_score):
        return False
    method.best_score = torch.tensor(score, dtype=method.best_score.dtype, device=method.best_score.device)
    method.best_step = torch.tensor(done, device=method.best_step.device)
    unwrap(method.best).load_state_dict(unwrap(net).state_dict())
    return True


def initial_state() -> tuple[torch.Tensor, torch.Tensor]:
    """(best_score, best_step) before any check: +inf, -1."""
    return torch.tensor(float("inf")), torch.tensor(-1)
