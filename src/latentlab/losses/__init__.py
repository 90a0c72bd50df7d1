"""Losses: pure functions named after the paper's term; each docstring cites its paper."""

from .gan import (acgan_class_loss, critic_loss_wasserstein, discriminator_loss_minimax, generator_loss_minimax,
                  generator_loss_nonsaturating, generator_loss_wasserstein, gradient_penalty)

__all__ = ["acgan_class_loss", "critic_loss_wasserstein", "discriminator_loss_minimax", "generator_loss_minimax",
           "generator_loss_nonsaturating", "generator_loss_wasserstein", "gradient_penalty"]
