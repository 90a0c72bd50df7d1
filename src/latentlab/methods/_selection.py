"""Validation-only model selection shared by the methods that keep their best network.

A method using it has ``best`` (a frozen copy of the network it trains), ``best_score`` / ``best_step`` in its
``extra_state`` (checkpointed, so a resumed run keeps its choice), ``cfg.val_every`` / ``cfg.steps`` and a
``validate(done=None) -> dict`` that measures and calls ``keep_if_better``. Lower scores are better.
"""

from __future__ import annotations

import torch

from ..modules import unwrap


def keep_if_better(method, net, score: float, done: int) -> None:
    """Copy ``net``'s weights into ``method.best`` when ``score`` beats ``method.best_score``."""
    if score < float(method.best_score):
        method.best_score = torch.tensor(score, dtype=method.best_score.dtype, device=method.best_score.device)
        method.best_step = torch.tensor(done, device=method.best_step.device)
        unwrap(method.best).load_state_dict(unwrap(net).state_dict())


def validation_monitor(method) -> dict:
    """The engine's monitor entry: ``method.validate`` every ``cfg.val_every`` steps (0: none)."""
    every = method.cfg.val_every
    return {"validation": (every, method.validate)} if every else {}


def last_step_check(method, step: int) -> dict[str, float]:
    """Inside ``training_step``: the last step is always a candidate, also when the monitor's interval
    does not divide ``cfg.steps`` (the engine runs monitors only at multiples of it)."""
    done, every = step + 1, method.cfg.val_every
    return method.validate(done) if done == method.cfg.steps and (not every or done % every) else {}


def initial_state() -> tuple[torch.Tensor, torch.Tensor]:
    """(best_score, best_step) before any check: +inf, -1."""
    return torch.tensor(float("inf")), torch.tensor(-1)
