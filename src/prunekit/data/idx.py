"""IDX files (the format of the original MNIST distribution), read and written with checks.

An IDX file is: two zero bytes, a type byte (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
0x0D float32, 0x0E float64), a byte with the number of dimensions, one big-endian uint32 per
dimension, then the values big-endian in C order. ``.gz`` files are read and written gzipped.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from prunekit.atomic import atomic_write_bytes
from prunekit.errors import PrunekitError

_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODES = {np.dtype(v).newbyteorder("=").str[1:]: k for k, v in _TYPES.items()}


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise PrunekitError(f"IDX file '{path}' not found")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            return handle.read()
    except (OSError, EOFError) as exc:
        raise PrunekitError(f"IDX file '{path}' cannot be read: {exc}") from exc


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The array stored in an IDX file (native byte order); a malformed file -> PrunekitError."""
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _TYPES:
        raise PrunekitError(f"IDX file '{path}' has a bad magic number {raw[:4].hex()!r} "
                            "(expected 0000 + type byte 08/09/0b/0c/0d/0e + dimension count)")
    dtype, ndim = np.dtype(_TYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise PrunekitError(f"IDX file '{path}' is truncated inside its header")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise PrunekitError(f"IDX file '{path}' has {len(raw)} bytes; dimensions {dims} of "
                            f"{dtype.itemsize}-byte values need {expected}")
    return np.frombuffer(raw, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzipped when the name ends in .gz), atomically."""
    array = np.asarray(array)
    code = _CODES.get(array.dtype.newbyteorder("=").str[1:])
    if code is None:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    payload = header + array.astype(_TYPES[code]).tobytes()
    path = Path(path)
    atomic_write_bytes(path, gzip.compress(payload) if path.suffix == ".gz" else payload)


def find_idx_file(folder: str | os.PathLike, name: str) -> Path:
    """The file for MNIST ``name`` (e.g. "train-images-idx3-ubyte") in ``folder``.

    Accepts the dotted spelling ("train-images.idx3-ubyte") and a ``.gz`` suffix.
    """
    folder = Path(folder)
    stem, _, kind = name.rpartition("-idx")
    spellings = [name, f"{stem}.idx{kind}"]
    for candidate in spellings + [s + ".gz" for s in spellings]:
        if (folder / candidate).is_file():
            return folder / candidate
    raise PrunekitError(f"no {name} (or {', '.join(spellings[1:])}, .gz) in '{folder}'")


def read_mnist_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """MNIST images (N×H×W uint8) and labels (N uint8) from two IDX files, checked to match."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise PrunekitError(f"IDX file '{images_path}' holds {images.dtype} {images.shape}, "
                            "expected uint8 images N×H×W")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise PrunekitError(f"IDX file '{labels_path}' holds {labels.dtype} {labels.shape}, "
                            "expected N uint8 labels")
    if len(images) != len(labels):
        raise PrunekitError(f"'{images_path}' has {len(images)} images but '{labels_path}' has "
                            f"{len(labels)} labels")
    return images, labels
