"""Atomic file writes: a crash or a Ctrl-C never leaves a half-written snapshot behind.

Data goes to a temporary file in the destination's folder, is flushed and fsync'ed, then renamed
over the destination with ``os.replace`` (atomic on POSIX within one file system).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


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
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Text flavour of :func:`atomic_write_bytes` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))
