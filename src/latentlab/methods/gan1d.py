"""The course's simple 1-D GAN: a shift generator against a logistic-regression discriminator.

Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014 (the value function, Eq. 1).
    data      x ~ N(mu, s^2)                      (the ``gauss1d`` distribution)
    generator g(z) = z + theta,  z ~ N(0, 1)      one parameter
    D(x)      = sigmoid(w x + b)                  logistic regression
Alternating SGD updates: one step on (w, b), then one on theta. theta converges to mu.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..config import TrainConfig, param
from ..data import get_distribution
from ..engine.batches import SampledBatches
from ..fileio import save_figure
from ..losses import discriminator_loss_minimax, generator_loss_minimax, generator_loss_nonsaturating
from ..viz.grid import figure_to_tensor
from ..engine.method import Method, register_method
from ..modules import unwrap
from ..results import EvalResult


@dataclass
class GAN1DConfig(TrainConfig):
    dataset: str = param("gauss1d", help="a 1-D synthetic distribution")
    steps: int = param(3000, ge=1)
    batch_size: int = param(64, ge=1)
    lr: float = param(0.05, gt=0, help="SGD learning rate of both players")
    loss: str = param("nonsaturating", choices=("minimax", "nonsaturating"), help="generator loss")
    theta0: float = param(0.0, help="initial generator shift")
    log_every: int = param(100, ge=1)
    image_every: int = param(1000, ge=0)
    channels_last: bool = param(False)


class Shift(nn.Module):
    """g(z) = z + theta."""

    def __init__(self, theta0: float):
        super().__init__()
        self.theta = nn.Parameter(torch.tensor([theta0]))

    def forward(self, z):  # (B, 1) -> (B, 1)
        return z + self.theta


@register_method
class GAN1D(Method):
    name = "gan1d"
    summary = "1-D GAN: g(z)=z+theta vs logistic-regression D; theta converges to the data mean"
    paper = "Goodfellow et al. 2014, Generative Adversarial Nets"
    Config = GAN1DConfig
    generative = True
    trainable = ("G", "D")
    extra_state = ("trace",)

    def __init__(self, cfg: GAN1DConfig):
        super().__init__(cfg)
        self.dist = get_distribution(cfg.dataset)
        if self.dist.dim != 1:
            from ..errors import ConfigError
            raise ConfigError(f"config key 'dataset' = {cfg.dataset!r} is invalid: gan1d needs a 1-D distribution")
        self.G = Shift(cfg.theta0)
        self.D = nn.Linear(1, 1)                       # logit w x + b
        self.trace = torch.zeros(cfg.steps + 1, 3)     # (theta, w, b): row 0 initial, row k after step k
        self.trace[0] = torch.tensor([self.theta, *self.wb])

    def load_state_dict(self, state, weights_only=False):
        super().load_state_dict(state, weights_only)
        if len(self.trace) < self.cfg.steps + 1:  # resumed with a larger ``steps``
            self.trace = torch.cat([self.trace, self.trace.new_zeros(self.cfg.steps + 1 - len(self.trace), 3)])

    def configure_optimizers(self):
        return {"D": torch.optim.SGD(self.D.parameters(), lr=self.cfg.lr),
                "G": torch.optim.SGD(self.G.parameters(), lr=self.cfg.lr)}

    def batches(self, rank, world):
        return SampledBatches(self.dist, self.cfg.batch_size, self.cfg.seed, rank, world)

    def discriminator_step(self, x):
        fake = self.G(torch.randn_like(x)).detach()
        loss = discriminator_loss_minimax(self.D(x), self.D(fake))
        self.optimize("D", loss)
        return loss

    def generator_step(self, n):
        logits = self.D(self.G(torch.randn(n, 1, device=self.device)))
        g_loss = generator_loss_minimax if self.cfg.loss == "minimax" else generator_loss_nonsaturating
        loss = g_loss(logits)
        self.optimize("G", loss)
        return loss

    def training_step(self, batch, step):
        x = batch["x"].to(self.device)                 # (B, 1)
        d_loss = self.discriminator_step(x)
        g_loss = self.generator_step(len(x))
        theta, (w, b) = self.theta, self.wb
        self.trace[step + 1] = torch.tensor([theta, w, b])
        return {"loss_d": d_loss.item(), "loss_g": g_loss.item(), "theta": theta}

    @property
    def theta(self) -> float:
        return float(self.G.theta.detach().cpu())

    @property
    def wb(self) -> tuple[float, float]:
        d = unwrap(self.D)
        return float(d.weight.detach().cpu()), float(d.bias.detach().cpu())

    def sample(self, n, **kw):
        g = torch.Generator().manual_seed(kw.get("seed", 0))
        return torch.randn(n, 1, generator=g) + self.theta

    def figure(self, snapshots: list[int]):
        """Real density, generated density and D's sigmoid at the given steps, plus theta(t)."""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        mu, s = float(self.dist.modes[0, 0]), float(self.dist.sigma)
        xs = torch.linspace(mu - 4 * s - abs(mu) - 2, mu + 4 * s + 2, 400)
        pdf = lambda m, sd: torch.exp(-0.5 * ((xs - m) / sd) ** 2) / (sd * (2 * torch.pi) ** 0.5)
        fig, axes = plt.subplots(1, len(snapshots) + 1, figsize=(3.2 * (len(snapshots) + 1), 3))
        for ax, k in zip(axes, snapshots):
            theta, w, b = self.trace[k].tolist()
            ax.plot(xs, pdf(mu, s), "k--", label="data")
            ax.plot(xs, pdf(theta, 1.0), "g-", label="generator")
            ax.plot(xs, torch.sigmoid(w * xs + b), "b-", label="D(x)")
            ax.set_title(f"step {k}: theta={theta:.2f}")
            ax.set_ylim(-0.02, 1.02)
        axes[0].legend(fontsize=7)
        n = min(self.step, self.cfg.steps)                     # steps done
        axes[-1].plot(range(n + 1), self.trace[:n + 1, 0].tolist(), label="theta")
        axes[-1].axhline(mu, color="k", ls="--", label="data mean")
        axes[-1].set_xlabel("step")
        axes[-1].legend(fontsize=7)
        fig.tight_layout()
        return fig

    def images(self):
        k = self.step
        return {"densities": figure_to_tensor(self.figure([0, k // 2, k]))}

    def on_train_end(self, run_dir: Path):
        k = self.step
        fig = self.figure([0, k // 3, 2 * k // 3, k])
        path = Path(run_dir) / "gan1d_densities.png"
        save_figure(fig, path, dpi=100)
        import matplotlib.pyplot as plt
        plt.close(fig)
        return {"densities": str(path)}

    def evaluate(self, protocol=None):
        mu = float(self.dist.modes[0, 0])
        return EvalResult({"theta": self.theta, "data_mean": mu, "abs_error": abs(self.theta - mu)},
                          {"distribution": self.cfg.dataset, "step": self.step})

    def save_samples(self, n, path, **kw):
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.hist(self.dist.sample(n, torch.Generator().manual_seed(1)).squeeze(1), bins=50, alpha=0.5,
                density=True, label="data")
        ax.hist(self.sample(n, **kw).squeeze(1), bins=50, alpha=0.5, density=True, label="generator")
        ax.legend()
        fig.tight_layout()
        save_figure(fig, path, dpi=100)
        plt.close(fig)
        return Path(path)
