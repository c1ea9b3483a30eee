"""The list file of Caffe's convert_imageset and ImageData layer: ``relative/path label`` lines.

Caffe splits each line at its last space: everything before is the path (which may hold spaces),
the integer after it the label. The path is kept as raw bytes because it becomes part of the LMDB
key (``%08d_<path>``) exactly as written in the list. Caffe reads a line without a label as label
0 (``atoi`` of the path); prunekit refuses it, naming the file and line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from prunekit.errors import PrunekitError


@dataclass(frozen=True)
class ListEntry:
    """One image of a list file: its path as written, its label and its 1-based line number."""

    path: bytes
    label: int
    line: int

    @property
    def name(self) -> str:
        """The path as text for messages (undecodable bytes kept as escapes)."""
        return os.fsdecode(self.path)


def read_image_list(path: str | os.PathLike) -> list[ListEntry]:
    """Parse a list file; blank lines are skipped, a malformed line raises PrunekitError."""
    shown = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            raw_lines = handle.read().split(b"\n")
    except FileNotFoundError:
        raise PrunekitError(f"list file '{shown}' not found") from None
    except IsADirectoryError:
        raise PrunekitError(f"list file '{shown}' is a folder, expected a text file") from None
    except OSError as err:
        raise PrunekitError(f"list file '{shown}': cannot read: {err.strerror}") from None
    entries = [_parse(raw, number, shown) for number, raw in enumerate(raw_lines, 1)
               if raw.strip()]
    if not entries:
        raise PrunekitError(f"list file '{shown}' names no images")
    return entries


def _parse(raw: bytes, number: int, shown: str) -> ListEntry:
    line = raw.rstrip(b"\r\n\t ")
    cut = max(line.rfind(b" "), line.rfind(b"\t"))
    label = line[cut + 1:] if cut > 0 else b""
    if not label.lstrip(b"-").isdigit() or not line[:cut].strip():
        text = line.decode("utf-8", "replace")
        raise PrunekitError(f"list file '{shown}' line {number}: expected 'relative/path label' "
                            f"(an integer label after the last space), got {text!r}")
    return ListEntry(line[:cut], int(label), number)
