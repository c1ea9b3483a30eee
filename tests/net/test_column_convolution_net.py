"""A net with ColumnConvolution layers: prototxt + caffemodel round trip, `prunekit flops` counts
its MACs exactly, and `prunekit export` writes ONNX (standard operators only, run back in
onnxruntime) and TorchScript that reproduce the masked dense net."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import onnx
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from cli_helpers import run_cli  # noqa: E402  (tests/cli's helper: real CLI subprocesses)
from prunekit import caffe  # noqa: E402
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST
from prunekit.net.weights import load_caffemodel, save_caffemodel

# (kernel h, w, stride, pad, dilation, group, kept columns) of the three column layers
LAYERS = [((3, 3), 1, 1, 1, 1, [0, 4, 5, 13, 20, 26, 31, 35]),
          ((3, 5), 2, 2, 1, 2, [1, 7, 8, 14, 20, 23, 27, 29]),
          ((5, 5), 1, 2, 2, 1, [3, 12, 24, 40, 77, 100, 120, 149])]


def net_text(column: bool) -> str:
    """Input 1×4×17×17 -> cc1 (4->4) -> ReLU -> cc2 (4->6, groups 2) -> cc3 (6->5); ``column``
    False gives the equivalent dense Convolutions."""
    text = ('name: "cc" layer { name: "data" type: "Input" top: "data" '
            'input_param { shape { dim: 1 dim: 4 dim: 17 dim: 17 } } }\n')
    bottom, outs = "data", [4, 6, 5]
    for n, ((kh, kw), s, p, d, g, kept) in enumerate(LAYERS, 1):
        typ = "ColumnConvolution" if column else "Convolution"
        cols = ("column_param { " + " ".join(f"kept_column: {c}" for c in kept) + " }"
                if column else "")
        text += (f'layer {{ name: "cc{n}" type: "{typ}" bottom: "{bottom}" top: "cc{n}" '
                 f'convolution_param {{ num_output: {outs[n - 1]} kernel_h: {kh} kernel_w: {kw} '
                 f'stride: {s} pad: {p} dilation: {d} group: {g} }} {cols} }}\n')
        if n == 1:
            text += 'layer { name: "relu1" type: "ReLU" bottom: "cc1" top: "cc1" }\n'
        bottom = f"cc{n}"
    return text


def column_net(seed: int = 0) -> Net:
    net = Net(caffe.parse_net_text(net_text(True)), TEST)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    return net


def dense_twin(net: Net) -> Net:
    """The masked dense net: Convolutions whose weights are zero off the kept columns."""
    dense = Net(caffe.parse_net_text(net_text(False)), TEST)
    with torch.no_grad():
        for n in range(1, 4):
            col, conv = net.layer(f"cc{n}"), dense.layer(f"cc{n}")
            conv.weight.copy_(col.dense_weight())
            conv.bias.copy_(col.bias)
    return dense


def output(net: Net, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net.forward({"data": x})[1]["cc3"]


def write_model(tmp_path, net: Net):
    model, weights = tmp_path / "cc.prototxt", tmp_path / "cc.caffemodel"
    model.write_text(net_text(True))
    save_caffemodel(net, weights)
    return model, weights


def test_prototxt_caffemodel_round_trip(tmp_path):
    net = column_net()
    model, weights = write_model(tmp_path, net)
    reread = caffe.read_net_prototxt(model)
    assert list(reread.layer[3].column_param.kept_column) == LAYERS[1][-1]
    assert caffe.parse_net_text(caffe.to_text(reread)) == reread
    loaded = Net(reread, TEST)
    load_caffemodel(loaded, weights)
    x = torch.randn(1, 4, 17, 17)
    ref = output(dense_twin(net), x)
    got = output(loaded, x)
    assert float((got - ref).abs().max()) <= 1e-4 * float(ref.abs().max())
    assert tuple(loaded.layer("cc2").weight.shape) == (6, 8)


def test_flops_counts_kept_columns(tmp_path):
    model, weights = write_model(tmp_path, column_net())
    proc = run_cli(["flops", "--model", str(model), "--weights", str(weights), "--json"],
                   cwd=tmp_path, check=True)
    rows = {r["name"]: r for r in json.loads(proc.stdout)["layers"]}
    # num_output · n_kept per output pixel; output sizes by hand: cc1 17x17 (3x3, pad 1);
    # cc2 3x5 stride 2 pad 2: (17+4-3)/2+1 = 10 by (17+4-5)/2+1 = 9;
    # cc3 5x5 dilation 2 (extent 9) pad 2 on 10x9: 10+4-9+1 = 6 by 9+4-9+1 = 5
    assert rows["cc1"]["macs"] == 4 * 8 * 17 * 17
    assert rows["cc2"]["macs"] == 6 * 8 * 10 * 9
    assert rows["cc3"]["macs"] == 5 * 8 * 6 * 5
    assert rows["cc1"]["macs_left"] == rows["cc1"]["macs"]


def test_export_onnx_and_torchscript(tmp_path):
    net = column_net(seed=3)
    model, weights = write_model(tmp_path, net)
    x = torch.randn(1, 4, 17, 17, generator=torch.Generator().manual_seed(0))  # export's input
    ref = output(dense_twin(net), x)
    onnx_path = tmp_path / "cc.onnx"
    run_cli(["export", "--model", str(model), "--weights", str(weights), "--onnx",
             str(onnx_path)], cwd=tmp_path, check=True)   # runs it back in onnxruntime itself
    graph = onnx.load(str(onnx_path)).graph
    ops = {node.op_type for node in graph.node}
    # standard operators only (the default ONNX domain), and the column form, not a Conv
    assert all(node.domain in ("", "ai.onnx") and onnx.defs.has(node.op_type)
               for node in graph.node), ops
    assert {"Gather", "MatMul"} <= ops and "Conv" not in ops, ops
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {"data": x.numpy()})[0])
    assert float((got - ref).abs().max()) <= 1e-4 * float(ref.abs().max())
    ts_path = tmp_path / "cc.pt"
    run_cli(["export", "--model", str(model), "--weights", str(weights), "--torchscript",
             str(ts_path)], cwd=tmp_path, check=True)
    with torch.no_grad():
        got = torch.jit.load(str(ts_path))(x)
    got = got[0] if isinstance(got, (tuple, list)) else got
    assert float((got - ref).abs().max()) <= 1e-4 * float(ref.abs().max())


def test_channel_traces_pin_column_layers():
    """compact's trace and the pruning graph stop at a ColumnConvolution, saying why."""
    from prunekit.compact.trace import ChannelTrace
    from prunekit.prune.dependency import ChannelGraph

    net = column_net()
    trace = ChannelTrace(net)
    classes = trace.classes(trace.layer("cc2").bottoms[0])
    assert bool(trace.pinned[classes].all())
    reasons = {trace.pin_reason[int(c)] for c in classes}   # cc1 made them, cc2 reads them
    assert reasons and all("(ColumnConvolution)" in r for r in reasons), reasons
    data = trace.classes(trace.layer("cc1").bottoms[0])
    assert {trace.pin_reason[int(c)] for c in data} == {"data from 'data'"}
    assert ChannelGraph(net).registered == []
