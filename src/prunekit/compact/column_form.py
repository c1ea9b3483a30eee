"""The column stage of ``prunekit compact``: convs whose zero weight columns remain after channel
removal and kernel trim become ``ColumnConvolution`` layers (``--column-conv auto|always|never``).

Pipeline: trace → plan → weights → prototxt (→ fold-bn) → **columns**. The earlier stages remove
every zero column that forms a whole input channel or an outer kernel row/column; what is left
are scattered columns (one input channel at one kernel tap, across all filters: Caffe_IncReg's
``Reg_Col`` / ``SPP_Col`` / ``GL_Col``), which a dense Convolution still multiplies. This stage
looks at each 2-D Convolution of the already reduced model; where some but not all of its
columns are zero it may replace it by a ``ColumnConvolution`` (src/prunekit/net/layers/
column_convolution.py) that computes only the kept columns ``c·kh·kw + i·kw + j`` (the same set
for every group: a column is kept when it is non-zero in any group):

* ``never``: nothing changes (compact's output is the dense one);
* ``always``: every such conv becomes a column conv;
* ``auto``: both forms are timed here (:func:`prunekit.measure.pair_timing.time_pair`, forward,
  interleaved rounds, medians, ms per batch) at the run's batch size and layout (NCHW, or NHWC
  with ``channels_last``), and the faster one is kept. The column form is cheaper in MACs but
  pays for gathering its reduced im2col; on tiny convs the dense kernel can win.

Every converted layer is checked on the timing input: its column form against its dense form
(:func:`prunekit.compact.verify.compare_outputs`). Convs that share weights by ``param { name }``,
1-D/3-D convs and convs with several bottoms stay dense.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from prunekit.caffe import caffe_pb2
from prunekit.compact.verify import BlobDiff, compare_outputs
from prunekit.errors import PrunekitError
from prunekit.measure.pair_timing import time_pair
from prunekit.net.batch_size import with_batch_size
from prunekit.net.graph import LayerEntry, Net
from prunekit.net.registry import layer_class
from prunekit.net.weights import load_net_param_blobs

MODES = ("auto", "always", "never")
Blobs = dict[str, list[np.ndarray]]


@dataclass(frozen=True)
class ColumnOptions:
    """``mode`` (auto / always / never), the batch size and layout auto times at."""

    mode: str = "never"
    batch: int = 1
    channels_last: bool = False

    @property
    def layout(self) -> str:
        return "NHWC" if self.channels_last else "NCHW"


@dataclass(frozen=True)
class ColumnChoice:
    """One conv with zero columns left: which form it got and why. Times are forward ms per
    batch of ``batch`` in ``layout`` (None when not timed: ``--column-conv always``)."""

    name: str
    column: bool
    kept: int
    total: int
    mode: str
    batch: int
    layout: str
    dense_ms: float | None = None
    column_ms: float | None = None
    check: BlobDiff | None = None

    def line(self) -> str:
        """The report's note for this layer."""
        cols = f"{self.kept:,} of {self.total:,} weight columns kept"
        if self.dense_ms is None:
            return (f"column form ({cols}; --column-conv {self.mode}, not timed)"
                    if self.column else f"dense form kept ({cols}; --column-conv {self.mode})")
        times = (f"column {self.column_ms:.3f} ms vs dense {self.dense_ms:.3f} ms per batch of "
                 f"{self.batch}, {self.layout}")
        form = "column form" if self.column else "dense form kept"
        return f"{form} ({cols}; --column-conv {self.mode}: {times})"


@dataclass
class ColumnForms:
    """The stage's output: the prototxt and blobs with the chosen column layers, and every
    candidate's choice in net order."""

    net_param: caffe_pb2.NetParameter
    blobs: Blobs
    choices: list[ColumnChoice] = field(default_factory=list)

    def chosen(self) -> dict[str, ColumnChoice]:
        return {c.name: c for c in self.choices if c.column}


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise PrunekitError(f"--column-conv '{mode}': expected one of {', '.join(MODES)}")
    return mode


def column_forms(net_param: caffe_pb2.NetParameter, blobs: Blobs, phase: int,
                 options: ColumnOptions, source: str = "<compacted>") -> ColumnForms:
    """Apply the stage (module docstring) to the compacted ``net_param`` with ``blobs`` (every
    layer's blobs by name, numpy). ``never`` returns them unchanged."""
    check_mode(options.mode)
    if options.mode == "never":
        return ColumnForms(net_param, blobs)
    net = Net(with_batch_size(net_param, 1), phase, source=source)
    try:
        load_net_param_blobs(net, blobs, source)
        choices = [_choose(net, entry, kept, options)
                   for entry, kept in _candidates(net)]
    finally:
        net.close()
    chosen = {c.name: c for c in choices if c.column}
    return ColumnForms(_rewrite(net_param, chosen, blobs), _new_blobs(blobs, net_param, chosen),
                       choices)


def kept_columns(weight: torch.Tensor, group: int) -> torch.Tensor:
    """Sorted indices of the per-group weight-matrix columns (c·kh·kw + i·kw + j) that are
    non-zero in any filter of any group; ``weight`` is (N, C/g, kh, kw)."""
    w = weight.detach().reshape(group, weight.shape[0] // group, -1)
    return (w.abs().sum((0, 1)) > 0).nonzero().flatten()


def _candidates(net: Net):
    """(entry, kept columns) of every 2-D single-bottom Convolution with some, not all, columns
    zero and no shared weights."""
    for entry, module in net.named_layers():
        if entry.type != "Convolution" or len(entry.bottoms) != 1:
            continue
        if module.weight.dim() != 4 or any(p.name for p in entry.param.param):
            continue
        kept = kept_columns(module.weight, module.group)
        if 0 < kept.numel() < module.weight[0].numel():
            yield entry, kept


def column_layer(conv: caffe_pb2.LayerParameter, kept: list[int]) -> caffe_pb2.LayerParameter:
    """The ColumnConvolution LayerParameter for Convolution ``conv`` keeping columns ``kept``."""
    out = caffe_pb2.LayerParameter()
    out.CopyFrom(conv)
    out.type = "ColumnConvolution"
    out.column_param.kept_column[:] = kept
    return out


def column_blobs(weight: np.ndarray, rest: list[np.ndarray], kept: list[int]) -> list[np.ndarray]:
    """ColumnConvolution blobs from a dense conv's: weight (N, n_kept) = the kept columns of the
    (N, C/g·kh·kw) matrix, then the bias unchanged."""
    matrix = np.asarray(weight).reshape(weight.shape[0], -1)
    return [np.ascontiguousarray(matrix[:, kept], dtype=np.float32), *rest]


def _choose(net: Net, entry: LayerEntry, kept: torch.Tensor,
            options: ColumnOptions) -> ColumnChoice:
    module = net.layer_modules[entry.key]
    shape = (options.batch, *net.blob_shapes[entry.bottoms[0]][1:])
    ids = kept.tolist()
    dense = layer_class("Convolution", entry.name)(entry.param, [shape], net.phase)
    column = layer_class("ColumnConvolution", entry.name)(column_layer(entry.param, ids),
                                                          [shape], net.phase)
    arrays = [t.detach() for t in module.caffe_blobs()]
    with torch.no_grad():
        dense.weight.copy_(arrays[0])
        column.weight.copy_(arrays[0].reshape(arrays[0].shape[0], -1)[:, kept])
        if len(arrays) > 1:
            dense.bias.copy_(arrays[1])
            column.bias.copy_(arrays[1])
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    if options.channels_last:
        dense, column = (m.to(memory_format=torch.channels_last) for m in (dense, column))
        x = x.contiguous(memory_format=torch.channels_last)
    check = compare_outputs(f"{entry.name} (column vs dense form)", dense, column, x)
    base = dict(name=entry.name, kept=len(ids), total=module.weight[0].numel(),
                mode=options.mode, batch=options.batch, layout=options.layout, check=check)
    if options.mode == "always":
        return ColumnChoice(column=True, **base)
    dense_ms, column_ms = time_pair(dense, column, x)
    return ColumnChoice(column=column_ms < dense_ms, dense_ms=dense_ms, column_ms=column_ms,
                        **base)


def _rewrite(net_param: caffe_pb2.NetParameter,
             chosen: dict[str, ColumnChoice], blobs: Blobs) -> caffe_pb2.NetParameter:
    """A copy of ``net_param`` whose chosen Convolutions (by name, every phase) are column
    layers; kept columns are recomputed from the blobs (one set per layer name)."""
    out = caffe_pb2.NetParameter()
    out.CopyFrom(net_param)
    for i, layer in enumerate(out.layer):
        if layer.type == "Convolution" and layer.name in chosen:
            kept = _kept_ids(blobs[layer.name][0], layer.convolution_param.group or 1)
            out.layer[i].CopyFrom(column_layer(layer, kept))
    return out


def _kept_ids(weight: np.ndarray, group: int) -> list[int]:
    return kept_columns(torch.from_numpy(np.asarray(weight)), group).tolist()


def _new_blobs(blobs: Blobs, net_param: caffe_pb2.NetParameter,
               chosen: dict[str, ColumnChoice]) -> Blobs:
    groups = {lp.name: lp.convolution_param.group or 1 for lp in net_param.layer
              if lp.type == "Convolution"}
    out = dict(blobs)
    for name in chosen:
        weight, *rest = blobs[name]
        out[name] = column_blobs(weight, rest, _kept_ids(weight, groups[name]))
    return out
