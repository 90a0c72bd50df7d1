"""Data layer: labelled image datasets (digits, MNIST, USPS, MNIST-M, idx dirs, image folders),
synthetic 1-D/2-D distributions, and the registry + downloader behind `latentlab data`."""

from latentlab.data.paths import resolve_cache_dir, resolve_data_dir
from latentlab.data.registry import DATASETS, DatasetSpec
from latentlab.data.datasets import SPLITS, ImageDataset, load_dataset, split_train_val
from latentlab.data.synthetic import DISTRIBUTIONS, Distribution, gaussian_1d, get_distribution, is_synthetic
from latentlab.data.download import ensure_verified, fetch, verify

__all__ = [
    "DATASETS", "DatasetSpec", "resolve_cache_dir", "resolve_data_dir",
    "SPLITS", "ImageDataset", "load_dataset", "split_train_val",
    "DISTRIBUTIONS", "Distribution", "gaussian_1d", "get_distribution", "is_synthetic",
    "ensure_verified", "fetch", "verify",
]
