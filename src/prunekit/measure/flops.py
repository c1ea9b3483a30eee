"""Theoretical cost of a net: parameters and multiply-accumulates (MACs) per image, dense and
with pruned structure skipped.

Units: **MACs per image** (one multiply-accumulate = 2 FLOPs; FLOPs = 2 × MACs). Batch size
never enters. Conventions, chosen to match Caffe_IncReg's ``GetPruneProgress`` for conv layers
and the usual hand counts elsewhere:

* Convolution: weight count × output H×W (per top; N-d: all spatial axes). Bias adds are not
  counted. *Left*: only weights in a non-zero filter (row) **and** a non-zero column of its
  group (input channel × kernel position) count, i.e. what a dense kernel would still compute
  after removing all-zero filters, channels and kernel rows/columns.
* ColumnConvolution (prunekit's column-pruned conv): its weight (num_output, n_kept) count ×
  output H×W, i.e. num_output · n_kept MACs per output pixel whatever the group (each group's
  num_output/g filters use that group's n_kept columns): exactly what it computes. *Left*: as
  for Convolution, non-zero rows × non-zero columns of that weight per group.
* Deconvolution: weight count × *input* H×W (each input pixel scatters the whole kernel).
* InnerProduct: weight count × the positions before ``axis`` (1 for the usual axis 1).
  *Left*: non-zero rows × non-zero columns.
* BatchNorm, Scale, Bias: 1 MAC per output element (a fused multiply-add per value).
* Eltwise: SUM with coefficients and PROD (n−1) per element for n inputs (SUM with all
  coefficients 1: n−1 adds, counted as MACs); MAX 0.
* Pooling: AVE kernel area per output element; MAX 0 (comparisons, not MACs).
* LRN across channels: local_size per element; within channel: local_size² per element.
* Everything else (ReLU, Softmax, Dropout, Concat, losses, data): 0.

Only the convolutions and InnerProduct have a "left" that differs from dense; the
cheap per-element layers keep their dense count (they are <2% of VGG-16/ResNet-50 MACs).
Parameters are all Caffe blobs that are learnable (weights, biases, Scale's γ/β; BatchNorm's
running statistics are not parameters); non-zero parameters count exact non-zeros.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from prunekit.net.graph import Net

CONV_TYPES = ("Convolution", "ColumnConvolution", "Deconvolution")
FC_TYPE = "InnerProduct"


@dataclass(frozen=True)
class LayerCount:
    """One layer's row of the table (MACs per image)."""

    name: str
    type: str
    out_shape: tuple[int, ...]   # top 0 without the batch axis
    params: int
    nonzero_params: int
    macs: int
    macs_left: int

    @property
    def kind(self) -> str:
        """"conv", "fc" or "other" (which total the layer goes into)."""
        if self.type in CONV_TYPES:
            return "conv"
        return "fc" if self.type == FC_TYPE else "other"


@dataclass(frozen=True)
class Totals:
    conv_macs: int
    conv_macs_left: int
    all_macs: int
    all_macs_left: int
    params: int
    nonzero_params: int

    @property
    def conv_speedup(self) -> float:
        return _ratio(self.conv_macs, self.conv_macs_left)

    @property
    def all_speedup(self) -> float:
        return _ratio(self.all_macs, self.all_macs_left)

    @property
    def compression(self) -> float:
        return _ratio(self.params, self.nonzero_params)

    def as_dict(self) -> dict:
        out = asdict(self)
        out.update(conv_speedup=self.conv_speedup, all_speedup=self.all_speedup,
                   compression=self.compression)
        return out


def _ratio(dense: int, left: int) -> float:
    if left == 0:
        return math.nan if dense == 0 else math.inf
    return dense / left


def count_net(net: Net, dense: bool = False) -> list[LayerCount]:
    """Every layer of ``net`` with its parameters and MACs (see the module docstring).

    ``dense``: ignore the weights' values (a net with filler weights, e.g. a deploy prototxt
    without fillers is all zeros): non-zero = all parameters, MACs left = MACs.
    """
    shapes = net.blob_shapes
    rows = []
    learnable = {}
    for ref in net.param_blobs():
        if ref.learnable or isinstance(ref.tensor, torch.nn.Parameter):
            learnable.setdefault(ref.layer, []).append(ref.tensor)
    for entry, module in net.named_layers():
        tensors = learnable.get(entry.name, [])
        params = sum(t.numel() for t in tensors)
        nonzero = params if dense else sum(int(torch.count_nonzero(t.detach())) for t in tensors)
        out = tuple(int(d) for d in shapes[entry.tops[0]][1:]) if entry.tops else ()
        bottoms = [tuple(int(d) for d in shapes[b]) for b in entry.bottoms]
        tops = [tuple(int(d) for d in shapes[t]) for t in entry.tops]
        macs, left = layer_macs(entry.type, module, bottoms, tops)
        rows.append(LayerCount(entry.name, entry.type, out, params, nonzero, macs,
                               macs if dense else left))
    return rows


def totals(rows: list[LayerCount]) -> Totals:
    conv = [r for r in rows if r.kind == "conv"]
    return Totals(sum(r.macs for r in conv), sum(r.macs_left for r in conv),
                  sum(r.macs for r in rows), sum(r.macs_left for r in rows),
                  sum(r.params for r in rows), sum(r.nonzero_params for r in rows))


def layer_macs(type_: str, module, bottoms: list[tuple[int, ...]],
               tops: list[tuple[int, ...]]) -> tuple[int, int]:
    """(dense MACs, MACs left) per image for one layer; shapes include the batch axis."""
    if type_ in CONV_TYPES:
        return _conv(module, bottoms, tops, transposed=type_ == "Deconvolution")
    if type_ == FC_TYPE:
        return _fc(module, bottoms[0])
    per_image = _elements(tops[0]) if tops else 0
    if type_ in ("BatchNorm", "Scale", "Bias"):
        return per_image, per_image
    if type_ == "Eltwise":
        n = len(bottoms)
        ops = 0 if module.operation == 2 else (n if _weighted(module) else n - 1)  # 2 = MAX
        return ops * per_image, ops * per_image
    if type_ == "Pooling":
        if module.pool != 1:  # 1 = AVE; MAX and STOCHASTIC compare
            return 0, 0
        kernel = math.prod(bottoms[0][2:]) if module.global_pooling else math.prod(module.kernel)
        return kernel * per_image, kernel * per_image
    if type_ == "LRN":
        window = module.size if module.across else module.size ** 2
        return window * per_image, window * per_image
    return 0, 0


def _elements(shape: tuple[int, ...]) -> int:
    return math.prod(shape[1:]) if len(shape) > 1 else 1


def _weighted(module) -> bool:
    return module.operation == 1 and any(c != 1.0 for c in module.coeff)  # 1 = SUM


def _conv(module, bottoms, tops, transposed: bool) -> tuple[int, int]:
    w = module.weight.detach()
    spatial_of = bottoms if transposed else tops
    spatial = sum(math.prod(shape[2:]) for shape in spatial_of)
    kept = _kept_conv_weights(w, module.group, transposed)
    return w.numel() * spatial, kept * spatial


def _kept_conv_weights(w: torch.Tensor, group: int, transposed: bool) -> int:
    """Weights in a non-zero output filter and a non-zero column of the same group.

    Convolution weight [N, C/g, k...]: rows are filters, a group owns N/g rows. Deconvolution
    weight [C, N/g, k...]: dim 0 are the *input* channels, so the roles swap per group.
    """
    g = group
    a = w.abs().reshape(w.shape[0], -1).unflatten(0, (g, w.shape[0] // g))  # [g, dim0/g, rest]
    rows = (a.sum(2) > 0).sum(1)                                             # [g]
    cols = (a.sum(1) > 0).sum(1)                                             # [g]
    del transposed  # the same count: non-zero dim-0 slices × non-zero rest-slices per group
    return int((rows * cols).sum())


def _fc(module, bottom: tuple[int, ...]) -> tuple[int, int]:
    w = module.weight.detach().abs()
    w = w.t() if getattr(module, "transpose", False) else w                  # [N, K]
    outer = math.prod(bottom[1:module.axis]) if module.axis > 1 else 1
    kept = int((w.sum(1) > 0).sum()) * int((w.sum(0) > 0).sum())
    return w.numel() * outer, kept * outer
