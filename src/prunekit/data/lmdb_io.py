"""Read-only LMDB access in key order, and an all-or-nothing LMDB writer.

Caffe's ``Data`` layer walks an LMDB with a cursor in key order and starts again at the first key
after the last one; :meth:`LmdbReader.records` does the same. :func:`write_lmdb` builds a database
in a temporary sibling folder and renames it into place, so a crash never leaves a half-written
LMDB behind under the final name.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import lmdb

from prunekit.atomic import new_file_mode
from prunekit.errors import PrunekitError

_FIRST_MAP_SIZE = 1 << 28  # 256 MiB; doubled whenever a commit does not fit
_CHUNK = 1000  # records per write transaction


def _missing_hint(path: Path) -> str:
    """Tell the user how to make a missing database when we know how (MNIST only)."""
    if "mnist" in str(path).lower():
        return f" — make it with `prunekit data mnist --out {path.parent}`"
    return ""


# LMDB forbids opening one environment twice in a process (py-lmdb refuses), yet a TRAIN and a
# TEST net may read the same database: readers share one Environment per data.mdb file.
_ENVS: dict[tuple[int, int], list] = {}  # (st_dev, st_ino) of data.mdb -> [env, users]
_ENVS_LOCK = threading.Lock()


def open_env(path: str | os.PathLike, where: str) -> tuple[tuple[int, int], lmdb.Environment]:
    """Open (or share) the LMDB folder ``path`` read-only; errors name ``where`` and the path.

    Returns the sharing key for :func:`release_env` and the environment.
    """
    path = Path(path)
    if not path.exists():
        raise PrunekitError(f"{where}: LMDB not found at '{path}'{_missing_hint(path)}")
    if not (path / "data.mdb").is_file():
        raise PrunekitError(f"{where}: '{path}' is not an LMDB folder (it has no data.mdb)")
    stat = (path / "data.mdb").stat()
    key = (stat.st_dev, stat.st_ino)
    with _ENVS_LOCK:
        if key not in _ENVS:
            try:
                env = lmdb.open(str(path), readonly=True, lock=False, readahead=False,
                                subdir=True)
            except lmdb.Error as exc:
                raise PrunekitError(f"{where}: cannot open LMDB at '{path}': {exc}") from exc
            _ENVS[key] = [env, 0]
        _ENVS[key][1] += 1
        return key, _ENVS[key][0]


def release_env(key: tuple[int, int]) -> None:
    """Drop one user of a shared environment; the last one closes it."""
    with _ENVS_LOCK:
        entry = _ENVS.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            entry[0].close()
            del _ENVS[key]


class LmdbReader:
    """Records of one LMDB, in key order, as ``(key, value)`` byte strings.

    Each iterator opens its own read transaction, so a prefetch thread can read while the main
    thread holds another iterator.
    """

    def __init__(self, path: str | os.PathLike, where: str = "LMDB") -> None:
        self.path = Path(path)
        self.where = where
        key, self._env = open_env(self.path, where)
        self._release = weakref.finalize(self, release_env, key)  # also when never closed
        self._release.atexit = False  # at exit a daemon prefetch thread may still be reading
        with self._readable():
            self._count = int(self._env.stat()["entries"])
        if self._count == 0:
            self.close()
            raise PrunekitError(f"{where}: LMDB at '{self.path}' has no records")

    def __len__(self) -> int:
        return self._count

    @contextmanager
    def _readable(self) -> Iterator[None]:
        """LMDB's own errors (a damaged page: MDB_CORRUPTED, MDB_PAGE_NOTFOUND) as one line
        naming the database; LMDB has no checksums, so damaged values are found by the Datum
        decoder instead."""
        try:
            yield
        except lmdb.Error as err:
            raise PrunekitError(f"{self.where}: LMDB at '{self.path}' is damaged or unreadable "
                                f"({err})") from None

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """One pass over all records in key order."""
        with self._readable(), self._env.begin(buffers=False) as txn:
            yield from txn.cursor().iternext(keys=True, values=True)

    def keys(self) -> list[bytes]:
        """All keys in order (reads no values)."""
        with self._readable(), self._env.begin() as txn:
            return list(txn.cursor().iternext(keys=True, values=False))

    def records(self, start: int = 0) -> Iterator[tuple[bytes, bytes]]:
        """Endless key-order iteration starting at record number ``start`` (modulo the count).

        Like Caffe's cursor, it goes back to the first key after the last one. Seeking skips
        ``start`` keys without reading their values.
        """
        start %= self._count
        with self._readable(), self._env.begin(buffers=False) as txn:
            cursor = txn.cursor()
            while True:
                cursor.first()
                for _ in range(start):
                    cursor.next()
                start = 0
                while True:
                    yield cursor.key(), cursor.value()
                    if not cursor.next():
                        break

    def close(self) -> None:
        """Release the environment (closed with its last reader); iterators become invalid."""
        self._release()


def _put_chunk(env: lmdb.Environment, chunk: list[tuple[bytes, bytes]]) -> None:
    """Commit ``chunk`` in one transaction, doubling the map size until it fits."""
    while True:
        try:
            with env.begin(write=True) as txn:
                for key, value in chunk:
                    txn.put(key, value, overwrite=True)
            return
        except lmdb.MapFullError:
            env.set_mapsize(env.info()["map_size"] * 2)


def _replace_dir(tmp: Path, path: Path) -> None:
    """Move folder ``tmp`` to ``path``, replacing an existing folder there."""
    if not path.exists():
        os.rename(tmp, path)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
    os.rename(path, old / path.name)
    os.rename(tmp, path)
    shutil.rmtree(old)


def write_lmdb(path: str | os.PathLike, items: Iterable[tuple[bytes, bytes]],
               map_size: int = _FIRST_MAP_SIZE, overwrite: bool = True) -> int:
    """Write ``items`` (key, value) into a new LMDB folder ``path``; return the record count.

    The database is built in a hidden sibling folder and renamed to ``path`` only when complete,
    so readers never see a partial database. An existing one is replaced, or with
    ``overwrite=False`` refused (PrunekitError, checked before and after writing). The map size
    starts at ``map_size`` bytes (256 MiB) and doubles whenever a chunk of records does not fit.
    """
    path = Path(path)
    if not overwrite:
        _refuse_existing(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    except OSError as err:
        raise PrunekitError(f"cannot write LMDB {path}: cannot make or use folder "
                            f"{path.parent}: {err.strerror}") from None
    try:
        count = _write_all(tmp, items, map_size)
        os.chmod(tmp, new_file_mode(0o777))  # mkdtemp made it private
        if not overwrite:
            _refuse_existing(path)
        _replace_dir(tmp, path)
    except (OSError, lmdb.Error) as err:  # a full disk, a file where the folder should go, ...
        shutil.rmtree(tmp, ignore_errors=True)
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise PrunekitError(f"cannot write LMDB {path}: {reason}; nothing was written") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return count


def _refuse_existing(path: Path) -> None:
    if os.path.lexists(path):
        raise PrunekitError(f"'{path}' already exists; not overwriting it (remove it or choose "
                            f"another name)")


def _write_all(folder: Path, items: Iterable[tuple[bytes, bytes]], map_size: int) -> int:
    """Fill a fresh LMDB in ``folder`` chunk by chunk and sync it to disk."""
    env = lmdb.open(str(folder), map_size=map_size, subdir=True, lock=True)
    count, chunk = 0, []
    try:
        for key, value in items:
            chunk.append((bytes(key), bytes(value)))
            if len(chunk) == _CHUNK:
                _put_chunk(env, chunk)
                count, chunk = count + len(chunk), []
        _put_chunk(env, chunk)
        env.sync(True)
    finally:
        env.close()
    return count + len(chunk)
