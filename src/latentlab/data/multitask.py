"""Multi-target digit sets generated from MNIST, seeded, for transfer and multi-task learning.

- ``multi_mnist``: Sener & Koltun's MultiMNIST (NeurIPS 2018, their ``multi_mnist_loader.py``): digit i at the
  top-left of a 36x36 canvas (rows/cols 0-27), a randomly drawn digit j at the bottom-right (6-33), the overlap
  taken pixel-wise by max, resized to 28x28 by nearest neighbour. Fields ``label`` (left) and ``label_right``.
  (Their loader draws j with numpy's unseeded global generator and byte-scales each image; here j comes
  from a seeded generator and the canvas keeps MNIST's 0-255 values.)
- ``digit_tasks``: a Taskonomy-style task bank on one image set (Zamir et al., CVPR 2018, at digit scale):
  each MNIST digit thickened by a known number of 3x3 dilations (0, 1, 2), shrunk to 20 px, rotated by a known
  angle in [-60, 60] degrees, placed at a known position on a 32x32 canvas, then Gaussian noise (sd 40/255)
  added. Targets: class, parity, angle (degrees), thickness, position (pixels of the digit's centre), the clean
  image (denoising) and its Sobel edge map.
- ``digit_pose``: the head-pose analogue of Valle et al. (TPAMI 2021) at digit scale: each digit is a plane
  seen by a pinhole camera, rotated by yaw, pitch and roll (degrees), scaled and shifted; five template points
  (the corners of the digit's central 18x18 box and its centre) are projected with it; a point is visible when
  it lands on the canvas and outside a random grey occluding square.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from latentlab.data import readers

SEED = 2018
MULTI_FIELDS = {"image": "uint8 (1, 28, 28) two digits", "label": "int64 left digit", "label_right": "int64 right digit"}
TASK_FIELDS = {"image": "uint8 (1, 32, 32) noisy digit", "label": "int64 class", "parity": "int64 label % 2",
               "angle": "float32 rotation in degrees", "thickness": "int64 3x3 dilations (0-2)",
               "position": "float32 (2,) centre (x, y) in pixels", "target_image": "uint8 (1, 32, 32) clean",
               "edge_image": "uint8 (1, 32, 32) Sobel magnitude of the clean image"}
POSE_FIELDS = {"image": "uint8 (1, 32, 32)", "label": "int64 class",
               "pose": "float32 (3,) yaw, pitch, roll in degrees",
               "keypoints": "float32 (5, 2) (x, y) in pixels", "visible": "float32 (5,) 1 = visible"}
TEMPLATE = torch.tensor([[-9.0, -9.0], [9.0, -9.0], [9.0, 9.0], [-9.0, 9.0], [0.0, 0.0]])  # digit px from centre
POSE_RANGE = (50.0, 30.0, 45.0)      # |yaw|, |pitch|, |roll| at most (degrees)
ANGLE_RANGE = 60.0


def _mnist(data_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    return readers.read_idx_split(Path(data_dir) / "mnist", split)


def _generator(split: str) -> torch.Generator:
    return torch.Generator().manual_seed(SEED + (0 if split == "train" else 1))


# -- MultiMNIST ------------------------------------------------------------------------------------------
def overlay(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) pairs -> (N, 28, 28): left at the top-left, right at the bottom-right of a 36x36
    canvas, max where they overlap, nearest-neighbour resize to 28 (PIL's rule: source = floor((d + 0.5) s))."""
    canvas = np.zeros((len(left), 36, 36), np.uint8)
    canvas[:, 0:28, 0:28] = left
    canvas[:, 6:34, 6:34] = np.maximum(canvas[:, 6:34, 6:34], right)
    src = np.floor((np.arange(28) + 0.5) * 36 / 28).astype(int)
    return canvas[:, src][:, :, src]


def multi_mnist(data_dir: Path, split: str, lazy: bool = False) -> dict[str, np.ndarray]:
    x, y = _mnist(data_dir, split)
    j = torch.randint(len(x), (len(x),), generator=_generator(split)).numpy()   # the right digit of each image
    return {"image": np.ascontiguousarray(overlay(x[:, 0], x[j, 0])[:, None]), "label": y.astype(np.int64),
            "label_right": y[j].astype(np.int64)}


# -- task bank -------------------------------------------------------------------------------------------
def dilate(x: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """float (N, 1, H, W), int (N,) -> each image dilated ``times[i]`` times by a 3x3 max filter."""
    out = x.clone()
    for t in range(1, (int(times.max()) if len(times) else 0) + 1):
        grown = F.max_pool2d(out, 3, 1, 1)
        out = torch.where((times >= t)[:, None, None, None], grown, out)
    return out


def place(x: torch.Tensor, angle: torch.Tensor, centre: torch.Tensor, size: int, digit_px: float) -> torch.Tensor:
    """float (N, 1, h, w) digits -> (N, 1, size, size): rotated by ``angle`` degrees (counter-clockwise on the
    screen), scaled so the digit's ``h`` pixels span ``digit_px``, its centre at ``centre`` (N, 2) pixels (x, y)."""
    h = x.shape[-1]
    a = angle * math.pi / 180
    s = h / digit_px                                          # source pixels per canvas pixel
    grid = (torch.arange(size, dtype=torch.float32) + 0.5)
    gx, gy = grid[None, None, :] - centre[:, 0, None, None], grid[None, :, None] - centre[:, 1, None, None]
    cos, sin = a.cos()[:, None, None], a.sin()[:, None, None]
    # inverse map: canvas offset -> digit offset (rotate by -angle; screen y points down)
    u = s * (cos * gx - sin * gy)
    v = s * (sin * gx + cos * gy)
    g = torch.stack([u / (h / 2), v / (h / 2)], -1)          # normalised source coordinates, (N, size, size, 2)
    return F.grid_sample(x, g, mode="bilinear", padding_mode="zeros", align_corners=False)


def sobel(x: torch.Tensor) -> torch.Tensor:
    """float (N, 1, H, W) -> Sobel gradient magnitude (N, 1, H, W)."""
    k = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    gx = F.conv2d(x, k[None, None], padding=1)
    gy = F.conv2d(x, k.t()[None, None], padding=1)
    return (gx ** 2 + gy ** 2).sqrt()


def render_tasks(digits: torch.Tensor, thickness: torch.Tensor, angle: torch.Tensor, centre: torch.Tensor,
                 noise: torch.Tensor, size: int = 32) -> dict[str, torch.Tensor]:
    """uint8 (N, 1, 28, 28) digits and their factors -> noisy image, clean image and edge map (uint8)."""
    x = dilate(digits.float() / 255, thickness)
    clean = place(x, angle, centre, size, digit_px=20.0).clamp(0, 1)            # (N, 1, size, size)
    edges = (sobel(clean) / 4).clamp(0, 1)                                     # |grad| <= 4 * sqrt(2) at a step
    noisy = (clean + noise).clamp(0, 1)
    q = lambda t: (t * 255).round().to(torch.uint8)
    return {"image": q(noisy), "target_image": q(clean), "edge_image": q(edges)}


def _cached(make):
    """The last set made by ``make`` kept in memory (a benchmark builds many runs on one set); copies out."""
    kept = functools.lru_cache(maxsize=2)(lambda data_dir, split, n: make(Path(data_dir), split, n=n))

    @functools.wraps(make)
    def load(data_dir: Path, split: str, lazy: bool = False, n: int | None = None) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in kept(str(Path(data_dir).resolve()), split, n).items()}
    return load


@_cached
def digit_tasks(data_dir: Path, split: str, lazy: bool = False, n: int | None = None) -> dict[str, np.ndarray]:
    x, y = _mnist(data_dir, split)
    x, y = torch.from_numpy(np.array(x[:n])), torch.from_numpy(np.array(y[:n]))
    g = _generator(split)
    n = len(x)
    thickness = torch.randint(3, (n,), generator=g)
    angle = (torch.rand(n, generator=g) * 2 - 1) * ANGLE_RANGE
    centre = 10 + 12 * torch.rand(n, 2, generator=g)                           # centres in [10, 22] px
    noise = torch.randn(n, 1, 32, 32, generator=g) * (40 / 255)
    out = {}
    for i in range(0, n, 10_000):                                              # bounded memory
        sl = slice(i, i + 10_000)
        for k, v in render_tasks(x[sl], thickness[sl], angle[sl], centre[sl], noise[sl]).items():
            out.setdefault(k, []).append(v)
    out = {k: torch.cat(v).numpy() for k, v in out.items()}
    return {**out, "label": y.numpy().astype(np.int64), "parity": (y % 2).numpy().astype(np.int64),
            "angle": angle.numpy(), "thickness": thickness.numpy().astype(np.int64), "position": centre.numpy()}


# -- pose, landmarks, visibility ---------------------------------------------------------------------------
def rotation(yaw: torch.Tensor, pitch: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """Angles in degrees (N,) -> (N, 3, 3) = Rz(roll) Ry(yaw) Rx(pitch)."""
    y, p, r = (t * math.pi / 180 for t in (yaw, pitch, roll))
    o, z = torch.ones_like(y), torch.zeros_like(y)
    rx = torch.stack([o, z, z, z, p.cos(), -p.sin(), z, p.sin(), p.cos()], -1).view(-1, 3, 3)
    ry = torch.stack([y.cos(), z, y.sin(), z, o, z, -y.sin(), z, y.cos()], -1).view(-1, 3, 3)
    rz = torch.stack([r.cos(), -r.sin(), z, r.sin(), r.cos(), z, z, z, o], -1).view(-1, 3, 3)
    return rz @ ry @ rx


def homography(pose: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, size: int = 32,
               distance: float = 60.0) -> torch.Tensor:
    """(N, 3) yaw/pitch/roll, (N,) scale, (N, 2) shift in px -> (N, 3, 3) mapping digit-plane points (u, v, 1)
    (pixels from the digit's centre) to canvas pixels: a plane rotated by R at ``distance`` from a pinhole of
    focal length ``distance * scale`` (so a frontal digit is scaled by ``scale``)."""
    R = rotation(pose[:, 0], pose[:, 1], pose[:, 2])
    n = len(pose)
    K = torch.zeros(n, 3, 3)
    K[:, 0, 0] = K[:, 1, 1] = distance * scale
    K[:, 0, 2], K[:, 1, 2] = size / 2 + shift[:, 0], size / 2 + shift[:, 1]
    K[:, 2, 2] = 1
    t = torch.tensor([0.0, 0.0, distance]).expand(n, 3)
    return K @ torch.stack([R[:, :, 0], R[:, :, 1], t], -1)                   # K [r1 r2 t]


def project(H: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
    """(N, 3, 3), (K, 2) or (N, K, 2) plane points -> (N, K, 2) canvas pixels."""
    pts = pts.expand(len(H), *pts.shape[-2:])
    q = torch.cat([pts, torch.ones_like(pts[..., :1])], -1) @ H.transpose(1, 2)   # (N, K, 3)
    return q[..., :2] / q[..., 2:]


def warp(digits: torch.Tensor, H: torch.Tensor, size: int = 32) -> torch.Tensor:
    """float (N, 1, 28, 28) -> (N, 1, size, size): canvas pixel centres mapped back through H^-1 and sampled."""
    c = torch.arange(size, dtype=torch.float32) + 0.5
    gy, gx = torch.meshgrid(c, c, indexing="ij")
    canvas = torch.stack([gx, gy], -1).view(1, -1, 2)                         # (1, size*size, 2)
    uv = project(torch.linalg.inv(H), canvas)                                 # plane px from the centre
    g = (uv / 14).view(len(H), size, size, 2)                                 # 28 px digit -> [-1, 1]
    return F.grid_sample(digits, g, mode="bilinear", padding_mode="zeros", align_corners=False)


def visibility(kp: torch.Tensor, box: torch.Tensor, size: int = 32) -> torch.Tensor:
    """(N, K, 2) keypoints, (N, 4) occluder x0, y0, x1, y1 (px; empty when x1 <= x0) -> (N, K) 1 = visible:
    on the canvas and not under the occluder."""
    on = ((kp >= 0) & (kp < size)).all(-1)
    x, y = kp[..., 0], kp[..., 1]
    under = (x >= box[:, None, 0]) & (x < box[:, None, 2]) & (y >= box[:, None, 1]) & (y < box[:, None, 3])
    return (on & ~under).float()


@_cached
def digit_pose(data_dir: Path, split: str, lazy: bool = False, n: int | None = None) -> dict[str, np.ndarray]:
    x, y = _mnist(data_dir, split)
    x, y = torch.from_numpy(np.array(x[:n])).float() / 255, torch.from_numpy(np.array(y[:n]))
    g = _generator(split)
    n = len(x)
    pose = (torch.rand(n, 3, generator=g) * 2 - 1) * torch.tensor(POSE_RANGE)
    scale = 0.8 + 0.3 * torch.rand(n, generator=g)
    shift = (torch.rand(n, 2, generator=g) * 2 - 1) * 6
    H = homography(pose, scale, shift)
    kp = project(H, TEMPLATE)                                                 # (N, 5, 2)
    xy0 = torch.rand(n, 2, generator=g) * 24
    box = torch.cat([xy0, xy0 + 10], 1) * (torch.rand(n, 1, generator=g) < 0.5)   # half the images occluded
    grey_level = 0.25 + 0.5 * torch.rand(n, generator=g)
    img = torch.cat([warp(x[i:i + 10_000], H[i:i + 10_000]) for i in range(0, n, 10_000)])
    c = torch.arange(32, dtype=torch.float32) + 0.5
    inside = ((c[None, None, :] >= box[:, 0, None, None]) & (c[None, None, :] < box[:, 2, None, None])
              & (c[None, :, None] >= box[:, 1, None, None]) & (c[None, :, None] < box[:, 3, None, None]))
    img = torch.where(inside[:, None], grey_level[:, None, None, None], img)
    return {"image": (img.clamp(0, 1) * 255).round().to(torch.uint8).numpy(), "label": y.numpy().astype(np.int64),
            "pose": pose.numpy(), "keypoints": kp.numpy().astype(np.float32),
            "visible": visibility(kp, box).numpy()}


# -- the tasks each set defines ----------------------------------------------------------------------------
@dataclass(frozen=True)
class TaskSpec:
    """One prediction task on a dataset: the field it reads, the kind of its target (``losses.multitask``'s
    ``task_loss``), the number of outputs (or the image shape), the regression scale (targets are divided by it
    for the loss), the mask field (keypoints: which points count) and its metric's name and direction."""
    field: str
    kind: str
    outputs: int | tuple[int, int, int]
    metric: str
    higher_is_better: bool
    scale: float = 1.0
    mask: str | None = None


TASKS: dict[str, dict[str, TaskSpec]] = {
    "multi_mnist": {"left": TaskSpec("label", "class", 10, "accuracy %", True),
                    "right": TaskSpec("label_right", "class", 10, "accuracy %", True)},
    "digit_tasks": {"class": TaskSpec("label", "class", 10, "accuracy %", True),
                    "parity": TaskSpec("parity", "class", 2, "accuracy %", True),
                    "angle": TaskSpec("angle", "regress", 1, "MAE degrees", False, scale=ANGLE_RANGE),
                    "thickness": TaskSpec("thickness", "class", 3, "accuracy %", True),
                    "position": TaskSpec("position", "regress", 2, "MAE px", False, scale=16.0),
                    "denoise": TaskSpec("target_image", "image", (1, 32, 32), "L1 x 255", False),
                    "edges": TaskSpec("edge_image", "image", (1, 32, 32), "L1 x 255", False)},
    "digit_pose": {"pose": TaskSpec("pose", "regress", 3, "MAE degrees", False, scale=45.0),
                   "landmarks": TaskSpec("keypoints", "keypoints", 10, "NME %", False, scale=16.0, mask="visible"),
                   "visibility": TaskSpec("visible", "binary", 5, "accuracy %", True),
                   "class": TaskSpec("label", "class", 10, "accuracy %", True)},
}
