"""convert_imageset list files: Caffe's last-space split, and malformed lines named."""

from __future__ import annotations

from pathlib import Path

import pytest

from prunekit.data.image_list import read_image_list
from prunekit.errors import PrunekitError


def test_paths_keep_spaces_and_bytes(tmp_path: Path) -> None:
    listfile = tmp_path / "l.txt"
    listfile.write_bytes(b"a dir/x y.jpg 3\r\n\n  \nb/\xe9t\xe9.png -1\n")
    entries = read_image_list(listfile)
    assert [(e.path, e.label, e.line) for e in entries] == [
        (b"a dir/x y.jpg", 3, 1), (b"b/\xe9t\xe9.png", -1, 4)]


@pytest.mark.parametrize("bad", ["x.jpg", "x.jpg one", "7"])
def test_line_without_integer_label(tmp_path: Path, bad: str) -> None:
    listfile = tmp_path / "l.txt"
    listfile.write_text(f"ok.jpg 1\n{bad}\n")
    with pytest.raises(PrunekitError, match=r"l\.txt' line 2: expected 'relative/path label'"):
        read_image_list(listfile)


def test_empty_list(tmp_path: Path) -> None:
    (tmp_path / "l.txt").write_text("\n\n")
    with pytest.raises(PrunekitError, match="names no images"):
        read_image_list(tmp_path / "l.txt")
