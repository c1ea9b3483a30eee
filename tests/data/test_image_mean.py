"""compute_image_mean's float32 arithmetic, where it differs from exact sums (> 2**24)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from prunekit.caffe.datum import image_datum_bytes
from prunekit.data.image_mean import compute_image_mean
from prunekit.data.lmdb_io import write_lmdb


def test_mean_accumulates_in_float32_record_by_record(tmp_path: Path) -> None:
    count = 100_000  # sums pass 2**24 (about 19e6 here), where float32 sums start rounding
    values = (np.arange(count) * 7) % 128 + 128
    items = ((b"%08d" % i, image_datum_bytes(np.full((2, 1, 1), v, np.uint8), 0))
             for i, v in enumerate(values))
    write_lmdb(tmp_path / "db", items)
    mean = compute_image_mean(str(tmp_path / "db"), logging.getLogger("test"))

    running = np.float32(0)
    for v in values.tolist():  # Caffe: sum_blob.set_data(i, sum_blob.data(i) + (uint8_t)data[i])
        running = np.float32(running + np.float32(v))
    caffe_mean = np.float32(running / np.float32(count))
    exact_mean = values.mean()
    assert mean.count == count
    assert list(mean.blob.data) == [float(caffe_mean)] * 2
    assert caffe_mean != np.float32(exact_mean)  # so the test notices exact (float64) sums
    assert mean.channel_means == [float(caffe_mean)] * 2
    assert (mean.blob.num, mean.blob.channels, mean.blob.height, mean.blob.width) == (1, 2, 1, 1)
