"""Atomic writes: complete or untouched, with the umask's mode (not mkstemp's 0600), and a
one-line user error for a destination folder that cannot hold files."""

from __future__ import annotations

import os
import stat

import pytest

from prunekit.atomic import atomic_output, atomic_write_bytes
from prunekit.errors import PrunekitError


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_written_files_get_the_umask_mode(tmp_path, mask):
    old = os.umask(mask)
    try:
        atomic_write_bytes(tmp_path / "a.caffemodel", b"abc")
        with atomic_output(tmp_path / "b.onnx") as tmp:
            with open(tmp, "wb") as handle:
                handle.write(b"xyz")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "a.caffemodel") == 0o666 & ~mask
    assert _mode(tmp_path / "b.onnx") == 0o666 & ~mask
    assert (tmp_path / "b.onnx").read_bytes() == b"xyz"


def test_failed_writer_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_output(tmp_path / "m.onnx") as tmp:
            with open(tmp, "wb") as handle:
                handle.write(b"half")
            raise RuntimeError("writer failed")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("where", ["missing/x.bin", "file/x.bin"])
def test_unusable_folder_is_a_user_error(tmp_path, where):
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(PrunekitError, match="cannot write .*(does not exist|is not a folder)"):
        atomic_write_bytes(tmp_path / where, b"abc")
    with pytest.raises(PrunekitError, match="cannot write"):
        with atomic_output(tmp_path / where):
            pass
