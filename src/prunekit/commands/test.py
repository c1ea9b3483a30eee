"""``prunekit test``: caffe test --model M --weights W [--iterations N] [--gpu N]."""

from __future__ import annotations

import argparse

from prunekit import caffe
from prunekit.commands.flags import flag
from prunekit.device import resolve_device
from prunekit.errors import PrunekitError
from prunekit.log import get_logger
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST
from prunekit.net.weights import load_caffemodel
from prunekit.solver.evaluate import evaluate, format_score, score_text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    flag(parser, "model", required=True, help="net prototxt")
    flag(parser, "weights", help=".caffemodel to score")
    flag(parser, "iterations", type=int, default=50, help="number of batches (default 50)")
    flag(parser, "gpu", help="GPU id; absent: CPU")


def run(args: argparse.Namespace) -> int:
    return run_test(args.model, args.weights, args.iterations, args.gpu)


def run_test(model: str, weights: str | None, iterations: int = 50, gpu: str | None = None) -> int:
    """Score ``weights`` on the TEST phase of ``model``, logging as Caffe's ``test`` command."""
    log = get_logger()
    if not weights:
        raise PrunekitError("test: give the weights to score with --weights X.caffemodel")
    if iterations < 1:
        raise PrunekitError(f"--iterations {iterations}: expected at least 1 batch to score")
    device = resolve_device(gpu)
    net = Net(caffe.read_net_prototxt(model), TEST, source=model)
    net.set_seed(0)
    net.place(device)
    for path in weights.split(","):
        load_caffemodel(net, path)
    log.info("Running for %d iterations.", iterations)

    def show_batch(i: int, batch, loss: float) -> None:
        for name, value, _ in batch:
            log.info("Batch %d, %s = %s", i, name, format_score(value))

    try:
        scores, mean_loss = evaluate(net, iterations, show_batch)
    finally:
        net.close()
    log.info("Loss: %s", format_score(mean_loss))
    for name, value, weight in scores:
        log.info("%s", score_text(name, value, weight))
    return 0
