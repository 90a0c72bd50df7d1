"""t-SNE of test descriptors coloured by class (van der Maaten & Hinton 2008, via scikit-learn), and a
TensorBoard projector export of the same descriptors with their images and labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def tsne(features: torch.Tensor, seed: int = 0, perplexity: float = 30.0, pca_dims: int = 50) -> np.ndarray:
    """(N, F) -> (N, 2): PCA to ``pca_dims`` first (standard practice), then exact-init t-SNE."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    x = features.double().numpy()
    if x.shape[1] > pca_dims and len(x) > pca_dims:
        x = PCA(pca_dims, random_state=seed).fit_transform(x)
    perplexity = min(perplexity, (len(x) - 1) / 3)
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)


def embedding_figure(xy: np.ndarray, labels: torch.Tensor, classes: list[str] | None, title: str) -> torch.Tensor:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from .grid import figure_to_tensor
    fig, ax = plt.subplots(figsize=(7, 6))
    lab = labels.numpy()
    cmap = plt.get_cmap("tab10" if lab.max() < 10 else "tab20")
    for c in np.unique(lab):
        s = lab == c
        name = classes[c] if classes and c < len(classes) else str(c)
        ax.scatter(xy[s, 0], xy[s, 1], s=5, color=cmap(int(c) % cmap.N), label=name, alpha=0.8)
    ax.legend(markerscale=3, fontsize=8, loc="best", ncol=2)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    return figure_to_tensor(fig)


def projector_export(logdir: Path, features: torch.Tensor, labels: torch.Tensor, images: torch.Tensor,
                     tag: str, step: int) -> Path:
    """Write descriptors, labels and thumbnails for TensorBoard's projector tab under ``logdir``."""
    from torch.utils.tensorboard import SummaryWriter
    w = SummaryWriter(str(logdir))
    try:
        imgs = images.float() / 255
        if imgs.shape[1] == 1:
            imgs = imgs.expand(-1, 3, -1, -1)
        w.add_embedding(features, metadata=labels.tolist(), label_img=imgs, tag=tag, global_step=step)
    finally:
        w.close()
    return Path(logdir)
