"""Shared helpers for the compact tests: real nets with random weights, whole-filter masks, and
the masked-vs-compacted output comparison the tests hold to 1e-4 of the output scale."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from prunekit import caffe
from prunekit.compact import Compaction, build_compacted, compact
from prunekit.net.batch_size import with_batch_size
from prunekit.net.channel_rules import filter_types
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST

REPO = Path(__file__).resolve().parents[2]
EXP = REPO / "compression_experiments"
#: The layer types with filters (Convolution, InnerProduct), from their channel rules.
FILTER_TYPES = filter_types()


def load_param(source: str | Path, drop: tuple[str, ...] = ()):
    """A NetParameter from a prototxt path or text, without the layers named in ``drop`` (e.g.
    the final Softmax, so the net outputs the logits)."""
    param = (caffe.read_net_prototxt(source) if isinstance(source, Path)
             else caffe.parse_net_text(source))
    keep = [layer for layer in param.layer if layer.name not in drop]
    del param.layer[:]
    param.layer.extend(keep)
    return param


def build(param, phase: int = TEST) -> Net:
    """The net at batch 1."""
    return Net(with_batch_size(param, 1), phase)


def randomise(net: Net, seed: int = 0, bias_std: float = 0.1) -> torch.Generator:
    """He-normal conv/IP weights, N(0, bias_std) biases, random BatchNorm statistics (factor 1)
    and Scale γ ∈ [0.5, 1.5), β ~ N(0, 0.5): every zeroed filter then makes a non-zero constant."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for entry, module in net.named_layers():
            if entry.type in FILTER_TYPES:
                w = module.weight
                fan_in = w[0].numel() if entry.type == "Convolution" or not module.transpose \
                    else w.shape[0]
                w.copy_(torch.randn(w.shape, generator=gen) * math.sqrt(2.0 / fan_in))
                if module.bias_term:
                    module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * bias_std)
            elif entry.type == "BatchNorm":
                module.mean.copy_(torch.randn(module.mean.shape, generator=gen) * 0.5)
                module.variance.copy_(torch.rand(module.variance.shape, generator=gen) * 1.5 + 0.5)
                module.moving_average_factor.fill_(1.0)
            elif entry.type == "Scale":
                module.scale.copy_(torch.rand(module.scale.shape, generator=gen) + 0.5)
                if module.bias_term:
                    module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.5)
    return gen


def half(n: int, gen: torch.Generator) -> torch.Tensor:
    """A random half of range(n)."""
    return torch.randperm(n, generator=gen)[: n // 2]


def zero_filters(net: Net, layer: str, rows) -> None:
    """Zero whole filters (weights only: the bias stays, as after Row pruning)."""
    with torch.no_grad():
        net.layer(layer).weight[rows] = 0


def outputs(net: Net, x: torch.Tensor, data: str = "data") -> dict[str, torch.Tensor]:
    """The net outputs for input ``x`` (through Net.forward, the path `prunekit test` uses)."""
    with torch.no_grad():
        return net({data: x})[1]


def compact_and_compare(param, net: Net, round_to: int = 1, seed: int = 1):
    """Compact ``net`` and run both nets on one N(0, 1) input: (compaction, compacted net,
    worst max |Δ| / max |masked output| over the outputs)."""
    result: Compaction = compact(param, net, round_to)
    small = build_compacted(result, net.phase)
    shape = next(net.blob_shapes[e.tops[0]] for e, m in net.named_layers()
                 if getattr(m, "is_data", False))
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    a, b = outputs(net, x), outputs(small, x)
    worst = max(float((a[k] - b[k]).abs().max()) / float(a[k].abs().max()) for k in a)
    return result, small, worst


def conv_channels(net: Net) -> dict[str, tuple[int, ...]]:
    """Weight shape of every Convolution / InnerProduct."""
    return {e.name: tuple(m.weight.shape) for e, m in net.named_layers()
            if e.type in FILTER_TYPES}
