"""Likelihood terms of the VAE, the importance-weighted bound and the diffusion model's variational bound.

Every function is pure and returns per-example values in nats (sum over dimensions), shape (B,) unless stated.

- Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014, https://arxiv.org/abs/1312.6114 (ELBO,
  reparameterisation, the analytic KL of appendix B).
- Higgins et al., "beta-VAE", ICLR 2017 (the KL weighted by beta).
- Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016,
  https://arxiv.org/abs/1509.00519 (the k-sample bound, eq. 8).
- Salimans et al., "PixelCNN++", ICLR 2017 (discretised logistic likelihood of 8-bit values).
- Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020, https://arxiv.org/abs/2006.11239
  (the Gaussian KL terms and the discretised Gaussian decoder L_0 of section 3.3).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG2PI = math.log(2 * math.pi)


def gaussian_kl_standard(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) = -1/2 sum(1 + logvar - mu^2 - exp(logvar)) (Kingma & Welling,
    appendix B); (B, D) -> (B,)."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).flatten(1).sum(1)


def gaussian_kl(mu1: torch.Tensor, logvar1: torch.Tensor, mu2: torch.Tensor, logvar2: torch.Tensor) -> torch.Tensor:
    """KL(N(mu1, exp(logvar1)) || N(mu2, exp(logvar2))), elementwise Gaussians, summed over all but dim 0."""
    kl = 0.5 * (logvar2 - logvar1 + (logvar1 - logvar2).exp() + (mu1 - mu2).pow(2) * (-logvar2).exp() - 1)
    return kl.flatten(1).sum(1)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor | float = 0.0,
                         logvar: torch.Tensor | float = 0.0) -> torch.Tensor:
    """log N(z; mu, diag exp(logvar)) summed over all but dim 0."""
    logvar = torch.as_tensor(logvar, dtype=z.dtype, device=z.device)
    return (-0.5 * (LOG2PI + logvar + (z - mu).pow(2) * (-logvar).exp())).flatten(1).sum(1)


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x | logits) of binary x in {0, 1} under independent Bernoullis (stable form)."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def discretized_logistic_log_likelihood(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor,
                                        bins: int = 256) -> torch.Tensor:
    """log P(x) of values x in [0, 1] on a grid of ``bins`` levels (x = k / (bins - 1)) under a logistic of
    ``mean`` and ``exp(log_scale)`` discretised to bins of width 1 / (bins - 1), the edge bins extended to
    +-infinity (PixelCNN++, one component); summed over all but dim 0."""
    half = 0.5 / (bins - 1)
    inv = (-log_scale).exp()
    upper, lower = (x - mean + half) * inv, (x - mean - half) * inv
    log_cdf_upper = F.logsigmoid(upper)                       # log sigma(u): the lowest bin
    log_one_minus_cdf_lower = -F.softplus(lower)              # log (1 - sigma(l)): the highest bin
    mid = (torch.sigmoid(upper) - torch.sigmoid(lower)).clamp_min(1e-12).log()
    # in a bin far in a tail both sigmoids round to the same value: use the density times the bin width
    centre = (x - mean) * inv
    log_pdf = centre - log_scale - 2 * F.softplus(centre) + math.log(2 * half)
    mid = torch.where(torch.sigmoid(upper) - torch.sigmoid(lower) > 1e-5, mid, log_pdf)
    lp = torch.where(x < half, log_cdf_upper, torch.where(x > 1 - half, log_one_minus_cdf_lower, mid))
    return lp.flatten(1).sum(1)


def elbo(log_px_z: torch.Tensor, kl: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """E_q[log p(x|z)] - beta KL(q(z|x) || p(z)) (beta = 1: Kingma & Welling's bound; beta > 1: beta-VAE's
    objective, no longer a bound on log p(x))."""
    return log_px_z - beta * kl


def iwae_bound(log_w: torch.Tensor) -> torch.Tensor:
    """The importance-weighted bound L_k = log (1/k) sum_i w_i from log-weights (k, B) -> (B,)
    (Burda et al., eq. 8); log w_i = log p(x, z_i) - log q(z_i | x). k = 1 is the ELBO."""
    return torch.logsumexp(log_w, 0) - math.log(log_w.shape[0])


def discretized_gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor,
                                        bins: int = 256) -> torch.Tensor:
    """log P(x) of x in [-1, 1] on ``bins`` levels under N(mean, exp(log_scale)^2) integrated over each bin,
    the edge bins extended to +-infinity: Ho et al.'s decoder L_0 (their eq. 13); summed over all but dim 0."""
    half = 1.0 / (bins - 1)
    inv = (-log_scale).exp()
    normal = torch.distributions.Normal(0.0, 1.0)
    cdf_plus, cdf_min = normal.cdf((x - mean + half) * inv), normal.cdf((x - mean - half) * inv)
    log_cdf_plus = cdf_plus.clamp_min(1e-12).log()
    log_one_minus_cdf_min = (1 - cdf_min).clamp_min(1e-12).log()
    log_delta = (cdf_plus - cdf_min).clamp_min(1e-12).log()
    lp = torch.where(x < -1 + half, log_cdf_plus, torch.where(x > 1 - half, log_one_minus_cdf_min, log_delta))
    return lp.flatten(1).sum(1)
