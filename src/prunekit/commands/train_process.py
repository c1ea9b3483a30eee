"""One training process: Caffe's single-process ``train``, or one rank of a data-parallel job.

A rank joins the process group (NCCL on its GPU, gloo on the CPU), takes rank 0's seed, reads its
shard of the TRAIN data (every ``world_size``-th batch), starts from rank 0's weights and solver
history, and trains with gradients summed over the ranks (:mod:`prunekit.solver.distributed`).
"""

from __future__ import annotations

import os

import torch

from prunekit import caffe
from prunekit.device import resolve_device
from prunekit.log import get_logger
from prunekit.net.graph import Net
from prunekit.net.layers.batch_norm import BatchNorm
from prunekit.net.weights import load_caffemodel
from prunekit.prune.config import PruneConfig
from prunekit.prune.registry import make_method
from prunekit.solver.debug_info import DebugInfo
from prunekit.solver.distributed import Dist, init_from_env
from prunekit.solver.initial_weights import initial_weight_files
from prunekit.solver.nets import build_nets
from prunekit.solver.signals import SignalActions, parse_effects
from prunekit.solver.snapshot_prefix import check_snapshot_prefix
from prunekit.solver.solver import Solver
from prunekit.solver.stale_temps import remove_stale_temps
from prunekit.solver.zero_weights import check_zero_weights


def train_here(param, solver_path: str, prefix: str, gpu: str | None, worker: bool,
               weights: str | None, snapshot: str | None,
               effects: dict[str, str] | None = None) -> int:
    """Train in this process (``worker``: as one rank of the torchrun environment's job)."""
    get_logger().info("Initializing solver from parameters: \n%s", caffe.to_text(param))
    device = resolve_device(gpu, param)
    dist = init_from_env(device) if worker else Dist()
    try:
        return _train(param, solver_path, prefix, device, dist, weights, snapshot, effects)
    finally:
        dist.close()


def _train(param, solver_path: str, prefix: str, device: torch.device, dist: Dist,
           weights: str | None, snapshot: str | None, effects: dict[str, str] | None) -> int:
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
    for path in initial_weight_files(param, weights, snapshot):
        log.info("Finetuning from %s", path)
        load_caffemodel(net, path)
    if snapshot:
        solver.restore(snapshot)
    else:
        check_zero_weights(net, solver_path, prunes=prune_config is not None)
    warn_frozen_batchnorm_without_statistics(net)
    if param.debug_info:
        solver.debug = DebugInfo()
    dist.broadcast_tensors([b.tensor for b in solver.blobs] + solver.history)
    solver.signals = SignalActions(effects or parse_effects(None, None, None, dist.active))
    remove_stale_temps(prefix)
    try:
        with solver.signals.installed():
            solver.solve()
    finally:
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


