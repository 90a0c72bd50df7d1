"""Image-to-image translation metrics (Pix2Pix, CycleGAN): pixel agreement with paired targets, and readings of
the translations by the target domain's frozen feature network.

- ``l1``: mean absolute error in [0, 1] intensity (Pix2Pix reports the L1 term it trains on, on [-1, 1]: twice
  this); ``psnr``: 10 log10(1 / MSE) per image, averaged over images (data range 1); ``ssim``: Wang et al. 2004,
  11x11 Gaussian window, sigma 1.5 (torchmetrics), averaged over images.
- ``fid`` / ``kid``: translations against real images of the target domain, in the feature network's space
  (FID only from ``gan_metrics.FID_MIN_SAMPLES`` images).
- ``label_accuracy``: share of translations the target domain's classifier reads as the source image's class
  (does a translated "3" stay a 3); ``real_accuracy``: the same classifier on the real targets, its ceiling.

Everything here reads frozen networks; nothing is trained.
"""

from __future__ import annotations

import torch

from . import gan_metrics as gm
from .generative import quantise  # noqa: F401  (translations are scored at 8 bits, like the real images)


def pixel_metrics(fake: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """fake, target: (N, C, H, W) in [0, 1] -> l1, psnr (dB), ssim, each averaged over the N images."""
    from torchmetrics.functional.image import structural_similarity_index_measure as ssim
    fake, target = fake.double().clamp(0, 1), target.double()
    mse = (fake - target).pow(2).flatten(1).mean(1).clamp_min(1e-10)            # (N,)
    return {"l1": float((fake - target).abs().mean()),
            "psnr": float((10 * torch.log10(1 / mse)).mean()),
            "ssim": float(ssim(fake.float(), target.float(), data_range=1.0, reduction="elementwise_mean"))}


def read(featurenet, x01: torch.Tensor, device=None, chunk: int = 1000):
    """(features, predicted class, confidence) of the frozen feature network, in chunks."""
    device = device or next(featurenet.model.parameters()).device
    out = [featurenet.read(x01[i:i + chunk].to(device)) for i in range(0, len(x01), chunk)]
    return tuple(torch.cat([o[j].cpu() for o in out]) for j in range(3))


@torch.no_grad()
def domain_metrics(featurenet, fake: torch.Tensor, real: torch.Tensor, labels: torch.Tensor | None = None,
                   real_labels: torch.Tensor | None = None, seed: int = 0) -> dict[str, float]:
    """Readings of translations ``fake`` (N, C, H, W) in [0, 1] beside real target-domain images ``real``:
    FID (when both have >= FID_MIN_SAMPLES), KID, with ``labels`` (the source images' classes) the share of
    translations read as their class (``label_accuracy``), with ``real_labels`` the classifier's accuracy on
    the real images (``real_accuracy``, its ceiling)."""
    ff, pf, _ = read(featurenet, fake)
    fr, pr, _ = read(featurenet, real)
    m: dict[str, float] = {}
    if min(len(ff), len(fr)) >= gm.FID_MIN_SAMPLES:
        m["fid"] = gm.fid(fr, ff)
    m["kid"], m["kid_std"], _ = gm.kid(fr, ff, seed=seed)
    if labels is not None:
        m["label_accuracy"] = float((pf == labels.cpu()).double().mean())
    if real_labels is not None:
        m["real_accuracy"] = float((pr == real_labels.cpu()).double().mean())
    return m
