"""compute_image_mean: the per-pixel mean image of an LMDB of Datums, as Caffe computes it.

Caffe sums every record into a ``float`` blob one record at a time and divides by the count at
the end; the per-channel means it logs are ``float`` sums over each channel's pixels divided by
height×width. float32 arithmetic in the same order gives the same numbers to the last bit
(for ImageNet-sized sums float32 rounding is visible, which is why the order is kept).
Encoded Datums are decoded as Caffe's DecodeDatumNative does (channels as stored in the file).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from prunekit.caffe import caffe_pb2
from prunekit.caffe.datum import datum_from_bytes
from prunekit.data.lmdb_io import LmdbReader
from prunekit.data.opencv_image import decode_native
from prunekit.errors import PrunekitError
from prunekit.progress_bar import ProgressBar

_LOG_EVERY = 10000  # compute_image_mean logs "Processed N files." every 10000 records


@dataclass
class ImageMean:
    """The mean blob (1×C×H×W, as Caffe writes it) and the per-channel means it logs."""

    blob: caffe_pb2.BlobProto
    channel_means: list[float]
    count: int


def datum_pixels(value: bytes, where: str) -> np.ndarray:
    """One record's values in CHW order as float32 (uint8 bytes or float_data)."""
    datum = datum_from_bytes(value, where)
    if datum.encoded:
        chw = decode_native(datum.data)
        if chw is None:
            raise PrunekitError(f"{where}: encoded image cannot be decoded")
        if chw.dtype != np.uint8:
            raise PrunekitError(f"{where}: decodes to {chw.dtype} pixels; Caffe needs 8-bit images")
        return chw.astype(np.float32)
    shape = (datum.channels, datum.height, datum.width)
    values = (np.frombuffer(datum.data, dtype=np.uint8) if datum.data
              else np.asarray(datum.float_data, dtype=np.float32))
    if values.size != int(np.prod(shape)) or values.size == 0:
        raise PrunekitError(f"{where}: holds {values.size} values but channels x height x width "
                            f"= {' x '.join(map(str, shape))}")
    return values.astype(np.float32).reshape(shape)


def compute_image_mean(db_path: str, log: logging.Logger) -> ImageMean:
    """Mean of all records of the LMDB at ``db_path``; they must all have one size."""
    reader = LmdbReader(db_path, where=f"LMDB '{db_path}'")
    try:
        total, count = None, 0
        log.info("Starting iteration")
        with ProgressBar(len(reader), "mean", unit="images") as bar:
            for key, pixels in _records(reader, db_path):
                if total is None:
                    total = np.zeros(pixels.shape, dtype=np.float32)
                elif pixels.shape != total.shape:
                    raise PrunekitError(
                        f"LMDB '{db_path}' record {key}: shape {list(pixels.shape)} differs from "
                        f"the first record's {list(total.shape)}; a mean image needs one size "
                        f"(make the LMDB with --resize_height/--resize_width)")
                total += pixels  # float32 + float32, record by record, as Caffe's float blob
                count += 1
                bar.update()
                if count % _LOG_EVERY == 0:
                    bar.clear()
                    log.info("Processed %d files.", count)
        if count % _LOG_EVERY:
            log.info("Processed %d files.", count)
    finally:
        reader.close()
    mean = total / np.float32(count)
    return ImageMean(_mean_blob(mean), _channel_means(mean), count)


def _records(reader: LmdbReader, db_path: str) -> Iterator[tuple[str, np.ndarray]]:
    for key, value in reader.items():
        name = key.decode("utf-8", "replace")
        yield name, datum_pixels(value, f"LMDB '{db_path}' record {name}")


def _mean_blob(mean: np.ndarray) -> caffe_pb2.BlobProto:
    """A 1×C×H×W BlobProto with Caffe's legacy num/channels/height/width fields."""
    blob = caffe_pb2.BlobProto(num=1, channels=mean.shape[0], height=mean.shape[1],
                               width=mean.shape[2])
    blob.data.extend(mean.ravel().tolist())
    return blob


def _channel_means(mean: np.ndarray) -> list[float]:
    """Per channel: float32 running sum over the pixels in order, divided by H×W in float32."""
    flat = mean.reshape(mean.shape[0], -1)
    sums = np.cumsum(flat, axis=1, dtype=np.float32)[:, -1]
    return [float(s / np.float32(flat.shape[1])) for s in sums]
