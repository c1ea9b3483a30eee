"""Net.use_channels_last() changes the memory layout only: every output stays the same.

`prunekit speedup --channels-last` (and the compact/decompose benchmarks' flag) time nets in
NHWC; a layer whose code assumed NCHW strides (a .view on an activation, a raw data pointer)
would silently give different numbers there. Checked on nets with every layer kind the zoo uses:
ResNet-50 (BatchNorm, Scale, Eltwise, 1x1/strided convs, global pooling, InnerProduct after a
conv), the Inception-style net (Concat, group and depthwise conv, LRN) and LeNet-5 (Flatten-free
InnerProduct on a 4-D blob)."""

import json
import subprocess
import sys

import pytest
import torch
from _compact_helpers import EXP, REPO, build, load_param, outputs, randomise
from test_models import INCEPTION


@pytest.mark.parametrize("source", ["resnet50", "inception", "lenet5"])
def test_nhwc_gives_the_same_outputs(source: str) -> None:
    param = (load_param(INCEPTION) if source == "inception"
             else load_param(EXP / source / "deploy.prototxt"))
    net = build(param)
    randomise(net, seed=3)
    shape = net.blob_shapes["data"]
    x = torch.randn(shape, generator=torch.Generator().manual_seed(4))
    before = outputs(net, x)
    net.use_channels_last()
    conv = next(m for e, m in net.named_layers() if e.type == "Convolution")
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    after = outputs(net, x)
    assert before.keys() == after.keys()
    for name in before:
        scale = float(before[name].abs().max()) or 1.0
        assert float((before[name] - after[name]).abs().max()) / scale <= 1e-5, name


def test_speedup_cli_accepts_channels_last(tmp_path) -> None:
    model = str(EXP / "lenet5" / "deploy.prototxt")
    out = tmp_path / "speedup.json"
    run = subprocess.run([sys.executable, "-m", "prunekit.cli", "speedup", "--model", model,
                          "--vs-model", model, "--batch", "4", "--rounds", "1",
                          "--iterations", "1", "--channels-last", "--json", str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    record = json.loads(out.read_text())
    assert record["channels_last"] is True and record["theoretical"] == pytest.approx(1.0)
