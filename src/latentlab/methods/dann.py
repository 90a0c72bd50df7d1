"""DANN: domain-adversarial training through a gradient reversal layer.

Ganin et al., "Domain-adversarial training of neural networks", JMLR 2016, https://arxiv.org/abs/1505.07818.

    latentlab train dann source=mnist target=mnist_m

Algorithm 1 (SGD form of eq. 10 with the reversal layer of Sec. 4.2):
    f_s, f_t = G_f(x_s), G_f(x_t)                          features of a source and a target batch
    L_y = CE(G_y(f_s), y_s)                                label predictor, source labels only
    L_d = BCE(G_d(R_lambda(f_s)), 1) + BCE(G_d(R_lambda(f_t)), 0)   each a mean over its batch, through the reversal layer
    (theta_f, theta_y, theta_d) <- SGD on L_y + L_d        G_d descends L_d; G_f, through R, ascends lambda L_d
with lambda_p = 2 / (1 + exp(-10 p)) - 1 and mu_p = mu_0 / (1 + 10 p)^0.75 (Sec. 5.2.2; ``methods/_domain.py``).
Networks: the paper's MNIST -> MNIST-M net (``nets.digits.dann_digits``, domain classifier fc 100 - fc 1 on the
768 conv features) for RGB input, the LeNet of the MNIST <-> USPS experiments otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import param
from ..engine.method import register_method
from ..losses.domain import domain_adversarial_loss
from ..nets.domain import DomainDiscriminator, grad_reverse
from ._domain import DAConfig, DAMethod, adaptation_factor


@dataclass
class DANNConfig(DAConfig):
    disc_hidden: tuple[int, ...] = param((100,), ge=1, help="domain classifier hidden widths (the paper's MNIST "
                                                             "net: 100; its SVHN/GTSRB nets: 1024, 1024)")
    disc_dropout: float = param(0.0, ge=0, lt=1, help="dropout after each hidden layer of the domain classifier")
    gamma: float = param(10.0, gt=0, help="lambda_p schedule's gamma (paper: 10)")
    trade_off: float = param(1.0, gt=0, help="lambda's final value (lambda_p times this; paper: 1)")


@register_method
class DANN(DAMethod):
    name = "dann"
    summary = "Domain adaptation: a domain classifier through a gradient reversal layer (DANN)"
    paper = "Ganin et al. 2016, Domain-adversarial training of neural networks"
    Config = DANNConfig
    trainable = ("backbone", "head", "discriminator")

    def __init__(self, cfg: DANNConfig):
        super().__init__(cfg)
        self.discriminator = DomainDiscriminator(self.backbone.num_features, cfg.disc_hidden, cfg.disc_dropout)

    def configure_optimizers(self):
        return {"model": self.sgd(self.backbone, self.head, self.discriminator)}

    def adapt_step(self, batch, step):
        xs, ys, xt = self.inputs(batch)
        b = len(xs)
        f = self.backbone(torch.cat([xs, xt]))                                   # (2B, F)       G_f
        loss_y, out = self.classification(self.head(f[:b]), ys)                   # L_y           G_y
        lam = self.cfg.trade_off * adaptation_factor(self.progress(step), self.cfg.gamma)
        d = self.discriminator(grad_reverse(f, lam))                             # (2B,)         G_d(R(f))
        loss_d = 2 * domain_adversarial_loss(d[:b], d[b:])                       # L_d: eq. 10 sums the two
                                                                                 # domains' means (TLlib: half)
        loss = loss_y + loss_d                                                   # eq. 10 through R
        self.optimize("model", loss)
        with torch.no_grad():
            acc_d = torch.cat([d[:b] > 0, d[b:] <= 0]).float().mean().item()
        return {"loss": loss.item(), **out, "domain_loss": loss_d.item(), "domain_acc": acc_d, "lambda": lam}
