"""Make the data folder that travels to a lent GPU machine (its whole tree is limited to 64 MiB).

    python -m benchmarks._gpu_data .gpudata-mnistm            # MNIST-M: first 20,000 train + all test
    python -m benchmarks._gpu_data .gpudata --mnist           # MNIST (12 MB): copied whole

The MNIST-M archive (128 MB) is rewritten with the first ``--train`` training images (by file name, the
order the reader uses) and every test image, in the layout ``data/readers.py`` reads; the label files keep
the matching lines. Then, on the machine, ``LATENTLAB_DATA=$PWD/<folder>``.
"""

from __future__ import annotations

import argparse
import io
import shutil
import tarfile
from pathlib import Path

from .common import data_dir


def mnist_m_subset(src: Path, dst: Path, n_train: int) -> int:
    """Write ``dst`` (tar.gz) from ``src`` with the first ``n_train`` train PNGs; returns its size in bytes."""
    with tarfile.open(src, "r:gz") as t:
        members = {m.name: m for m in t.getmembers() if m.isfile()}
        train = sorted(n for n in members if "/mnist_m_train/" in n)[:n_train]
        keep = {Path(n).name for n in train}
        test = sorted(n for n in members if "/mnist_m_test/" in n)
        dst.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(dst, "w:gz", compresslevel=9) as out:
            for name in [*test, *train]:
                out.addfile(members[name], t.extractfile(members[name]))
            for name, m in members.items():
                if name.endswith("_labels.txt"):
                    lines = t.extractfile(m).read().decode().splitlines(keepends=True)
                    if "train" in Path(name).name:
                        lines = [ln for ln in lines if ln.split() and ln.split()[0] in keep]
                    data = "".join(lines).encode()
                    info = tarfile.TarInfo(name)
                    info.size, info.mtime = len(data), m.mtime
                    out.addfile(info, io.BytesIO(data))
    return dst.stat().st_size


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks._gpu_data")
    p.add_argument("out", type=Path, help="data folder to write (ignore it in .git/info/exclude and carry it)")
    p.add_argument("--train", type=int, default=20_000, help="MNIST-M training images to keep")
    p.add_argument("--mnist", action="store_true", help="copy MNIST instead")
    a = p.parse_args(argv)
    src = Path(data_dir())
    if a.mnist:
        shutil.copytree(src / "mnist", a.out / "mnist", dirs_exist_ok=True)
        print(f"wrote {a.out / 'mnist'}")
        return 0
    size = mnist_m_subset(src / "mnist_m" / "mnist_m.tar.gz", a.out / "mnist_m" / "mnist_m.tar.gz", a.train)
    print(f"wrote {a.out / 'mnist_m' / 'mnist_m.tar.gz'} ({size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
