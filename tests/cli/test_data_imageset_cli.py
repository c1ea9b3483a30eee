"""``prunekit data imageset`` and ``data mean`` against real Caffe output, by real CLI runs.

../shared/fixtures/caffe_convert_imageset holds LMDBs and a mean file made by stock Caffe 1.0's
convert_imageset / compute_image_mean from its images/ folder (16 photos and a corrupt file).
"""

from __future__ import annotations

import re
from pathlib import Path

import lmdb
import numpy as np
import pytest

from cli_helpers import REPO, run_cli
from prunekit.caffe import caffe_pb2

FIXTURE = (REPO / ".." / "shared" / "fixtures" / "caffe_convert_imageset").resolve()
IMAGES = FIXTURE / "images"

#: fixture LMDB -> the convert_imageset flags its README says made it
CAFFE_RUNS = {
    "raw_48x40_lmdb": ["--resize_height=48", "--resize_width=40"],
    "gray_32_lmdb": ["--gray", "--resize_height=32", "--resize_width=32"],
    "enc_png_lmdb": ["--encoded", "--encode_type=png"],
}


@pytest.fixture(autouse=True)
def _need_fixture() -> None:
    if not FIXTURE.is_dir():
        pytest.skip(f"shared fixtures not found at {FIXTURE}")


def read_lmdb(path: Path) -> list[tuple[bytes, bytes]]:
    env = lmdb.open(str(path), readonly=True, lock=False, subdir=True)
    try:
        with env.begin() as txn:
            return list(txn.cursor().iternext(keys=True, values=True))
    finally:
        env.close()


def imageset(tmp_path: Path, flags: list[str], name: str = "db", root: Path = IMAGES,
             listfile: Path = IMAGES / "list.txt"):
    return run_cli(["data", "imageset", *flags, f"{root}/", str(listfile), name], tmp_path)


def one_line_error(proc) -> str:
    """The CLI's error: exit 1, a single 'prunekit data: error:' line, no traceback."""
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("prunekit data: error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


@pytest.mark.parametrize("fixture_db", ["raw_48x40_lmdb", "gray_32_lmdb"])
def test_raw_datums_are_byte_identical_to_caffes(tmp_path: Path, fixture_db: str) -> None:
    proc = imageset(tmp_path, CAFFE_RUNS[fixture_db])
    assert proc.returncode == 0, proc.stderr
    ours, caffes = read_lmdb(tmp_path / "db"), read_lmdb(FIXTURE / fixture_db)
    assert [k for k, _ in ours] == [k for k, _ in caffes]
    for (key, mine), (_, theirs) in zip(ours, caffes):
        assert mine == theirs, key  # the whole serialized Datum: shape, pixels, label, encoded


def test_png_encoded_datums_match_caffes(tmp_path: Path) -> None:
    proc = imageset(tmp_path, CAFFE_RUNS["enc_png_lmdb"])
    assert proc.returncode == 0, proc.stderr
    ours, caffes = read_lmdb(tmp_path / "db"), read_lmdb(FIXTURE / "enc_png_lmdb")
    assert [k for k, _ in ours] == [k for k, _ in caffes]
    cv2 = pytest.importorskip("cv2")
    for (key, mine), (_, theirs) in zip(ours, caffes):
        a, b = caffe_pb2.Datum.FromString(mine), caffe_pb2.Datum.FromString(theirs)
        assert (a.encoded, a.label, a.channels, a.height, a.width) == \
            (b.encoded, b.label, b.channels, b.height, b.width) == (True, b.label, 0, 0, 0)
        assert a.data[:8] == b"\x89PNG\r\n\x1a\n"
        pixels = [cv2.imdecode(np.frombuffer(d.data, np.uint8), cv2.IMREAD_UNCHANGED) for d in (a, b)]
        assert np.array_equal(*pixels), key
        # With this OpenCV the PNG bytes are the same too (docs/data.md: they may differ with
        # another zlib/libpng, the pixels may not).
        assert mine == theirs, key


def test_broken_file_is_skipped_as_caffe_logs_it(tmp_path: Path) -> None:
    proc = imageset(tmp_path, CAFFE_RUNS["raw_48x40_lmdb"])
    assert proc.returncode == 0
    caffe_log = (FIXTURE / "raw_48x40_lmdb.log").read_text()
    for message in ("A total of 17 images.", "Could not open or find file images/class1/broken.jpg",
                    "Processed 16 files."):
        assert message in caffe_log
    assert "A total of 17 images." in proc.stderr
    assert f"Could not open or find file {IMAGES}/class1/broken.jpg (list line 17)" in proc.stderr
    assert "Processed 16 files." in proc.stderr
    assert re.search(r"Skipped 1 of 17 images .* lines 17 \(class1/broken\.jpg\)", proc.stderr)
    keys = [k for k, _ in read_lmdb(tmp_path / "db")]
    assert keys[-1] == b"00000015_class1/img_015.jpg" and len(keys) == 16


def test_mean_matches_compute_image_mean(tmp_path: Path) -> None:
    assert imageset(tmp_path, CAFFE_RUNS["raw_48x40_lmdb"]).returncode == 0
    proc = run_cli(["data", "mean", "db", "mean.binaryproto"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    ours = caffe_pb2.BlobProto.FromString((tmp_path / "mean.binaryproto").read_bytes())
    caffes = caffe_pb2.BlobProto.FromString((FIXTURE / "mean_48x40.binaryproto").read_bytes())
    assert (ours.num, ours.channels, ours.height, ours.width) == (1, 3, 48, 40)
    assert (ours.num, ours.channels, ours.height, ours.width) == \
        (caffes.num, caffes.channels, caffes.height, caffes.width)
    assert np.array_equal(np.array(ours.data, np.float32), np.array(caffes.data, np.float32))
    pattern = r"mean_value channel \[\d\]: [\d.]+"
    caffe_lines = re.findall(pattern, (FIXTURE / "mean_48x40.log").read_text())
    assert len(caffe_lines) == 3
    assert re.findall(pattern, proc.stderr) == caffe_lines
    assert "Processed 16 files." in proc.stderr


def test_mean_of_encoded_lmdb_equals_mean_of_raw(tmp_path: Path) -> None:
    size = ["--resize_height=48", "--resize_width=40"]
    assert imageset(tmp_path, [*size, "--encode_type", "png"], "png").returncode == 0
    assert run_cli(["data", "mean", "png", "m.binaryproto"], tmp_path).returncode == 0
    ours = caffe_pb2.BlobProto.FromString((tmp_path / "m.binaryproto").read_bytes())
    caffes = caffe_pb2.BlobProto.FromString((FIXTURE / "mean_48x40.binaryproto").read_bytes())
    assert np.array_equal(np.array(ours.data, np.float32), np.array(caffes.data, np.float32))


def test_mean_refuses_images_of_different_sizes(tmp_path: Path) -> None:
    proc = run_cli(["data", "mean", str(FIXTURE / "enc_png_lmdb"), "m.binaryproto"], tmp_path)
    assert "needs one size" in one_line_error(proc)
    assert not (tmp_path / "m.binaryproto").exists()
    assert list(tmp_path.iterdir()) == []


def test_encoded_without_resize_keeps_the_file_bytes(tmp_path: Path) -> None:
    assert imageset(tmp_path, ["--encoded"]).returncode == 0
    for key, value in read_lmdb(tmp_path / "db"):
        datum = caffe_pb2.Datum.FromString(value)
        assert datum.encoded and datum.data == (IMAGES / key[9:].decode()).read_bytes()


def test_encoded_resized_jpeg_is_opencvs_quality_95(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    proc = imageset(tmp_path, ["--encoded", "--resize_height", "20", "--resize_width", "24"])
    assert proc.returncode == 0
    key, value = read_lmdb(tmp_path / "db")[3]
    image = cv2.resize(cv2.imread(str(IMAGES / key[9:].decode())), (24, 20))
    expected = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    assert caffe_pb2.Datum.FromString(value).data == expected


def test_one_and_two_workers_write_the_same_lmdb(tmp_path: Path) -> None:
    flags = ["--resize_height=24", "--resize_width=20"]
    assert imageset(tmp_path, [*flags, "--threads", "1"], "one").returncode == 0
    assert imageset(tmp_path, [*flags, "-threads=2"], "two").returncode == 0
    one, two = read_lmdb(tmp_path / "one"), read_lmdb(tmp_path / "two")
    assert len(one) == 16 and one == two


def test_shuffle_is_a_function_of_the_seed(tmp_path: Path) -> None:
    flags = ["--resize_height=8", "--resize_width=8", "--threads=2"]
    for name, extra in [("plain", []), ("s5", ["--shuffle", "--seed", "5"]),
                        ("s5b", ["-shuffle=true", "-seed=5"]), ("s6", ["--shuffle", "--seed=6"]),
                        ("off", ["--shuffle=false", "--seed=5"])]:
        assert imageset(tmp_path, [*flags, *extra], name).returncode == 0
    plain, s5, s5b, s6, off = (read_lmdb(tmp_path / n) for n in ("plain", "s5", "s5b", "s6", "off"))
    assert s5 == s5b and off == plain
    assert [k[9:] for k, _ in s5] != [k[9:] for k, _ in plain]
    assert [k[9:] for k, _ in s5] != [k[9:] for k, _ in s6]
    # the same Datums, keyed by their shuffled position
    assert sorted((k[9:], v) for k, v in s5) == sorted((k[9:], v) for k, v in plain)
    numbers = [int(k[:8]) for k, _ in s5]  # positions after shuffling; the broken file's is a gap
    assert numbers == sorted(numbers) and len(set(range(17)) - set(numbers)) == 1


def test_progress_bar_with_images_per_second(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PRUNEKIT_PROGRESS", "1")  # as on a terminal
    proc = imageset(tmp_path, ["--resize_height=8", "--resize_width=8"])
    assert proc.returncode == 0
    assert re.search(r"imageset \[#+\] 17/17 [\d,.]+ images/s", proc.stderr)
    proc = run_cli(["data", "mean", "db", "m.binaryproto"], tmp_path)
    assert re.search(r"mean \[#+\] 16/16 [\d,.]+ images/s", proc.stderr)
    monkeypatch.setenv("PRUNEKIT_PROGRESS", "0")
    proc = run_cli(["data", "mean", "db", "m2.binaryproto"], tmp_path)
    assert "images/s" not in proc.stderr and "\r" not in proc.stderr
