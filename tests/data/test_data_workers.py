"""Data worker processes: same batches for any worker count, errors named, resume exact.

Real JPEG Datums in a real LMDB (Data) and real JPEG files with a list file (ImageData), made
from scikit-learn's sample photos; 10 records in batches of 4, so the 5 batches wrap an epoch.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

# one photo helper for every test folder (a second module of the same name would shadow it)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from photo_set import photo_variants  # noqa: E402
from prunekit.caffe import (array_to_blob, array_to_datum, blob_to_array, caffe_pb2,
                           read_binaryproto, write_binaryproto)
from prunekit.data.data_layer import DataLayer
from prunekit.data.image_data_layer import ImageDataLayer
from prunekit.data.lmdb_io import LmdbReader, write_lmdb
from prunekit.errors import PrunekitError
from prunekit.net.layers.base import TEST, TRAIN

COUNT, HEIGHT, WIDTH, CROP, BATCH = 10, 40, 48, 32, 4


@pytest.fixture
def photos(tmp_path):
    """The images (BGR HWC), a JPEG LMDB of them, JPEG files + list, and their mean file."""
    images = photo_variants(COUNT, HEIGHT, WIDTH)
    write_lmdb(tmp_path / "db", [(b"%08d" % i, array_to_datum(im.transpose(2, 0, 1), i % 3,
                                                                "jpg").SerializeToString())
                                 for i, im in enumerate(images)])
    (tmp_path / "img").mkdir()
    for i, image in enumerate(images):
        cv2.imwrite(str(tmp_path / "img" / f"p{i}.jpg"), image)
    (tmp_path / "list.txt").write_text("".join(f"p{i}.jpg {i % 3}\n" for i in range(COUNT)))
    mean = np.mean([im.transpose(2, 0, 1) for im in images], axis=0).astype(np.float32)
    write_binaryproto(tmp_path / "mean.binaryproto", array_to_blob(mean[None]))
    return tmp_path


def layer_text(root, kind: str, transform: str = "mirror: true") -> str:
    transform = f'crop_size: {CROP} mean_file: "{root}/mean.binaryproto" {transform}'
    if kind == "Data":
        source = f'data_param {{ source: "{root}/db" batch_size: {BATCH} }}'
    else:
        source = (f'image_data_param {{ source: "{root}/list.txt" root_folder: "{root}/img/" '
                  f'batch_size: {BATCH} shuffle: true }}')
    return (f'name: "d" type: "{kind}" top: "data" top: "label" transform_param {{ {transform} }} '
            f'{source}')


def batches(layer_param, text: str, workers: int, monkeypatch, phase=TRAIN, count=5,
            seed=5, resume_at=None) -> list[list[np.ndarray]]:
    monkeypatch.setenv("PRUNEKIT_DATA_WORKERS", str(workers))
    param = layer_param(text)
    layer = (DataLayer if param.type == "Data" else ImageDataLayer)(param, [], phase)
    layer.set_seed(seed)
    if resume_at is not None:
        layer.load_state_dict({"batches": resume_at, "seed": seed})
    try:
        return [[t.numpy().copy() for t in layer.next_batch()] for _ in range(count)]
    finally:
        layer.close()


@pytest.mark.parametrize("kind", ["Data", "ImageData"])
def test_worker_counts_give_identical_batches(photos, layer_param, monkeypatch, kind) -> None:
    text = layer_text(photos, kind)
    one = batches(layer_param, text, 1, monkeypatch)
    for workers in (2, 0):  # two processes; the prefetch thread alone
        other = batches(layer_param, text, workers, monkeypatch)
        for a, b in zip(one, other):
            np.testing.assert_array_equal(a[0], b[0])
            np.testing.assert_array_equal(a[1], b[1])
    # the crops/mirrors are really random (a different seed changes the batches)
    assert not np.array_equal(one[0][0], batches(layer_param, text, 2, monkeypatch, seed=6)[0][0])
    # resuming at batch 3 (after the epoch wrap) continues the same stream
    resumed = batches(layer_param, text, 2, monkeypatch, count=2, resume_at=3)
    for a, b in zip(one[3:], resumed):
        np.testing.assert_array_equal(a[0], b[0])


def test_worker_batch_is_caffes_decode_crop_and_mean(photos, layer_param, monkeypatch) -> None:
    """TEST phase, no mirror: centre crop of cv2.imdecode(JPEG) minus the mean, in key order."""
    got = batches(layer_param, layer_text(photos, "Data", ""), 2, monkeypatch, phase=TEST,
                  count=3)
    mean_image = blob_to_array(read_binaryproto(photos / "mean.binaryproto"))[0]
    h0, w0 = (HEIGHT - CROP) // 2, (WIDTH - CROP) // 2
    values = [v for _, v in LmdbReader(photos / "db").items()]
    for b, (data, labels) in enumerate(got):
        for k in range(BATCH):
            index = (b * BATCH + k) % COUNT
            datum = caffe_pb2.Datum.FromString(values[index])
            bgr = cv2.imdecode(np.frombuffer(datum.data, np.uint8), cv2.IMREAD_COLOR)
            expected = (bgr.transpose(2, 0, 1).astype(np.float32)
                        - mean_image)[:, h0:h0 + CROP, w0:w0 + CROP]
            np.testing.assert_array_equal(data[k], expected)
            assert labels[k] == index % 3


def test_corrupt_record_in_a_worker_is_named(photos, layer_param, monkeypatch) -> None:
    values = [v for _, v in LmdbReader(photos / "db").items()]
    broken = caffe_pb2.Datum(encoded=True, label=1, data=b"\xff\xd8 not a JPEG")
    values[6] = broken.SerializeToString()
    write_lmdb(photos / "bad", [(b"%08d" % i, v) for i, v in enumerate(values)])
    text = layer_text(photos, "Data").replace(f"{photos}/db", f"{photos}/bad")
    with pytest.raises(PrunekitError) as error:
        batches(layer_param, text, 2, monkeypatch, count=3)
    message = str(error.value)
    assert "\n" not in message and "b'00000006'" in message and f"{photos}/bad" in message
    assert "cannot be decoded" in message


def test_corrupt_file_in_a_worker_is_named(photos, layer_param, monkeypatch) -> None:
    (photos / "img" / "p7.jpg").write_bytes(b"\xff\xd8 truncated")
    text = layer_text(photos, "ImageData").replace("shuffle: true", "")
    with pytest.raises(PrunekitError) as error:
        batches(layer_param, text, 2, monkeypatch, count=3)
    message = str(error.value)
    assert "\n" not in message and "p7.jpg" in message and "line 8" in message


def test_bad_worker_count_is_a_clear_error(photos, layer_param, monkeypatch) -> None:
    with pytest.raises(PrunekitError, match="PRUNEKIT_DATA_WORKERS='many'"):
        batches(layer_param, layer_text(photos, "Data"), "many", monkeypatch)
