"""Caffe's DataTransformer on one CHW image: crop, mean subtraction, scale, mirror.

For an image ``x`` (C×H×W, uint8 or float32) the output is, in float32,
``out = (x[:, h0:h0+s, w0:w0+s] − mean) × scale``, flipped left-right when mirrored, where ``s``
is ``crop_size`` (the whole image when 0), ``mean`` is the mean image cropped at the same offset or
one value per channel, and ``scale`` multiplies pixel values (e.g. 1/256 maps 0..255 to [0, 1)).
Crop offsets are uniform in TRAIN and central in TEST; ``mirror: true`` flips at random in both
phases, as Caffe does (test prototxts normally leave it off). Random
decisions come in as three uniform numbers per image (see :func:`batch_draws`), so they are a
pure function of (seed, batch index).
"""

from __future__ import annotations

import os

import numpy as np

from prunekit.data.source import rng_for
from prunekit.errors import PrunekitError
from prunekit.net.layers.base import TRAIN

_LEGACY_FIELDS = ("scale", "mean_file", "crop_size", "mirror")


def batch_draws(seed: int, batch_index: int, count: int) -> np.ndarray:
    """Uniform [0, 1) numbers, shape (count, 3): mirror, row offset, column offset per image."""
    return rng_for(seed, 0, batch_index).random((count, 3))


def merged_transform_param(transform_param, legacy_param):
    """``transform_param`` plus deprecated data_param/image_data_param transform fields.

    Old prototxts put scale/mean_file/crop_size/mirror in data_param; Caffe's upgrader moves
    them into transform_param. Fields set in transform_param win.
    """
    merged = type(transform_param)()
    merged.CopyFrom(transform_param)
    legacy_fields = legacy_param.DESCRIPTOR.fields_by_name
    for name in _LEGACY_FIELDS:
        if name in legacy_fields and legacy_param.HasField(name) and not merged.HasField(name):
            setattr(merged, name, getattr(legacy_param, name))
    return merged


def load_mean_file(path: str, where: str) -> np.ndarray:
    """The mean image of a ``.binaryproto`` BlobProto as a float32 C×H×W array."""
    if not os.path.isfile(path):
        raise PrunekitError(f"{where}: mean_file '{path}' not found")
    from prunekit.caffe import blob_to_array, read_binaryproto

    mean = np.asarray(blob_to_array(read_binaryproto(path)), dtype=np.float32)
    while mean.ndim > 3 and mean.shape[0] == 1:
        mean = mean[0]
    if mean.ndim != 3:
        raise PrunekitError(f"{where}: mean_file '{path}' holds shape {mean.shape}, not C×H×W")
    return mean


class DataTransformer:
    """Applies one layer's ``transform_param`` (a caffe_pb2.TransformationParameter)."""

    def __init__(self, transform_param, phase: int, where: str) -> None:
        tp = transform_param
        self.where = where
        self.scale = float(tp.scale)
        self.crop = int(tp.crop_size)
        self.random_crop = phase == TRAIN
        self.mirror = bool(tp.mirror)
        if tp.mean_file and len(tp.mean_value):
            raise PrunekitError(f"{where}: transform_param sets both mean_file and mean_value; "
                                "use one of them")
        self.mean_file = tp.mean_file
        self.mean_image = load_mean_file(tp.mean_file, where) if tp.mean_file else None
        self.mean_values = np.asarray(tp.mean_value, dtype=np.float32) if len(tp.mean_value) \
            else None
        if tp.force_color and tp.force_gray:
            raise PrunekitError(f"{where}: force_color and force_gray cannot both be set")
        self.color: bool | None = True if tp.force_color else False if tp.force_gray else None

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, int, int]:
        """C×H×W after cropping an input of C×H×W ``shape`` (checks means and crop fit)."""
        channels, height, width = shape
        self._check(shape)
        if self.crop:
            return channels, self.crop, self.crop
        return channels, height, width

    def _check(self, shape: tuple[int, ...]) -> None:
        channels, height, width = shape
        if self.crop and (self.crop > height or self.crop > width):
            raise PrunekitError(f"{self.where}: crop_size {self.crop} is larger than the "
                                f"{height}×{width} image")
        if self.mean_image is not None and self.mean_image.shape != tuple(shape):
            raise PrunekitError(f"{self.where}: mean_file '{self.mean_file}' is "
                                f"{self.mean_image.shape}, the data is {tuple(shape)}")
        if self.mean_values is not None and len(self.mean_values) not in (1, channels):
            raise PrunekitError(f"{self.where}: {len(self.mean_values)} mean_value entries for "
                                f"{channels} channels; give 1 or {channels}")

    def offsets(self, height: int, width: int, draw: np.ndarray | None) -> tuple[int, int, bool]:
        """(row offset, column offset, mirror) for an image of height×width pixels."""
        if not self.crop:
            h0 = w0 = 0
        elif self.random_crop and draw is not None:
            h0 = int(draw[1] * (height - self.crop + 1))
            w0 = int(draw[2] * (width - self.crop + 1))
        else:
            h0, w0 = (height - self.crop) // 2, (width - self.crop) // 2
        return h0, w0, bool(self.mirror and draw is not None and draw[0] < 0.5)

    def __call__(self, chw: np.ndarray, draw: np.ndarray | None = None) -> np.ndarray:
        """Transform one C×H×W image into a new float32 array (``draw``: 3 uniform numbers)."""
        self._check(chw.shape)
        out = np.empty(self.output_shape(tuple(chw.shape)), dtype=np.float32)
        self.transform_into(chw, draw, out)
        return out

    def transform_into(self, chw: np.ndarray, draw: np.ndarray | None, out: np.ndarray) -> None:
        """Write the transformed image into ``out`` (float32 C×h×w, e.g. a row of the batch).

        Crop, flip and mean are taken as views of the input, so the only pass over the pixels is
        the subtraction itself (flipping input and mean together equals flipping the result).
        """
        _, height, width = chw.shape
        h0, w0, flip = self.offsets(height, width, draw)
        h1, w1 = (h0 + self.crop, w0 + self.crop) if self.crop else (height, width)
        columns = slice(w1 - 1, w0 - 1 if w0 > 0 else None, -1) if flip else slice(w0, w1)
        pixels = chw[:, h0:h1, columns]
        if self.mean_image is not None:
            np.subtract(pixels, self.mean_image[:, h0:h1, columns], out=out)
        elif self.mean_values is not None:
            np.subtract(pixels, self.mean_values.reshape(-1, 1, 1), out=out)
        else:
            out[...] = pixels
        if self.scale != 1.0:
            out *= np.float32(self.scale)
