"""CDAN(+E): conditional domain-adversarial training, the discriminator conditioned on the predictions.

Long et al., "Conditional adversarial domain adaptation", NeurIPS 2018, https://arxiv.org/abs/1705.10667.

    latentlab train cdan source=mnist target=usps

Chosen as a successor of DANN because it fixes DANN's class-blind alignment (a domain classifier on f alone
can be fooled by matching the marginals while classes stay mixed) at the same cost and in the same one-stage
frame, and it is among the strongest adversarial methods on the digit pairs users compare against.
One step (Sec. 3, eq. 7):
    f = G(x_s, x_t); g = softmax(C(f))                        features and predictions of both batches
    h = f (x) g, or T(f, g) = (R_f f) * (R_g g) / sqrt(d)     multilinear conditioning (randomised when wide)
    L_d = sum_i w_i BCE(D(R_lambda(h_i)), domain_i) / sum_i w_i   through the reversal layer (as DANN)
    w = 1 + exp(-H(g)) per sample, normalised per domain      CDAN+E (entropy=true): confident samples count more
    (G, C, D) <- SGD on CE(C(f_s), y_s) + L_d
g is detached in h (as in the authors' code and TLlib) and in w (as TLlib; the authors' code lets the entropy's
gradient flow back through w, reversed); w is normalised within each domain as the authors' code does (TLlib: over
the batch). L_d is the mean over both batches, as the authors' BCE. With ``randomized=auto`` the paper's rule picks
the randomised map for both digit networks (LeNet: 500 x 10 = 5000, the DANN network: 7680 > 4096); the authors'
digit script offers it as an option. The discriminator is the authors' digit one (fc 500 - fc 500 - fc 1, ReLU,
dropout 0.5); lambda_p and mu_p follow DANN's schedules.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import param
from ..engine.method import register_method
from ..losses.domain import cdan_entropy_weights, domain_adversarial_loss, multilinear_map
from ..nets.domain import DomainDiscriminator, RandomizedMultilinear, grad_reverse
from ._domain import DAConfig, DAMethod, adaptation_factor


@dataclass
class CDANConfig(DAConfig):
    entropy: bool = param(True, help="CDAN+E: weight samples by 1 + exp(-H(g)) (false: plain CDAN)")
    randomized: str = param("auto", choices=("auto", "true", "false"),
                            help="randomised multilinear map: auto = when F x classes > 4096 (the paper's rule)")
    random_dim: int = param(1024, ge=1, help="output width d of the randomised map (paper: 1024)")
    disc_hidden: tuple[int, ...] = param((500, 500), ge=1, help="discriminator hidden widths (the authors' digits)")
    disc_dropout: float = param(0.5, ge=0, lt=1, help="discriminator dropout (the authors' digits)")
    gamma: float = param(10.0, gt=0, help="lambda_p schedule's gamma")
    trade_off: float = param(1.0, gt=0, help="lambda's final value")


@register_method
class CDAN(DAMethod):
    name = "cdan"
    summary = "Domain adaptation: a discriminator on features (x) predictions, entropy-weighted (CDAN+E)"
    paper = "Long et al. 2018, Conditional adversarial domain adaptation"
    Config = CDANConfig
    trainable = ("backbone", "head", "discriminator")

    def __init__(self, cfg: CDANConfig):
        super().__init__(cfg)
        f, k = self.backbone.num_features, self.num_classes
        rand = cfg.randomized == "true" or (cfg.randomized == "auto" and f * k > 4096)
        self.random_map = RandomizedMultilinear(f, k, cfg.random_dim, seed=cfg.seed) if rand else None
        self.discriminator = DomainDiscriminator(cfg.random_dim if rand else f * k, cfg.disc_hidden, cfg.disc_dropout)

    def configure_optimizers(self):
        return {"model": self.sgd(self.backbone, self.head, self.discriminator)}

    def condition(self, f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """(B, F), (B, K) -> the discriminator's input (B, F K) or (B, d)."""
        return self.random_map(f, g) if self.random_map is not None else multilinear_map(f, g)

    def adapt_step(self, batch, step):
        xs, ys, xt = self.inputs(batch)
        b = len(xs)
        f = self.backbone(torch.cat([xs, xt]))                                   # (2B, F)
        logits = self.head(f)                                                    # (2B, K)
        loss_y, out = self.classification(logits[:b], ys)
        g = logits.detach().softmax(1)                                           # (2B, K)
        lam = self.cfg.trade_off * adaptation_factor(self.progress(step), self.cfg.gamma)
        d = self.discriminator(grad_reverse(self.condition(f, g), lam))          # (2B,)
        w = cdan_entropy_weights(g[:b], g[b:]) if self.cfg.entropy else (None, None)
        loss_d = domain_adversarial_loss(d[:b], d[b:], *w)
        loss = loss_y + loss_d
        self.optimize("model", loss)
        with torch.no_grad():
            acc_d = torch.cat([d[:b] > 0, d[b:] <= 0]).float().mean().item()
        return {"loss": loss.item(), **out, "domain_loss": loss_d.item(), "domain_acc": acc_d, "lambda": lam}
