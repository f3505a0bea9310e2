"""The named data sets, registered by name in :data:`NAMED_DATASETS`.

Adding one means writing an object with ``name``, ``description``, ``info(data_dir)`` and
``load(...)`` (see :class:`NamedDataset`) and adding it to the registry; nothing else changes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from vaekit.errors import DataError
from vaekit.data.dataset import Dataset, DatasetInfo, Split
from vaekit.data.download import Progress
from vaekit.data.dsprites import DSPRITES, DSPRITES_SMALL
from vaekit.data.idx import REPAIR_HINT, read_images_and_labels
from vaekit.data.sources import IdxSource, locate, obtain
from vaekit.data.splits import seeded_splits, split_indices
from vaekit.data.tables import BREAST_CANCER, WINE

DIGIT_NAMES = tuple(str(digit) for digit in range(10))


class NamedDataset(Protocol):
    name: str
    description: str

    def info(self, data_dir: str | os.PathLike | None = None) -> DatasetInfo: ...

    def load(self, *, data_dir: str | os.PathLike | None, seed: int, val_fraction: float,
             test_fraction: float, download: bool, progress: Progress | None,
             val_size: int | None = None) -> Dataset: ...


@dataclass(frozen=True)
class IdxDataset:
    """An MNIST-like data set: four IDX files, an official test set, 8-bit grayscale images.

    The official test files give ``test``; ``val`` is a seeded random ``val_fraction`` of the
    official training files (or ``val_size`` of them) and ``train`` the rest. ``test_fraction`` does not apply.
    """

    description: str
    source: IdxSource
    class_names: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.source.name

    def info(self, data_dir: str | os.PathLike | None = None) -> DatasetInfo:
        found = locate(self.source, data_dir)
        if found is not None:
            return DatasetInfo(self.name, self.description, True, found[1])
        urls = self.source.download_urls()
        where = f"download from {urls[0]}" if urls else "not found: pass --data-dir DIR"
        return DatasetInfo(self.name, self.description, False, where)

    def load(self, *, data_dir: str | os.PathLike | None = None, seed: int = 0, val_fraction: float = 0.1,
             test_fraction: float = 0.1, download: bool = True, progress: Progress | None = None,
             val_size: int | None = None) -> Dataset:
        files, where = obtain(self.source, data_dir=data_dir, download=download, progress=progress)
        train_images, train_labels = read_images_and_labels(files["train_images"], files["train_labels"])
        test_images, test_labels = read_images_and_labels(files["test_images"], files["test_labels"])
        if train_images.shape[1:] != test_images.shape[1:]:
            raise DataError(f"{files['train_images']} and {files['test_images']} hold images of different "
                            f"sizes ({train_images.shape[1:]} vs {test_images.shape[1:]}): {REPAIR_HINT}")
        for labels, role in ((train_labels, "train_labels"), (test_labels, "test_labels")):
            if labels.max() >= len(self.class_names):
                raise DataError(f"{files[role]} has label {labels.max()} but {self.name} has only "
                                f"{len(self.class_names)} classes: {REPAIR_HINT}")
        train, val, _ = split_indices(len(train_images), seed=seed, val_fraction=val_fraction, test_fraction=0,
                                     val_size=val_size)
        return Dataset(
            name=self.name,
            train=_images_split(train_images[train], train_labels[train]),
            val=_images_split(train_images[val], train_labels[val]),
            test=_images_split(test_images, test_labels),
            sample_shape=(1, *train_images.shape[1:]),
            class_names=list(self.class_names),
            source=where,
            quantized_8bit=True,
        )


def _images_split(images: np.ndarray, labels: np.ndarray) -> Split:
    """uint8 ``(N, H, W)`` -> float32 ``(N, 1, H, W)`` in [0, 1]."""
    return Split(x=np.divide(images[:, None], np.float32(255), dtype=np.float32), y=labels)


@dataclass(frozen=True)
class DigitsDataset:
    """scikit-learn's bundled copy of the UCI optical digits: 1,797 8x8 images, values 0..16.

    Values are divided by 16, so they take 17 levels and are not 8-bit quantized. There is no
    official split: train/val/test are seeded random fractions.
    """

    name: str = "digits"
    description: str = "UCI handwritten digits bundled with scikit-learn: 1,797 8x8 grayscale images, 10 classes"
    where: str = "scikit-learn (bundled)"

    def info(self, data_dir: str | os.PathLike | None = None) -> DatasetInfo:
        return DatasetInfo(self.name, self.description, True, self.where)

    def load(self, *, data_dir: str | os.PathLike | None = None, seed: int = 0, val_fraction: float = 0.1,
             test_fraction: float = 0.1, download: bool = True, progress: Progress | None = None,
             val_size: int | None = None) -> Dataset:
        from sklearn.datasets import load_digits  # slow to import; only needed here

        bunch = load_digits()
        x = (np.asarray(bunch.images, dtype=np.float32) / 16)[:, None]  # (1797, 1, 8, 8)
        y = np.asarray(bunch.target, dtype=np.int64)
        train, val, test = seeded_splits(x, y, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction,
                                           val_size=val_size)
        return Dataset(name=self.name, train=train, val=val, test=test, sample_shape=x.shape[1:],
                       class_names=list(DIGIT_NAMES), source=self.where, quantized_8bit=False)


# Fashion-MNIST: H. Xiao, K. Rasul, R. Vollgraf, arXiv:1708.07747 (2017); files and checksums from
# https://github.com/zalandoresearch/fashion-mnist (README, "Get the Data").
FASHION_MNIST = IdxDataset(
    description="Zalando's Fashion-MNIST: 70,000 28x28 grayscale clothing images, 10 classes",
    class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                 "Bag", "Ankle boot"),
    source=IdxSource(
        name="fashion-mnist",
        base_urls=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        md5={
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        debian_package="dataset-fashion-mnist",
    ),
)

# MNIST: Y. LeCun, C. Cortes, C. J. C. Burges, http://yann.lecun.com/exdb/mnist/ (1998).
MNIST = IdxDataset(
    description="LeCun et al.'s MNIST: 70,000 28x28 grayscale handwritten digits, 10 classes",
    class_names=DIGIT_NAMES,
    source=IdxSource(
        name="mnist",
        base_urls=("https://yann.lecun.com/exdb/mnist/", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
        md5={
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    ),
)

NAMED_DATASETS: dict[str, NamedDataset] = {dataset.name: dataset for dataset in (FASHION_MNIST, MNIST, DigitsDataset(),
                                                                             DSPRITES, DSPRITES_SMALL,
                                                                             BREAST_CANCER, WINE)}
