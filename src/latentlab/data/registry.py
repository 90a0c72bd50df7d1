"""Dataset registry: what each named dataset is, which files it needs, where they come from.

Files of dataset X live at ``<data_dir>/X/<relpath>``, the layout of a plain mirror, so
``data_dir`` may point straight at a copy of the offline data folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

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
    embedded: bool = False
    classes: list[str] = field(default_factory=lambda: list(DIGIT_CLASSES))


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
            citation="E. Alpaydin, C. Kaynak. Optical Recognition of Handwritten Digits. UCI ML Repository, 1998.",
        ),
        DatasetSpec(
            name="mnist",
            description="MNIST handwritten digits (60k train / 10k test, 28x28 grey)",
            files=_MNIST_FILES,
            urls={f: [m + f for m in _MNIST_MIRRORS] for f in _MNIST_FILES},
            shape=(1, 28, 28), num_classes=10,
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
            citation="Y. Ganin, V. Lempitsky. Unsupervised Domain Adaptation by Backpropagation. ICML 2015.",
        ),
    ]
}


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """Argument, else $LATENTLAB_DATA, else ~/.cache/latentlab/data."""
    d = data_dir or os.environ.get("LATENTLAB_DATA") or Path.home() / ".cache" / "latentlab" / "data"
    return Path(d).expanduser()


def resolve_cache_dir() -> Path:
    """$LATENTLAB_CACHE, else ~/.cache/latentlab/cache (decoded-array caches, safe to delete)."""
    d = os.environ.get("LATENTLAB_CACHE") or Path.home() / ".cache" / "latentlab" / "cache"
    return Path(d).expanduser()
