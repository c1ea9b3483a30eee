"""Caffe's ``Data`` layer: Datum records from an LMDB, read in key order, transformed, batched.

Batch ``b`` holds records ``skip + b·N … skip + (b+1)·N − 1`` (modulo the record count: the
cursor wraps around like Caffe's), where N is ``data_param.batch_size`` and ``skip`` comes
from ``rand_skip``. Tops: data float32 N×C×H×W and, with a second top, labels float32 (N,).
Encoded (JPEG/PNG) Datums are decoded in worker processes (:mod:`prunekit.data.workers`); raw
Datums, whose decoding is a copy, in the prefetch thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from prunekit.data.backends import open_reader
from prunekit.data.batch_maker import BatchMaker, DatumDecoder, decode_datum
from prunekit.data.source import DataSource, rng_for
from prunekit.data.transform import DataTransformer, merged_transform_param
from prunekit.data.worker_count import data_workers
from prunekit.data.workers import WorkerPool
from prunekit.errors import PrunekitError

__all__ = ["DataLayer", "TransformingSource", "decode_datum", "backend_name"]

DEFAULT_PREFETCH = 4  # batches decoded ahead, Caffe's data_param.prefetch default


class TransformingSource(DataSource):
    """A source of labelled images that go through ``transform_param`` (Data, ImageData).

    Subclasses set ``self.maker`` (a :class:`BatchMaker`) and ``self.parallel`` (whether decoding
    is worth worker processes) and implement :meth:`_items`, the records of each batch.
    """

    maker: BatchMaker
    parallel = False

    def _setup_transform(self, param, legacy_param, batch_size: int) -> None:
        """Check tops and batch size, build the transformer (before any image is decoded)."""
        self._check_tops((1, 2))
        if batch_size <= 0:
            raise PrunekitError(f"{self.where}: batch_size must be > 0, is {batch_size}")
        self.batch_size = batch_size
        self.prefetch = int(getattr(param.data_param, "prefetch", DEFAULT_PREFETCH))
        tp = merged_transform_param(param.transform_param, legacy_param)
        self.transform = DataTransformer(tp, self.phase, self.where)
        self.workers = data_workers()
        self._pool: WorkerPool | None = None

    def _set_top_shapes(self, first_image_shape: tuple[int, ...]) -> None:
        """Top shapes from the first image, as Caffe's DataLayerSetUp does."""
        image_shape = self.transform.output_shape(tuple(first_image_shape))
        self._top_shapes = [(self.batch_size, *image_shape), (self.batch_size,)][: self.num_tops]

    def _skip(self, rand_skip: int) -> int:
        """Caffe's rand_skip: a seed-determined number of records in [0, rand_skip) skipped."""
        return int(rng_for(self.seed, 2, 0).integers(rand_skip)) if rand_skip > 0 else 0

    def _items(self, start: int) -> Iterator[list[Any]]:
        """The records of this rank's batches ``start``, ``start + 1``, ... (for the maker)."""
        raise NotImplementedError

    def _before_prefetch(self) -> None:
        """Fork the workers from the training thread, before the prefetch thread starts."""
        if self.parallel and self.workers > 0 and self._pool is None:
            self._pool = WorkerPool(self.maker, self._top_shapes[0], self.workers, self.where)

    def _batches(self, start: int) -> Iterator[list[torch.Tensor]]:
        records = self._items(start)
        tasks = ((self.seed, self.global_batch(local), items)
                 for local, items in enumerate(records, start))
        made = self._in_thread(tasks) if self._pool is None else self._from_workers(tasks)
        try:
            yield from made
        finally:
            made.close()
            records.close()

    def _in_thread(self, tasks: Iterator[tuple]) -> Iterator[list[torch.Tensor]]:
        for seed, batch, items in tasks:
            data = self._new_tensor(self._top_shapes[0])
            labels = self._new_tensor((self.batch_size,))
            self.maker.fill(seed, batch, items, data.numpy(), labels.numpy())
            yield [data, labels][: self.num_tops]

    def _from_workers(self, tasks: Iterator[tuple]) -> Iterator[list[torch.Tensor]]:
        # one task queued beyond the busy workers, so none waits for its next one
        for data, labels in self._pool.batches(tasks, len(self._pool) + 1):
            tops = [data, torch.from_numpy(labels)][: self.num_tops]
            yield [t.pin_memory() for t in tops] if self._pin else tops  # for non_blocking H2D

    def close(self) -> None:
        """Stop the prefetch thread and the worker processes (restarted by a later next_batch)."""
        super().close()
        if self._pool is not None:
            self._pool.close()
            self._pool = None


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
        self.maker = BatchMaker(DatumDecoder(self.where, dp.source, self.transform.color),
                                self.transform, self.where)
        self._set_top_shapes(self._read_first().shape)
        self.num_records = len(self._reader)

    def _read_first(self) -> np.ndarray:
        from prunekit.caffe import datum_from_bytes

        records = self._reader.records(0)
        try:
            key, value = next(records)
        finally:
            records.close()
        chw = self.maker.decoder((key, value))[0]
        self.parallel = bool(datum_from_bytes(value, self.where).encoded)
        return chw

    def _items(self, start: int) -> Iterator[list[tuple[bytes, bytes]]]:
        n = self.batch_size
        first = self._skip(self._rand_skip) + self.global_batch(start) * n
        records = self._reader.records(first)
        try:
            while True:
                yield [next(records) for _ in range(n)]
                for _ in range((self.world_size - 1) * n):
                    next(records)
        finally:
            records.close()
