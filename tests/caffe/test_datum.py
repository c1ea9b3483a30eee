"""Datum ⇄ CHW arrays, raw and encoded, with Caffe's BGR channel order."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from prunekit.caffe import array_to_datum, caffe_pb2, datum_to_array
from prunekit.errors import PrunekitError


def _bgr_image() -> np.ndarray:
    """3x4x5 CHW image whose channels are distinguishable: B=10, G=128, R=250 plus a ramp."""
    ramp = np.arange(20, dtype=np.uint8).reshape(4, 5)
    return np.stack([10 + ramp, 128 + ramp, 230 + ramp]).astype(np.uint8)


def test_raw_uint8_round_trip_through_bytes():
    image = _bgr_image()
    datum = caffe_pb2.Datum.FromString(array_to_datum(image, 7).SerializeToString())
    assert (datum.channels, datum.height, datum.width, datum.label) == (3, 4, 5, 7)
    assert datum.data == image.tobytes() and not datum.encoded
    out, label = datum_to_array(datum)
    assert label == 7 and out.dtype == np.uint8
    np.testing.assert_array_equal(out, image)


def test_raw_float_round_trip():
    arr = np.linspace(-1, 1, 2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    datum = array_to_datum(arr, 1)
    assert len(datum.float_data) == 18 and not datum.data
    out, _ = datum_to_array(datum)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, arr)


def test_png_round_trip_keeps_bgr_and_stores_rgb_file():
    image = _bgr_image()
    datum = array_to_datum(image, 3, encode_format="png")
    assert datum.encoded and datum.data.startswith(b"\x89PNG")
    # The file itself is a normal RGB image: its red plane is our channel 2.
    with Image.open(io.BytesIO(datum.data)) as pil:
        assert pil.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(pil)[:, :, 0], image[2])
    out, label = datum_to_array(datum)
    assert label == 3 and out.dtype == np.uint8
    np.testing.assert_array_equal(out, image)


def test_encoded_rgb_file_decodes_to_bgr():
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[..., 0] = 200  # pure red
    buffer = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buffer, format="PNG")
    out, _ = datum_to_array(caffe_pb2.Datum(data=buffer.getvalue(), encoded=True, label=0))
    assert out.shape == (3, 2, 2)
    assert (out[2] == 200).all() and (out[0] == 0).all()  # red lands in channel 2 (BGR)


def test_grayscale_png_gives_one_channel():
    gray = np.arange(12, dtype=np.uint8).reshape(1, 3, 4) * 20
    datum = array_to_datum(gray, 0, encode_format="PNG")
    out, _ = datum_to_array(datum)
    assert out.shape == (1, 3, 4)
    np.testing.assert_array_equal(out, gray)


def test_jpeg_round_trip_is_close():
    image = np.full((3, 16, 16), 0, dtype=np.uint8)
    image[0], image[1], image[2] = 30, 120, 220
    out, _ = datum_to_array(array_to_datum(image, 0, encode_format="jpg"))
    assert np.abs(out.astype(int) - image).max() <= 3


def test_size_mismatch_is_reported():
    datum = caffe_pb2.Datum(channels=1, height=2, width=2, data=b"\x00\x01\x02")
    with pytest.raises(PrunekitError, match=r"key 5: holds 3 values but .* = 4"):
        datum_to_array(datum, "key 5")


def test_undecodable_image_is_reported():
    with pytest.raises(PrunekitError, match="cannot be decoded"):
        datum_to_array(caffe_pb2.Datum(data=b"not an image", encoded=True))


def test_bad_inputs_to_array_to_datum():
    with pytest.raises(PrunekitError, match="3-d CHW"):
        array_to_datum(np.zeros((4, 4), np.uint8), 0)
    with pytest.raises(PrunekitError, match="uint8 or float"):
        array_to_datum(np.zeros((1, 2, 2), np.int64), 0)
    with pytest.raises(PrunekitError, match="'bmp'"):
        array_to_datum(np.zeros((1, 2, 2), np.uint8), 0, encode_format="bmp")
    with pytest.raises(PrunekitError, match="1 or 3 channels"):
        array_to_datum(np.zeros((2, 2, 2), np.uint8), 0, encode_format="png")
