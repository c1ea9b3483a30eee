"""Reading and writing user files with messages that say which file and what was expected.

Every public reader in this package takes a path the user typed (on the command line or inside a
solver prototxt), so an OS error must come back as a PrunekitError naming that path and the kind
of file we were looking for, not as a traceback.
"""

from __future__ import annotations

import os

from prunekit.atomic import atomic_write_bytes
from prunekit.errors import PrunekitError


def read_user_file(path: str | os.PathLike, kind: str) -> bytes:
    """Return the bytes of ``path``; ``kind`` (e.g. "Caffe net prototxt") goes into the error."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise PrunekitError(f"{os.fspath(path)}: no such file (expected a {kind})") from None
    except IsADirectoryError:
        raise PrunekitError(f"{os.fspath(path)}: is a folder, expected a {kind} file") from None
    except OSError as err:
        raise PrunekitError(f"{os.fspath(path)}: cannot read {kind}: {err.strerror}") from None


def write_user_file(path: str | os.PathLike, data: bytes, kind: str) -> None:
    """Write ``data`` atomically, so a crash never leaves a half-written ``kind`` behind."""
    try:
        atomic_write_bytes(path, data)
    except FileNotFoundError:
        folder = os.path.dirname(os.fspath(path)) or "."
        raise PrunekitError(
            f"{os.fspath(path)}: cannot write {kind}: folder {folder} does not exist"
        ) from None
    except OSError as err:
        raise PrunekitError(f"{os.fspath(path)}: cannot write {kind}: {err.strerror}") from None
