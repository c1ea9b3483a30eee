"""Issue 18 item 2, each input fault fixed at its source: one line naming the file and the
layer/field, exit 1, nothing allocated before the check, nothing half-written.

In-process tests build Nets from prototxt text (fast); the full-disk tests run the real CLI in a
subprocess whose file-size limit (RLIMIT_FSIZE) makes writes fail with EFBIG, the same OSError
path a full disk (ENOSPC) takes, without needing a small file system to mount.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from prunekit import caffe
from prunekit.atomic_group import write_files_together
from prunekit.errors import PrunekitError
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST, TRAIN
from prunekit.net.memory import available_bytes
from prunekit.net.weights import load_net_param_blobs, net_blobs

REPO = Path(__file__).resolve().parents[2]
INPUT = ('layer {{ name: "data" type: "Input" top: "data" '
         'input_param {{ shape {{ {dims} }} }} }}\n')


def _net(text: str, phase: int = TEST) -> Net:
    return Net(caffe.parse_net_text(text, "n.prototxt"), phase, source="n.prototxt")


def _input(*dims: int) -> str:
    return INPUT.format(dims=" ".join(f"dim: {d}" for d in dims))


def _error(text: str, phase: int = TEST) -> str:
    with pytest.raises(PrunekitError) as err:
        _net(text, phase)
    message = str(err.value)
    assert "\n" not in message and message.startswith("n.prototxt: "), message
    return message


def test_a_top_written_by_two_layers_is_refused_as_in_caffe() -> None:
    relu = 'layer {{ name: "{}" type: "ReLU" bottom: "{}" top: "{}" }}\n'
    message = _error(_input(1, 1, 4, 4) + relu.format("a", "data", "x")
                     + relu.format("b", "data", "x"))
    assert "layer 'b' (ReLU): top blob 'x' produced by multiple sources" in message
    in_place = _net(_input(1, 1, 4, 4) + relu.format("a", "data", "x") + relu.format("b", "x", "x"))
    assert [e.name for e in in_place.entries] == ["data", "a", "b"]


@pytest.mark.parametrize("dims, needle", [
    ((0, 1, 8, 8), "top 'data' has shape [0, 1, 8, 8]; every dimension must be positive"),
    ((2, -3, 8, 8), "top 'data' has shape [2, -3, 8, 8]; every dimension must be positive"),
])
def test_zero_and_negative_dims_are_refused(dims, needle) -> None:
    assert needle in _error(_input(*dims))


def test_a_net_too_big_for_memory_is_refused_before_allocating() -> None:
    """Refused while it is built (no GPU here) or, where a GPU might run it, at its first
    forward on the host; either way before its blobs exist."""
    free = available_bytes()
    assert free is not None
    batch = free // (4 * 3 * 224 * 224) + 1  # one more image than memory holds
    text = _input(batch, 3, 224, 224)
    if torch.cuda.is_available():
        with pytest.raises(PrunekitError, match="the TRAIN net needs"):
            _net(text, TRAIN)()
        return
    message = _error(text, TRAIN)
    assert "layer 'data' (Input): the TRAIN net up to this layer needs" in message
    assert "GiB of memory is available" in message


def test_a_huge_num_output_is_refused_before_allocating() -> None:
    conv = ('layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" '
            'convolution_param { num_output: 2000000000 kernel_size: 3 } }\n')
    message = _error(_input(1, 3, 8, 8) + conv)
    assert ("layer 'conv' (Convolution): its parameter blob of shape [2000000000, 3, 3, 3]"
            in message)


def test_a_zero_stride_names_the_file_and_layer() -> None:
    conv = ('layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" '
            'convolution_param { num_output: 2 kernel_size: 3 stride: 0 } }\n')
    assert "layer 'conv' (Convolution): stride must be > 0" in _error(_input(1, 1, 8, 8) + conv)


LOSS_NET = _input(4, 10) + (
    'layer { name: "label" type: "Input" top: "label" input_param { shape { dim: 4 } } }\n'
    'layer { name: "accuracy" type: "Accuracy" bottom: "data" bottom: "label" top: "acc" }\n'
    'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "data" bottom: "label" top: "loss" }\n')


@pytest.mark.parametrize("bad", [10.0, -1.0])
def test_a_label_outside_the_classes_is_one_line_naming_the_layer(bad: float) -> None:
    net = _net(LOSS_NET)
    feed = {"data": torch.randn(4, 10), "label": torch.tensor([1.0, 2.0, bad, 3.0])}
    with pytest.raises(PrunekitError) as err:
        net(feed)
    assert str(err.value) == (f"n.prototxt: layer 'accuracy' (Accuracy): label {int(bad)} is "
                              "outside the 10 classes 0..9 of its first bottom (check the labels "
                              "of the data source, or set ignore_label)")
    loss_only = _net(LOSS_NET.replace("Accuracy", "Silence").replace('top: "acc" ', ""))
    with pytest.raises(PrunekitError, match="layer 'loss' \\(SoftmaxWithLoss\\): label"):
        loss_only(feed)
    good = {"data": feed["data"], "label": torch.tensor([1.0, 2.0, 9.0, 0.0])}
    assert torch.isfinite(net(good)[0])


TWO_CONVS = _input(1, 1, 8, 8) + "".join(
    f'layer {{ name: "{n}" type: "Convolution" bottom: "{b}" top: "{n}" '
    'convolution_param { num_output: 2 kernel_size: 3 '
    'weight_filler { type: "constant" value: 7 } } }\n'
    for n, b in (("conv1", "data"), ("conv2", "conv1")))


def test_a_caffemodel_setting_some_layers_says_which_kept_their_fillers(capsys) -> None:
    donor = net_blobs(_net(TWO_CONVS))
    net = _net(TWO_CONVS)
    load_net_param_blobs(net, {"conv1": [np.ones_like(a) for a in donor["conv1"]]}, "w.caffemodel",
                         report=True)
    assert float(net.layer("conv1").weight.detach()[0, 0, 0, 0]) == 1.0
    assert float(net.layer("conv2").weight.detach()[0, 0, 0, 0]) == 7.0
    err = capsys.readouterr().err
    assert ("w.caffemodel: sets 1 of the net's 2 weight layers; these keep their fillers: conv2"
            in err)


def test_a_caffemodel_matching_no_layer_is_refused() -> None:
    arrays = net_blobs(_net(TWO_CONVS))
    renamed = {f"old_{name}": blobs for name, blobs in arrays.items()}
    with pytest.raises(PrunekitError) as err:
        load_net_param_blobs(_net(TWO_CONVS), renamed, "w.caffemodel", report=True)
    assert str(err.value).startswith("w.caffemodel: none of its weight layers (old_conv1, "
                                     "old_conv2) has the name of a weight layer of the net "
                                     "(conv1, conv2)")


def test_files_written_together_are_all_or_none(tmp_path: Path) -> None:
    files = [(tmp_path / "a.prototxt", b"a", "prototxt"),
             (tmp_path / "missing" / "b.caffemodel", b"b", "caffemodel")]
    with pytest.raises(PrunekitError, match="nothing was written"):
        write_files_together(files)
    assert os.listdir(tmp_path) == []
    write_files_together(files[:1] + [(tmp_path / "b.caffemodel", b"b", "caffemodel")])
    assert sorted(os.listdir(tmp_path)) == ["a.prototxt", "b.caffemodel"]


# ---------------------------------------------------------------- full disk, real CLI
def _limited(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def _cli_with_file_limit(args: list[str], cwd: Path, limit: int) -> subprocess.CompletedProcess:
    """``prunekit ARGS`` whose files may not grow past ``limit`` bytes (Python ignores SIGXFSZ,
    so writes fail with EFBIG as they would with ENOSPC on a full disk)."""
    return subprocess.run([sys.executable, "-m", "prunekit.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          preexec_fn=_limited(limit), env=dict(os.environ))


def _one_line_error(proc: subprocess.CompletedProcess, command: str) -> str:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"prunekit {command}: error: "), proc.stderr
    return last


def test_data_mnist_on_a_full_disk_leaves_no_database(tmp_path: Path) -> None:
    proc = _cli_with_file_limit(["data", "mnist", "--out", "mnist"], tmp_path, 256 * 1024)
    last = _one_line_error(proc, "data")
    assert "cannot write LMDB mnist/mnist_train_lmdb" in last and "nothing was written" in last
    assert os.listdir(tmp_path / "mnist") == []


def _snapshot(tmp_path: Path) -> tuple[Path, Path]:
    """LeNet-5's deploy prototxt and a caffemodel of random weights (no zero filter for compact
    to remove, so its caffemodel stays ~1.7 MB; no training needed)."""
    deploy = tmp_path / "deploy.prototxt"
    deploy.write_text((REPO / "compression_experiments" / "lenet5" / "deploy.prototxt")
                      .read_text().replace("dim: 64", "dim: 1"))
    net = Net(caffe.read_net_prototxt(deploy), TEST, source=str(deploy))
    model = tmp_path / "in" / "lenet.caffemodel"
    model.parent.mkdir()
    rng = np.random.default_rng(0)
    blobs = {name: [rng.standard_normal(a.shape).astype(np.float32) for a in arrays]
             for name, arrays in net_blobs(net).items()}
    caffe.write_caffemodel(model, caffe.net_with_blobs(caffe.read_net_prototxt(deploy), blobs))
    return deploy, model


@pytest.mark.parametrize("command", ["compact", "decompose"])
def test_compact_and_decompose_on_a_full_disk_write_nothing(tmp_path: Path, command: str) -> None:
    deploy, model = _snapshot(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    args = (["compact", "--model", deploy, "--weights", model, "--out_model", out / "c.prototxt",
             "--out_weights", out / "c.caffemodel", "--column_conv", "never"]
            if command == "compact" else
            ["decompose", "--model", deploy, "--weights", model, "--save_model", out / "d",
             "--layer", "conv2", "--K", "4"])
    proc = _cli_with_file_limit([str(a) for a in args], tmp_path, 64 * 1024)  # prototxt fits
    last = _one_line_error(proc, command)
    assert "caffemodel: cannot write caffemodel: File too large; none of" in last
    assert os.listdir(out) == []
