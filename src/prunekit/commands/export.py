"""``prunekit export --model M --weights W (--onnx out.onnx | --torchscript out.pt)``: a model
that runs without prunekit (ONNX Runtime, TensorRT, libtorch, ``torch.jit.load``).

A train_val-style net is exported as its deploy would be (``prunekit.net.inference_part``): its
losses and Accuracy layers go, a SoftmaxWithLoss becomes a Softmax ``prob``, label inputs go.
The net is built for the TEST phase and traced once on a random input of the prototxt's input
shape(s), so Caffe's layer semantics are frozen into plain torch ops; inputs are the Input
layers' tops (``data`` …), outputs the net outputs in Caffe's order. After writing, the file is
loaded back (TorchScript always; ONNX when onnxruntime is installed) and its outputs compared
with prunekit's on the same input, so a broken export fails here, not in deployment. Without
onnxruntime the ONNX file is written and the command says plainly that it was NOT checked;
without onnx (torch's exporter needs it) it stops before writing, naming the extra to install
(``prunekit.extras``).
The file is written to a temporary name and renamed: no half-written model is left behind.
"""

from __future__ import annotations

import argparse
import os
import warnings

import torch
from torch import nn

from prunekit import caffe
from prunekit.atomic import atomic_output
from prunekit.atomic_group import check_destination
from prunekit.commands.flags import flag
from prunekit.errors import PrunekitError
from prunekit.extras import available, install_hint, require
from prunekit.log import get_logger
from prunekit.net.batch_size import with_batch_size
from prunekit.net.graph import Net
from prunekit.net.inference_part import inference_part
from prunekit.net.layers.base import TEST
from prunekit.net.weights import load_caffemodel


def add_arguments(parser: argparse.ArgumentParser) -> None:
    flag(parser, "model", required=True, help="deploy prototxt (Input layers)")
    flag(parser, "weights", help=".caffemodel (e.g. from prunekit compact)")
    flag(parser, "onnx", help="write an ONNX model here")
    flag(parser, "torchscript", help="write a TorchScript model here")
    flag(parser, "batch", type=int, help="batch size of the exported inputs (default: the prototxt's)")
    flag(parser, "opset", type=int, default=17, help="ONNX opset (default 17)")


def run(args: argparse.Namespace) -> int:
    return run_export(args.model, args.weights, args.onnx, args.torchscript, args.batch,
                      args.opset)


#: Largest |exported − prunekit| / max |prunekit output| accepted after the round trip.
TOLERANCE = 1e-4


class Exported(nn.Module):
    """``forward(*inputs) -> tuple(outputs)``: the net with its Input tops fed from arguments."""

    def __init__(self, net: Net, input_names: list[str]) -> None:
        super().__init__()
        self.net = net
        self.input_names = input_names

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        _, outputs = self.net(dict(zip(self.input_names, inputs)))
        return tuple(outputs[name] for name in self.net.output_names)


def input_blobs(net: Net, model: str) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of every Input top; other data layers cannot be exported (they read files)."""
    found = []
    for entry, module in net.named_layers():
        if not getattr(module, "is_data", False):
            continue
        if entry.type != "Input":
            raise PrunekitError(
                f"{model}: layer '{entry.name}' is a {entry.type} layer; export needs a deploy "
                "prototxt whose inputs are Input layers (e.g. compression_experiments/*/"
                "deploy.prototxt)")
        found += [(top, tuple(net.blob_shapes[top])) for top in entry.tops]
    if not found:
        raise PrunekitError(f"{model}: no Input layer, nothing to feed the exported model")
    return found


def run_export(model: str, weights: str | None, onnx_out: str | None = None,
               torchscript_out: str | None = None, batch: int | None = None,
               opset: int = 17) -> int:
    if bool(onnx_out) == bool(torchscript_out):
        raise PrunekitError("export: give exactly one of --onnx FILE or --torchscript FILE")
    if onnx_out:
        require("onnx", "prunekit export --onnx")
    check_destination(onnx_out or torchscript_out, "exported model")
    part = inference_part(caffe.read_net_prototxt(model))
    param = part.net_param
    if part.changes:
        get_logger().info("%s: exporting its inference part: %s", model, "; ".join(part.changes))
    if batch:
        param = with_batch_size(param, batch)
    net = Net(param, TEST, source=model)
    if weights:
        load_caffemodel(net, weights)
    net.eval()
    inputs = input_blobs(net, model)
    wrapper = Exported(net, [name for name, _ in inputs])
    generator = torch.Generator().manual_seed(0)
    example = tuple(torch.randn(shape, generator=generator) for _, shape in inputs)
    with torch.no_grad():
        expected = wrapper(*example)
    out = onnx_out or torchscript_out
    if torchscript_out:
        _atomic(out, lambda tmp: torch.jit.save(torch.jit.trace(wrapper, example), tmp))
        with torch.no_grad():
            got = torch.jit.load(out)(*example)
        _check(out, expected, got)
        checked = True
    else:
        _atomic(out, lambda tmp: _onnx(wrapper, example, tmp, inputs, net, opset))
        checked = _check_onnx(out, expected, example, [name for name, _ in inputs])
    get_logger().info("Exported %s (inputs %s, outputs %s) to %s%s", model,
                      ", ".join(f"{n} {list(s)}" for n, s in inputs),
                      ", ".join(net.output_names), out,
                      "" if checked else " (NOT checked: see the warning above)")
    return 0


def _onnx(wrapper, example, path: str, inputs, net: Net, opset: int) -> None:
    with torch.no_grad():
        torch.onnx.export(wrapper, example, path, dynamo=False, opset_version=opset,
                          input_names=[name for name, _ in inputs],
                          output_names=list(net.output_names))


def _atomic(path: str, write) -> None:
    with atomic_output(path, keep_suffix=True) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracing notes on Python control flow: expected here
        write(tmp)


def _check(path: str, expected, got) -> None:
    for name_index, (a, b) in enumerate(zip(expected, got)):
        scale = max(float(a.abs().max()), 1e-12)
        err = float((a - torch.as_tensor(b)).abs().max()) / scale
        if err > TOLERANCE:
            os.remove(path)
            raise PrunekitError(f"{path}: output #{name_index} of the exported model differs "
                                f"from prunekit's by {err:.2e} of its scale; removed the file")
        get_logger().info("Round trip of output #%d: max |difference| = %.3g of its scale",
                          name_index, err)


def _check_onnx(path: str, expected, example, names: list[str]) -> bool:
    """Run ``path`` in onnxruntime and compare with prunekit; False (and a plain warning) when
    onnxruntime is missing, so an unchecked file is never reported as a checked one."""
    if not available("onnxruntime"):
        get_logger().warning("%s was written but NOT checked: onnxruntime is not installed, so "
                             "its outputs were not compared with prunekit's; install it with %s",
                             path, install_hint("onnxruntime"))
        return False
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = session.run(None, {n: x.numpy() for n, x in zip(names, example)})
    _check(path, expected, [torch.from_numpy(g) for g in got])
    return True
