"""``prunekit time``: caffe time --model M [--iterations 50] [--phase TRAIN|TEST] [--gpu N]
[--channels-last].

Prints Caffe's benchmark block (per-layer forward/backward and the four summary lines) to the
log, plus one prunekit line: the mean of a plain forward+backward step with no per-layer timers.
Unlike Caffe, ``--weights`` may be given, and ``--batch_size`` overrides the prototxt's batch.
``--channels-last`` stores 4-D weights and activations NHWC (``Net.use_channels_last``, as
``prunekit speedup --channels-last``): the layout prunekit recommends for compacted models on CPUs.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone

import torch

from prunekit import caffe
from prunekit.commands.flags import flag
from prunekit.device import resolve_device
from prunekit.errors import PrunekitError
from prunekit.log import get_logger
from prunekit.measure.machine import machine_name
from prunekit.measure.timing import TimingResult, time_net, warm_up_backward, warm_up_forward
from prunekit.atomic_group import check_destination
from prunekit.net.batch_size import with_batch_size
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST, TRAIN
from prunekit.net.weights import load_caffemodel
from prunekit.solver.evaluate import format_score


def add_arguments(parser: argparse.ArgumentParser) -> None:
    flag(parser, "model", required=True, help="net prototxt")
    flag(parser, "iterations", type=int, default=50, help="timed iterations (default 50)")
    flag(parser, "phase", default="TRAIN", help="TRAIN (default) or TEST")
    flag(parser, "gpu", help="GPU id; absent: CPU")
    flag(parser, "weights", help="optional .caffemodel (Caffe times filler weights)")
    flag(parser, "batch_size", type=int, help="override the batch size of the input/data layers")
    flag(parser, "json", help="also write the results as JSON to this file")
    flag(parser, "channels_last", action="store_true",
         help="time with NHWC weights and activations (the layout to deploy on CPUs)")


def run(args: argparse.Namespace) -> int:
    return run_time(args.model, args.iterations, args.phase, args.gpu, args.weights,
                    args.batch_size, args.json, args.channels_last)


def run_time(model: str, iterations: int = 50, phase: str = "TRAIN", gpu: str | None = None,
             weights: str | None = None, batch_size: int | None = None,
             json_out: str | None = None, channels_last: bool = False) -> int:
    log = get_logger()
    phases = {"TRAIN": TRAIN, "TEST": TEST}
    if phase.upper() not in phases:
        raise PrunekitError(f"--phase '{phase}': expected TRAIN or TEST")
    if iterations < 1:
        raise PrunekitError(f"--iterations {iterations}: expected at least 1")
    if batch_size is not None and batch_size < 1:
        raise PrunekitError(f"--batch_size {batch_size}: expected at least 1 sample per batch")
    device = resolve_device(gpu)
    net_param = caffe.read_net_prototxt(model)
    check_destination(json_out, "JSON results")
    if batch_size is not None and batch_size < 1:
        raise PrunekitError(f"--batch_size {batch_size}: expected at least 1")
    if batch_size:
        net_param = with_batch_size(net_param, batch_size)
    net = Net(net_param, phases[phase.upper()], source=model)
    net.set_seed(0)
    net.place(device)
    for path in (weights or "").split(","):
        if path:
            load_caffemodel(net, path)
    if channels_last:
        net.use_channels_last()
    try:
        result = _benchmark(net, iterations, log)
    finally:
        net.close()
    if json_out:
        _write_json(json_out, model, net, device, result, channels_last)
    return 0


def _benchmark(net: Net, iterations: int, log) -> TimingResult:
    log.info("Performing Forward")
    warm = warm_up_forward(net)
    initial_loss = float(warm[0])
    log.info("Initial loss: %s", format_score(initial_loss))
    log.info("Performing Backward")
    warm_up_backward(net, warm)
    del warm
    log.info("*** Benchmark begins ***")
    log.info("Testing for %d iterations.", iterations)

    def show(j: int, ms: float) -> None:
        log.info("Iteration: %d forward-backward time: %s ms.", j, format_score(ms))

    result = time_net(net, iterations, show, initial_loss=initial_loss)
    log.info("Average time per layer: ")
    for name, fwd, bwd in result.layers:
        log.info("%10s\tforward: %s ms.", name, format_score(fwd))
        log.info("%10s\tbackward: %s ms.", name, format_score(bwd))
    log.info("Average Forward pass: %s ms.", format_score(result.forward_ms))
    log.info("Average Backward pass: %s ms.", format_score(result.backward_ms))
    log.info("Average Forward-Backward: %s ms.", format_score(result.forward_backward_ms))
    log.info("Total Time: %s ms.", format_score(result.total_ms))
    log.info("*** Benchmark ends ***")
    log.info("Plain forward-backward step (no per-layer timers): %s ms.",
             format_score(result.plain_forward_backward_ms))
    return result


def _write_json(path: str, model: str, net: Net, device: torch.device, result: TimingResult,
                channels_last: bool = False) -> None:
    from prunekit.atomic import atomic_write_text

    first_shape = next(iter(net.blob_shapes.values()), (0,))
    record = {
        "model": model, "device": str(device),
        "device_name": machine_name(device),
        "batch_size": int(first_shape[0]) if first_shape else 0,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__, "iterations": result.iterations,
        "channels_last": channels_last,
        "forward_ms": result.forward_ms, "backward_ms": result.backward_ms,
        "forward_backward_ms": result.forward_backward_ms, "total_ms": result.total_ms,
        "plain_forward_backward_ms": result.plain_forward_backward_ms,
        "layers": [{"name": n, "forward_ms": f, "backward_ms": b} for n, f, b in result.layers],
    }
    atomic_write_text(path, json.dumps(record, indent=1) + "\n")
