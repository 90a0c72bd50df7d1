"""Normalizing flow: a Glow-style multi-scale flow (Kingma & Dhariwal, "Glow: Generative Flow with Invertible
1x1 Convolutions", NeurIPS 2018, https://arxiv.org/abs/1807.03039; the multi-scale architecture and affine
coupling of Dinh et al., "Density estimation using Real NVP", ICLR 2017), trained by maximum likelihood on
uniformly dequantised 8-bit images. The layers are in ``nets/flow.py``.

    y = (x + u) / 256,  u ~ U[0, 1)^D                uniform dequantisation (Theis et al. 2016), y in [0, 1)
    s = logit(a + (1 - 2a) y)                          Real NVP's logit transform (a = logit_alpha; its log-det counts)
    eps, log p(y) = f(s) + log |ds/dy|                 change of variables: log N(z) + sum log |det J| of each layer
    loss = -(log p(y) - D log 256) / (D ln 2)          bits per dimension of the 8-bit image (an upper bound)
    x = y(f^-1(T eps)),  eps ~ N(0, I)                 sampling at temperature T (Glow's reduced temperature)

Sizes for 28 px on a CPU: 2 levels (28 -> 14 -> 7) of ``depth`` = 8 steps with ``hidden`` = 64 coupling
channels, about 0.3 M weights; Glow's MNIST model has 3 levels of 32 steps with 512 channels (``levels``,
``depth``, ``hidden``; 28 px admits only 2 levels). Adam, lr 1e-3 with a linear warm-up (Glow: 1e-3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .. import nets
from ..config import param
from ..engine.method import linear_warmup, register_method
from ..errors import ConfigError
from ._likelihood_image import LikelihoodImageConfig, LikelihoodImageModel


@dataclass
class FlowConfig(LikelihoodImageConfig):
    steps: int = param(10000, ge=1, help="updates")
    batch_size: int = param(64, ge=1, help="images per update (Glow: 64 on MNIST)")
    lr: float = param(1e-3, gt=0, help="Adam learning rate (Glow: 1e-3)")
    warmup: int = param(500, ge=0, help="steps of linear learning-rate warm-up (Glow warms up too)")
    levels: int = param(2, ge=1, help="scales: squeeze, flow steps, split (28 px: at most 2)")
    depth: int = param(8, ge=1, help="flow steps per level (Glow: 32)")
    hidden: int = param(64, ge=1, help="channels of each coupling network (Glow: 512)")
    logit_alpha: float = param(0.05, ge=0, lt=0.5, help="Real NVP's logit transform of y (their a = 0.05); 0: "
                                                        "Glow's plain y - 1/2 (at 28 px on a CPU the logit learns "
                                                        "the empty background much faster)")
    temperature: float = param(1.0, gt=0, help="sampling temperature of the standardised latent (Glow shows 0.7)")
    grad_clip: float = param(50.0, gt=0, help="gradient-norm clip (a guard against rare spikes of the log-det)")


@register_method
class Flow(LikelihoodImageModel):
    name = "flow"
    summary = "Glow-style normalizing flow (actnorm, 1x1 conv, affine coupling, multi-scale); exact bits/dim"
    paper = "Kingma & Dhariwal 2018, Glow: Generative Flow with Invertible 1x1 Convolutions"
    Config = FlowConfig
    trainable = ("flow",)

    def __init__(self, cfg: FlowConfig):
        super().__init__(cfg)
        self.flow = nets.create("glow", channels=self.C, size=self.H, levels=cfg.levels, depth=cfg.depth,
                                hidden=cfg.hidden)
        self.init_fixed_noise()

    def configure_optimizers(self):
        return {"flow": torch.optim.Adam(self.flow.parameters(), lr=self.cfg.lr)}

    def configure_schedulers(self):
        return linear_warmup(self.optimizers, self.cfg.warmup)

    def dequantize(self, x_uint8, generator=None):
        """uint8 -> y in [0, 1) with uniform noise (``generator``: seeded, for evaluation)."""
        x = x_uint8.to(self.device).float()
        u = torch.rand(x.shape, generator=generator).to(x.device) if generator is not None else torch.rand_like(x)
        return (x + u) / 256

    def to_flow(self, y):
        """y in [0, 1) -> the flow's input s and log |ds/dy| per image."""
        a = self.cfg.logit_alpha
        if a == 0:
            return y - 0.5, torch.zeros(len(y), device=y.device)
        p = a + (1 - 2 * a) * y
        s = p.log() - (-p).log1p()
        return s, (math.log(1 - 2 * a) - p.log() - (-p).log1p()).flatten(1).sum(1)

    def from_flow(self, s):
        a = self.cfg.logit_alpha
        return s + 0.5 if a == 0 else (torch.sigmoid(s) - a) / (1 - 2 * a)

    def log_density(self, y):
        """log p(y) of the dequantised image (B,), and eps."""
        s, logdet = self.to_flow(y)
        eps, logp = self.flow(s)
        return logp + logdet, eps

    def training_step(self, batch, step):
        y = self.dequantize(batch["x"])                                      # (B, C, H, W)
        logp, _ = self.log_density(y)                                        # (B,) log p(y)
        bpd = -(logp - self.D * math.log(256)) / (self.D * math.log(2))      # bits/dim of the 8-bit image
        loss = bpd.mean()
        self.optimize("flow", loss, clip=self.cfg.grad_clip)
        return {"loss": loss.item(), "bits_per_dim": loss.item()}

    # -- what the protocols use -----------------------------------------------------------------------
    def noise(self, n, generator=None):
        return torch.randn(n, self.D, generator=generator)

    @torch.no_grad()
    def decode(self, eps):
        f = self.flow.eval()
        dtype = next(f.parameters()).dtype                  # inverse() is not forward: no precision wrapper
        x = self.from_flow(f.inverse(eps.to(self.device, dtype), self.cfg.temperature)).float().cpu()
        f.train()
        return x.nan_to_num(0.0).clamp(0, 1)          # an inverse that overflows (untrained flows): black

    def latent_name(self):
        return f"the standardised latent eps ~ N(0, I) (temperature {self.cfg.temperature:g})"

    @torch.no_grad()
    def encode(self, x_uint8):
        """The latent of each image (dequantised at the bin centre): eps = f(x)."""
        f = self.flow.eval()
        eps = self.log_density((x_uint8.to(self.device).float() + 0.5) / 256)[1]
        f.train()
        return eps

    def code_name(self):
        return "the flow's standardised latent f(x), every dimension"

    @torch.no_grad()
    def log_prob(self, x_uint8, generator=None, k=None):
        """log P(x) >= log p(y) - D log 256 with one dequantisation draw y (nats of the 8-bit image)."""
        self.likelihood_protocol(k)
        f = self.flow.eval()
        logp = self.log_density(self.dequantize(x_uint8, generator))[0]
        f.train()
        return (logp - self.D * math.log(256)).double().cpu()

    def likelihood_protocol(self, k=None):
        if k is not None:
            raise ConfigError("likelihood: the flow's log-likelihood is exact given the dequantisation: no option k")
        return {"estimate": "exact change of variables (log N(eps) + sum of log-determinants) of the dequantised "
                            "image, one uniform draw per image: a stochastic lower bound on log P(x) of the 8-bit "
                            "image", "dequantisation": "uniform (Theis et al. 2016): y = (x + u) / 256",
                "preprocessing": f"logit(a + (1 - 2a) y), a = {self.cfg.logit_alpha:g}, its log-det included"
                                 if self.cfg.logit_alpha else "y - 1/2"}
