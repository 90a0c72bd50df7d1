"""Domain-adaptation pictures: a 2-D embedding of source and target features, coloured by domain (left) and
by class (right; circles source, crosses target), the figure of Ganin et al. 2016 (Fig. 6) at digit scale."""

from __future__ import annotations

import numpy as np
import torch


def domain_embedding_figure(xy: np.ndarray, labels: torch.Tensor, domains: torch.Tensor,
                            names: tuple[str, str], title: str) -> torch.Tensor:
    """xy (N, 2), labels (N,), domains (N,) in {0: source, 1: target} -> (3, H, W) image."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from .grid import figure_to_tensor
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    dom, lab = domains.numpy(), labels.numpy()
    for d, (name, colour, marker) in enumerate(zip(names, ("tab:blue", "tab:red"), ("o", "x"))):
        s = dom == d
        axes[0].scatter(xy[s, 0], xy[s, 1], s=5, color=colour, marker=marker, label=f"{name} ({'source' if d == 0 else 'target'})",
                        alpha=0.6)
    axes[0].legend(markerscale=3, fontsize=8)
    axes[0].set_title("by domain", fontsize=10)
    cmap = plt.get_cmap("tab10")
    for d, marker in ((0, "o"), (1, "x")):
        for c in np.unique(lab):
            s = (dom == d) & (lab == c)
            axes[1].scatter(xy[s, 0], xy[s, 1], s=5, color=cmap(int(c) % 10), marker=marker, alpha=0.6,
                            label=str(c) if d == 0 else None)
    axes[1].legend(markerscale=3, fontsize=8, ncol=2)
    axes[1].set_title("by class (o source, x target)", fontsize=10)
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return figure_to_tensor(fig)
