"""LMDB values are parsed by the formats package; garbage is a user error naming the record."""

import numpy as np
import pytest

from prunekit.caffe import array_to_datum, datum_from_bytes, datum_to_array
from prunekit.errors import PrunekitError


def test_datum_from_bytes_round_trip() -> None:
    image = np.arange(12, dtype=np.uint8).reshape(3, 2, 2)
    datum = datum_from_bytes(array_to_datum(image, 7).SerializeToString())
    chw, label = datum_to_array(datum)
    np.testing.assert_array_equal(chw, image)
    assert label == 7


def test_corrupt_record_names_where() -> None:
    with pytest.raises(PrunekitError, match="train_lmdb record 00000003"):
        datum_from_bytes(b"\xff\xff\xff", "train_lmdb record 00000003")
