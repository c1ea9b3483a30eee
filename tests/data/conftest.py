"""Fixtures for the data tests: LayerParameters from prototxt text, Datum LMDBs on disk."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from prunekit.caffe import array_to_datum, caffe_pb2, parse_text
from prunekit.data.lmdb_io import write_lmdb


@pytest.fixture
def layer_param() -> Callable[[str], caffe_pb2.LayerParameter]:
    """Parse a layer's prototxt text (the part inside ``layer { }``)."""
    return lambda text: parse_text(text, caffe_pb2.LayerParameter())


@pytest.fixture
def datum_lmdb() -> Callable[..., Path]:
    """Write CHW arrays + labels as raw Datums into an LMDB; keys default to "%08d"."""

    def make(path: Path, images: Sequence[np.ndarray], labels: Sequence[int],
             keys: Sequence[bytes] | None = None, encode: str | None = None) -> Path:
        keys = keys or [b"%08d" % i for i in range(len(images))]
        values = [array_to_datum(img, lab, encode).SerializeToString()
                  for img, lab in zip(images, labels)]
        write_lmdb(path, zip(keys, values))
        return path

    return make
