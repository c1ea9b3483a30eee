"""Atomic file writes: a crash or a Ctrl-C never leaves a half-written snapshot behind.

Data goes to a temporary file in the destination's folder, is flushed and fsync'ed, then renamed
over the destination with ``os.replace`` (atomic on POSIX within one file system). ``mkstemp``
creates its file with mode 0600; before the rename the file gets the mode an ordinary ``open``
would have given it (0666 less the umask), so models and logs on a shared lab server stay readable
by the group as the user's umask says.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prunekit.errors import PrunekitError


def _folder_of(path: Path) -> Path:
    """The folder ``path`` goes into; a user error (not a traceback) when it cannot hold files."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise PrunekitError(f"cannot write {path}: {folder} {what}")
    return folder


def new_file_mode(mode: int = 0o666) -> int:
    """``mode`` less the process umask: what ``open()``/``mkdir`` would give a new file/folder.

    Temporary files and folders are created private (0600/0700); renamed into place they would
    stay so, and a dataset or model made for a group would be unreadable to the others.
    """
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one."""
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Text flavour of :func:`atomic_write_bytes` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


@contextmanager
def atomic_output(path: str | os.PathLike, keep_suffix: bool = False) -> Iterator[str]:
    """A temporary path beside ``path`` for writers that only take a file name (ONNX, TorchScript).

    The file written there is renamed to ``path`` (with the umask mode) when the block ends
    without an exception, and removed otherwise, so ``path`` is either untouched or complete.
    The temporary name is ``.<name>.<random>.tmp`` (``keep_suffix``: ``.tmp.onnx`` etc., for
    writers that look at the extension).
    """
    path = Path(path)
    folder = _folder_of(path)
    suffix = ".tmp" + (path.suffix if keep_suffix else "")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
