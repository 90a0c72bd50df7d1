"""Losses: pure functions named after the paper's term; each docstring cites its paper."""

from .gan import (discriminator_loss_minimax, generator_loss_minimax, generator_loss_nonsaturating)
from .ssl import (barlow_twins_loss, byol_loss, dino_center_update, dino_loss, gather_with_grad, info_nce,
                  nt_xent)

__all__ = ["discriminator_loss_minimax", "generator_loss_minimax", "generator_loss_nonsaturating",
           "barlow_twins_loss", "byol_loss", "dino_center_update", "dino_loss", "gather_with_grad",
           "info_nce", "nt_xent"]
