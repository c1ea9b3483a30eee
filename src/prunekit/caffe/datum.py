"""Datum (one LMDB record) ⇄ numpy CHW arrays.

Raw datums hold CHW uint8 bytes (or floats in ``float_data``) in whatever channel order the
writer used: for convert_imageset that is OpenCV's BGR. Encoded datums hold an image file; Caffe
decodes them with OpenCV, which yields BGR for colour images and one channel for grayscale ones,
so we decode with PIL and flip RGB to BGR to feed the net exactly what Caffe would.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from prunekit.caffe import caffe_pb2
from prunekit.errors import PrunekitError

_PIL_FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG"}
_GRAY_MODES = ("1", "L", "LA", "I;16", "I")


def datum_to_array(datum: caffe_pb2.Datum, where: str = "Datum") -> tuple[np.ndarray, int]:
    """Return ``(array_chw, label)``: uint8 for byte data, float32 for ``float_data``.

    ``where`` (e.g. "lmdb/path key 00000042") names the record in error messages.
    """
    if datum.encoded:
        return _decode_image(datum.data, where), datum.label
    shape = (datum.channels, datum.height, datum.width)
    count = int(np.prod(shape, dtype=np.int64))
    if datum.data:  # Caffe prefers the byte payload when both are present
        values = np.frombuffer(datum.data, dtype=np.uint8)
    else:
        values = np.asarray(datum.float_data, dtype=np.float32)
    if values.size != count or count == 0:
        raise PrunekitError(f"{where}: holds {values.size} values but channels x height x "
                            f"width = {' x '.join(map(str, shape))} = {count}")
    return values.reshape(shape).copy(), datum.label


def array_to_datum(array_chw: np.ndarray, label: int, encode_format: str | None = None) -> caffe_pb2.Datum:
    """Build a Datum from a CHW array (BGR for colour, as Caffe expects).

    uint8 arrays go to ``data`` and float arrays to ``float_data``. With ``encode_format`` "png"
    or "jpg" the array (uint8, 1 or 3 channels) is stored as an image file instead; like
    Caffe's convert_imageset, an encoded datum leaves channels/height/width unset.
    """
    array_chw = np.asarray(array_chw)
    if array_chw.ndim != 3:
        raise PrunekitError(f"a Datum needs a 3-d CHW array, got shape {list(array_chw.shape)}")
    datum = caffe_pb2.Datum(label=int(label))
    if encode_format is not None:
        datum.data = _encode_image(array_chw, encode_format)
        datum.encoded = True
        return datum
    datum.channels, datum.height, datum.width = (int(d) for d in array_chw.shape)
    if array_chw.dtype == np.uint8:
        datum.data = np.ascontiguousarray(array_chw).tobytes()
    elif np.issubdtype(array_chw.dtype, np.floating):
        datum.float_data.extend(array_chw.astype(np.float32).ravel().tolist())
    else:
        raise PrunekitError(f"a Datum stores uint8 or float pixels, got dtype {array_chw.dtype}")
    return datum


def _decode_image(data: bytes, where: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as image:
            gray = image.mode in _GRAY_MODES
            pixels = np.asarray(image.convert("L" if gray else "RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise PrunekitError(f"{where}: encoded image cannot be decoded: {err}") from None
    if gray:
        return pixels[np.newaxis, :, :].copy()
    return pixels[:, :, ::-1].transpose(2, 0, 1).copy()  # HWC RGB -> CHW BGR


def _encode_image(array_chw: np.ndarray, encode_format: str) -> bytes:
    pil_format = _PIL_FORMATS.get(encode_format.lower())
    if pil_format is None:
        raise PrunekitError(f"unknown image encoding {encode_format!r}; use 'png' or 'jpg'")
    if array_chw.dtype != np.uint8 or array_chw.shape[0] not in (1, 3):
        raise PrunekitError(f"only uint8 images with 1 or 3 channels can be encoded, got "
                            f"{array_chw.dtype} with {array_chw.shape[0]} channels")
    if array_chw.shape[0] == 1:
        image = Image.fromarray(np.ascontiguousarray(array_chw[0]), mode="L")
    else:
        image = Image.fromarray(np.ascontiguousarray(array_chw[::-1].transpose(1, 2, 0)), mode="RGB")
    buffer = io.BytesIO()
    image.save(buffer, format=pil_format, **({"quality": 95} if pil_format == "JPEG" else {}))
    return buffer.getvalue()


def datum_from_bytes(value: bytes, where: str = "Datum") -> caffe_pb2.Datum:
    """Parse one serialized Datum (an LMDB value); garbage → PrunekitError naming ``where``."""
    from google.protobuf.message import DecodeError

    try:
        return caffe_pb2.Datum.FromString(value)
    except DecodeError as exc:
        raise PrunekitError(f"{where}: record is not a Caffe Datum ({exc})") from None


def image_datum_bytes(image: np.ndarray | bytes, label: int) -> bytes:
    """One serialized Datum exactly as Caffe's convert_imageset writes it.

    ``image`` is either a uint8 CHW array (a raw Datum: channels/height/width, the CHW bytes,
    the label and ``encoded: false`` set explicitly, as Caffe's CVMatToDatum does) or the bytes of
    an image file (an encoded Datum: data, label and ``encoded: true``; channels/height/width
    stay unset). The field set matters: it makes the LMDB values byte-identical to Caffe's.
    """
    datum = caffe_pb2.Datum()
    if isinstance(image, (bytes, bytearray)):
        datum.data = bytes(image)
        datum.label = int(label)
        datum.encoded = True
        return datum.SerializeToString()
    if image.dtype != np.uint8 or image.ndim != 3:
        raise PrunekitError(f"a raw image Datum needs a uint8 CHW array, got {image.dtype} "
                            f"with shape {list(image.shape)}")
    datum.channels, datum.height, datum.width = (int(d) for d in image.shape)
    datum.data = np.ascontiguousarray(image).tobytes()
    datum.label = int(label)
    datum.encoded = False
    return datum.SerializeToString()
