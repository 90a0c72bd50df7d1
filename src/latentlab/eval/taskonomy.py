"""Task relations from measured transfers: Taskonomy's AHP affinities and Standley et al.'s task grouping.

- ``ahp_affinities``: Zamir et al., "Taskonomy: Disentangling Task Transfer Learning", CVPR 2018, Sec. 3.3:
  for one target task, the sources are compared image by image: w_ij = the share of test images on which
  source i's readout has a lower loss than source j's (clipped to [0.001, 0.999]); the pairwise ratio matrix
  W'_ij = w_ij / w_ji is read by the Analytic Hierarchy Process, its principal eigenvector (normalised to sum
  1) giving each source's affinity for the target. This is ordinal: it is immune to the scale of each loss.
- ``predict_group`` / ``best_grouping``: Standley et al., "Which Tasks Should Be Learned Together in
  Multi-task Learning?", ICML 2020, Sec. 3.2-3.3: a task's performance in a network of several tasks is
  predicted by the mean of its performance in the pair networks with each of the others (their higher-order
  approximation); a solution is a set of networks (groups of tasks, which may overlap) within the budget, each
  task served by its best network; the best solution minimises the total predicted loss (exhaustive search
  here: there are few tasks).
"""

from __future__ import annotations

import itertools

import torch


def win_rates(per_sample: dict[str, torch.Tensor]) -> torch.Tensor:
    """{source: (N,) losses on the same images} -> (S, S) share of images where source i beats j (ties: 1/2)."""
    L = torch.stack([v.double() for v in per_sample.values()])                 # (S, N)
    less = (L[:, None, :] < L[None, :, :]).double().mean(-1)
    ties = (L[:, None, :] == L[None, :, :]).double().mean(-1)
    return less + ties / 2


def ahp_affinities(per_sample: dict[str, torch.Tensor], clip: float = 1e-3) -> dict[str, float]:
    """Each source's AHP affinity for one target (the principal eigenvector of W'_ij = w_ij / w_ji, sum 1)."""
    w = win_rates(per_sample).clamp(clip, 1 - clip)
    ratio = w / w.T                                                             # W'_ij, reciprocal: W'_ji = 1 / W'_ij
    vals, vecs = torch.linalg.eig(ratio)
    v = vecs[:, vals.real.argmax()].real
    v = v / v.sum()                                                             # Perron vector: one sign
    return {s: float(x) for s, x in zip(per_sample, v)}


def predict_group(task: str, group: tuple[str, ...], single: dict[str, float],
                  pairs: dict[frozenset, dict[str, float]]) -> float:
    """Predicted loss of ``task`` in a network learning ``group`` (which contains it): its single-task loss
    alone, its pair loss with one other, else the mean over its pairs with each other member."""
    others = [u for u in group if u != task]
    if not others:
        return single[task]
    return sum(pairs[frozenset((task, u))][task] for u in others) / len(others)


def best_grouping(tasks: list[str], single: dict[str, float], pairs: dict[frozenset, dict[str, float]],
                  networks: int) -> tuple[list[tuple[str, ...]], float]:
    """The set of at most ``networks`` groups (non-empty task subsets, overlap allowed) covering every task
    that minimises the sum over tasks of its best predicted loss among the groups holding it."""
    subsets = [g for r in range(1, len(tasks) + 1) for g in itertools.combinations(tasks, r)]
    best, best_cost = None, float("inf")
    for k in range(1, networks + 1):
        for groups in itertools.combinations(subsets, k):
            covered = set().union(*groups)
            if covered != set(tasks):
                continue
            cost = sum(min(predict_group(t, g, single, pairs) for g in groups if t in g) for t in tasks)
            if cost < best_cost - 1e-12:
                best, best_cost = list(groups), cost
    return best, best_cost
