"""Helpers for the prune-after-import tests: tiny LMDBs, an imported torchvision net with its
``--train-val`` files, a shortened solver skeleton, and forward passes of a deploy net."""

from __future__ import annotations

import sys
from pathlib import Path

import lmdb
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from cli_helpers import run_cli  # noqa: E402
from importer_helpers import torchvision_onnx  # noqa: E402

from prunekit import caffe  # noqa: E402
from prunekit.caffe import array_to_datum  # noqa: E402
from prunekit.net.batch_size import with_batch_size  # noqa: E402
from prunekit.net.graph import Net  # noqa: E402
from prunekit.net.layers.base import TEST  # noqa: E402
from prunekit.net.weights import load_caffemodel  # noqa: E402


def write_lmdb(path: Path, count: int, seed: int, side: int = 64) -> None:
    """``count`` random 3×side×side uint8 images (labels 0–3) as Caffe Datums in an LMDB."""
    rng = np.random.default_rng(seed)
    env = lmdb.open(str(path), map_size=1 << 26)
    with env.begin(write=True) as txn:
        for i in range(count):
            image = rng.integers(0, 256, (3, side, side), dtype=np.uint8)
            txn.put(f"{i:08d}".encode(), array_to_datum(image, i % 4).SerializeToString())
    env.close()


def import_for_training(name: str, workdir: Path, method: str, ratio: float) -> None:
    """torchvision ``name`` (random weights, 64×64) → ONNX → ``prunekit import --train-val``
    in ``workdir`` (deploy.prototxt, w.caffemodel, train_val.prototxt, solver.prototxt) on two
    small LMDBs, every Convolution with ``prune_param { prune_ratio: ratio }``."""
    torchvision_onnx(name, workdir / "m.onnx", seed=1)
    write_lmdb(workdir / "train_lmdb", 8, 0)
    write_lmdb(workdir / "test_lmdb", 2, 1)
    run_cli(["import", "--onnx", "m.onnx", "--out-model", "deploy.prototxt",
             "--out-weights", "w.caffemodel", "--train-val", "train_val.prototxt",
             "--train-source", "train_lmdb", "--test-source", "test_lmdb", "--train-batch", "2",
             "--test-batch", "2", "--scale", "0.0039", "--prune-method", method,
             "--prune-ratio", str(ratio)], workdir, check=True)


def shorten_solver(path: Path, changes: dict[str, str]) -> None:
    """Apply ``changes`` (old text → new) to the written solver; each old text must be there,
    so a changed skeleton fails the test instead of running a 10-million-iteration job."""
    text = path.read_text()
    for old, new in changes.items():
        assert old in text, (old, text)
        text = text.replace(old, new)
    path.write_text(text)


def deploy_outputs(model: Path, weights: Path, x: np.ndarray) -> np.ndarray:
    """The single output of the deploy net ``model`` with ``weights`` for input ``x``."""
    net = Net(with_batch_size(caffe.read_net_prototxt(model), x.shape[0]), TEST,
              source=str(model))
    load_caffemodel(net, weights)
    net.eval()
    with torch.no_grad():
        _, outputs = net({"data": torch.from_numpy(x)})
    (out,) = outputs.values()
    return out.numpy()
