"""Helpers for the import tests: torchvision's architectures, ONNX files of them, onnxruntime
outputs, and a MAC count read off the ONNX graph alone (independent of prunekit's code).

Why the torchvision import is patched here: PyPI's torchvision wheels carry compiled ops built
for the CUDA torch. Next to the CPU torch 2.13.0 this project installs, ``import torchvision``
fails while registering fake kernels for those ops (``torchvision._meta_registrations`` raises
"operator torchvision::nms does not exist"). The model definitions are plain Python and need
none of those ops, so the tests put an empty module in place of ``_meta_registrations`` before
the import. The product (``prunekit import --torchvision``) does not do this: it reports the
failure in one line (tests/importer/test_import_errors.py).
"""

from __future__ import annotations

import math
import sys
import types

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

#: The nine architectures the issue names, with the input each is tested at: as small as the
#: architecture allows (VGG's AdaptiveAvgPool2d(7) exports only for a 7·2^5 = 224 input).
NETS = {
    "resnet18": (1, 3, 64, 64), "resnet50": (1, 3, 64, 64), "vgg16_bn": (1, 3, 224, 224),
    "mobilenet_v2": (1, 3, 64, 64), "mobilenet_v3_small": (1, 3, 64, 64),
    "efficientnet_b0": (1, 3, 64, 64), "densenet121": (1, 3, 64, 64),
    "squeezenet1_1": (1, 3, 64, 64), "shufflenet_v2_x1_0": (1, 3, 64, 64),
}


def torchvision_models():
    """``torchvision.models``, imported with the fake-kernel registration skipped (see the
    module docstring); skips the test when torchvision is not installed at all."""
    if "torchvision" not in sys.modules:
        sys.modules.setdefault("torchvision._meta_registrations",
                               types.ModuleType("torchvision._meta_registrations"))
    try:
        import torchvision
    except ImportError:
        pytest.skip("torchvision is not installed (it is in the test extra)")
    return torchvision.models


def torchvision_onnx(name: str, path, seed: int = 0) -> tuple[int, ...]:
    """Export torchvision ``name`` (random weights from ``seed``, eval mode) to ``path``
    with torch.onnx.export; returns the input shape."""
    import torch

    from prunekit.importer.torchvision_source import export_onnx

    torch.manual_seed(seed)
    model = torchvision_models().get_model(name, weights=None)
    _randomise_batch_norms(model, seed)
    shape = NETS[name]
    export_onnx(model, shape, str(path))
    return shape


def _randomise_batch_norms(model, seed: int) -> None:
    """Fresh BatchNorms are the identity (mean 0, var 1, γ 1, β 0); give them real statistics
    so the test sees a wrong mean/variance/γ/β mapping."""
    import torch

    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
            with torch.no_grad():
                m.weight.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)


def ort_outputs(path, x: np.ndarray) -> list[np.ndarray]:
    """onnxruntime's outputs of the ONNX file at ``path`` for input ``x``."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})


def ort_first_output_per_image(path, x: np.ndarray) -> np.ndarray:
    """onnxruntime's first output of the batch-1 ONNX file at ``path`` for each image of
    ``x``, concatenated (one session for all images)."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    """max |got − want| / max |want|: the "within 1e-4 of the output scale" measure."""
    return float(np.abs(got - want).max()) / max(float(np.abs(want).max()), 1e-12)


# ---------------------------------------------------------------- independent MAC count
def onnx_macs(path) -> dict[str, int]:
    """MACs per image of the ONNX model at ``path`` from its inferred shapes, with the
    conventions of docs/flops.md: ``conv`` (Conv: weights × output H·W; ConvTranspose:
    weights × input H·W), ``fc`` (Gemm/MatMul: weights) and ``all`` (adds 2 per element for
    BatchNormalization (a BatchNorm and a Scale), 1 per output element for Add/Sub/Sum of
    n−1 = 1 extra input, a Mul of two activations or by a non-scalar constant, kernel area
    per output element of AveragePool and H·W of GlobalAveragePool / spatial ReduceMean;
    0 for activations, including SiLU's x·sigmoid(x) and x·hardsigmoid(x))."""
    model = onnx.load(str(path))
    graph = model.graph
    shapes = _runtime_shapes(model)
    consts = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    producer = {}
    for node in graph.node:
        if node.op_type == "Constant":
            consts[node.output[0]] = onnx.numpy_helper.to_array(node.attribute[0].t)
        for out in node.output:
            producer[out] = node
    per_image = lambda name: math.prod(shapes[name][1:])  # noqa: E731
    counts = {"conv": 0, "fc": 0, "all": 0}
    for node in graph.node:
        if node.output[0] not in shapes:  # integer shape arithmetic (Shape -> Gather -> Mul)
            continue
        kind, macs = _node_macs(node, shapes, consts, producer, per_image)
        counts[kind] = counts.get(kind, 0) + macs
        if kind != "other":
            counts["all"] += macs
    counts["all"] += counts.pop("other", 0)
    return counts


def _runtime_shapes(model) -> dict[str, list[int]]:
    """The shape of every float tensor the counted ops read or write: ONNX's static inference
    where it gives every dimension, else as onnxruntime computes it (static inference leaves
    the tensors after a computed Reshape unknown). Running the model only for the unknown ones
    keeps VGG-16 at 224×224 cheap: all its shapes are static."""
    graph = model.graph
    wanted = {"Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization", "Add", "Sub",
              "Sum", "Mul", "AveragePool", "GlobalAveragePool", "ReduceMean"}
    names = {n for node in graph.node if node.op_type in wanted
             for n in (node.input[0], node.output[0])}
    names -= {t.name for t in graph.initializer}
    typed = onnx.shape_inference.infer_shapes(model).graph
    values = list(typed.value_info) + list(typed.input) + list(typed.output)
    floats = {v.name for v in values if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT}
    names = (names & floats) | {o.name for o in graph.output}
    static = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in values
              if v.name in names and v.type.tensor_type.HasField("shape")
              and all(d.HasField("dim_value") for d in v.type.tensor_type.shape.dim)}
    missing = names - set(static)
    return {**static, **(_ort_shapes(model, missing) if missing else {})}


def _ort_shapes(model, names: set[str]) -> dict[str, list[int]]:
    """The shapes onnxruntime gives the tensors ``names`` (and the graph's outputs) for a zero
    input."""
    names = names - {o.name for o in model.graph.output}
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None)
                              for n in sorted(names))
    session = ort.InferenceSession(probe.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    first = session.get_inputs()[0]
    x = np.zeros([d if isinstance(d, int) else 1 for d in first.shape], np.float32)
    values = session.run(None, {first.name: x})
    return {o.name: list(v.shape) for o, v in zip(session.get_outputs(), values)}


def _is_constant(name, consts, producer) -> bool:
    if name in consts:
        return True
    node = producer.get(name)
    return node is not None and node.op_type in ("Identity",) and node.input[0] in consts


def _node_macs(node, shapes, consts, producer, per_image) -> tuple[str, int]:
    op = node.op_type
    if op in ("Conv", "ConvTranspose"):
        w = consts[node.input[1]] if node.input[1] in consts else consts[
            producer[node.input[1]].input[0]]
        spatial_of = node.output[0] if op == "Conv" else node.input[0]
        return "conv", w.size * math.prod(shapes[spatial_of][2:])
    if op in ("Gemm", "MatMul"):
        w_name = node.input[1]
        w = consts.get(w_name)
        if w is None:
            w = consts[producer[w_name].input[0]]
        return "fc", w.size
    if op == "BatchNormalization":
        return "other", 2 * per_image(node.output[0])
    if op in ("Add", "Sub", "Sum"):
        return "other", (len(node.input) - 1) * per_image(node.output[0])
    if op == "Mul":
        return "other", _mul_macs(node, consts, producer, per_image)
    if op == "AveragePool":
        return "other", math.prod(_attr(node, "kernel_shape")) * per_image(node.output[0])
    if op in ("GlobalAveragePool", "ReduceMean"):
        return "other", per_image(node.input[0])
    return "other", 0


def _mul_macs(node, consts, producer, per_image) -> int:
    a, b = node.input
    for gate, other in ((a, b), (b, a)):
        src = producer.get(gate)
        if src is not None and src.op_type in ("Sigmoid", "HardSigmoid") and \
                src.input[0] == other:
            return 0  # x · sigmoid(x): one activation (Swish / HardSwish)
    for c in (a, b):
        if _is_constant(c, consts, producer):
            value = consts.get(c)
            if value is None:
                value = consts[producer[c].input[0]]
            return 0 if value.size == 1 else per_image(node.output[0])
    return per_image(node.output[0])


def _attr(node, name):
    for a in node.attribute:
        if a.name == name:
            return list(onnx.helper.get_attribute_value(a))
    raise KeyError(name)
