"""``prunekit compact --model M --weights W --out-model M2 --out-weights W2 [--round-to N]
[--phase TEST] [--fold-bn] [--column-conv auto|always|never] [--batch N] [--channels-last]``:
a zero-masked model in, a physically smaller model with the same outputs out.

Steps: build the ``--phase`` net at batch 1 with the masked weights, plan and slice
(:mod:`prunekit.compact`), build the compacted net from the new prototxt with the new blobs (its
shapes are checked on the way), run both on one random input and compare (TEST phase; TRAIN
nets have random Dropout), then write the prototxt and caffemodel atomically and print the
report (stdout). Nothing is written when the check fails. ``--column-conv`` (default auto)
then turns convs with scattered zero weight columns into ColumnConvolution layers where that is
faster at ``--batch`` (default: the prototxt's) in NCHW or ``--channels-last`` NHWC
(:mod:`prunekit.compact.column_form`; each is checked against its dense form). With ``--fold-bn`` (TEST only) the
compacted model's BatchNorm + Scale layers are then folded into the convs before them
(:mod:`prunekit.compact.fold_bn`, an inference-only model), and the folded net is what the check
compares with the masked one and what is written. See docs/compact.md.
"""

from __future__ import annotations

import argparse
import os

from prunekit import caffe
from prunekit.commands.flags import flag
from prunekit.compact import build_with_blobs, compact
from prunekit.compact.column_form import ColumnForms, ColumnOptions, check_mode, column_forms
from prunekit.compact.fold_bn import TRAIN_PHASE_ERROR, BNFolding, fold_batch_norms
from prunekit.compact.report import check_line, format_report
from prunekit.compact.save import compacted_blobs, save_compacted
from prunekit.compact.verify import compare
from prunekit.errors import PrunekitError
from prunekit.measure.flops import count_net
from prunekit.net.batch_size import declared_batch_size, with_batch_size
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST, TRAIN
from prunekit.net.weights import load_net_param_blobs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    flag(parser, "model", required=True, help="net prototxt of the masked model")
    flag(parser, "weights", required=True, help="masked .caffemodel")
    flag(parser, "out_model", required=True, help="compacted prototxt to write")
    flag(parser, "out_weights", required=True, help="compacted .caffemodel to write")
    flag(parser, "round_to", type=int, default=1,
         help="keep filter counts multiples of N (tensor cores; default 1)")
    flag(parser, "phase", default="TEST", help="TEST (default) or TRAIN net to compact")
    flag(parser, "fold_bn", action="store_true",
         help="then fold BatchNorm (+ Scale) into the conv before it (inference only; TEST)")
    flag(parser, "column_conv", default="auto",
         help="auto (default: time both forms, keep the faster), always or never: convs with "
         "scattered zero weight columns become ColumnConvolution layers")
    flag(parser, "batch", type=int,
         help="batch size --column-conv auto times at (default: the prototxt's)")
    flag(parser, "channels_last", action="store_true",
         help="--column-conv auto times NHWC (the layout to deploy on CPUs)")


def run(args: argparse.Namespace) -> int:
    return run_compact(args.model, args.weights, args.out_model, args.out_weights,
                       args.round_to, args.phase, args.fold_bn, args.column_conv,
                       args.batch, args.channels_last)


#: Masked and compacted outputs further apart than this (relative to the output scale) mean a
#: prunekit bug, and nothing is written. The tests hold compaction to 1e-4.
CHECK_TOLERANCE = 1e-3


def run_compact(model: str, weights: str, out_model: str, out_weights: str,
                round_to: int = 1, phase: str = "TEST", fold_bn: bool = False,
                column_conv: str = "auto", batch: int | None = None,
                channels_last: bool = False) -> int:
    phases = {"TRAIN": TRAIN, "TEST": TEST}
    if phase.upper() not in phases:
        raise PrunekitError(f"--phase '{phase}': expected TRAIN or TEST")
    if fold_bn and phases[phase.upper()] == TRAIN:
        raise PrunekitError(TRAIN_PHASE_ERROR)
    if round_to is None or round_to < 1:
        raise PrunekitError(f"--round-to {round_to}: expected a channel multiple of at least 1")
    check_mode(column_conv)
    if batch is not None and batch < 1:
        raise PrunekitError(f"--batch {batch}: expected at least 1")
    for flag, source, target in (("--out-model", model, out_model),
                                 ("--out-weights", weights, out_weights)):
        if os.path.exists(source) and os.path.exists(target) and os.path.samefile(source, target):
            raise PrunekitError(f"{flag} {target}: is the input file; write the compacted model "
                                "next to it (the masked model stays as it is)")
    net_param = caffe.read_net_prototxt(model)
    original = caffe.layer_blobs(caffe.read_caffemodel(weights), weights)
    net = Net(with_batch_size(net_param, 1), phases[phase.upper()], source=model)
    options = ColumnOptions(column_conv, batch or declared_batch_size(net_param, net.phase) or 1,
                            channels_last)
    new = folded_net = None
    folding: BNFolding | None = None
    try:
        _load_all(net, original, model, weights)
        compaction = compact(net_param, net, round_to)
        columns = column_forms(compaction.net_param, compacted_blobs(compaction, original),
                               net.phase, options, source=out_model)
        out_param, out_blobs = columns.net_param, columns.blobs
        new = build_with_blobs(out_param, out_blobs, net.phase, source=out_model)
        _check_columns(columns)
        if fold_bn:
            folding = fold_batch_norms(out_param, out_blobs)
            out_param, out_blobs = folding.net_param, folding.blobs
            folded_net = build_with_blobs(out_param, out_blobs, TEST, source=out_model)
        if net.phase == TEST:
            diffs = compare(net, folded_net or new, compaction.stop_layers())
            check = check_line(diffs, checked="compacted+folded" if fold_bn else "compacted")
            bad = [d for d in diffs if d.relative > CHECK_TOLERANCE]
            if bad:
                raise PrunekitError(f"internal check failed, nothing written: {check} (a prunekit "
                                    "bug; please report it with the model)")
        else:
            check = check_line(None, "TRAIN phase: Dropout draws differ between the two nets")
        report = format_report(compaction, count_net(net), count_net(new, dense=True), check,
                               columns.choices)
    finally:
        for each in (net, new, folded_net):
            if each is not None:
                each.close()
    save_compacted(out_model, out_weights, out_param, out_blobs)
    print(report)
    if folding is not None:
        print("fold-bn: " + "\n".join(folding.lines()))
    print(f"Wrote {out_model} and {out_weights}")
    return 0


def _check_columns(columns: ColumnForms) -> None:
    """Each column layer against its dense form on the timing input (verify.compare_outputs)."""
    for choice in columns.chosen().values():
        if choice.check is not None and choice.check.relative > CHECK_TOLERANCE:
            d = choice.check
            raise PrunekitError(f"internal check failed, nothing written: {d.name}: max |dense - "
                                f"column| = {d.max_abs:.3g} (output scale {d.scale:.3g}) (a "
                                "prunekit bug; please report it with the model)")


def _load_all(net: Net, blobs: dict, model: str, weights: str) -> None:
    """Load the masked weights; every layer with blobs must have them in the file (filler
    values would be compacted as if they were trained)."""
    missing = [entry.name for entry, module in net.named_layers()
               if module.caffe_blobs() and not blobs.get(entry.name)]
    if missing:
        raise PrunekitError(f"{weights}: has no weights for layer(s) {', '.join(missing)} of "
                            f"{model}; compact needs the trained (masked) weights of every layer")
    load_net_param_blobs(net, blobs, weights, report=True)
