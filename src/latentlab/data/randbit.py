"""RandBit: a few easy bits shared by both views, to measure feature suppression.

Chen, Luo & Li, "Intriguing properties of contrastive losses", NeurIPS 2021, Sec. 4
(https://arxiv.org/abs/2011.02803): an image is given n extra channels carrying a random n-bit integer,
the same in both augmented views. Matching the views by those bits is trivial, and a few of them were
enough to stop SimCLR learning the image's object features. Here each extra channel is constant, 0 or 1,
one bit each, so crops, flips and rotations leave it intact. The integer is a hash of the image's uint8
pixels: both views of an image get the same bits, any image (train, validation, test) gets bits that
carry no information about its label, and nothing is stored.
"""

from __future__ import annotations

import torch

RANDBIT_HELP = ("RandBit: n constant input channels spelling a random n-bit integer per image, the same "
                "in every view (0: off)")
_WEIGHTS: dict[int, torch.Tensor] = {}


def image_bits(x_uint8: torch.Tensor, n: int) -> torch.Tensor:
    """(B, C, H, W) uint8 images -> (B, n) float bits in {0, 1}: n bits of a hash of each image's pixels."""
    if x_uint8.dtype != torch.uint8:
        raise ValueError(f"image_bits hashes uint8 images, got {x_uint8.dtype}")
    if not 0 <= n <= 32:
        raise ValueError(f"n must be in 0..32 bits, got {n}")
    flat = x_uint8.flatten(1).to(torch.int64).cpu()                          # (B, D)
    d = flat.shape[1]
    if d not in _WEIGHTS:                                                    # fixed random weights per size
        _WEIGHTS[d] = torch.randint(1, 2**20, (d,), generator=torch.Generator().manual_seed(2021))
    h = (flat * _WEIGHTS[d]).sum(1)                                          # < 2^28 * D: no overflow
    h = (h ^ (h >> 17)) * 0x2545F4914F6CDD1D                                 # mix (int64 wrap-around)
    bits = (h[:, None] >> (torch.arange(n) + 24)) & 1                       # (B, n) from the middle bits
    return bits.to(torch.float32).to(x_uint8.device)


def with_bits(x: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) float images and (B, n) bits -> (B, C + n, H, W) with n constant channels appended."""
    b, _, h, w = x.shape
    planes = bits.to(x.dtype)[:, :, None, None].expand(b, bits.shape[1], h, w)
    return torch.cat([x, planes], 1)
