"""Multi-task losses and the ways to combine them: one function per term, named after its paper.

- ``task_loss``: the loss of one task's prediction, per sample, by the kind of its target.
- ``uncertainty_weighted``: Kendall, Gal & Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses for
  Scene Geometry and Semantics", CVPR 2018 (arXiv:1705.07115), eq. 7 with s = log sigma^2.
- ``gradnorm_loss`` / ``gradnorm_renormalise``: Chen et al., "GradNorm: Gradient Normalization for Adaptive
  Loss Balancing in Deep Multitask Networks", ICML 2018 (arXiv:1711.02257), eq. 1-2.
- ``min_norm_weights`` / ``gradient_normalizers``: the min-norm point of the convex hull of the task gradients
  (Desideri's MGDA) solved as in Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization",
  NeurIPS 2018 (arXiv:1810.04650), Alg. 2 (closed form for two tasks, Frank-Wolfe beyond); MGDA-UB applies
  it to the gradients of the shared representation z instead of the shared weights.
- ``pcgrad``: Yu et al., "Gradient Surgery for Multi-Task Learning", NeurIPS 2020 (arXiv:2001.06782), Alg. 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

KINDS = ("class", "binary", "regress", "image", "keypoints")


def task_loss(kind: str, pred: torch.Tensor, target: torch.Tensor, scale: float = 1.0,
              mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample loss (B,) of one task.

    class: cross-entropy of logits (B, C) against int labels (B,); binary: BCE of logits (B, K) against 0/1
    targets, mean over K; regress: squared error of pred (B, D) against target / scale, mean over D; image: L1
    of pred (B, C, H, W) in [0, 1] against a uint8 target / 255; keypoints: squared error of pred (B, 2K)
    against (B, K, 2) / scale over the points where ``mask`` (B, K) is 1 (mean over visible coordinates).
    """
    if kind == "class":
        return F.cross_entropy(pred, target, reduction="none")
    if kind == "binary":
        return F.binary_cross_entropy_with_logits(pred, target.to(pred.dtype), reduction="none").mean(1)
    if kind == "regress":
        t = target.to(pred.dtype).reshape(len(pred), -1) / scale
        return ((pred - t) ** 2).mean(1)
    if kind == "image":
        return (pred - target.to(pred.dtype) / 255).abs().flatten(1).mean(1)
    if kind == "keypoints":
        t = target.to(pred.dtype).reshape(len(pred), -1, 2) / scale              # (B, K, 2)
        m = torch.ones_like(t[..., 0]) if mask is None else mask.to(pred.dtype)  # (B, K)
        se = ((pred.reshape_as(t) - t) ** 2).sum(-1) * m
        return se.sum(1) / (2 * m.sum(1)).clamp_min(1)
    raise ValueError(f"unknown task kind {kind!r} (known: {', '.join(KINDS)})")


def uncertainty_weighted(losses: torch.Tensor, log_vars: torch.Tensor) -> torch.Tensor:
    """Kendall et al.'s eq. 7 with s_i = log sigma_i^2 learned: sum_i L_i / (2 exp(s_i)) + s_i / 2.

    For a fixed L_i its minimum over s_i is at exp(s_i) = L_i (every task's weighted loss tends to 1/2). The
    paper's classification form (1 / sigma^2 instead of 1 / 2 sigma^2) differs by a constant factor of 2 in
    sigma^2; this is the form most implementations use for every task (LibMTL's UW, for one).
    """
    if losses.shape != log_vars.shape:
        raise ValueError(f"losses {tuple(losses.shape)} and log_vars {tuple(log_vars.shape)} differ")
    return (losses / (2 * log_vars.exp()) + log_vars / 2).sum()


def gradnorm_loss(grad_norms: torch.Tensor, loss_ratios: torch.Tensor, alpha: float) -> torch.Tensor:
    """GradNorm's L_grad = sum_i |G_i - mean(G) * r_i^alpha| (eq. 2), with G_i = ||grad_W w_i L_i|| the
    weighted task gradient's norm at the last shared layer W, r_i = L~_i / mean(L~) the relative inverse
    training rate (L~_i = L_i(t) / L_i(0)). The target is a constant (no gradient), the norms carry the w_i."""
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    r = loss_ratios / loss_ratios.mean()
    target = (grad_norms.mean() * r ** alpha).detach()
    return (grad_norms - target).abs().sum()


@torch.no_grad()
def gradnorm_renormalise(weights: torch.Tensor) -> None:
    """In place: w_i <- T w_i / sum_j w_j (the paper's renormalisation after each update; kept positive)."""
    weights.clamp_(min=1e-4)
    weights.mul_(len(weights) / weights.sum())


def gradient_normalizers(grads: torch.Tensor, losses: torch.Tensor, kind: str) -> torch.Tensor:
    """Sener & Koltun's gradient normalisations before the min-norm solve (their ``normalization_type``):
    ``l2``: ||g_i||, ``loss``: L_i, ``loss+``: L_i ||g_i||, ``none``: 1. grads (T, D), losses (T,) -> (T,)."""
    norms = grads.norm(dim=1)
    table = {"l2": norms, "loss": losses, "loss+": losses * norms, "none": torch.ones_like(losses)}
    if kind not in table:
        raise ValueError(f"unknown normalization {kind!r} (known: {', '.join(table)})")
    return table[kind].clamp_min(1e-12)


def _min_norm_2(v11: torch.Tensor, v12: torch.Tensor, v22: torch.Tensor) -> torch.Tensor:
    """argmin_c ||c x1 + (1 - c) x2||^2 over c in [0, 1] from the inner products (closed form)."""
    denom = v11 + v22 - 2 * v12
    if denom <= 1e-20:
        return torch.tensor(0.5, dtype=v11.dtype)
    return ((v22 - v12) / denom).clamp(0, 1)


def min_norm_weights(grads: torch.Tensor, iters: int = 250, tol: float = 1e-6) -> torch.Tensor:
    """grads (T, D) -> weights a (T,) on the simplex minimising ||sum_i a_i g_i||.

    T = 2: the closed form a_1 = clip(<g2 - g1, g2> / ||g1 - g2||^2, 0, 1). T > 2: start from the best pair
    and run Frank-Wolfe with exact line search on the Gram matrix (Sener & Koltun, Alg. 2)."""
    g = grads.double()
    T = len(g)
    if T == 1:
        return torch.ones(1, dtype=grads.dtype)
    M = g @ g.T                                                               # (T, T) Gram matrix
    best, sol = None, None
    for i in range(T):
        for j in range(i + 1, T):
            c = _min_norm_2(M[i, i], M[i, j], M[j, j])
            cost = c * c * M[i, i] + 2 * c * (1 - c) * M[i, j] + (1 - c) ** 2 * M[j, j]
            if best is None or cost < best:
                best, sol = cost, torch.zeros(T, dtype=g.dtype)
                sol[i], sol[j] = c, 1 - c
    if T > 2:
        for _ in range(iters):
            t = int(torch.argmin(M @ sol))                                    # the vertex of steepest descent
            v11, v12, v22 = sol @ M @ sol, sol @ M[:, t], M[t, t]
            c = _min_norm_2(v11, v12, v22)                                    # line search sol -> e_t
            new = c * sol
            new[t] += 1 - c
            if (new - sol).abs().sum() < tol:
                sol = new
                break
            sol = new
    return sol.to(grads.dtype)


def pcgrad(grads: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Yu et al.'s projection of conflicting gradients: for each task i, for the other tasks j in a random
    order, if g_i . g_j < 0 then g_i <- g_i - (g_i . g_j / ||g_j||^2) g_j (against the original g_j); returns
    the sum of the projected gradients. grads (T, D) -> (D,)."""
    out = grads.clone()
    T = len(grads)
    for i in range(T):
        order = torch.randperm(T, generator=generator).tolist()
        for j in order:
            if j == i:
                continue
            dot = out[i] @ grads[j]
            if dot < 0:
                out[i] -= dot / (grads[j] @ grads[j]).clamp_min(1e-20) * grads[j]
    return out.sum(0)
