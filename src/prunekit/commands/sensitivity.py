"""``prunekit sensitivity --model M --weights W --unit Row|Col|Channel|Shape --criterion l1|fpgm
--ratios 0.1:0.9:0.1 [--iterations N] [--gpu ID] --out S.json``.

Prunes one item at a time (no retraining) to each ratio and scores the TEST phase on the same
``--iterations`` batches (:mod:`prunekit.analysis.sensitivity`); writes S.json and the text
table S.txt, prints the table. A progress bar runs on a terminal only.
"""

from __future__ import annotations

import argparse
import json
import os

from prunekit import caffe
from prunekit.analysis import units
from prunekit.analysis.layer_latency import forward_ms, time_shares
from prunekit.analysis.ratios import parse_ratios
from prunekit.analysis.sensitivity import run_sensitivity
from prunekit.atomic import atomic_write_text
from prunekit.commands.flags import flag
from prunekit.device import resolve_device
from prunekit.errors import PrunekitError
from prunekit.net.batch_size import with_batch_size
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST
from prunekit.net.weights import load_caffemodel
from prunekit.progress_bar import ProgressBar
from prunekit.report.sensitivity_table import format_sensitivity


def add_arguments(parser: argparse.ArgumentParser) -> None:
    flag(parser, "model", required=True, help="net prototxt (its TEST phase is scored)")
    flag(parser, "weights", required=True, help="trained .caffemodel")
    flag(parser, "unit", default="Row", help="Row (filters, default), Col, Channel "
         "(coupled output channels) or Shape (kernel positions)")
    flag(parser, "criterion", default="l1", help="l1 (default) or fpgm (Row/Channel)")
    flag(parser, "ratios", default="0.1:0.9:0.1", help="START:STOP:STEP or a comma list")
    flag(parser, "iterations", type=int, default=10, help="TEST batches per point (default 10)")
    flag(parser, "gpu", help="GPU id; absent: CPU")
    flag(parser, "out", required=True, help="S.json to write (the text table goes to S.txt)")
    flag(parser, "timing_iterations", type=int, default=3,
         help="forward passes timed for each layer's time share (0: skip; default 3)")
    flag(parser, "batch", type=int, help="batch size (default: the prototxt's)")


def run(args: argparse.Namespace) -> int:
    return run_sensitivity_command(args.model, args.weights, args.unit, args.criterion,
                                   args.ratios, args.iterations, args.gpu, args.out,
                                   args.timing_iterations, args.batch)


def run_sensitivity_command(model: str, weights: str | None, unit: str, criterion: str,
                            ratios: str, iterations: int, gpu: str | None, out: str,
                            timing_iterations: int = 3, batch: int | None = None) -> int:
    if not weights:
        raise PrunekitError("sensitivity: give the trained weights with --weights X.caffemodel")
    if iterations < 1:
        raise PrunekitError(f"--iterations {iterations}: expected at least 1 batch")
    if not out.endswith(".json"):
        raise PrunekitError(f"--out {out}: expected a .json file (the text table goes next to it)")
    values = parse_ratios(ratios)
    param = caffe.read_net_prototxt(model)
    if batch:
        param = with_batch_size(param, batch)
    net = Net(param, TEST, source=model)
    net.set_seed(0)
    net.place(resolve_device(gpu))
    try:
        load_caffemodel(net, weights)
        found = units.items(net, unit)
        if not found:
            raise PrunekitError(f"{model}: no Convolution layer can be pruned by {unit}")
        with ProgressBar(len(found) * len(values), "sensitivity", unit="points") as bar:
            result = run_sensitivity(net, unit, criterion, values, iterations,
                                     on_point=bar.update)
        if timing_iterations:   # after scoring: timing reads batches too
            result.add_time_shares(time_shares(forward_ms(net, timing_iterations)))
    finally:
        net.close()
    data = result.as_dict()
    data.update(model=model, weights=weights, iterations=iterations, device=str(net.device))
    text = format_sensitivity(data)
    atomic_write_text(out, json.dumps(data, indent=1) + "\n")
    atomic_write_text(os.path.splitext(out)[0] + ".txt", text + "\n")
    print(text)
    print(f"Wrote {out} and {os.path.splitext(out)[0]}.txt")
    return 0
