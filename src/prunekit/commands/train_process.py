"""One training process: Caffe's single-process ``train``, or one rank of a data-parallel job.

A rank joins the process group (NCCL on its GPU, gloo on the CPU), takes rank 0's seed, reads its
shard of the TRAIN data (every ``world_size``-th batch), starts from rank 0's weights and solver
history, and trains with gradients summed over the ranks (:mod:`prunekit.solver.distributed`).
"""

from __future__ import annotations

import os
import signal

import torch

from prunekit import caffe
from prunekit.commands.train import check_snapshot_prefix
from prunekit.device import resolve_device
from prunekit.errors import PrunekitError
from prunekit.log import get_logger
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST, TRAIN
from prunekit.net.layers.batch_norm import BatchNorm
from prunekit.net.weights import load_caffemodel, share_weights
from prunekit.prune.config import PruneConfig
from prunekit.prune.registry import make_method
from prunekit.solver.distributed import Dist, init_from_env
from prunekit.solver.solver import Solver


def train_here(param, solver_path: str, prefix: str, gpu: str | None, worker: bool,
               weights: str | None, snapshot: str | None) -> int:
    """Train in this process (``worker``: as one rank of the torchrun environment's job)."""
    get_logger().info("Initializing solver from parameters: \n%s", caffe.to_text(param))
    device = resolve_device(gpu, param)
    dist = init_from_env(device) if worker else Dist()
    try:
        return _train(param, solver_path, prefix, device, dist, weights, snapshot)
    finally:
        dist.close()


def _train(param, solver_path: str, prefix: str, device: torch.device, dist: Dist,
           weights: str | None, snapshot: str | None) -> int:
    log = get_logger()
    seed = param.random_seed if param.random_seed >= 0 else int.from_bytes(os.urandom(4), "little")
    seed = dist.broadcast_object(seed)  # one seed: same fillers, crops and SPP draws everywhere
    torch.manual_seed(seed)
    prune_config = PruneConfig.from_solver(param, solver_path)
    net, test_nets, train_param = build_nets(param, solver_path, device, seed)
    if dist.world_size > 1:
        r, w = dist.rank, dist.world_size
        log.info("Data-parallel rank %d of %d: reads TRAIN batches %d, %d, %d, ...", r, w, r,
                 r + w, r + 2 * w)
        for layer in net.data_layers():
            layer.set_shard(dist.rank, dist.world_size)
    check_snapshot_prefix(prefix, solver_path)
    solver = Solver(param, net, test_nets, snapshot_prefix=prefix, seed=seed, dist=dist)
    if prune_config is not None:
        solver.hooks.append(make_method(prune_config, solver, train_param))
    for path in (weights or "").split(","):
        if path:
            log.info("Finetuning from %s", path)
            load_caffemodel(net, path)
    if snapshot:
        solver.restore(snapshot)
    warn_frozen_batchnorm_without_statistics(net)
    dist.broadcast_tensors([b.tensor for b in solver.blobs] + solver.history)
    previous = signal.signal(signal.SIGINT, _stop_handler(solver))
    try:
        solver.solve()
    finally:
        signal.signal(signal.SIGINT, previous)
        for n in [net, *test_nets]:
            n.close()
    return 0


def warn_frozen_batchnorm_without_statistics(net: Net) -> list[str]:
    """Warn about BatchNorm layers that train with global statistics they do not have (see
    BatchNorm.frozen_without_statistics); returns their names."""
    names = [entry.name for entry, module in net.named_layers()
             if isinstance(module, BatchNorm) and module.frozen_without_statistics()]
    if names:
        get_logger().warning(
            "%d BatchNorm layer(s) use global statistics while training (use_global_stats: true) "
            "but have none (moving_average_factor 0; BatchNorm has no filler), so they compute "
            "x/sqrt(eps) as Caffe does: give --weights a caffemodel with their statistics "
            "(first: %s)", len(names), names[0])
    return names


def build_nets(param, solver_path: str, device: torch.device, seed: int):
    """The TRAIN net, one TEST net per ``test_iter`` entry (sharing its weights, on ``device``)
    and the TRAIN net's NetParameter."""
    log = get_logger()
    train_file, test_files = _net_files(param, solver_path)
    log.info("Creating training net from net file: %s", train_file)
    train_param = caffe.read_net_prototxt(train_file)
    state = param.train_state
    net = Net(train_param, TRAIN, level=state.level, stages=state.stage, source=train_file)
    test_nets = []
    for index, test_file in enumerate(test_files):
        log.info("Creating test net (#%d) specified by net file: %s", index, test_file)
        test_param = train_param if test_file == train_file else caffe.read_net_prototxt(test_file)
        tstate = param.test_state[index] if index < len(param.test_state) else None
        test_nets.append(Net(test_param, TEST, level=tstate.level if tstate else 0,
                             stages=tstate.stage if tstate else (), source=test_file))
    for n in [net, *test_nets]:
        n.set_seed(seed)
        n.place(device)
    for test_net in test_nets:
        share_weights(test_net, net)
    return net, test_nets, train_param


def _net_files(param, solver_path: str) -> tuple[str, list[str]]:
    train_file = param.train_net or param.net
    if not train_file:
        raise PrunekitError(f"{solver_path}: no net given (set `net:` or `train_net:`)")
    test_files = list(param.test_net) or ([param.net] * len(param.test_iter) if param.net else [])
    if len(param.test_iter) != len(test_files):
        raise PrunekitError(
            f"{solver_path}: {len(test_files)} test net(s) but {len(param.test_iter)} test_iter "
            "value(s); give one test_iter per test net"
        )
    for path in [train_file, *test_files]:
        if not os.path.isfile(path):
            raise PrunekitError(
                f"{solver_path}: net file '{path}' not found (paths are relative to the folder "
                f"you run from: {os.getcwd()})"
            )
    return train_file, test_files


def _stop_handler(solver: Solver):
    """Ctrl-C: finish the iteration, snapshot, stop (Caffe's default sigint_effect)."""

    def handler(signum, frame) -> None:
        solver.log.info("Ctrl-C: stopping after this iteration and writing a snapshot")
        solver.interrupted = True
        if not solver.dist.active:  # one process: stop at the top of the next iteration
            solver.stop_requested = True

    return handler
