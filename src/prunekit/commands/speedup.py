"""``prunekit speedup --model A --weights WA --vs-model B --vs-weights WB [--gpu ID] [--batch N]``:
theoretical (MAC ratio) vs measured speedup of A over B, per layer and for the net.

Typical use: A = the compacted model (``prunekit compact``), B = the dense original, or the
zero-masked model (whose measured speedup over the dense one is ~1: zeros are not skipped).
Both nets are built for the same phase and batch size on the same device; timing alternates
between them (see :mod:`prunekit.measure.compare`). The table goes to stdout; ``--json F`` also
writes every number plus the machine, device, torch version and date. ``--fold-bn`` folds the
BatchNorm (+ Scale) layers of both nets into the convs before them (in memory, TEST phase:
:mod:`prunekit.compact.fold_bn`) before timing, so both are timed as they would be deployed.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone

import torch

from prunekit import caffe
from prunekit.atomic import atomic_write_text
from prunekit.commands.flags import flag
from prunekit.compact.fold_bn import TRAIN_PHASE_ERROR, BNFolding, fold_batch_norms
from prunekit.device import resolve_device
from prunekit.errors import PrunekitError
from prunekit.measure.compare import Comparison, compare
from prunekit.measure.machine import machine_name
from prunekit.net.batch_size import with_batch_size
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST, TRAIN
from prunekit.net.weights import load_caffemodel, load_net_param_blobs, net_blobs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    flag(parser, "model", required=True, help="net prototxt of the model to measure (e.g. compacted)")
    flag(parser, "weights", help="its .caffemodel")
    flag(parser, "vs_model", required=True, help="net prototxt of the reference (e.g. dense)")
    flag(parser, "vs_weights", help="the reference's .caffemodel")
    flag(parser, "gpu", help="GPU id; absent: CPU")
    flag(parser, "batch", type=int, help="batch size for both nets (default: the prototxts')")
    flag(parser, "phase", default="TEST", help="TEST (default) or TRAIN")
    flag(parser, "iterations", type=int, default=10, help="timed iterations per round (default 10)")
    flag(parser, "rounds", type=int, default=5, help="interleaved rounds (default 5)")
    flag(parser, "json", help="also write the results as JSON to this file")
    flag(parser, "channels_last", action="store_true",
         help="time both nets with NHWC weights and activations (often faster on CPUs)")
    flag(parser, "fold_bn", action="store_true",
         help="fold BatchNorm (+ Scale) into the conv before it in both nets before timing "
         "(as deployed; TEST phase only)")


def run(args: argparse.Namespace) -> int:
    return run_speedup(args.model, args.weights, args.vs_model, args.vs_weights, args.gpu,
                       args.batch, args.phase, args.iterations, args.rounds, args.json,
                       args.channels_last, args.fold_bn)


HEADER = ("speedup of --model over --vs-model: theoretical = conv MACs ratio (vs / model), "
          "measured = time ratio (vs / model); times in ms per batch, median of interleaved rounds")


def build(model: str, weights: str | None, phase: int, batch: int | None, device,
          channels_last: bool = False, fold_bn: bool = False) -> tuple[Net, BNFolding | None]:
    """The net to time, and what ``fold_bn`` folded (None without it)."""
    param = caffe.read_net_prototxt(model)
    if batch:
        param = with_batch_size(param, batch)
    net = Net(param, phase, source=model)
    net.set_seed(0)
    if weights:
        load_caffemodel(net, weights)
    folding = None
    if fold_bn:  # fold what the net holds (file weights, or fillers where the file has none)
        folding = fold_batch_norms(param, net_blobs(net))
        net.close()
        net = Net(folding.net_param, phase, source=model)
        net.set_seed(0)
        load_net_param_blobs(net, folding.blobs, weights or model)
    net.place(device)
    return (net.use_channels_last() if channels_last else net), folding


def run_speedup(model: str, weights: str | None, vs_model: str, vs_weights: str | None,
                gpu: str | None = None, batch: int | None = None, phase: str = "TEST",
                iterations: int = 10, rounds: int = 5, json_out: str | None = None,
                channels_last: bool = False, fold_bn: bool = False) -> int:
    phases = {"TRAIN": TRAIN, "TEST": TEST}
    if phase.upper() not in phases:
        raise PrunekitError(f"--phase '{phase}': expected TRAIN or TEST")
    if fold_bn and phases[phase.upper()] == TRAIN:
        raise PrunekitError(TRAIN_PHASE_ERROR)
    if iterations < 1 or rounds < 1:
        raise PrunekitError("--iterations and --rounds must be at least 1")
    device = resolve_device(gpu)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    net, folding = build(model, weights, phases[phase.upper()], batch, device, channels_last,
                         fold_bn)
    vs_net, vs_folding = build(vs_model, vs_weights, phases[phase.upper()], batch, device,
                               channels_last, fold_bn)
    for flag, done in (("--model", folding), ("--vs-model", vs_folding)):
        if done is not None:
            print(f"fold-bn {flag}: " + "\n".join(done.lines()))
    try:
        result = compare(net, vs_net, rounds=rounds, iterations=iterations)
    finally:
        net.close()
        vs_net.close()
    print(format_table(result))
    if json_out:
        record = _record(result, model, weights, vs_model, vs_weights, device, net)
        record["channels_last"] = channels_last
        record["fold_bn"] = fold_bn
        if fold_bn:
            record["folded_batch_norms"] = {"model": len(folding.folded),
                                            "vs_model": len(vs_folding.folded)}
        atomic_write_text(json_out, json.dumps(record, indent=1) + "\n")
    return 0


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def format_table(c: Comparison) -> str:
    cols = ("layer", "type", "MACs", "vs MACs", "theory", "ms", "vs ms", "measured")
    body = [(r.name, r.type, f"{r.macs:,}", f"{r.vs_macs:,}", _fmt(r.theoretical),
             _fmt(r.ms, ".3f"), _fmt(r.vs_ms, ".3f"), _fmt(r.measured)) for r in c.layers]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h)
              for i, h in enumerate(cols)]
    fmt = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines = [HEADER, "", fmt.format(*cols), *(fmt.format(*b) for b in body), "",
             f"conv MACs per image: {c.macs:,} vs {c.vs_macs:,} -> theoretical {c.theoretical:.2f}x",
             f"forward:          {c.forward_ms:.3f} ms vs {c.vs_forward_ms:.3f} ms -> "
             f"measured {c.measured_forward:.2f}x",
             f"forward+backward: {c.step_ms:.3f} ms vs {c.vs_step_ms:.3f} ms -> "
             f"measured {c.measured_step:.2f}x",
             f"({c.rounds} interleaved rounds of {c.iterations} iterations each)"]
    return "\n".join(lines)


def _record(c: Comparison, model, weights, vs_model, vs_weights, device, net: Net) -> dict:
    first = next(iter(net.blob_shapes.values()), (0,))
    return {
        "model": model, "weights": weights, "vs_model": vs_model, "vs_weights": vs_weights,
        "device": str(device), "device_name": machine_name(device),
        "batch_size": int(first[0]) if first else 0, "torch": torch.__version__,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "rounds": c.rounds, "iterations": c.iterations,
        "conv_macs": c.macs, "vs_conv_macs": c.vs_macs, "theoretical": c.theoretical,
        "forward_ms": c.forward_ms, "vs_forward_ms": c.vs_forward_ms,
        "measured_forward": c.measured_forward, "step_ms": c.step_ms,
        "vs_step_ms": c.vs_step_ms, "measured_step": c.measured_step,
        "layers": [{"name": r.name, "type": r.type, "macs": r.macs, "vs_macs": r.vs_macs,
                    "theoretical": r.theoretical, "ms": r.ms, "vs_ms": r.vs_ms,
                    "measured": r.measured} for r in c.layers],
    }
