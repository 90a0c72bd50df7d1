"""Pairs of views of one image under a known camera motion, for learning to see by moving.

Agrawal, Carreira & Malik, "Learning to see by moving", ICCV 2015 (arXiv:1505.01596), Sec. 3.4: on MNIST the
"egomotion" between two views is a translation in x and y and a rotation about the image centre, each binned into
classes and predicted by the network. The ranges here (whole-pixel shifts in [-3, 3]: 7 classes per axis;
rotations in [-30, 30) degrees in 20 bins of 3 degrees) are those of a public re-implementation of the paper's
MNIST experiment (the paper's own text was not available to check them).

The first view is the image, the second the image rotated by theta counter-clockwise about the centre, then
shifted by (tx, ty) pixels (x right, y down): dst = R(theta) (src - c) + c + t, bilinear, zeros outside.
"""

from __future__ import annotations

import torch

AXES = ("tx", "ty", "rotation")


def motion_matrix(angle: torch.Tensor, tx: torch.Tensor, ty: torch.Tensor, size: int) -> torch.Tensor:
    """(B,) degrees and pixels -> (B, 2, 3) source -> destination affine matrices in pixel coordinates."""
    from kornia.geometry.transform import get_rotation_matrix2d
    b = len(angle)
    c = torch.full((b, 2), (size - 1) / 2, dtype=torch.float32)
    m = get_rotation_matrix2d(c, angle.float(), torch.ones(b, 2, dtype=torch.float32))
    m[:, 0, 2] += tx.float()
    m[:, 1, 2] += ty.float()
    return m


def warp(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """float (B, C, S, S) moved by (B, 2, 3) matrices: dst(p) = src(M^-1 p)."""
    from kornia.geometry.transform import warp_affine
    return warp_affine(x, m.to(x.device, x.dtype), tuple(x.shape[-2:]), align_corners=True)


def motion_pairs(images: torch.Tensor, max_shift: int = 3, max_angle: float = 30.0, angle_bins: int = 20,
                 generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """uint8 (B, C, S, S) -> {"first", "second": uint8 views, "labels": (B, 3) class per axis (tx, ty, rotation),
    "motion": (B, 3) float (tx px, ty px, theta degrees)}."""
    b, s = len(images), images.shape[-1]
    tx = torch.randint(-max_shift, max_shift + 1, (b,), generator=generator)
    ty = torch.randint(-max_shift, max_shift + 1, (b,), generator=generator)
    width = 2 * max_angle / angle_bins
    rbin = torch.randint(angle_bins, (b,), generator=generator)
    theta = -max_angle + width * (rbin + torch.rand(b, generator=generator))      # uniform within its bin
    second = warp(images.float(), motion_matrix(theta, tx, ty, s)).round().clamp(0, 255).to(torch.uint8)
    labels = torch.stack([tx + max_shift, ty + max_shift, rbin], 1)
    return {"first": images, "second": second, "labels": labels,
            "motion": torch.stack([tx.float(), ty.float(), theta], 1)}
