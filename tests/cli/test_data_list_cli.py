"""``prunekit data list``: list files from a folder per class and from a flat val folder,
then ``data imageset`` on them (real JPEGs copied from the Caffe fixture's photos)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cli_helpers import run_cli
from prunekit.caffe import caffe_pb2
from test_data_imageset_cli import FIXTURE, IMAGES, one_line_error, read_lmdb

PHOTOS = [f"class0/img_00{i}.jpg" for i in range(4)] + [f"class1/img_01{i}.jpg" for i in range(3)]


@pytest.fixture
def train_tree(tmp_path: Path) -> Path:
    """train/{n02,n01}/ with 4 and 3 photos, a hidden file and a text file (both ignored)."""
    if not FIXTURE.is_dir():
        pytest.skip(f"shared fixtures not found at {FIXTURE}")
    root = tmp_path / "train"
    for i, photo in enumerate(PHOTOS):
        cls = root / ("n02" if i < 4 else "n01")
        cls.mkdir(parents=True, exist_ok=True)
        shutil.copy(IMAGES / photo, cls / f"{cls.name}_{i}.JPEG")
    (root / "n02" / ".hidden.jpg").write_bytes(b"x")
    (root / "n01" / "notes.txt").write_text("not an image")
    return root


def test_class_folders_get_sorted_labels(tmp_path: Path, train_tree: Path) -> None:
    proc = run_cli(["data", "list", "train", "--out", "lists/train.txt"], tmp_path)
    assert proc.returncode == 1  # lists/ does not exist: a one-line error, nothing written
    assert "lists" in one_line_error(proc) and not (tmp_path / "lists").exists()

    run_cli(["data", "list", "train/", "--out", "train.txt"], tmp_path, check=True)
    lines = (tmp_path / "train.txt").read_text().splitlines()
    assert lines == ["n01/n01_4.JPEG 0", "n01/n01_5.JPEG 0", "n01/n01_6.JPEG 0",
                     "n02/n02_0.JPEG 1", "n02/n02_1.JPEG 1", "n02/n02_2.JPEG 1", "n02/n02_3.JPEG 1"]
    assert (tmp_path / "train_labels.txt").read_text() == "n01\nn02\n"

    run_cli(["data", "imageset", "--resize_height=16", "--resize_width=16", "train/",
             "train.txt", "train_lmdb"], tmp_path, check=True)
    records = read_lmdb(tmp_path / "train_lmdb")
    assert [caffe_pb2.Datum.FromString(v).label for _, v in records] == [0, 0, 0, 1, 1, 1, 1]
    assert records[0][0] == b"00000000_n01/n01_4.JPEG"


def test_labels_file_gives_the_order(tmp_path: Path, train_tree: Path) -> None:
    (tmp_path / "synsets.txt").write_text("n02 some words\nn01 other words\nn09 absent class\n")
    run_cli(["data", "list", "train", "--out", "t.txt", "--labels", "synsets.txt"], tmp_path,
            check=True)
    lines = (tmp_path / "t.txt").read_text().splitlines()
    assert lines[0] == "n02/n02_0.JPEG 0" and lines[-1] == "n01/n01_6.JPEG 1" and len(lines) == 7
    assert (tmp_path / "t_labels.txt").read_text() == "n02\nn01\nn09\n"

    (tmp_path / "short.txt").write_text("n02\n")
    error = one_line_error(run_cli(["data", "list", "train", "--out", "u.txt", "--labels",
                                    "short.txt"], tmp_path))
    assert "n01" in error and "not in the labels file" in error
    assert not (tmp_path / "u.txt").exists()


def test_flat_val_folder_with_label_file(tmp_path: Path, train_tree: Path) -> None:
    val = tmp_path / "val"
    val.mkdir()
    for i in range(3):
        shutil.copy(IMAGES / PHOTOS[i * 2], val / f"ILSVRC2012_val_{i + 1:08d}.JPEG")
    (tmp_path / "val.txt").write_text("ILSVRC2012_val_00000001.JPEG 1\n"
                                      "ILSVRC2012_val_00000002.JPEG n01\n"
                                      "ILSVRC2012_val_00000003.JPEG 0\n"
                                      "ILSVRC2012_val_00000999.JPEG 0\n")  # not in the folder
    (tmp_path / "synsets.txt").write_text("n01\nn02\n")
    run_cli(["data", "list", "val", "--out", "v.txt", "--val-labels", "val.txt", "--labels",
             "synsets.txt"], tmp_path, check=True)
    assert (tmp_path / "v.txt").read_text().splitlines() == [
        "ILSVRC2012_val_00000001.JPEG 1", "ILSVRC2012_val_00000002.JPEG 0",
        "ILSVRC2012_val_00000003.JPEG 0"]

    error = one_line_error(run_cli(["data", "list", "val", "--out", "w.txt"], tmp_path))
    assert "--val-labels" in error
    (tmp_path / "val.txt").write_text("ILSVRC2012_val_00000001.JPEG 1\n")
    error = one_line_error(run_cli(["data", "list", "val", "--out", "w.txt", "--val_labels",
                                    "val.txt"], tmp_path))
    assert "ILSVRC2012_val_00000002.JPEG' has no label in 'val.txt'" in error
    assert not (tmp_path / "w.txt").exists()
