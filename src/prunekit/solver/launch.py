"""``prunekit train --gpu 0,1`` / ``--procs N``: start one worker process per rank on this machine.

Each worker is ``python -m prunekit.cli train ...`` with the environment torchrun would give it
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``,
``MASTER_PORT``), so a worker started here and one started by ``torchrun`` run the same code
(:func:`prunekit.solver.distributed.init_from_env`). The launcher only starts and watches: when a
rank dies (killed, out of memory, an error), it stops the others at once, so a job never hangs
in a collective waiting for a dead peer, and it reports which rank died and the snapshot to
resume from. Ctrl-C (SIGINT) is passed to every rank, which then finish the same iteration,
snapshot and stop together.
"""

from __future__ import annotations

import glob
import os
import signal
import socket
import subprocess
import sys
import time

from prunekit.errors import PrunekitError
from prunekit.log import get_logger

_POLL_S = 0.1  # how often the launcher looks at its workers
_GRACE_S = 10.0  # seconds between SIGTERM and SIGKILL when stopping the surviving ranks


def launched_by_torchrun() -> bool:
    """True inside a worker started by torchrun or by this launcher (torchrun's environment)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def free_port() -> int:
    """A TCP port free on this machine now (rank 0's store listens on it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_env(rank: int, world: int, port: int, cpu_only: bool) -> dict[str, str]:
    """torchrun's environment for local rank ``rank`` of a one-machine job of ``world`` ranks.

    CPU ranks share the cores: each gets ``cores // world`` intra-op threads (as torchrun, which
    sets OMP_NUM_THREADS=1), unless the user set OMP_NUM_THREADS.
    """
    env = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
               LOCAL_WORLD_SIZE=str(world), GROUP_RANK="0", MASTER_ADDR="127.0.0.1",
               MASTER_PORT=str(port), PYTHONUNBUFFERED="1")
    if cpu_only and "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // world))
    return env


def launch(train_args: list[str], world: int, cpu_only: bool, snapshot_prefix: str) -> int:
    """Run ``prunekit train TRAIN_ARGS`` as ``world`` ranks; 0 when every rank finished."""
    port = free_port()
    log = get_logger()
    log.info("Starting %d data-parallel processes (%s) on 127.0.0.1:%d", world,
             "gloo, CPU" if cpu_only else "NCCL, one GPU each", port)
    workers: list[subprocess.Popen] = []
    previous = {sig: signal.signal(sig, _forward(workers, sig))
                for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        for rank in range(world):
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "prunekit.cli", "train", *train_args],
                env=worker_env(rank, world, port, cpu_only)))
            log.info("Rank %d: pid %d", rank, workers[-1].pid)
        return _watch(workers, snapshot_prefix)
    finally:
        _stop(workers)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _forward(workers: list[subprocess.Popen], sig: int):
    def handler(signum, frame) -> None:
        for proc in workers:
            if proc.poll() is None:
                proc.send_signal(sig)
    return handler


def _watch(workers: list[subprocess.Popen], snapshot_prefix: str) -> int:
    """Wait for all ranks; the first one to fail stops the job with a one-line error."""
    while True:
        codes = [proc.poll() for proc in workers]
        if all(code == 0 for code in codes):
            return 0
        for rank, code in enumerate(codes):
            if code not in (None, 0):
                _stop(workers)
                raise PrunekitError(_failure_text(rank, workers[rank].pid, code, len(workers),
                                                  snapshot_prefix))
        time.sleep(_POLL_S)


def _failure_text(rank: int, pid: int, code: int, world: int, prefix: str) -> str:
    if code < 0:
        how = f"was killed by {signal.Signals(-code).name}"
    else:
        how = f"exited with status {code}"
    text = f"rank {rank} of {world} (pid {pid}) {how}; stopped the other ranks."
    latest = latest_solverstate(prefix)
    if latest:
        return text + f" Resume with --snapshot {latest} (any number of processes)"
    return text + " No snapshot was written yet."


def latest_solverstate(prefix: str) -> str | None:
    """The newest ``<prefix>*_iter_<N>.solverstate`` (by modification time), if any."""
    paths = glob.glob(glob.escape(prefix) + "*_iter_*.solverstate")
    return max(paths, key=os.path.getmtime) if paths else None


def _stop(workers: list[subprocess.Popen]) -> None:
    """SIGTERM every running worker, SIGKILL those still alive after the grace period."""
    running = [proc for proc in workers if proc.poll() is None]
    for proc in running:
        proc.terminate()
    deadline = time.monotonic() + _GRACE_S
    for proc in running:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
