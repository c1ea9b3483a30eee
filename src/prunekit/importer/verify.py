"""Check an imported net before anything is written: prunekit builds it, every blob holding an
ONNX tensor has that tensor's inferred shape, and (when onnxruntime is installed) its outputs on
a random input equal onnxruntime's on the original file within TOLERANCE of the output scale."""

from __future__ import annotations

import numpy as np
import torch

from prunekit.errors import PrunekitError
from prunekit.importer.convert import ImportedNet
from prunekit.log import get_logger
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST
from prunekit.net.weights import load_net_param_blobs

#: Largest |prunekit − onnxruntime| / max |onnxruntime output| accepted.
TOLERANCE = 1e-4


def build_net(imported: ImportedNet) -> Net:
    """The TEST-phase prunekit Net of ``imported`` with its weights."""
    source = imported.graph.source
    net = Net(imported.net_param, TEST, source=f"{source} (imported)")
    load_net_param_blobs(net, imported.blobs, source)
    net.eval()
    return net


def check_shapes(imported: ImportedNet, net: Net) -> None:
    """Every Caffe blob that holds an ONNX tensor has the tensor's shape."""
    for tensor, blob in imported.blob_of.items():
        want = imported.graph.shapes.get(tensor)
        have = net.blob_shapes.get(blob)
        if want is not None and have is not None and tuple(want) != tuple(have):
            raise PrunekitError(f"{imported.graph.source}: tensor '{tensor}' has shape "
                                f"{list(want)} in ONNX but Caffe blob '{blob}' has {list(have)}; "
                                "this is a prunekit import bug, please report it")


def check_outputs(imported: ImportedNet, net: Net, seed: int = 0) -> float | None:
    """Largest relative difference to onnxruntime over the outputs, or None without it."""
    try:
        import onnxruntime as ort
    except ImportError:
        get_logger().warning("onnxruntime is not installed: the imported net's outputs were "
                             "not compared with the ONNX model's")
        return None
    graph = imported.graph
    rng = np.random.default_rng(seed)
    feed = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in graph.inputs}
    session = ort.InferenceSession(graph.source, providers=["CPUExecutionProvider"])
    expected = session.run(list(graph.outputs), feed)
    with torch.no_grad():
        _, outputs = net({imported.blob_of[n]: torch.from_numpy(x) for n, x in feed.items()})
    worst = 0.0
    for (name, blob), want in zip(imported.outputs, expected):
        got = outputs[blob].numpy() if blob in outputs else None
        if got is None:
            raise PrunekitError(f"{graph.source}: output '{name}' (Caffe blob '{blob}') is not "
                                "an output of the imported net")
        err = float(np.abs(got - want).max()) / max(float(np.abs(want).max()), 1e-12)
        if err > TOLERANCE:
            raise PrunekitError(f"{graph.source}: the imported net's output '{blob}' differs "
                                f"from onnxruntime's '{name}' by {err:.2e} of its scale "
                                f"(limit {TOLERANCE:g}); nothing was written")
        worst = max(worst, err)
    return worst
