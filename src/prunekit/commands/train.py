"""``prunekit train``: caffe train --solver S [--weights a,b | --snapshot X.solverstate] [--gpu N]
[--procs N].

``--gpu 0,1,2,3`` (or ``all`` with several GPUs) and ``--procs N`` start one data-parallel process
per rank (:mod:`prunekit.solver.launch`); a process started that way or by ``torchrun`` is a
worker (:mod:`prunekit.solver.distributed`). Everything else is Caffe's single-process train.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

import torch

from prunekit import caffe
from prunekit.device import parse_gpu_flag, resolve_device
from prunekit.errors import PrunekitError
from prunekit.log import get_logger
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST, TRAIN
from prunekit.net.weights import load_caffemodel, share_weights
from prunekit.prune.config import PruneConfig
from prunekit.prune.registry import make_method
from prunekit.solver.distributed import Dist, init_from_env, launched_by_torchrun
from prunekit.solver.launch import launch
from prunekit.solver.solver import Solver
from prunekit.solver.validate import validate_solver


def run_train(solver_path: str, weights: str | None = None, snapshot: str | None = None,
              gpu: str | None = None, procs: int | None = None) -> int:
    """Build the solver of ``solver_path`` and train; returns the process exit code.

    ``procs`` (or a ``gpu`` list of several ids) starts that many data-parallel ranks instead.
    """
    if weights and snapshot:
        raise PrunekitError("give --snapshot to resume training or --weights to finetune, not both")
    worker = launched_by_torchrun()
    if worker:
        quiet_unless_rank0()
    param = caffe.read_solver_prototxt(solver_path)
    validate_solver(param, solver_path)
    prefix = param.snapshot_prefix or str(Path(solver_path).with_suffix(""))
    if not worker:
        world = world_size_for(gpu, procs)
        if world is not None:
            check_snapshot_prefix(prefix, solver_path)
            args = ["--solver", solver_path, *(["--weights", weights] if weights else []),
                    *(["--snapshot", snapshot] if snapshot else []), *(["--gpu", gpu] if gpu else [])]
            on_gpu = torch.cuda.is_available() and (gpu is not None or param.solver_mode == 1)
            return launch(args, world, cpu_only=not on_gpu, snapshot_prefix=prefix)
    get_logger().info("Initializing solver from parameters: \n%s", caffe.to_text(param))
    device = resolve_device(rank_gpu_flag(gpu, param) if worker else gpu, param)
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
        log.info("Data-parallel rank %d of %d: reads every %d-th batch of the TRAIN data",
                 dist.rank, dist.world_size, dist.world_size)
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
    dist.broadcast_tensors([b.tensor for b in solver.blobs] + solver.history)
    previous = signal.signal(signal.SIGINT, _stop_handler(solver))
    try:
        solver.solve()
    finally:
        signal.signal(signal.SIGINT, previous)
        for n in [net, *test_nets]:
            n.close()
    return 0


def world_size_for(gpu: str | None, procs: int | None) -> int | None:
    """How many ranks to launch: ``procs``, else one per id of a ``--gpu`` list of several ids;
    None for Caffe's plain single-process run (no process group)."""
    ids = parse_gpu_flag(gpu)
    if procs is not None:
        if procs < 1:
            raise PrunekitError(f"--procs {procs}: expected a number of processes >= 1")
        if ids and len(ids) > 1 and len(ids) != procs:
            raise PrunekitError(f"--procs {procs} but --gpu '{gpu}' names {len(ids)} GPUs: "
                                "give one process per GPU (or leave --procs out)")
        if ids and len(ids) == 1 and procs > 1 and torch.cuda.is_available():
            raise PrunekitError(f"--procs {procs} with the single GPU '{gpu}': NCCL needs one "
                                "GPU per process (give --gpu 0,1,... or leave --gpu out for CPU)")
        return procs
    if ids and len(ids) > 1:
        if not torch.cuda.is_available():
            get_logger().warning("GPUs %s requested but CUDA is not available: running %d "
                                 "processes on the CPU (gloo)", ids, len(ids))
        return len(ids)
    return None


def rank_gpu_flag(gpu: str | None, param) -> str | None:
    """The ``--gpu`` value for this worker: the LOCAL_RANK-th id of the list (``all``: of the
    visible GPUs); without ``--gpu`` the LOCAL_RANK-th GPU when the solver says
    ``solver_mode: GPU``; the CPU otherwise or where CUDA is missing."""
    local_rank = int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0")))
    ids = parse_gpu_flag(gpu)
    if ids is None and param.solver_mode == 1 and torch.cuda.is_available():
        ids = list(range(torch.cuda.device_count()))
    if not ids or not torch.cuda.is_available():
        return gpu
    if local_rank >= len(ids):
        raise PrunekitError(f"local rank {local_rank} has no GPU: --gpu '{gpu or 'all'}' gives "
                            f"{len(ids)} (start one process per GPU)")
    return str(ids[local_rank])


def quiet_unless_rank0() -> None:
    """Only rank 0 logs: the other ranks keep errors only and drop the [app] prune log."""
    if os.environ.get("RANK", "0") != "0":
        get_logger().setLevel(logging.ERROR)
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process


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


def check_snapshot_prefix(prefix: str, solver_path: str) -> None:
    """Fail before training, not after hours, when snapshots could not be written."""
    folder = os.path.dirname(prefix) or "."
    if not os.path.isdir(folder):
        raise PrunekitError(
            f"{solver_path}: snapshot_prefix '{prefix}' points into '{folder}', which does not exist"
        )
    if not os.access(folder, os.W_OK):
        raise PrunekitError(f"{solver_path}: cannot write snapshots into '{folder}'")


def _stop_handler(solver: Solver):
    """Ctrl-C: finish the iteration, snapshot, stop (Caffe's default sigint_effect)."""

    def handler(signum, frame) -> None:
        solver.log.info("Ctrl-C: stopping after this iteration and writing a snapshot")
        solver.stop_requested = True

    return handler
