"""Write several files as one result: all of them, or none.

``compact`` writes a prototxt and a caffemodel, ``decompose`` a prototxt, a caffemodel and a JSON
of ranks. Written one after the other, a failure on the second (a full disk, a missing folder)
would leave the first under its final name, a prototxt without its weights. Here every file goes
to a temporary name in its own folder first (``.<name>.<random>.tmp``, the names
:mod:`prunekit.atomic` uses), and only when all of them are complete are they renamed into place.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from prunekit.atomic import new_file_mode
from prunekit.errors import PrunekitError


def write_files_together(files: list[tuple[str | os.PathLike, bytes, str]]) -> None:
    """Write each ``(path, data, kind)``; on any failure none of the paths is touched and the
    error (a PrunekitError naming the path and ``kind``) says nothing was written."""
    _check_destinations(files)
    temps: list[tuple[str, Path]] = []
    try:
        for path, data, kind in files:
            path = Path(path)
            try:
                fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
                temps.append((tmp, path))
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.chmod(tmp, new_file_mode())
            except OSError as err:
                names = ", ".join(str(p) for p, _, _ in files)
                raise PrunekitError(f"{path}: cannot write {kind}: {err.strerror}; none of "
                                    f"{names} was written") from None
        while temps:
            tmp, path = temps[0]
            os.replace(tmp, path)
            temps.pop(0)
    finally:
        for tmp, _ in temps:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _check_destinations(files) -> None:
    for path, _, kind in files:
        path = Path(path)
        folder = path.parent if str(path.parent) else Path(".")
        if not folder.is_dir():
            what = "is not a folder" if folder.exists() else "does not exist"
            raise PrunekitError(f"cannot write {kind} {path}: {folder} {what}; nothing was written")
        if path.is_dir():
            raise PrunekitError(f"cannot write {kind} {path}: it is a folder; nothing was written")


def check_destination(path: str | os.PathLike | None, kind: str) -> None:
    """Fail at once, before a long computation, when ``path`` cannot be written: its folder is
    missing or is a file, or ``path`` is a folder (the writers check again when writing)."""
    if path:
        _check_destinations([(path, b"", kind)])
