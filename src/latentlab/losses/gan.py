"""The GAN value function and its generator losses, on discriminator *logits* (no sigmoid).

Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014, https://arxiv.org/abs/1406.2661:
    min_G max_D  V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))],   D = sigmoid(logit).
Using log sigmoid(l) = -softplus(-l) and log(1 - sigmoid(l)) = -softplus(l) keeps them stable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def discriminator_loss_minimax(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-V(D, G): the discriminator *minimises* -E[log D(x)] - E[log(1 - D(G(z)))] (Eq. 1)."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss_minimax(fake_logits: torch.Tensor) -> torch.Tensor:
    """The minimax generator loss E_z[log(1 - D(G(z)))] (Eq. 1); saturates when D rejects samples."""
    return -F.softplus(fake_logits).mean()


def generator_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating heuristic -E_z[log D(G(z))] (Sec. 3): strong gradients early in training."""
    return F.softplus(-fake_logits).mean()


# -- Wasserstein GAN ------------------------------------------------------------------------------

def critic_loss_wasserstein(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Arjovsky et al., "Wasserstein GAN", ICML 2017, Algorithm 1: the critic ascends
    (1/m) sum f(x) - (1/m) sum f(g(z)); we minimise its negative E[f(G(z))] - E[f(x)] (scores, no sigmoid)."""
    return fake_scores.mean() - real_scores.mean()


def generator_loss_wasserstein(fake_scores: torch.Tensor) -> torch.Tensor:
    """Algorithm 1, generator update: descend -(1/m) sum f(g(z))."""
    return -fake_scores.mean()


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor | None = None,
                     **critic_kw) -> torch.Tensor:
    """Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017, Algorithm 1:
    E_x̂[(||grad_x̂ D(x̂)||_2 - 1)^2] with x̂ = alpha x + (1 - alpha) x̃, alpha ~ U[0, 1] per sample.
    Works for any input shape (B, ...): the norm is over all non-batch dimensions. Multiply by lambda
    outside. ``alpha`` (B,) may be passed for reproducibility; the graph is kept (create_graph) so the
    penalty is differentiated with the critic loss."""
    if real.shape != fake.shape:
        raise ValueError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} must have the same shape")
    b = real.shape[0]
    if alpha is None:
        alpha = torch.rand(b, device=real.device, dtype=real.dtype)
    alpha = alpha.reshape(b, *([1] * (real.dim() - 1))).to(real.dtype)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    scores = critic(x_hat, **critic_kw)
    grad, = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    return (grad.reshape(b, -1).norm(2, dim=1) - 1).pow(2).mean()


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mescheder et al., "Which Training Methods for GANs do actually Converge?", ICML 2018,
    https://arxiv.org/abs/1801.04406, Eq. 9: R1 = E_x~p_data[||grad_x D(x)||^2], the squared gradient norm
    of the discriminator's logit at *real* samples (``real`` must require grad and ``real_logits`` be
    computed from it). Multiply by gamma / 2 outside. The graph is kept so the penalty is differentiated
    with the discriminator loss."""
    if real_logits.shape[:1] != real.shape[:1]:
        raise ValueError(f"real_logits {tuple(real_logits.shape)} and real {tuple(real.shape)} must share the batch")
    if not real.requires_grad:
        raise ValueError("real must require grad (call real.requires_grad_() before the discriminator)")
    grad, = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.reshape(len(real), -1).pow(2).sum(1).mean()


def acgan_class_loss(class_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Odena et al., "Conditional Image Synthesis with Auxiliary Classifier GANs", ICML 2017, Eq. 2:
    L_C = E[log P(C = c | X)], as cross-entropy on class *logits* (no softmax before it)."""
    if class_logits.dim() != 2 or labels.shape != class_logits.shape[:1]:
        raise ValueError(f"class_logits (B, K) and labels (B,) expected, got {tuple(class_logits.shape)}, "
                         f"{tuple(labels.shape)}")
    return F.cross_entropy(class_logits, labels)


# -- least-squares GAN (CycleGAN's adversarial loss) -------------------------------------------------

def discriminator_loss_least_squares(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Mao et al., "Least Squares Generative Adversarial Networks", ICCV 2017, Eq. 2 with a = 0, b = 1:
    1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2]; CycleGAN's D loss (Zhu et al. 2017, Sec. 4: "(D(x) - 1)^2 and
    D(G(x))^2", averaged as in the authors' code). Scores, no sigmoid; patch maps are averaged."""
    return 0.5 * ((real_scores - 1).pow(2).mean() + fake_scores.pow(2).mean())


def generator_loss_least_squares(fake_scores: torch.Tensor) -> torch.Tensor:
    """The generator's least-squares term E[(D(G(x)) - 1)^2] (Zhu et al. 2017, Sec. 4, as in their code; Mao et
    al.'s Eq. 2 with c = 1 carries a factor 1/2)."""
    return (fake_scores - 1).pow(2).mean()
