"""``prunekit data`` and ``prunekit test`` on real files: the Caffe_IncReg baseline scores ≥ 99%
on the 1,000 embedded test digits, read through the fixture's own unchanged prototxt."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from cli_helpers import run_cli
from prunekit.data.idx import write_idx
from prunekit.data.lmdb_io import LmdbReader


def test_fixture_baseline_scores_99_percent(workdir: Path, lenet_fixture: Path) -> None:
    proc = run_cli(["test", "-model", str(lenet_fixture / "train_val.prototxt"),
                    "-weights", str(lenet_fixture / "baseline_lenet5.caffemodel"),
                    "-iterations", "10"], workdir, check=True)
    assert len(re.findall(r"\] Batch \d+, accuracy = ", proc.stderr)) == 10
    accuracy = float(re.search(r"\] accuracy = ([\d.]+)\n", proc.stderr).group(1))
    loss_line = re.search(r"\] loss = ([\d.e-]+) \(\* 1 = ([\d.e-]+) loss\)", proc.stderr)
    assert accuracy >= 0.99, proc.stderr[-1500:]
    assert loss_line and float(loss_line.group(1)) < 0.1


def test_data_mnist_from_idx_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    idx = tmp_path / "idx"
    idx.mkdir()
    sizes = {"train": 30, "t10k": 12}
    for prefix, n in sizes.items():
        write_idx(idx / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(idx / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, (n,), dtype=np.uint8))
    run_cli(["data", "mnist", "--out", "out", "--idx-dir", "idx"], tmp_path, check=True)
    assert len(LmdbReader(tmp_path / "out" / "mnist_train_lmdb")) == 30
    assert len(LmdbReader(tmp_path / "out" / "mnist_test_lmdb")) == 12


def test_data_mnist_bad_idx_dir_is_a_clear_error(tmp_path: Path) -> None:
    proc = run_cli(["data", "mnist", "--out", "out", "--idx-dir", "missing"], tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "missing" in proc.stderr
    assert not (tmp_path / "out" / "mnist_train_lmdb").exists()
