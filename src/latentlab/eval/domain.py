"""Model selection for domain adaptation without target labels: validators computed from a network's
predictions on unlabelled target images (higher is better), and the rule that reads a run's history.

- ``entropy_score``: minus the mean prediction entropy (Morerio et al., "Minimal-entropy correlation alignment
  for unsupervised deep domain adaptation", ICLR 2018, use it to select).
- ``im_score``: information maximisation, H(mean p) - mean H(p) (Gomes, Krause & Perona, "Discriminative
  clustering by regularized information maximization", NeurIPS 2010; the objective of SHOT): confident and
  diverse predictions.
- ``snd_score``: soft neighbourhood density (Saito et al., "Tune it the right way: unsupervised validation of
  domain adaptation via soft neighborhood density", ICCV 2021): the mean entropy of each target sample's
  softmax over its cosine similarities to the other samples' predictions (temperature 0.05).

Musgrave et al., "Benchmarking validation methods for unsupervised domain adaptation" (arXiv:2208.07360)
compare these on a large set of checkpoints; no validator is reliable everywhere, so the tables report each.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..losses.domain import entropy

VALIDATORS = ("source_val", "entropy", "im", "snd")


def entropy_score(p: torch.Tensor) -> float:
    """-mean_i H(p_i) for target probabilities (N, C)."""
    return -entropy(p.double()).mean().item()


def im_score(p: torch.Tensor) -> float:
    """H(mean_i p_i) - mean_i H(p_i)."""
    p = p.double()
    return (entropy(p.mean(0, keepdim=True))[0] - entropy(p).mean()).item()


def snd_score(p: torch.Tensor, temperature: float = 0.05, chunk: int = 1024) -> float:
    """mean_i H(softmax_j(cos(p_i, p_j) / T)), j != i, over target probabilities (N, C)."""
    z = F.normalize(p.double(), dim=1)
    total = 0.0
    for s in range(0, len(z), chunk):
        sim = z[s:s + chunk] @ z.T / temperature                              # (n, N)
        sim[torch.arange(len(sim)), torch.arange(s, s + len(sim))] = float("-inf")   # not itself
        total += entropy(sim.softmax(1), eps=1e-30).sum().item()
    return total / len(z)


def selected_row(history: torch.Tensor, column: int) -> int:
    """Index of the check with the highest value in ``column`` (the earliest among ties; NaN never wins; -1 when
    there is no check or every value is NaN)."""
    v = history[:, column].double().nan_to_num(float("-inf"))
    return int(torch.argmax(v).item()) if len(v) and v.max() > float("-inf") else -1
