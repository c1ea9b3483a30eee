"""ImageNet experiments end to end from JPEG files (issue 13, item 5).

A small ImageNet-style folder of real photos (tests/cli/photo_set.py) goes through the real CLI:
``data list`` -> ``data imageset --resize_height 256 --resize_width 256`` (train and val) ->
``data mean``. Then compression_experiments/vgg16 and resnet50 run from those LMDBs with their own
train_val.prototxt and solver.prototxt, changed only in data sources, mean_file, batch sizes,
iteration counts and intervals (``iter_size`` counts as a batch size: it is the gradient
accumulation that makes the effective batch). Weights come from the train_val's fillers; ResNet-50
freezes its BatchNorm statistics (use_global_stats), which have no filler, so it starts from a
caffemodel of prunekit's filler weights plus BN statistics estimated on a few images. Each net runs two
IncReg (Reg_Col) iterations, snapshots, and resumes for one more.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from cli_helpers import REPO, run_cli
from photo_set import make_photo_folder

from prunekit import caffe
from prunekit.net.graph import Net
from prunekit.net.layers.base import TRAIN
from prunekit.net.layers.batch_norm import BatchNorm
from prunekit.net.weights import save_caffemodel

#: What the test changes in each solver.prototxt (iteration counts, intervals, batch accumulation).
SOLVER_CHANGES = {
    "snapshot: 1000": "snapshot: 2",
    "display: 20": "display: 1",
    "test_iter: 5000": "test_iter: 1",
    "max_iter: 10000000": "max_iter: 2",
    "iter_size: 2 ": "iter_size: 1 ",
}


@pytest.fixture(scope="module")
def image_dbs(tmp_path_factory) -> dict[str, Path]:
    """Train/val LMDBs (raw Datums, 256x256) and the mean file, all made by the CLI."""
    root = tmp_path_factory.mktemp("ilsvrc_like")
    make_photo_folder(root / "train", classes=4, per_class=3, seed=1)
    make_photo_folder(root / "val", classes=4, per_class=1, seed=2)
    out = {}
    for split in ("train", "val"):
        run_cli(["data", "list", str(root / split), "--out", str(root / f"{split}.txt")], root, check=True)
        db = root / f"{split}_lmdb"
        run_cli(["data", "imageset", "--resize_height", "256", "--resize_width", "256",
                 "--shuffle", f"{root / split}/", str(root / f"{split}.txt"), str(db)], root, check=True)
        out[split] = db
    out["mean"] = root / "mean.binaryproto"
    run_cli(["data", "mean", str(out["train"]), str(out["mean"])], root, check=True)
    return out


def _rewrite(text: str, changes: dict[str, str], name: str) -> str:
    for old, new in changes.items():
        assert old in text, (name, old)
        text = text.replace(old, new)
    return text


def _experiment(root: Path, net: str, dbs: dict[str, Path]) -> Path:
    """compression_experiments/<net> under ``root``: train_val and solver with test-size changes."""
    exp = root / "compression_experiments" / net
    (exp / "weights").mkdir(parents=True)  # train.sh makes it
    source = REPO / "compression_experiments" / net
    net_changes = {
        'source: "data/ilsvrc12/ilsvrc12_train_lmdb"': f'source: "{dbs["train"]}"',
        'source: "data/ilsvrc12/ilsvrc12_val_lmdb"': f'source: "{dbs["val"]}"',
        "batch_size: 16": "batch_size: 1",
        "batch_size: 10": "batch_size: 1",
    }
    if net == "resnet50":
        net_changes['mean_file: "data/ilsvrc12/imagenet_mean.binaryproto"'] = \
            f'mean_file: "{dbs["mean"]}"'
    text = (source / "train_val.prototxt").read_text()
    (exp / "train_val.prototxt").write_text(_rewrite(text, net_changes, net))
    text = (source / "solver.prototxt").read_text()
    (exp / "solver.prototxt").write_text(_rewrite(text, SOLVER_CHANGES, net) + "random_seed: 5\n")
    return exp


def _filler_start_with_bn_statistics(train_val: Path, out: Path) -> Path:
    """The TRAIN net with prunekit's filler weights, its frozen BatchNorm statistics estimated on
    four TRAIN batches, saved as a caffemodel. BatchNorm has no filler: without statistics a frozen BN
    computes x/sqrt(eps) and ResNet-50's 53 of them overflow; with a constant variance of 1 the
    16 residual sums still grow the logits into softmax's floor (loss 87.3, Caffe's cap). So each
    BN runs once in batch-statistics mode, which leaves the statistics of its input in its blobs."""
    net = Net(caffe.read_net_prototxt(train_val), TRAIN, source=str(train_val))
    net.set_seed(5)
    bns = [m for _, m in net.named_layers() if isinstance(m, BatchNorm)]
    assert len(bns) == 53
    for bn in bns:
        bn.use_global_stats = False
    with torch.no_grad():
        for _ in range(4):  # statistics of 4 images (batch 1), averaged as Caffe's BatchNorm does
            net.forward()
    for bn in bns:
        bn.use_global_stats = True
    assert not any(bn.frozen_without_statistics() for bn in bns)
    save_caffemodel(net, out)
    net.close()
    return out


def _iterations(log: str) -> list[int]:
    """The iterations the solver stepped (one 'Iteration N, lr = ' line each at display: 1)."""
    return [int(i) for i in re.findall(r"Iteration (\d+), lr = ", log)]


@pytest.mark.parametrize("net", ["vgg16", "resnet50"])
def test_experiment_prunes_snapshots_and_resumes_from_jpegs(tmp_path, image_dbs, net):
    exp = _experiment(tmp_path, net, image_dbs)
    solver = f"compression_experiments/{net}/solver.prototxt"
    weights = []
    if net == "resnet50":
        weights = ["--weights", str(_filler_start_with_bn_statistics(
            exp / "train_val.prototxt", tmp_path / "filler_start.caffemodel"))]
    first = run_cli(["train", "--solver", solver, *weights], tmp_path, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    start = re.search(r"\[app\] Training starts, iter: 0 .*speedup: ([\d.]+|inf)", first.stdout)
    assert start, first.stdout[:2000]
    assert start.group(1) == "1", start.group(0)  # filler weights: nothing is pruned yet
    assert _iterations(first.stderr) == [0, 1]
    assert "use global statistics while training" not in first.stderr  # statistics were loaded
    assert re.findall(r"\*\*\*\* Step (\d+) \(after update\)", first.stdout) == ["1", "2"]
    losses = [float(x) for x in re.findall(r"Iteration \d+, loss = ([\d.e+-]+)", first.stderr)]
    # finite; not necessarily small: at pixel-scale inputs the random nets' logits can saturate
    # the softmax (Caffe caps the loss at -log(FLT_MIN) = 87.34)
    assert losses and all(np.isfinite(losses)) and all(0 < x < 87.4 for x in losses), losses
    snap = exp / "weights" / "_iter_2.solverstate"
    assert snap.is_file() and snap.with_suffix(".caffemodel").is_file()
    model = caffe.layer_blobs(caffe.read_caffemodel(snap.with_suffix(".caffemodel")))
    first_conv = "conv1_2" if net == "vgg16" else "conv1"
    assert np.abs(model[first_conv][0]).sum() > 0  # fillers, not Caffe's default constant 0

    text = (exp / "solver.prototxt").read_text()
    (exp / "solver.prototxt").write_text(text.replace("max_iter: 2", "max_iter: 3"))
    resumed = run_cli(["train", "--solver", solver, "--snapshot", str(snap)], tmp_path, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Restoring previous solver status from" in resumed.stderr
    assert _iterations(resumed.stderr) == [2]
    # IncReg continues at step 3 (= iteration 2 + 1) with the restored reg factors; a fresh start
    # would log '[app] Training starts' and step 1 again
    steps = re.findall(r"\*\*\*\* Step (\d+) \(after update\)", resumed.stdout)
    assert steps == ["3"] and "Training starts" not in resumed.stdout, resumed.stdout[-2000:]
    assert "old reg: 0 " not in resumed.stdout.split("Step 3")[0]
    assert (exp / "weights" / "_iter_3.caffemodel").is_file()
