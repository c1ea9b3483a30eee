"""Fold BatchNorm (+ Scale) into the Convolution / InnerProduct that produces its input.

Why: with global statistics a BatchNorm is a per-channel affine map, ``y = s·x + t`` with
``s = 1/√(σ²+ε)`` and ``t = −μ·s``, and so is a following Scale (``γ·y + β``). Applied to a conv
(or InnerProduct) output channel n they give ``s_n·(W_n * x + b_n) + t_n``: the same as a conv with
``W'_n = s_n·W_n`` and ``b'_n = s_n·b_n + t_n``. Deployed nets do this so that the two
memory-bound passes over every activation (53 BatchNorm + Scale pairs in ResNet-50) disappear;
prunekit does it to time dense and compacted nets the way they would be deployed. Grouped and
depthwise convs fold the same way (row n of the weight is still output channel n).

Exact only when nothing else reads the conv's output before normalisation: the conv's top must
be read by the BatchNorm alone (Caffe nets write BN and Scale in place, ``bottom: "x" top: "x"``;
the not-in-place form works too — the conv then writes the last folded layer's top, so every
consumer reads the blob it read before). A Scale is folded when it is the only reader of the
BatchNorm's top, has one bottom (two bottoms: the factor is a blob, not a weight) and one value per
channel. Anything else is left in place and reported with the reason.

**Inference only.** A BatchNorm is folded when it runs with global statistics in the TEST phase
(``use_global_stats`` unset or true). TRAIN-phase BatchNorm normalises with the statistics of
each batch, which no fixed weight can represent: the output prototxt keeps every other layer of
both phases (data layers, include rules), but its TRAIN net is no longer the net that was
trained. Sums run in float64; the folded blobs are stored as float32.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from prunekit.caffe import caffe_pb2
from prunekit.net.blob_versions import BlobVersions, blob_versions
from prunekit.net.channel_rules import filter_types
from prunekit.net.layers.base import TEST
from prunekit.net.state_rules import layer_included

#: Layer types whose parameters are a ``convolution_param`` (a ColumnConvolution's weight
#: (N, kept columns) also has one row per output channel).
CONV_TYPES = ("Convolution", "ColumnConvolution")


def fold_into() -> tuple[str, ...]:
    """Layer types whose output channels can absorb a per-channel affine map: those declaring
    the FILTERS channel rule (prunekit/net/channel_rules.py), and ColumnConvolution."""
    return (*filter_types(), "ColumnConvolution")

Blobs = dict[str, list[Any]]

#: What ``--fold-bn`` with ``--phase TRAIN`` answers (compact, speedup): folding needs the
#: global statistics TEST uses; TRAIN normalises each batch by its own.
TRAIN_PHASE_ERROR = ("--fold-bn with --phase TRAIN: folding BatchNorm into the conv uses its "
                     "global (TEST-phase) statistics, while TRAIN-phase BatchNorm normalises "
                     "with batch statistics; the folded model is for inference: use --phase TEST")


@dataclass(frozen=True)
class Fold:
    """One folded chain: ``batch_norm`` (and ``scale``, if any) went into ``into``."""

    into: str
    batch_norm: str
    scale: str | None = None

    def __str__(self) -> str:
        chain = self.batch_norm + (f" + {self.scale}" if self.scale else "")
        return f"{chain} -> {self.into}"


@dataclass(frozen=True)
class Left:
    """A BatchNorm or Scale that stays, and why (e.g. ``bn_x: input is a Concat``)."""

    layer: str
    reason: str

    def __str__(self) -> str:
        return f"{self.layer}: {self.reason}"


@dataclass
class BNFolding:
    """The folded prototxt (all phases), its blobs by layer name, what was folded and what not."""

    net_param: caffe_pb2.NetParameter
    blobs: Blobs
    folded: list[Fold] = field(default_factory=list)
    left: list[Left] = field(default_factory=list)

    @property
    def num_scales(self) -> int:
        """How many Scale layers went with their BatchNorm."""
        return sum(f.scale is not None for f in self.folded)

    def summary(self) -> str:
        """One line: how many BatchNorm and Scale layers were folded, and how many stayed."""
        line = (f"folded {len(self.folded)} BatchNorm and {self.num_scales} Scale layer(s) into "
                "the preceding Convolution/InnerProduct (TEST phase; inference only)")
        return line + (f"; {len(self.left)} left (below)" if self.left else "")

    def lines(self) -> list[str]:
        """The summary, then one indented line per layer left in place."""
        return [self.summary()] + [f"    left {item}" for item in self.left]


class _NotFoldable(Exception):
    """Raised inside the analysis with the reason a layer stays."""


def fold_batch_norms(net_param: caffe_pb2.NetParameter, blobs: Blobs) -> BNFolding:
    """Fold every foldable TEST-phase BatchNorm (+ Scale) of ``net_param`` (see module docstring).

    ``blobs``: layer name → blobs (numpy arrays or tensors, Caffe order), as
    ``caffe.layer_blobs`` or a Compaction give them. Neither input is modified; the result's
    blobs are those of the input, minus the removed layers, with the folded Convolution /
    InnerProduct blobs replaced by float32 arrays [weight, bias].
    """
    layers = [_copy(lp) for lp in net_param.layer]
    out_blobs = dict(blobs)
    result = BNFolding(caffe_pb2.NetParameter(), out_blobs)
    for bn in [lp for lp in layers if lp.type == "BatchNorm" and _in_test(lp)]:
        try:
            fold, scale_note = _fold_one(layers, bn, out_blobs)
        except _NotFoldable as why:
            result.left.append(Left(bn.name, str(why)))
            continue
        result.folded.append(fold)
        if scale_note:
            result.left.append(scale_note)
    names = {lp.name for lp in layers}
    for name in list(out_blobs):
        if name not in names:
            del out_blobs[name]
    result.net_param.CopyFrom(net_param)
    del result.net_param.layer[:]
    result.net_param.layer.extend(layers)
    return result


# ---------------------------------------------------------------- graph: what is foldable
def _copy(lp: caffe_pb2.LayerParameter) -> caffe_pb2.LayerParameter:
    out = caffe_pb2.LayerParameter()
    out.CopyFrom(lp)
    return out


def _in_test(lp: caffe_pb2.LayerParameter) -> bool:
    """Whether the layer is part of the TEST net (level 0, no stages: how prunekit builds it)."""
    return layer_included(lp, TEST)


def _index(layers: list, lp) -> int:
    return next(i for i, other in enumerate(layers) if other is lp)


class _Entry:
    """A LayerParameter seen as a net entry (bottoms, tops) by the shared blob-version walk."""

    def __init__(self, lp) -> None:
        self.bottoms, self.tops = list(lp.bottom), list(lp.top)


def _versions(layers: list) -> tuple[list, BlobVersions]:
    """The TEST layers and who made / reads each version of their blobs
    (prunekit/net/blob_versions.py: an in-place layer starts a new version)."""
    test = [lp for lp in layers if _in_test(lp)]
    return test, blob_versions([_Entry(lp) for lp in test])


def _producer(layers: list, lp, slot: int = 0):
    """The TEST layer that made bottom ``slot`` of TEST layer ``lp`` (None: a net input)."""
    test, versions = _versions(layers)
    made_by = versions.producers[_index(test, lp)][slot]
    return test[made_by] if made_by >= 0 else None


def _readers(layers: list, lp, blob: str) -> list:
    """TEST layers reading the version of ``blob`` that TEST layer ``lp`` wrote: every later
    reader up to and including the next layer that writes ``blob`` again (an in-place layer)."""
    test, versions = _versions(layers)
    out: list = []
    for i in versions.readers.get((_index(test, lp), blob), []):
        if all(test[i] is not seen for seen in out):
            out.append(test[i])
    return out


def _shares_weights(lp) -> bool:
    return any(spec.name for spec in lp.param)


def _check_producer(layers: list, producer, bn, blobs: Blobs) -> None:
    """Raise _NotFoldable unless ``producer`` can absorb a per-channel map on its only top."""
    if producer is None:
        raise _NotFoldable(f"input '{bn.bottom[0]}' is a net input")
    if producer.type not in fold_into():
        raise _NotFoldable(f"input is a {producer.type} ({producer.name})")
    if len(producer.top) != 1:
        raise _NotFoldable(f"{producer.name} has several tops (its weights serve each)")
    if _shares_weights(producer):
        raise _NotFoldable(f"{producer.name} shares its weights by param name")
    axis = (producer.convolution_param.axis if producer.type in CONV_TYPES
            else producer.inner_product_param.axis)
    if axis != 1:
        raise _NotFoldable(f"{producer.name} has axis {axis} (its outputs are not channels)")
    if sum(lp.name == producer.name for lp in layers) > 1:
        raise _NotFoldable(f"several layers are named {producer.name}")
    if not blobs.get(producer.name):
        raise _NotFoldable(f"no weights for {producer.name}")
    readers = _readers(layers, producer, producer.top[0])
    if len(readers) != 1 or readers[0] is not bn:
        others = ", ".join(r.name for r in readers if r is not bn)
        raise _NotFoldable(f"{producer.name}'s top '{producer.top[0]}' is also read by {others}")


def _scale_problem(scale, blobs: Blobs) -> str | None:
    """Why a Scale that reads the BatchNorm's output cannot be folded (None: it can)."""
    sp = scale.scale_param
    if len(scale.bottom) != 1:
        return "two bottoms (the factor is a blob, not a weight)"
    if len(scale.top) != 1:
        return "several tops"
    if sp.axis != 1 or sp.num_axes != 1:
        return f"axis {sp.axis}, num_axes {sp.num_axes} (not one factor per channel)"
    if _shares_weights(scale):
        return "shares its weights by param name"
    if not blobs.get(scale.name):
        return "no weights"
    return None


def _chain_scale(layers: list, bn, blobs: Blobs) -> tuple[Any, Left | None]:
    """The Scale folded with ``bn``: the only reader of its top, if foldable (else a note)."""
    readers = _readers(layers, bn, bn.top[0])
    if len(readers) != 1 or readers[0].type != "Scale":
        return None, None
    problem = _scale_problem(readers[0], blobs)
    if problem:
        return None, Left(readers[0].name, f"{problem}; {bn.name} folded without it")
    return readers[0], None


def _check_rename(layers: list, producer, chain: list) -> None:
    """The producer will write the last folded layer's top: no other layer between them may
    read or write that blob (it would see the folded value too early)."""
    last = chain[-1]
    final = last.top[0]
    for lp in layers[_index(layers, producer) + 1:_index(layers, last)]:
        if _in_test(lp) and all(lp is not c for c in chain) and (
                final in lp.bottom or final in lp.top):
            raise _NotFoldable(f"blob '{final}' is used by {lp.name} between "
                               f"{producer.name} and {last.name}")


def _fold_one(layers: list, bn, blobs: Blobs) -> tuple[Fold, Left | None]:
    """Fold ``bn`` (and its Scale) if exact: update the producer and ``blobs``, remove the
    folded layers from ``layers``. Raises _NotFoldable with the reason otherwise."""
    bp = bn.batch_norm_param
    if bp.HasField("use_global_stats") and not bp.use_global_stats:
        raise _NotFoldable("uses batch statistics in TEST (use_global_stats: false)")
    if len(bn.bottom) != 1 or len(bn.top) != 1:
        raise _NotFoldable("not one bottom and one top")
    if len(blobs.get(bn.name) or ()) != 3:
        raise _NotFoldable("no statistics (mean, variance, factor blobs) for it")
    producer = _producer(layers, bn)
    _check_producer(layers, producer, bn, blobs)
    scale, note = _chain_scale(layers, bn, blobs)
    chain = [bn] if scale is None else [bn, scale]
    _check_rename(layers, producer, chain)
    s, t = bn_affine(bn, blobs[bn.name])
    if scale is not None:
        s, t = compose_scale(s, t, scale, blobs[scale.name])
    blobs[producer.name] = fold_affine(producer, blobs[producer.name], s, t)
    _set_bias_term(producer)
    producer.top[0] = chain[-1].top[0]
    for lp in chain:
        del layers[_index(layers, lp)]
    return Fold(producer.name, bn.name, scale.name if scale is not None else None), note


# ---------------------------------------------------------------- the arithmetic
def _array(value: Any) -> np.ndarray:
    """A blob (numpy array or torch tensor) as a float64 numpy array."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=np.float64)


def bn_affine(bn: caffe_pb2.LayerParameter, arrays: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(s, t) with BN(x) = s·x + t per channel, from Caffe's blobs: mean and variance are sums,
    divided by moving_average_factor (0 when the factor is 0, as the BatchNorm layer does)."""
    mean, var = _array(arrays[0]).reshape(-1), _array(arrays[1]).reshape(-1)
    factor = float(_array(arrays[2]).reshape(-1)[0])
    inverse = 0.0 if factor == 0 else 1.0 / factor
    s = 1.0 / np.sqrt(var * inverse + float(bn.batch_norm_param.eps))
    return s, -mean * inverse * s


def compose_scale(s: np.ndarray, t: np.ndarray, scale: caffe_pb2.LayerParameter,
                  arrays: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """γ·(s·x + t) + β as (γ·s, γ·t + β); β is 0 without ``bias_term``."""
    gamma = _array(arrays[0]).reshape(-1)
    beta = (_array(arrays[1]).reshape(-1) if scale.scale_param.bias_term and len(arrays) > 1
            else np.zeros_like(gamma))
    if gamma.size != s.size:
        raise _NotFoldable(f"{scale.name} has {gamma.size} factors for {s.size} channels")
    return gamma * s, gamma * t + beta


def fold_affine(producer: caffe_pb2.LayerParameter, arrays: Sequence[Any], s: np.ndarray,
                t: np.ndarray) -> list[np.ndarray]:
    """[W', b'] for ``producer`` followed by y ↦ s·y + t per output channel n:
    W'[n] = s_n·W[n], b'_n = s_n·b_n + t_n (b = 0 without a bias)."""
    weight = _array(arrays[0])
    transposed = producer.type == "InnerProduct" and producer.inner_product_param.transpose
    # outputs: conv [N, C/g, k...]; IP [N, K] or, transposed, [K, N] (legacy blobs pad with 1s)
    num = (weight.shape[-1] if transposed else weight.shape[0] if producer.type in CONV_TYPES
           else weight.shape[-2])
    if num != s.size:
        raise _NotFoldable(f"{producer.name} has {num} outputs, the BatchNorm {s.size} channels")
    rows = weight.reshape(-1, num) if transposed else weight.reshape(num, -1)
    folded = rows * s[None, :] if transposed else rows * s[:, None]
    bias = (_array(arrays[1]).reshape(-1) if _has_bias(producer) and len(arrays) > 1
            else np.zeros(s.size))
    return [folded.reshape(weight.shape).astype(np.float32), (bias * s + t).astype(np.float32)]


def _has_bias(lp: caffe_pb2.LayerParameter) -> bool:
    return (lp.convolution_param.bias_term if lp.type in CONV_TYPES
            else lp.inner_product_param.bias_term)


def _set_bias_term(lp: caffe_pb2.LayerParameter) -> None:
    if lp.type in CONV_TYPES:
        lp.convolution_param.bias_term = True
    else:
        lp.inner_product_param.bias_term = True
