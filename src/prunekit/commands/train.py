"""``prunekit train``: caffe train --solver S [--weights a,b | --snapshot X.solverstate] [--gpu N]
[--procs N].

``--gpu 0,1,2,3`` (or ``all`` with several GPUs) and ``--procs N`` start one data-parallel process
per rank (:mod:`prunekit.solver.launch`); a process started that way or by ``torchrun`` is a
worker (:mod:`prunekit.solver.distributed`). Everything else is Caffe's single-process train.
The training itself is in :mod:`prunekit.commands.train_process`; this module imports torch
only when it trains here, so a launcher that only starts and watches ranks stays light.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from prunekit import caffe
from prunekit.commands.flags import flag
from prunekit.errors import PrunekitError
from prunekit.log import get_logger
from prunekit.caffe.field_policy import check_solver_fields
from prunekit.solver.launch import launch, launched_by_torchrun
from prunekit.solver.signals import parse_effects
from prunekit.solver.snapshot_prefix import check_snapshot_prefix
from prunekit.solver.validate import validate_solver


def add_arguments(parser: argparse.ArgumentParser) -> None:
    flag(parser, "solver", required=True, help="solver.prototxt")
    flag(parser, "weights", help="comma-separated .caffemodel files to finetune from")
    flag(parser, "snapshot", help=".solverstate to resume from")
    flag(parser, "gpu", help="GPU id, comma list or 'all' (several GPUs: one data-parallel "
         "process each); absent: CPU (or the solver's solver_mode)")
    flag(parser, "procs", type=int, help="N data-parallel processes (gloo on the CPU; with "
         "--gpu one per GPU); see docs/distributed.md")
    for name, default in (("sigint", "stop"), ("sighup", "snapshot"), ("sigterm", "snapshot_stop")):
        flag(parser, f"{name}_effect", choices=("stop", "snapshot", "none", "snapshot_stop"),
             help=f"on {name.upper()}, between iterations (default {default}; solver/signals.py)")
    flag(parser, "data_workers", type=int, help="worker processes decoding JPEG/PNG data per "
         "Data/ImageData layer (default: cores per process; 0: a thread); see docs/data.md")


def run(args: argparse.Namespace) -> int:
    if args.data_workers is not None:
        from prunekit.data.worker_count import set_data_workers

        set_data_workers(args.data_workers)
    return run_train(args.solver, args.weights, args.snapshot, args.gpu, args.procs,
                     {name: getattr(args, f"{name}_effect")
                      for name in ("sigint", "sighup", "sigterm")})


def run_train(solver_path: str, weights: str | None = None, snapshot: str | None = None,
              gpu: str | None = None, procs: int | None = None,
              signal_effects: dict[str, str | None] | None = None) -> int:
    """Build the solver of ``solver_path`` and train; returns the process exit code.

    ``procs`` (or a ``gpu`` list of several ids) starts that many data-parallel ranks instead.
    ``signal_effects``: ``{"sigint": ..., "sighup": ..., "sigterm": ...}`` as given on the
    command line (None: the default; see solver/signals.py).
    """
    given = dict(signal_effects or {})
    if weights and snapshot:
        raise PrunekitError("give --snapshot to resume training or --weights to finetune, not both")
    worker = launched_by_torchrun()
    if worker:
        quiet_unless_rank0()
    param = caffe.read_solver_prototxt(solver_path)
    validate_solver(param, solver_path)
    check_solver_fields(param, solver_path)
    prefix = param.snapshot_prefix or str(Path(solver_path).with_suffix(""))
    if not worker:
        world = world_size_for(gpu, procs)
        if world is not None:
            check_snapshot_prefix(prefix, solver_path)
            parse_effects(given.get("sigint"), given.get("sighup"), given.get("sigterm"), True)
            args = ["--solver", solver_path, *(["--weights", weights] if weights else []),
                    *(["--snapshot", snapshot] if snapshot else []), *(["--gpu", gpu] if gpu else [])]
            args += [arg for name, value in given.items() if value
                     for arg in (f"--{name}_effect", value)]
            on_gpu = (gpu is not None or param.solver_mode == 1) and _cuda_available()
            return launch(args, world, cpu_only=not on_gpu, snapshot_prefix=prefix)
    from prunekit.commands.train_process import train_here

    effects = parse_effects(given.get("sigint"), given.get("sighup"), given.get("sigterm"),
                            distributed=worker)
    return train_here(param, solver_path, prefix, gpu if not worker else rank_gpu_flag(gpu, param),
                      worker, weights, snapshot, effects)


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _gpu_ids(gpu: str | None) -> list[int] | None:
    if gpu is None:
        return None
    from prunekit.device import parse_gpu_flag

    return parse_gpu_flag(gpu)


def world_size_for(gpu: str | None, procs: int | None) -> int | None:
    """How many ranks to launch: ``procs``, else one per id of a ``--gpu`` list of several ids;
    None for Caffe's plain single-process run (no process group)."""
    ids = _gpu_ids(gpu)
    if procs is not None:
        if procs < 1:
            raise PrunekitError(f"--procs {procs}: expected a number of processes >= 1")
        if ids and len(ids) > 1 and len(ids) != procs:
            raise PrunekitError(f"--procs {procs} but --gpu '{gpu}' names {len(ids)} GPUs: "
                                "give one process per GPU (or leave --procs out)")
        if ids and len(ids) == 1 and procs > 1 and _cuda_available():
            raise PrunekitError(f"--procs {procs} with the single GPU '{gpu}': NCCL needs one "
                                "GPU per process (give --gpu 0,1,... or leave --gpu out for CPU)")
        return procs
    if ids and len(ids) > 1:
        if not _cuda_available():
            get_logger().warning("GPUs %s requested but CUDA is not available: running %d "
                                 "processes on the CPU (gloo)", ids, len(ids))
        return len(ids)
    return None


def rank_gpu_flag(gpu: str | None, param) -> str | None:
    """The ``--gpu`` value for this worker: the LOCAL_RANK-th id of the list (``all``: of the
    visible GPUs); without ``--gpu`` the LOCAL_RANK-th GPU when the solver says
    ``solver_mode: GPU``; the CPU otherwise or where CUDA is missing."""
    import torch

    local_rank = int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0")))
    ids = _gpu_ids(gpu)
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
