"""Bad input to ``prunekit data imageset``: a one-line error or a named skip, nothing half-written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from test_data_imageset_cli import FIXTURE, IMAGES, imageset, one_line_error, read_lmdb

GOOD = ["class0/img_001.jpg 0", "class1/img_014.jpg 1"]


@pytest.fixture(autouse=True)
def _need_fixture() -> None:
    if not FIXTURE.is_dir():
        pytest.skip(f"shared fixtures not found at {FIXTURE}")


def write_list(folder: Path, lines: list[str]) -> Path:
    path = folder / "list.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def leftovers(folder: Path, keep: set[str]) -> list[str]:
    """Entries of ``folder`` other than ``keep`` (a temporary LMDB folder would show here)."""
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def test_missing_root(tmp_path: Path) -> None:
    listfile = write_list(tmp_path, GOOD)
    error = one_line_error(imageset(tmp_path, [], root=tmp_path / "nope", listfile=listfile))
    assert "image root folder" in error and "nope" in error and "not found" in error
    assert leftovers(tmp_path, {"list.txt"}) == []


def test_missing_list_file(tmp_path: Path) -> None:
    error = one_line_error(imageset(tmp_path, [], listfile=tmp_path / "missing.txt"))
    assert "list file" in error and "missing.txt" in error and "not found" in error
    assert leftovers(tmp_path, set()) == []


def test_list_line_without_label(tmp_path: Path) -> None:
    listfile = write_list(tmp_path, [GOOD[0], "class0/img_002.jpg", GOOD[1]])
    error = one_line_error(imageset(tmp_path, [], listfile=listfile))
    assert f"'{listfile}' line 2" in error and "class0/img_002.jpg" in error and "label" in error
    assert leftovers(tmp_path, {"list.txt"}) == []


def test_corrupt_jpeg_is_skipped_and_named(tmp_path: Path) -> None:
    listfile = write_list(tmp_path, [GOOD[0], "class1/broken.jpg 1", GOOD[1]])
    proc = imageset(tmp_path, [], listfile=listfile)
    assert proc.returncode == 0, proc.stderr
    assert "Could not open or find file" in proc.stderr and "broken.jpg (list line 2)" in proc.stderr
    assert "Skipped 1 of 3 images" in proc.stderr
    assert [k for k, _ in read_lmdb(tmp_path / "db")] == [
        b"00000000_class0/img_001.jpg", b"00000002_class1/img_014.jpg"]
    assert leftovers(tmp_path, {"list.txt", "db"}) == []


def test_existing_db_is_refused_and_untouched(tmp_path: Path) -> None:
    listfile = write_list(tmp_path, GOOD)
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "mine.txt").write_text("keep me")
    error = one_line_error(imageset(tmp_path, [], listfile=listfile))
    assert "'db' already exists" in error
    assert [p.name for p in (tmp_path / "db").iterdir()] == ["mine.txt"]
    assert leftovers(tmp_path, {"list.txt", "db"}) == []


def test_output_under_a_regular_file(tmp_path: Path) -> None:
    listfile = write_list(tmp_path, GOOD)
    (tmp_path / "afile").write_text("not a folder")
    error = one_line_error(imageset(tmp_path, [], "afile/db", listfile=listfile))
    assert "afile" in error and "is a file, not a folder" in error
    assert (tmp_path / "afile").read_text() == "not a folder"
    assert leftovers(tmp_path, {"list.txt", "afile"}) == []


def test_nothing_readable_fails_and_writes_nothing(tmp_path: Path) -> None:
    listfile = write_list(tmp_path, ["class1/broken.jpg 1", "class0/absent.jpg 0"])
    proc = imageset(tmp_path, [], listfile=listfile)
    error = one_line_error(proc)
    assert "none of the 2 listed images could be read" in error
    assert proc.stderr.count("Could not open or find file") == 2
    assert leftovers(tmp_path, {"list.txt"}) == []


def test_leveldb_and_unknown_encoding_are_refused(tmp_path: Path) -> None:
    listfile = write_list(tmp_path, GOOD)
    assert "only lmdb" in one_line_error(imageset(tmp_path, ["--backend", "leveldb"], listfile=listfile))
    assert "use jpg or png" in one_line_error(imageset(tmp_path, ["--encode_type=gif"], listfile=listfile))
    assert leftovers(tmp_path, {"list.txt"}) == []


def test_check_size_stops_on_a_different_size(tmp_path: Path) -> None:
    listfile = write_list(tmp_path, GOOD)
    error = one_line_error(imageset(tmp_path, ["--check_size"], listfile=listfile))
    assert "--check_size" in error and "img_014.jpg" in error and "list line 2" in error
    assert leftovers(tmp_path, {"list.txt"}) == []


def test_root_without_final_slash_and_paths_with_spaces(tmp_path: Path) -> None:
    root = tmp_path / "my images"
    (root / "sub dir").mkdir(parents=True)
    shutil.copy(IMAGES / "class0" / "img_001.jpg", root / "sub dir" / "a b.jpg")
    listfile = write_list(tmp_path, ["sub dir/a b.jpg 7"])
    proc = run_imageset_no_slash(tmp_path, root, listfile)
    assert proc.returncode == 0, proc.stderr
    [(key, _)] = read_lmdb(tmp_path / "db")
    assert key == b"00000000_sub dir/a b.jpg"


def run_imageset_no_slash(tmp_path: Path, root: Path, listfile: Path):
    from cli_helpers import run_cli

    return run_cli(["data", "imageset", str(root), str(listfile), "db"], tmp_path)


def test_one_resize_dimension_warns_and_keeps_the_size(tmp_path: Path) -> None:
    listfile = write_list(tmp_path, GOOD[:1])
    proc = imageset(tmp_path, ["--resize_height=10"], listfile=listfile)
    assert proc.returncode == 0 and "resized only when both are > 0" in proc.stderr
    from prunekit.caffe import caffe_pb2

    datum = caffe_pb2.Datum.FromString(read_lmdb(tmp_path / "db")[0][1])
    assert (datum.height, datum.width) == (224, 142)  # img_001.jpg as it is (manifest.tsv)
