"""VAE: Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014, https://arxiv.org/abs/1312.6114;
beta-VAE (Higgins et al., ICLR 2017) and the importance-weighted bound (Burda et al., "Importance Weighted
Autoencoders", ICLR 2016, https://arxiv.org/abs/1509.00519) as options.

Networks: Burda et al.'s one-stochastic-layer architecture, an MLP encoder D -> 200 -> 200 -> 2 x 50 and decoder
50 -> 200 -> 200 -> D with tanh units (``hidden``, ``depth``, ``z_dim``). Their optimiser: Adam, lr 1e-3,
eps 1e-4, batch 20, for 3,280 passes with a decaying rate; here batch 100 and ``steps`` as the CPU budget allows.

    x ~ Bernoulli(pixel / 255)                         dynamic binarisation, fresh at every step (likelihood=bernoulli)
    mu, log sigma^2 = q(x);  z = mu + sigma * eps      reparameterisation, eps ~ N(0, I)
    ELBO = log p(x | z) - beta KL(q(z|x) || N(0, I))   analytic KL (their appendix B); beta = 1 is the bound
    L_k  = log 1/k sum_i p(x, z_i) / q(z_i | x)        objective=iwae: Burda et al.'s k-sample bound (k = iwae_k)

``likelihood=logistic`` models the 8-bit grey levels instead (a discretised logistic per pixel, PixelCNN++'s
one-component form), so that its bits/dim compare with the flow's and the diffusion model's. ``log_prob`` is the
importance-sampled estimate with ``eval_k`` samples (Burda et al. report k = 5,000), a lower bound that
tightens as k grows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import param, require
from ..engine.method import register_method
from ..losses.likelihood import (bernoulli_log_likelihood, discretized_logistic_log_likelihood, elbo,
                                 gaussian_kl_standard, gaussian_log_density, iwae_bound)
from ..nets.mlp import MLP
from ._likelihood_image import LikelihoodImageConfig, LikelihoodImageModel


@dataclass
class VAEConfig(LikelihoodImageConfig):
    steps: int = param(30000, ge=1, help="updates (50 passes over MNIST at batch 100; Burda et al.: 3,280 passes)")
    batch_size: int = param(100, ge=1, help="images per update (Kingma & Welling: 100; Burda et al.: 20)")
    lr: float = param(1e-3, gt=0, help="Adam learning rate (Burda et al.: 1e-3, eps 1e-4)")
    z_dim: int = param(50, ge=1, help="latent dimension (Burda et al.: 50)")
    hidden: int = param(200, ge=1, help="units of each deterministic layer (Burda et al.: 200, tanh)")
    depth: int = param(2, ge=1, help="deterministic layers of the encoder and of the decoder (Burda et al.: 2)")
    likelihood: str = param("bernoulli", choices=("bernoulli", "logistic"),
                            help="decoder: Bernoulli on dynamically binarised images (Burda et al.'s protocol) or "
                                 "a discretised logistic on the 8-bit grey levels (bits/dim beside flow and ddpm)")
    beta: float = param(1.0, gt=0, help="weight of the KL term (1: the ELBO; beta-VAE, Higgins et al.: 4 on dSprites)")
    objective: str = param("elbo", choices=("elbo", "iwae"), help="training bound: the ELBO or Burda et al.'s L_k")
    iwae_k: int = param(50, ge=1, help="importance samples of the iwae objective (Burda et al.: 50)")
    eval_k: int = param(5000, ge=1, help="importance samples of log_prob, the likelihood estimate (Burda et al.: 5000)")

    def check(self):
        require(self.objective == "elbo" or self.beta == 1.0, "beta", self.beta,
                "the iwae objective is a bound on log p(x): it has no beta (use objective=elbo)")


@register_method
class VAE(LikelihoodImageModel):
    name = "vae"
    summary = "VAE (ELBO, reparameterisation; beta-VAE and IWAE as options); likelihood, MIG, interpolation"
    paper = "Kingma & Welling 2014, Auto-Encoding Variational Bayes"
    Config = VAEConfig
    trainable = ("enc", "dec")

    def __init__(self, cfg: VAEConfig):
        super().__init__(cfg)
        out = self.D * (2 if cfg.likelihood == "logistic" else 1)          # logistic: mean and log-scale
        self.enc = MLP(self.D, 2 * cfg.z_dim, cfg.hidden, cfg.depth, act="tanh")
        self.dec = MLP(cfg.z_dim, out, cfg.hidden, cfg.depth, act="tanh")
        self.init_fixed_noise()

    def configure_optimizers(self):
        return {"vae": torch.optim.Adam([*self.enc.parameters(), *self.dec.parameters()], lr=self.cfg.lr, eps=1e-4)}

    # -- the model ----------------------------------------------------------------------------------
    def data(self, x_uint8: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """uint8 (B, C, H, W) -> the modelled values (B, D): binary draws (bernoulli) or levels k/255 (logistic)."""
        x = x_uint8.to(self.device).flatten(1).float() / 255
        if self.cfg.likelihood == "logistic":
            return x
        u = torch.rand(x.shape, generator=generator).to(x.device) if generator is not None else torch.rand_like(x)
        return (u < x).float()

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.enc(x).chunk(2, 1)                                # (B, z), (B, z)
        return mu, logvar

    def log_px_z(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x | z): z (..., z_dim), x broadcastable (..., D) -> (...)."""
        out = self.dec(z.flatten(0, -2))
        xs = x.expand(*z.shape[:-1], x.shape[-1]).flatten(0, -2)
        if self.cfg.likelihood == "bernoulli":
            lp = bernoulli_log_likelihood(out, xs)
        else:
            mean, log_scale = out.chunk(2, 1)
            lp = discretized_logistic_log_likelihood(xs, torch.sigmoid(mean), log_scale.clamp(-7, 2))
        return lp.view(z.shape[:-1])

    def log_weights(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """log p(x, z_i) - log q(z_i | x) for k draws z_i ~ q(z | x): (k, B)."""
        mu, logvar = self.posterior(x)
        eps = torch.randn(k, *mu.shape, generator=generator).to(mu.device)
        z = mu + (0.5 * logvar).exp() * eps                                   # (k, B, z)
        log_q = gaussian_log_density(eps.flatten(0, 1)).view(k, -1) - 0.5 * logvar.sum(1)
        log_prior = gaussian_log_density(z.flatten(0, 1)).view(k, -1)
        return self.log_px_z(z, x) + log_prior - log_q

    def training_step(self, batch, step):
        c = self.cfg
        x = self.data(batch["x"])                                             # (B, D)
        if c.objective == "iwae":
            bound = iwae_bound(self.log_weights(x, c.iwae_k))                 # (B,) L_k
            loss = -bound.mean()
            self.optimize("vae", loss)
            return {"loss": loss.item(), f"iwae_{c.iwae_k}": bound.mean().item()}
        mu, logvar = self.posterior(x)
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)                  # reparameterisation
        rec, kl = self.log_px_z(z, x), gaussian_kl_standard(mu, logvar)        # (B,), (B,)
        loss = -elbo(rec, kl, c.beta).mean()
        self.optimize("vae", loss)
        return {"loss": loss.item(), "rec": -rec.mean().item(), "kl": kl.mean().item()}

    # -- what the protocols use -----------------------------------------------------------------------
    def noise(self, n, generator=None):
        return torch.randn(n, self.cfg.z_dim, generator=generator)

    @torch.no_grad()
    def decode(self, z):
        out = self.dec(z.to(self.device)).float().cpu()
        mean = torch.sigmoid(out if self.cfg.likelihood == "bernoulli" else out.chunk(2, 1)[0])
        return mean.view(len(z), self.C, self.H, self.W)                      # the decoder's mean

    @torch.no_grad()
    def encode(self, x_uint8):
        return self.posterior(self.data(x_uint8, torch.Generator().manual_seed(0)))[0]   # posterior means

    def code_name(self):
        return "posterior mean of q(z|x)"

    @torch.no_grad()
    def log_prob(self, x_uint8, generator=None, k: int | None = None, chunk: int = 100):
        """The importance-sampled estimate L_k of log p(x) (nats), k = ``eval_k`` unless given; ``generator``
        draws the binarisation of the images and then the importance samples."""
        k = k or self.cfg.eval_k
        x = self.data(x_uint8, generator)
        log_w = torch.cat([self.log_weights(x, min(chunk, k - i), generator) for i in range(0, k, chunk)])
        return iwae_bound(log_w).double().cpu()

    def likelihood_protocol(self, k: int | None = None):
        k = k or self.cfg.eval_k
        data = ("binary images drawn once from Bernoulli(pixel/255) with the noise seed (dynamically binarised "
                "MNIST, Burda et al.'s protocol); nats and bits are per binary image and pixel, not 8-bit"
                if self.cfg.likelihood == "bernoulli" else "8-bit grey levels, discretised logistic decoder")
        return {"estimate": f"importance-weighted bound L_k with k = {k} samples of q(z|x) (Burda et al. 2016; "
                            "k = 1 is the ELBO); a lower bound on log p(x)", "data": data, "k": k,
                "dequantisation": "none: a discrete model"}
