"""DDPM: Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020,
https://arxiv.org/abs/2006.11239; DDIM sampling (Song, Meng & Ermon, "Denoising Diffusion Implicit Models",
ICLR 2021, https://arxiv.org/abs/2010.02502) and the cosine schedule (Nichol & Dhariwal, "Improved DDPM",
ICML 2021) as options. The denoiser is the small U-Net of ``nets/unet.py``.

    x_0 = pixel / 127.5 - 1;  t ~ U{1..T};  eps ~ N(0, I)                         Algorithm 1 (training)
    x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps                                 q(x_t | x_0) in closed form
    loss = |eps - eps_theta(x_t, t)|^2                                           L_simple
    x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps_theta) / sqrt(alpha_t) + sigma_t z     Algorithm 2 (T steps)
    DDIM: x_{s} = sqrt(abar_s) x0_hat + sqrt(1 - abar_s - sigma^2) eps_theta + sigma z    (S < T steps; eta = 0:
          deterministic, so x_T is a latent that can be interpolated, DDIM section 5.3)

The variational bound (``log_prob``), in nats of the 8-bit image (no dequantisation: L_0 is discrete):

    -log p(x_0) <= KL(q(x_T|x_0) || N(0, I)) + sum_{t=2..T} KL(q(x_{t-1}|x_t, x_0) || p(x_{t-1}|x_t)) - log p(x_0|x_1)

with p's variance sigma_t^2 = beta_t (``variance=beta``, Ho et al.'s sampler) or the posterior's beta~_t
(``variance=posterior``), and L_0 the discretised Gaussian decoder (Ho et al., eq. 13). The middle sum is
estimated without bias from ``eval_k`` timesteps per image, one drawn in each of ``eval_k`` equal strata of
{2..T} and weighted by its stratum's size (eval_k = T - 1: the exact sum).

Ho et al.'s CIFAR-10 recipe: T = 1000, linear betas 1e-4 .. 0.02, Adam 2e-4, batch 128, dropout 0.1, EMA 0.9999,
800k steps. The CPU defaults differ where a short run needs it (each stated at its key).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import nets
from ..nets.ema import frozen_copy
from ..config import param, require
from ..engine.method import linear_warmup, register_method
from ..losses.likelihood import discretized_gaussian_log_likelihood, gaussian_kl
from ._likelihood_image import LikelihoodImageConfig, LikelihoodImageModel


@dataclass
class DDPMConfig(LikelihoodImageConfig):
    steps: int = param(20000, ge=1, help="updates (Ho et al.: 800k on CIFAR-10)")
    batch_size: int = param(64, ge=1, help="images per update (Ho et al.: 128)")
    lr: float = param(5e-4, gt=0, help="Adam learning rate (Ho et al.: 2e-4; 5e-4 for short CPU runs)")
    warmup: int = param(200, ge=0, help="steps of linear learning-rate warm-up (Ho et al.: 5000)")
    grad_clip: float = param(1.0, gt=0, help="gradient-norm clip (Ho et al.: 1)")
    timesteps: int = param(1000, ge=2, help="T, diffusion steps (Ho et al.: 1000)")
    schedule: str = param("linear", choices=("linear", "cosine"),
                          help="betas: linear 1e-4 .. 0.02 (Ho et al.) or cosine (Nichol & Dhariwal 2021)")
    variance: str = param("beta", choices=("beta", "posterior"),
                          help="reverse-process variance sigma_t^2: beta_t (Ho et al.'s sampler) or beta~_t")
    base: int = param(16, ge=1, help="U-Net base channels (Ho et al.: 128; 16 here: 2 CPU cores)")
    mults: tuple[int, ...] = param((1, 2, 2), help="channel multipliers per resolution (28 -> 14 -> 7)")
    blocks: int = param(1, ge=1, help="residual blocks per resolution (Ho et al.: 2)")
    dropout: float = param(0.0, ge=0, lt=1, help="dropout in the residual blocks (Ho et al.: 0.1 on CIFAR-10; "
                                                 "0 for short runs, which do not overfit)")
    ema_decay: float = param(0.995, ge=0, lt=1, help="EMA of the weights for sampling and evaluation (Ho et al.: "
                                                     "0.9999, an average over ~10k steps; 0.995 for short runs)")
    sampler: str = param("ddim", choices=("ddim", "ddpm"),
                         help="sampling: DDIM with sample_steps (default: T network evaluations are minutes per "
                              "image batch on a CPU) or Ho et al.'s ancestral sampler (T steps)")
    sample_steps: int = param(50, ge=1, help="DDIM steps (Song et al. report 10-100)")
    eta: float = param(0.0, ge=0, help="DDIM's eta (0: deterministic; 1: DDPM-like noise)")
    eval_k: int = param(50, ge=1, help="timesteps per image of the variational-bound estimate (T - 1: exact)")
    eval_samples: int = param(2048, ge=2, help="samples of the final image metrics (2,048, the FID minimum here: "
                                               "5,000 DDIM samples take ~10 minutes of 2 CPU cores)")
    eval_likelihood: int | None = param(500, ge=1, help="images of the final likelihood evaluation (None: all)")

    def check(self):
        require(self.sample_steps <= self.timesteps, "sample_steps", self.sample_steps, "must be <= timesteps")
        require(self.eval_k <= self.timesteps - 1, "eval_k", self.eval_k, "must be <= timesteps - 1")


def beta_schedule(kind: str, T: int) -> torch.Tensor:
    """betas (T,) in float64: Ho et al.'s linear 1e-4 .. 0.02 (for T = 1000; scaled by 1000 / T otherwise, as
    Nichol & Dhariwal's code) or Nichol & Dhariwal's cosine; both clipped at 0.999 (short test schedules)."""
    if kind == "linear":
        scale = 1000 / T
        return torch.linspace(scale * 1e-4, scale * 0.02, T, dtype=torch.float64).clamp(max=0.999)
    s, t = 0.008, torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return (1 - f[1:] / f[:-1]).clamp(max=0.999)


@register_method
class DDPM(LikelihoodImageModel):
    name = "ddpm"
    summary = "DDPM (epsilon prediction, U-Net; DDIM sampling, cosine schedule); variational bound in bits/dim"
    paper = "Ho, Jain & Abbeel 2020, Denoising Diffusion Probabilistic Models"
    Config = DDPMConfig
    trainable = ("net",)

    def __init__(self, cfg: DDPMConfig):
        super().__init__(cfg)
        self.net = nets.create("unet", channels=self.C, base=cfg.base, mults=cfg.mults, blocks=cfg.blocks,
                               dropout=cfg.dropout)
        self.net_ema = frozen_copy(self.net) if cfg.ema_decay > 0 else None
        b = beta_schedule(cfg.schedule, cfg.timesteps)              # (T,) index i is timestep t = i + 1
        self.betas, self.abar = b, torch.cumprod(1 - b, 0)
        self.init_fixed_noise()

    @property
    def nfe_per_sample(self) -> int:
        return self.cfg.sample_steps if self.cfg.sampler == "ddim" else self.cfg.timesteps

    def ema(self):
        return {"net_ema": ("net", self.cfg.ema_decay)} if self.cfg.ema_decay > 0 else {}

    def configure_optimizers(self):
        return {"net": torch.optim.Adam(self.net.parameters(), lr=self.cfg.lr)}

    def configure_schedulers(self):
        return linear_warmup(self.optimizers, self.cfg.warmup)

    def _coef(self, values: torch.Tensor, i: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """values[i] (float64 schedule, i (B,) indices) as (B, 1, 1, 1) in x's dtype and device."""
        return values.to(x.device)[i.to(x.device)].to(x.dtype).view(-1, 1, 1, 1)

    def q_sample(self, x0, i, eps):
        """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps for timestep indices i (B,)."""
        return self._coef(self.abar.sqrt(), i, x0) * x0 + self._coef((1 - self.abar).sqrt(), i, x0) * eps

    def training_step(self, batch, step):
        x0 = self.prepare_images(batch["x"]) * 2 - 1                        # (B, C, H, W) in [-1, 1]
        i = torch.randint(self.cfg.timesteps, (len(x0),), device=x0.device)  # t = i + 1 ~ U{1..T}
        eps = torch.randn_like(x0)
        loss = F.mse_loss(self.net(self.q_sample(x0, i, eps), i), eps)       # L_simple
        self.optimize("net", loss, clip=self.cfg.grad_clip)
        return {"loss": loss.item()}

    # -- sampling -------------------------------------------------------------------------------------
    def denoiser(self):
        net = self.net_ema if self.net_ema is not None else self.net
        return net.eval()

    def eps(self, net, x, i: int):
        return net(x, torch.full((len(x),), i, device=x.device, dtype=torch.long)).float()

    @torch.no_grad()
    def ddim(self, xT, steps: int, eta: float, generator=None) -> torch.Tensor:
        """DDIM from x_T over ``steps`` evenly spaced timesteps; eta = 0 is deterministic."""
        net, x = self.denoiser(), xT.to(self.device).float()
        idx = torch.linspace(self.cfg.timesteps - 1, 0, steps).round().long().tolist()
        abar = self.abar.tolist()
        for j, i in enumerate(idx):
            a_t = abar[i]
            a_s = abar[idx[j + 1]] if j + 1 < len(idx) else 1.0
            e = self.eps(net, x, i)
            x0 = ((x - math.sqrt(1 - a_t) * e) / math.sqrt(a_t)).clamp(-1, 1)
            e = (x - math.sqrt(a_t) * x0) / math.sqrt(1 - a_t)                # eps consistent with the clipped x0
            sigma = eta * math.sqrt((1 - a_s) / (1 - a_t) * (1 - a_t / a_s))
            x = math.sqrt(a_s) * x0 + math.sqrt(max(1 - a_s - sigma ** 2, 0.0)) * e
            if sigma > 0:
                x = x + sigma * torch.randn(x.shape, generator=generator).to(x.device)
        self.net.train()
        return x

    @torch.no_grad()
    def ancestral(self, xT, generator=None) -> torch.Tensor:
        """Ho et al.'s Algorithm 2: T steps from x_T."""
        net, x = self.denoiser(), xT.to(self.device).float()
        for i in reversed(range(self.cfg.timesteps)):
            b, a = float(self.betas[i]), float(self.abar[i])
            mean = self.reverse_mean(net, x, i)
            if i > 0:
                var = b if self.cfg.variance == "beta" else b * (1 - float(self.abar[i - 1])) / (1 - a)
                x = mean + math.sqrt(var) * torch.randn(x.shape, generator=generator).to(x.device)
            else:
                x = mean
        self.net.train()
        return x.clamp(-1, 1)

    def noise(self, n, generator=None):
        return torch.randn(n, self.C, self.H, self.W, generator=generator)

    def decode(self, xT, generator=None):
        c = self.cfg
        if c.sampler == "ddpm":
            x = self.ancestral(xT, generator)
        else:
            x = self.ddim(xT, c.sample_steps, c.eta, generator)
        return ((x.float().cpu() + 1) / 2).clamp(0, 1)

    def sample(self, n, seed=None, **kw):
        """n samples; the sampler's own noise (ancestral, or DDIM with eta > 0) comes from ``seed`` too."""
        if seed is None and n <= len(self.fixed_noise):
            g, xT = torch.Generator().manual_seed(self.cfg.seed), self.fixed_noise[:n]
        else:
            g = torch.Generator().manual_seed(seed or 0)
            xT = self.noise(n, g)
        return torch.cat([self.decode(xT[i:i + 500], g) for i in range(0, n, 500)])

    def interpolate(self, pairs, steps, seed):
        """Walks between x_T pairs decoded by DDIM with eta = 0 (its deterministic latent, Song et al. 5.3)."""
        g = torch.Generator().manual_seed(seed)
        from ..eval.generative import latent_walk
        a, b = self.noise(pairs, g), self.noise(pairs, g)
        w = latent_walk(a, b, steps, "slerp").flatten(0, 1)
        x = torch.cat([((self.ddim(w[i:i + 500], self.cfg.sample_steps, 0.0).float().cpu() + 1) / 2).clamp(0, 1)
                       for i in range(0, len(w), 500)])
        return x.view(pairs, steps, *x.shape[1:]), f"slerp of x_T ~ N(0, I), decoded by DDIM ({self.cfg.sample_steps} steps, eta 0)"

    @torch.no_grad()
    def encode(self, x_uint8):
        """DDIM inversion (eta = 0, ``sample_steps``, the ODE run from x_0 to x_T; Song et al. 4.3): the
        deterministic latent x_T of each image, flattened (N, D), for MIG."""
        net, x = self.denoiser(), self.prepare_images(x_uint8).float() * 2 - 1
        idx = torch.linspace(0, self.cfg.timesteps - 1, self.cfg.sample_steps).round().long().tolist()
        a_prev = 1.0
        for i in idx:
            a_t = float(self.abar[i])
            e = self.eps(net, x, i)
            x0 = (x - math.sqrt(1 - a_prev) * e) / math.sqrt(a_prev)
            x, a_prev = math.sqrt(a_t) * x0 + math.sqrt(1 - a_t) * e, a_t
        self.net.train()
        return x.flatten(1)

    def code_name(self):
        return f"x_T from DDIM inversion ({self.cfg.sample_steps} steps), every dimension"

    # -- the variational bound --------------------------------------------------------------------------
    def reverse_mean(self, net, x, i: int):
        b, a = float(self.betas[i]), float(self.abar[i])
        return (x - b / math.sqrt(1 - a) * self.eps(net, x, i)) / math.sqrt(1 - b)

    @torch.no_grad()
    def log_prob(self, x_uint8, generator=None, k: int | None = None):
        """Minus the variational bound (nats per image), its middle sum estimated from k stratified timesteps."""
        c = self.cfg
        k = k or c.eval_k
        self.likelihood_protocol(k)
        net = self.denoiser()
        x0 = (x_uint8.to(self.device).double() / 127.5 - 1)
        B, T = len(x0), c.timesteps
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        a_T = float(self.abar[-1])
        bound = gaussian_kl(math.sqrt(a_T) * x0, torch.full_like(x0, math.log(1 - a_T)),
                            torch.zeros_like(x0), torch.zeros_like(x0))                    # L_T
        # L_0: x_1 ~ q(x_1 | x_0), decoder N(mu_theta(x_1, 1), beta_1) discretised to 256 bins
        x1 = self.q_sample(x0, torch.zeros(B, dtype=torch.long), torch.randn(x0.shape, generator=gen).to(x0))
        mean0 = self.reverse_mean(net, x1.float(), 0).double()
        bound = bound - discretized_gaussian_log_likelihood(x0, mean0, torch.full_like(x0, 0.5 * math.log(float(self.betas[0]))))
        # sum over t = 2..T (indices 1..T-1) of KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)), stratified
        edges = torch.linspace(1, T, k + 1).round().long()                  # k strata of {1..T-1}
        for s in range(k):
            lo, hi = int(edges[s]), int(edges[s + 1])
            if hi <= lo:
                continue
            i = int(torch.randint(lo, hi, (1,), generator=gen))
            b, a, a_prev = float(self.betas[i]), float(self.abar[i]), float(self.abar[i - 1])
            xt = math.sqrt(a) * x0 + math.sqrt(1 - a) * torch.randn(x0.shape, generator=gen).to(x0)
            mu_q = (math.sqrt(a_prev) * b / (1 - a)) * x0 + (math.sqrt(1 - b) * (1 - a_prev) / (1 - a)) * xt
            var_q = b * (1 - a_prev) / (1 - a)
            var_p = b if c.variance == "beta" else var_q
            mu_p = self.reverse_mean(net, xt.float(), i).double()
            kl = gaussian_kl(mu_q, torch.full_like(x0, math.log(var_q)), mu_p, torch.full_like(x0, math.log(var_p)))
            bound = bound + (hi - lo) * kl
        self.net.train()
        return (-bound).cpu()

    def likelihood_protocol(self, k=None):
        from ..errors import ConfigError
        c = self.cfg
        k = k or c.eval_k
        if not 1 <= k <= c.timesteps - 1:
            raise ConfigError(f"likelihood: k = {k} timesteps: need 1 <= k <= T - 1 = {c.timesteps - 1}")
        return {"estimate": f"the variational bound L_T + sum_t L_(t-1) + L_0 (Ho et al. 2020), the sum over "
                            f"t = 2..{c.timesteps} estimated without bias from k = {k} stratified timesteps per image "
                            f"(k = T - 1 is exact); reverse variance {c.variance}; a stochastic lower bound on log P(x)",
                "dequantisation": "none: L_0 is a discretised Gaussian over the 256 levels", "k": k,
                "network": "EMA" if c.ema_decay > 0 else "trained weights"}

    def latent_name(self):
        return "x_T"
