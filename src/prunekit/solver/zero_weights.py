"""Refuse to prune (and warn before training) a net whose weights are all zero.

A train_val.prototxt without ``weight_filler`` (the Caffe_IncReg fork's vgg16 one, for instance)
gets constant-zero weights, which is fine when ``--weights`` gives the trained model and silently
wrong when it is forgotten: every filter then has norm 0, so a pruning method ranks them all
equal, marks every layer 100% pruned at its first step and logs ``speedup: inf``, and plain
training from zeros cannot break the symmetry either. This check runs after the weights are
loaded and before the first iteration, so it comes before any pruning decision.
"""

from __future__ import annotations

from prunekit.errors import PrunekitError
from prunekit.log import get_logger

_WEIGHTED_TYPES = ("Convolution", "InnerProduct", "Deconvolution", "ColumnConvolution")


def all_zero_layers(net) -> list[str]:
    """Names of the Convolution/InnerProduct layers whose weight blob (blob 0) is all zero."""
    names = []
    for entry, module in net.named_layers():
        blobs = module.caffe_blobs() if entry.type in _WEIGHTED_TYPES else []
        if blobs and blobs[0].numel() and not bool(blobs[0].detach().any()):
            names.append(entry.name)
    return names


def check_zero_weights(net, solver_path: str, prunes: bool) -> list[str]:
    """When ``prunes``, raise PrunekitError if a layer with ``prune_param`` has all-zero
    weights (its pruning decision would be made on nothing); otherwise warn once naming the
    all-zero layers. Returns their names."""
    zero = all_zero_layers(net)
    if not zero:
        return zero
    targets = {e.name for e in net.entries if e.param.HasField("prune_param")}
    blocked = [name for name in zero if name in targets]
    if prunes and blocked:
        raise PrunekitError(
            f"{solver_path}: layer(s) to prune start with all-zero weights ({', '.join(blocked)}): "
            "no weight_filler in the net and no --weights, so every filter would look pruned "
            "(speedup: inf); give --weights (or the solver's weights:) the trained caffemodel")
    total = sum(1 for entry in net.entries if entry.type in _WEIGHTED_TYPES)
    get_logger().warning(
        "%d of %d Convolution/InnerProduct layers start with all-zero weights (%s): they have "
        "no weight_filler and no weights were loaded into them", len(zero), total, ", ".join(zero))
    return zero
