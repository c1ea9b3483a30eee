"""``prunekit flops --model M [--weights W] [--phase TEST] [--json [F]]``: parameters and MACs
per layer and in total, dense and with all-zero filters/channels/columns skipped.

The table goes to stdout (a report, not a log). ``--json`` alone prints JSON instead of the
table; ``--json F`` writes it to F as well as printing the table. Counting rules:
:mod:`prunekit.measure.flops` (and docs/flops.md).
"""

from __future__ import annotations

import argparse
import json

from prunekit import caffe
from prunekit.atomic import atomic_write_text
from prunekit.atomic_group import check_destination
from prunekit.commands.flags import flag
from prunekit.errors import PrunekitError
from prunekit.measure.flops import LayerCount, Totals, count_net, totals
from prunekit.net.batch_size import with_batch_size
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST, TRAIN
from prunekit.net.weights import load_caffemodel


def add_arguments(parser: argparse.ArgumentParser) -> None:
    flag(parser, "model", required=True, help="net prototxt")
    flag(parser, "weights", help=".caffemodel: count its non-zeros and skip pruned structure")
    flag(parser, "phase", default="TEST", help="TEST (default) or TRAIN")
    flag(parser, "json", nargs="?", const="-",
         help="JSON instead of the table (alone), or also write it to this file")


def run(args: argparse.Namespace) -> int:
    return run_flops(args.model, args.weights, args.phase, args.json)


HEADER = "MACs = multiply-accumulates per image (FLOPs = 2 x MACs); params = learnable blobs"


def run_flops(model: str, weights: str | None = None, phase: str = "TEST",
              json_out: str | None = None) -> int:
    phases = {"TRAIN": TRAIN, "TEST": TEST}
    if phase.upper() not in phases:
        raise PrunekitError(f"--phase '{phase}': expected TRAIN or TEST")
    check_destination(json_out if json_out != "-" else None, "JSON report")
    net_param = with_batch_size(caffe.read_net_prototxt(model), 1)
    net = Net(net_param, phases[phase.upper()], source=model)
    try:
        for path in (weights or "").split(","):
            if path:
                load_caffemodel(net, path)
        rows = count_net(net, dense=not weights)
    finally:
        net.close()
    total = totals(rows)
    report = {"model": model, "weights": weights, "phase": phase.upper(), "units": HEADER,
              "layers": [_row_dict(r) for r in rows], "totals": total.as_dict()}
    if json_out == "-":
        print(json.dumps(report, indent=1))
        return 0
    if json_out:
        atomic_write_text(json_out, json.dumps(report, indent=1) + "\n")
    print(format_table(rows, total))
    return 0


def _row_dict(r: LayerCount) -> dict:
    return {"name": r.name, "type": r.type, "output": list(r.out_shape), "params": r.params,
            "nonzero_params": r.nonzero_params, "macs": r.macs, "macs_left": r.macs_left}


def format_table(rows: list[LayerCount], total: Totals) -> str:
    lines = [HEADER, ""]
    cols = ("layer", "type", "output", "params", "nonzero", "MACs", "MACs left")
    body = [(r.name, r.type, "x".join(map(str, r.out_shape)), f"{r.params:,}",
             f"{r.nonzero_params:,}", f"{r.macs:,}", f"{r.macs_left:,}")
            for r in rows if r.params or r.macs]
    widths = [max(len(c), *(len(b[i]) for b in body)) if body else len(c)
              for i, c in enumerate(cols)]
    fmt = "  ".join(f"{{:<{w}}}" if i < 3 else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines.append(fmt.format(*cols))
    lines.extend(fmt.format(*b) for b in body)
    lines += ["",
              f"conv MACs:      {total.conv_macs:,} dense, {total.conv_macs_left:,} left "
              f"(theoretical speedup {total.conv_speedup:.2f}x)",
              f"all-layer MACs: {total.all_macs:,} dense, {total.all_macs_left:,} left "
              f"(theoretical speedup {total.all_speedup:.2f}x)",
              f"params:         {total.params:,}, non-zero {total.nonzero_params:,} "
              f"(compression {total.compression:.2f}x)"]
    return "\n".join(lines)
