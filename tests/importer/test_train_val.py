"""``prunekit import --train-val``: the written train_val.prototxt and solver skeleton are run
by ``prunekit train`` with in-solver IncReg filter pruning (Reg_Row) on real LMDBs."""

from __future__ import annotations

import sys
from pathlib import Path

import lmdb
import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from cli_helpers import run_cli  # noqa: E402

from prunekit.caffe import array_to_datum  # noqa: E402
from prunekit.importer.torchvision_source import export_onnx  # noqa: E402


def _lmdb(path: Path, count: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    env = lmdb.open(str(path), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for i in range(count):
            image = rng.integers(0, 256, (3, 20, 20), dtype=np.uint8)
            txn.put(f"{i:08d}".encode(), array_to_datum(image, i % 4).SerializeToString())
    env.close()


def test_train_val_and_solver_from_import_prune_with_reg_row(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8), nn.ReLU6(),
                          nn.Conv2d(8, 16, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(16, 4))
    export_onnx(model, (1, 3, 16, 16), str(tmp_path / "m.onnx"))
    _lmdb(tmp_path / "train_lmdb", 24, 0)
    _lmdb(tmp_path / "test_lmdb", 8, 1)
    run_cli(["import", "--onnx", "m.onnx", "--out-model", "deploy.prototxt",
             "--out-weights", "w.caffemodel", "--train-val", "train_val.prototxt",
             "--train-source", "train_lmdb", "--test-source", "test_lmdb", "--train-batch", "4",
             "--test-batch", "4", "--scale", "0.0039", "--prune-ratio", "0.5"], tmp_path,
            check=True)
    train_val = (tmp_path / "train_val.prototxt").read_text()
    assert train_val.count("prune_ratio: 0.5") == 3
    assert 'type: "SoftmaxWithLoss"' in train_val and 'type: "Accuracy"' in train_val
    assert "crop_size: 16" in train_val
    solver = tmp_path / "solver.prototxt"
    text = solver.read_text()
    assert 'prune_method: "Reg_Row"' in text
    for old, new in (("max_iter: 10000000", "max_iter: 6"), ("test_iter: 10", "test_iter: 1"),
                     ("display: 20", "display: 1")):
        assert old in text
        text = text.replace(old, new)
    solver.write_text(text)
    proc = run_cli(["train", "--solver", "solver.prototxt", "--weights", "w.caffemodel"],
                   tmp_path, check=True)
    log = proc.stdout + proc.stderr
    assert "Iteration 6" in log or "Iteration 5" in log, log[-2000:]
    assert "Reg_Row" in log or "prune" in log.lower(), log[-2000:]
    assert any((tmp_path / "weights").glob("*.caffemodel"))
