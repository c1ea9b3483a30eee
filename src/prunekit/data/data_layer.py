"""Caffe's ``Data`` layer: Datum records from an LMDB, read in key order, transformed, batched.

Batch ``b`` holds records ``skip + b·N … skip + (b+1)·N − 1`` (modulo the record count: the
cursor wraps around like Caffe's), where N is ``data_param.batch_size`` and ``skip`` comes
from ``rand_skip``. Tops: data float32 N×C×H×W and, with a second top, labels float32 (N,).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from prunekit.data.backends import open_reader
from prunekit.data.images import decode_image
from prunekit.data.source import DataSource, rng_for
from prunekit.data.transform import DataTransformer, batch_draws, merged_transform_param
from prunekit.errors import PrunekitError

DEFAULT_PREFETCH = 4  # batches decoded ahead, Caffe's data_param.prefetch default


def decode_datum(value: bytes, color: bool | None = None,
                 where: str = "Datum") -> tuple[np.ndarray, int]:
    """A serialized Datum -> (C×H×W uint8/float32 array, label).

    Encoded Datums (JPEG/PNG bytes) are decoded to BGR; ``color`` is transform_param's
    force_color (True) / force_gray (False) / neither (None, keep the image's own channels).
    """
    from prunekit.caffe import datum_from_bytes, datum_to_array

    datum = datum_from_bytes(value, where)
    if datum.encoded and color is not None:
        return decode_image(datum.data, color), int(datum.label)
    chw, label = datum_to_array(datum, where)
    return chw, int(label)


class TransformingSource(DataSource):
    """A source of labelled images that go through ``transform_param`` (Data, ImageData)."""

    def _setup_transform(self, param, legacy_param, batch_size: int) -> None:
        """Check tops and batch size, build the transformer (before any image is decoded)."""
        self._check_tops((1, 2))
        if batch_size <= 0:
            raise PrunekitError(f"{self.where}: batch_size must be > 0, is {batch_size}")
        self.batch_size = batch_size
        self.prefetch = int(getattr(param.data_param, "prefetch", DEFAULT_PREFETCH))
        tp = merged_transform_param(param.transform_param, legacy_param)
        self.transform = DataTransformer(tp, self.phase, self.where)

    def _set_top_shapes(self, first_image_shape: tuple[int, ...]) -> None:
        """Top shapes from the first image, as Caffe's DataLayerSetUp does."""
        image_shape = self.transform.output_shape(tuple(first_image_shape))
        self._top_shapes = [(self.batch_size, *image_shape), (self.batch_size,)][: self.num_tops]

    def _stack(self, images: Sequence[tuple[np.ndarray, int, str]],
               batch_index: int) -> list[torch.Tensor]:
        """Transform (image, label, name) items of global batch ``batch_index`` into the tops."""
        data = self._new_tensor(self._top_shapes[0])
        labels = self._new_tensor((self.batch_size,))
        array, label_array = data.numpy(), labels.numpy()
        draws = batch_draws(self.seed, batch_index, self.batch_size)
        for i, (chw, label, name) in enumerate(images):
            out = self.transform(chw, draws[i])
            if out.shape != array.shape[1:]:
                raise PrunekitError(
                    f"{self.where}: {name} is {tuple(chw.shape)}, giving {out.shape} after the "
                    f"transform; the batch needs {array.shape[1:]} (images must share a size, or "
                    "set crop_size / new_height and new_width)")
            array[i] = out
            label_array[i] = label
        return [data, labels][: self.num_tops]

    def _skip(self, rand_skip: int) -> int:
        """Caffe's rand_skip: a seed-determined number of records in [0, rand_skip) skipped."""
        return int(rng_for(self.seed, 2, 0).integers(rand_skip)) if rand_skip > 0 else 0


def backend_name(data_param) -> str:
    """The backend's name; unset means LMDB (BVLC's default LEVELDB is not available here)."""
    if not data_param.HasField("backend"):
        return "LMDB"
    return data_param.DB.Name(data_param.backend)


class DataLayer(TransformingSource):
    """``type: "Data"``: batches of Datums from ``data_param.source`` in key order."""

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)
        dp = param.data_param
        self.source = dp.source
        self._rand_skip = int(dp.rand_skip)
        self._setup_transform(param, dp, int(dp.batch_size))
        self._reader = open_reader(backend_name(dp), dp.source, self.where)
        self._set_top_shapes(self._read_first().shape)
        self.num_records = len(self._reader)

    def _read_first(self) -> np.ndarray:
        records = self._reader.records(0)
        try:
            key, value = next(records)
        finally:
            records.close()
        return self._decode(key, value)[0]

    def _decode(self, key: bytes, value: bytes) -> tuple[np.ndarray, int]:
        try:
            return decode_datum(value, self.transform.color,
                                f"{self.where}: '{self.source}' record {key!r}")
        except PrunekitError:
            raise
        except Exception as exc:
            raise PrunekitError(f"{self.where}: record {key!r} of '{self.source}' is not a "
                                f"readable Datum: {exc}") from exc

    def _batches(self, start: int) -> Iterator[list[torch.Tensor]]:
        n = self.batch_size
        first = self._skip(self._rand_skip) + self.global_batch(start) * n
        records = self._reader.records(first)
        try:
            local = start
            while True:
                items = [next(records) for _ in range(n)]
                images = [(*self._decode(k, v), f"record {k!r}") for k, v in items]
                yield self._stack(images, self.global_batch(local))
                for _ in range((self.world_size - 1) * n):
                    next(records)
                local += 1
        finally:
            records.close()
