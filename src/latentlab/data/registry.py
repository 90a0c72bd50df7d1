"""Dataset registry: what each named dataset is, its fields, which files it needs, where they come from, and
the loader that reads (or generates) it.

Files of dataset X live at ``<data_dir>/X/<relpath>``, the layout of a plain mirror, so
``data_dir`` may point straight at a copy of the offline data folder. A loader is
``load(data_dir, split, lazy) -> {field: numpy array}`` with exactly the fields its entry names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from latentlab.data import multitask, paired, readers, shapes, stacked

DIGIT_CLASSES = [str(i) for i in range(10)]

_MNIST_MIRRORS = (  # yann.lecun.com now answers 403, so it is not listed
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)


@dataclass
class DatasetSpec:
    name: str
    description: str
    files: dict[str, str]  # relpath (inside <data_dir>/<name>/) -> sha256
    urls: dict[str, list[str]]  # relpath -> download URLs, tried in order; [] = use --mirror
    shape: tuple[int, int, int]  # (C, H, W)
    num_classes: int
    citation: str
    load: Callable[[Path, str, bool], dict[str, np.ndarray]] | None = None
    fields: dict[str, str] = field(default_factory=lambda: dict(LABELLED))  # field -> what it holds
    embedded: bool = False
    classes: list[str] = field(default_factory=lambda: list(DIGIT_CLASSES))
    fetch_as: str | None = None  # generated from another dataset's files: the one to fetch


LABELLED = {"image": "uint8 (C, H, W)", "label": "int64 class"}


def _labelled(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    return {"image": x, "label": y}


_MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

DATASETS: dict[str, DatasetSpec] = {
    s.name: s
    for s in [
        DatasetSpec(
            name="digits",
            description="UCI optical digits via scikit-learn (1797 8x8, 80/20 seeded stratified split)",
            files={}, urls={}, shape=(1, 8, 8), num_classes=10, embedded=True,
            load=lambda root, split, lazy: _labelled(*readers.read_digits(split)),
            citation="E. Alpaydin, C. Kaynak. Optical Recognition of Handwritten Digits. UCI ML Repository, 1998.",
        ),
        DatasetSpec(
            name="mnist",
            description="MNIST handwritten digits (60k train / 10k test, 28x28 grey)",
            files=_MNIST_FILES,
            urls={f: [m + f for m in _MNIST_MIRRORS] for f in _MNIST_FILES},
            shape=(1, 28, 28), num_classes=10,
            load=lambda root, split, lazy: _labelled(*readers.read_idx_split(root / "mnist", split)),
            citation="Y. LeCun, L. Bottou, Y. Bengio, P. Haffner. Gradient-based learning applied to "
            "document recognition. Proc. IEEE 86(11), 1998.",
        ),
        DatasetSpec(
            name="usps",
            description="USPS zip codes (7291 train / 2007 test, 16x16 grey; read from usps.h5)",
            files={
                "usps.h5": "734f88c541104a956d88be2c95d03b4a463ffd74ccc2ba9c80841fb98e3fcb36",
                "usps.t.bz2": "a9c0164e797d60142a50604917f0baa604f326e9a689698763793fa5d12ffc4e",
            },
            urls={  # usps.h5 is the Kaggle packaging: no direct public URL, use --mirror
                "usps.h5": [],
                "usps.t.bz2": ["https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass/usps.t.bz2"],
            },
            shape=(1, 16, 16), num_classes=10,
            load=lambda root, split, lazy: _labelled(*readers.read_usps_h5(root / "usps" / "usps.h5", split)),
            citation="J. J. Hull. A database for handwritten text recognition research. IEEE TPAMI 16(5), 1994.",
        ),
        DatasetSpec(
            name="mnist_m",
            description="MNIST-M: MNIST blended over BSDS500 patches (59001 train / 9001 test, 32x32 RGB)",
            # a deterministic repack of the DANN archive: its sha256 is not the original download's,
            # so there is no canonical URL that matches; use --mirror or place the file.
            files={"mnist_m.tar.gz": "397772a7f00e120fba28d851e797a050e204aa507f752e376901df75df630f70"},
            urls={"mnist_m.tar.gz": []},
            shape=(3, 32, 32), num_classes=10,
            load=lambda root, split, lazy: _labelled(*readers.read_mnist_m(root / "mnist_m" / "mnist_m.tar.gz",
                                                                           split, mmap=lazy)),
            citation="Y. Ganin, V. Lempitsky. Unsupervised Domain Adaptation by Backpropagation. ICML 2015.",
        ),
        DatasetSpec(
            name="stacked_mnist",
            description="Stacked-MNIST: three MNIST digits as R, G, B (1,000 modes; generated, seeded)",
            files={}, urls={}, shape=(3, 28, 28), num_classes=1000, fetch_as="mnist",
            load=stacked.load, classes=[f"{i:03d}" for i in range(1000)],
            citation="L. Metz et al. Unrolled Generative Adversarial Networks. ICLR 2017.",
        ),
        DatasetSpec(
            name="shapes",
            description="dSprites-style shapes: 3 shapes x 6 scales x 40 rotations x 16 x 16 positions, 32x32 "
                        "binary, with their factors (60k train / 10k test; generated, seeded)",
            files={}, urls={}, shape=(1, 32, 32), num_classes=3, embedded=True,
            load=shapes.load, fields=dict(shapes.FIELDS), classes=list(shapes.SHAPES),
            citation="L. Matthey, I. Higgins, D. Hassabis, A. Lerchner. dSprites: Disentanglement testing "
                     "Sprites dataset, 2017.",
        ),
        DatasetSpec(
            name="mnist_m_colourise",
            description="Paired MNIST-M colourisation: the grey version of each image -> its colour image",
            files={}, urls={}, shape=(1, 32, 32), num_classes=10, fetch_as="mnist_m",
            load=paired.mnist_m_colourise, fields=dict(paired.PAIRED),
            citation="P. Isola et al. Image-to-Image Translation with Conditional Adversarial Networks. CVPR 2017.",
        ),
        DatasetSpec(
            name="mnist_edges",
            description="Paired MNIST edges -> digit: the Sobel edge map of each image -> the image",
            files={}, urls={}, shape=(1, 28, 28), num_classes=10, fetch_as="mnist",
            load=paired.mnist_edges, fields=dict(paired.PAIRED),
            citation="P. Isola et al. Image-to-Image Translation with Conditional Adversarial Networks. CVPR 2017.",
        ),
        DatasetSpec(
            name="mnist_m_edges",
            description="Paired MNIST-M edges -> colour digit: the Sobel edge map of each image -> the image",
            files={}, urls={}, shape=(1, 32, 32), num_classes=10, fetch_as="mnist_m",
            load=paired.mnist_m_edges, fields=dict(paired.PAIRED),
            citation="P. Isola et al. Image-to-Image Translation with Conditional Adversarial Networks. CVPR 2017.",
        ),
        DatasetSpec(
            name="multi_mnist",
            description="MultiMNIST (Sener & Koltun 2018): two MNIST digits on a 36x36 canvas, top-left and "
                        "bottom-right, resized to 28x28; labels left and right (generated, seeded)",
            files={}, urls={}, shape=(1, 28, 28), num_classes=10, fetch_as="mnist",
            load=multitask.multi_mnist, fields=dict(multitask.MULTI_FIELDS),
            citation="O. Sener, V. Koltun. Multi-Task Learning as Multi-Objective Optimization. NeurIPS 2018.",
        ),
        DatasetSpec(
            name="digit_tasks",
            description="Task bank on MNIST digits (32x32, noisy): class, parity, rotation angle, stroke "
                        "thickness, position, denoising and edge targets (generated, seeded)",
            files={}, urls={}, shape=(1, 32, 32), num_classes=10, fetch_as="mnist",
            load=multitask.digit_tasks, fields=dict(multitask.TASK_FIELDS),
            citation="A. Zamir et al. Taskonomy: Disentangling Task Transfer Learning. CVPR 2018.",
        ),
        DatasetSpec(
            name="digit_pose",
            description="Digits seen in 3-D pose (yaw, pitch, roll) with 5 projected keypoints and their "
                        "visibility (off-canvas or occluded), 32x32 (generated, seeded)",
            files={}, urls={}, shape=(1, 32, 32), num_classes=10, fetch_as="mnist",
            load=multitask.digit_pose, fields=dict(multitask.POSE_FIELDS),
            citation="R. Valle, J. M. Buenaposada, L. Baumela. Multi-task head pose estimation in-the-wild. "
                     "IEEE TPAMI 43(8), 2021.",
        ),
    ]
}
