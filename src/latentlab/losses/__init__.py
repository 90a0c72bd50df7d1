"""Losses: pure functions named after the paper's term; each docstring cites its paper."""

from .gan import (discriminator_loss_minimax, generator_loss_minimax, generator_loss_nonsaturating)

__all__ = ["discriminator_loss_minimax", "generator_loss_minimax", "generator_loss_nonsaturating"]
