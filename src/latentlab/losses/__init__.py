"""Losses: pure functions named after the paper's term; each docstring cites its paper."""

from .gan import (acgan_class_loss, critic_loss_wasserstein, discriminator_loss_least_squares,
                  discriminator_loss_minimax, generator_loss_least_squares, generator_loss_minimax,
                  generator_loss_nonsaturating, generator_loss_wasserstein, gradient_penalty, r1_penalty)
from .ssl import (barlow_twins_loss, byol_loss, dino_center_update, dino_loss, gather_with_grad, info_nce,
                  nce_log_normaliser, nce_loss, nt_xent)
from .translation import cycle_consistency_loss, identity_loss, semantic_consistency_loss

__all__ = ["acgan_class_loss", "critic_loss_wasserstein", "discriminator_loss_minimax", "generator_loss_minimax",
           "generator_loss_nonsaturating", "generator_loss_wasserstein", "gradient_penalty", "r1_penalty",
           "discriminator_loss_least_squares", "generator_loss_least_squares", "cycle_consistency_loss",
           "identity_loss", "semantic_consistency_loss",
           "barlow_twins_loss", "byol_loss", "dino_center_update", "dino_loss", "gather_with_grad",
           "info_nce", "nce_log_normaliser", "nce_loss", "nt_xent"]
