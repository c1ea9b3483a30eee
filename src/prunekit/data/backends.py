"""Registry of record readers by Caffe ``data_param.backend`` name.

A reader is constructed as ``Reader(source_path, where)`` and offers ``len()``,
``records(start) -> endless iterator of (key, value) bytes`` in a fixed order, and ``close()``.
Adding a dataset reader = one new file + one line in :data:`READERS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Protocol

from prunekit.errors import PrunekitError

READERS: dict[str, str] = {
    "LMDB": "prunekit.data.lmdb_io:LmdbReader",
}


class RecordReader(Protocol):
    """What the ``Data`` layer needs from a database."""

    def __len__(self) -> int: ...

    def records(self, start: int = 0) -> Iterator[tuple[bytes, bytes]]: ...

    def close(self) -> None: ...


def open_reader(backend: str, source: str, where: str) -> RecordReader:
    """Open ``source`` with the reader registered for ``backend`` (e.g. "LMDB").

    Unknown backends (Caffe's LEVELDB among them) raise a PrunekitError naming ``where``.
    """
    target = READERS.get(backend)
    if target is None:
        known = ", ".join(sorted(READERS))
        raise PrunekitError(
            f"{where}: backend {backend} is not supported; only {known} is "
            f"(convert '{source}' to LMDB, e.g. with Caffe's convert_imageset -backend lmdb)"
        )
    module_name, class_name = target.split(":")
    reader_class = getattr(importlib.import_module(module_name), class_name)
    return reader_class(source, where)
