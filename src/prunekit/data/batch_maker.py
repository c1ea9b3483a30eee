"""One batch of decoded, transformed images: the unit of work of a data worker process.

A :class:`BatchMaker` is picklable and holds everything a worker needs (how to decode one record,
the transformer, the batch shape); a task is ``(seed, global batch index, records)``. The random
crops and mirrors come from ``batch_draws(seed, batch index)``, row ``i`` for the batch's ``i``-th
record, so a batch is the same whichever process makes it and in whatever order batches finish.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from prunekit.data.images import decode_image, load_image
from prunekit.data.transform import DataTransformer, batch_draws
from prunekit.errors import PrunekitError


def decode_datum(value: bytes, color: bool | None = None,
                 where: str = "Datum") -> tuple[np.ndarray, int]:
    """A serialized Datum -> (C×H×W uint8/float32 array, label).

    Encoded Datums (JPEG/PNG bytes) are decoded with OpenCV to BGR, as Caffe does; ``color`` is
    transform_param's force_color (True) / force_gray (False) / neither (None: the image's own).
    """
    from prunekit.caffe import datum_from_bytes, datum_to_array

    datum = datum_from_bytes(value, where)
    if datum.encoded:
        try:
            return decode_image(datum.data, color), int(datum.label)
        except ValueError as exc:
            raise PrunekitError(f"{where}: encoded image cannot be decoded: {exc}") from None
    chw, label = datum_to_array(datum, where)
    return chw, int(label)


class DatumDecoder:
    """Decodes ``(key, value)`` LMDB records of a Data layer."""

    def __init__(self, where: str, source: str, color: bool | None) -> None:
        self.where, self.source, self.color = where, source, color

    def __call__(self, item: tuple[bytes, bytes]) -> tuple[np.ndarray, int, str]:
        key, value = item
        name = f"record {key!r} of '{self.source}'"
        try:
            chw, label = decode_datum(value, self.color, f"{self.where}: {name}")
        except PrunekitError:
            raise
        except Exception as exc:
            raise PrunekitError(f"{self.where}: {name} is not a readable Datum: {exc}") from exc
        return chw, label, name


class FileDecoder:
    """Reads ``(path, label, list line)`` entries of an ImageData list file."""

    def __init__(self, where: str, source: str, root: str, color: bool,
                 size: tuple[int, int]) -> None:
        self.where, self.source, self.root, self.color, self.size = where, source, root, color, size

    def __call__(self, item: tuple[str, int, int]) -> tuple[np.ndarray, int, str]:
        name, label, number = item
        path = Path(self.root) / name if self.root else Path(name)
        described = f"image '{path}' (list file '{self.source}' line {number})"
        try:
            return load_image(path, self.color, *self.size), label, described
        except FileNotFoundError:
            raise PrunekitError(f"{self.where}: {described} not found") from None
        except OSError as exc:
            raise PrunekitError(f"{self.where}: cannot read {described}: {exc}") from exc


class BatchMaker:
    """Decodes and transforms the records of one batch into preallocated arrays."""

    def __init__(self, decoder: Any, transform: DataTransformer, where: str) -> None:
        self.decoder, self.transform, self.where = decoder, transform, where

    def fill(self, seed: int, batch_index: int, items: Sequence[Any], data: np.ndarray,
             labels: np.ndarray) -> None:
        """Write batch ``batch_index``'s images into ``data`` (N×C×H×W float32) and labels."""
        draws = batch_draws(seed, batch_index, len(items))
        for i, item in enumerate(items):
            chw, label, name = self.decoder(item)
            shape = self.transform.output_shape(tuple(chw.shape))
            if shape != data.shape[1:]:
                raise PrunekitError(
                    f"{self.where}: {name} is {tuple(chw.shape)}, giving {shape} after the "
                    f"transform; the batch needs {data.shape[1:]} (images must share a size, or "
                    "set crop_size / new_height and new_width)")
            self.transform.transform_into(chw, draws[i], data[i])
            labels[i] = label
