"""Data-parallel training through torch.distributed, with Caffe's multi-GPU semantics.

Caffe's ``caffe train --gpu 0,1,2,3`` runs one solver per GPU, each on the prototxt's batch
size; after every backward the gradients are summed over the solvers and scaled by
1/number-of-solvers, so one update equals a single solver with ``iter_size × N``. Here each
process (rank) is one such solver: :meth:`Dist.sum_gradients` all-reduces (sums) the gradients
right after the forward/backward passes, and the solver divides them by ``iter_size × N``
where a single process divides by ``iter_size``. Clipping, weight decay and the pruning hooks
therefore see exactly what one process with ``iter_size × N`` sees (clip_gradients included,
which Caffe applied to the averaged gradient instead), and stay identical on every rank.

Only rank 0 writes logs and snapshots; the other ranks wait at a barrier until its files are
complete (a pruning rollback reads them back on every rank). The process group comes from the
``torchrun`` environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``), set by ``torchrun`` or by ``prunekit train --gpu 0,1`` / ``--procs N``
(:mod:`prunekit.solver.launch`). NCCL on GPUs, gloo on the CPU.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

import torch

from prunekit.errors import PrunekitError
from prunekit.solver.launch import launched_by_torchrun

#: Seconds a collective waits for a silent peer before failing (a hung rank, not a dead one:
#: a dead rank is noticed by the launcher at once).
DEFAULT_TIMEOUT_S = 1800

#: Gradients are all-reduced in flat buckets of at most this many bytes (DDP's default size).
BUCKET_BYTES = 25 * 2**20


class Dist:
    """This process's place in the job; ``world_size == 1`` without a process group is the
    plain single-process run (every method is then a no-op)."""

    def __init__(self, rank: int = 0, world_size: int = 1, local_rank: int = 0,
                 active: bool = False) -> None:
        self.rank = rank
        self.world_size = world_size
        self.local_rank = local_rank
        self.active = active  # a process group exists (also with one rank under torchrun)

    @property
    def is_writer(self) -> bool:
        """Rank 0 writes logs, the prune log and snapshots."""
        return self.rank == 0

    def sum_gradients(self, tensors: list[torch.Tensor], loss: float,
                      stop: bool) -> tuple[float, bool]:
        """grad ← sum over ranks of grad for every tensor; returns the mean loss over the ranks
        and whether any rank asked to stop (Ctrl-C), so that all ranks stop after the same
        iteration."""
        if not self.active:
            return loss, stop
        flags = torch.tensor([loss, float(stop)], dtype=torch.float64,
                             device=tensors[0].device if tensors else "cpu")
        for bucket in _buckets([t.grad for t in tensors if t.grad is not None]):
            self._sum(bucket)
        self._collective(lambda: torch.distributed.all_reduce(flags), "the loss all-reduce")
        return float(flags[0]) / self.world_size, bool(flags[1] > 0)

    def _sum(self, grads: list[torch.Tensor]) -> None:
        flat = torch.cat([g.reshape(-1) for g in grads]) if len(grads) > 1 else grads[0].reshape(-1)
        self._collective(lambda: torch.distributed.all_reduce(flat), "the gradient all-reduce")
        offset = 0
        for g in grads:
            if flat.data_ptr() != g.data_ptr():
                g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def broadcast_tensors(self, tensors: list[torch.Tensor]) -> None:
        """Rank 0's values into every rank's ``tensors`` (weights, solver history)."""
        if not self.active:
            return
        with torch.no_grad():
            for t in tensors:
                self._collective(lambda t=t: torch.distributed.broadcast(t, 0), "a broadcast")

    def broadcast_object(self, value: Any) -> Any:
        """Rank 0's ``value`` (a picklable object) on every rank."""
        if not self.active:
            return value
        box = [value]
        self._collective(lambda: torch.distributed.broadcast_object_list(box, 0),
                         "a broadcast")
        return box[0]

    def barrier(self, what: str = "a barrier") -> None:
        """Wait for every rank (e.g. until rank 0's snapshot files are complete)."""
        if self.active:
            self._collective(torch.distributed.barrier, what)

    def _collective(self, call, what: str) -> None:
        try:
            call()
        except (RuntimeError, ValueError) as exc:  # DistBackendError/DistNetworkError included
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise PrunekitError(
                f"rank {self.rank}: lost contact with the other ranks during {what} "
                f"(did a rank die? {first})") from None

    def close(self) -> None:
        """Leave the process group (called once at the end of the run)."""
        if self.active and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        self.active = False


def is_rank0() -> bool:
    """True unless this process is a data-parallel rank other than 0: files (snapshots, their
    deletion) belong to rank 0, whatever object asks."""
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def _buckets(grads: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    """Consecutive gradients grouped so that each group holds at most BUCKET_BYTES (one all-
    reduce per group, not per tensor) and one device and dtype."""
    out: list[list[torch.Tensor]] = []
    size = 0
    for g in grads:
        nbytes = g.numel() * g.element_size()
        fits = out and size + nbytes <= BUCKET_BYTES and (
            out[-1][0].device == g.device and out[-1][0].dtype == g.dtype)
        if not fits:
            out.append([])
            size = 0
        out[-1].append(g)
        size += nbytes
    return out


def init_from_env(device: torch.device) -> Dist:
    """Join the process group described by the torchrun environment (NCCL on a CUDA device,
    gloo on the CPU); without that environment, the single-process :class:`Dist`."""
    if not launched_by_torchrun():
        return Dist()
    rank, world = _env_int("RANK"), _env_int("WORLD_SIZE")
    local_rank = _env_int("LOCAL_RANK", rank)
    backend = "nccl" if device.type == "cuda" else "gloo"
    timeout = datetime.timedelta(seconds=_env_int("PRUNEKIT_DIST_TIMEOUT_S", DEFAULT_TIMEOUT_S))
    kwargs = {"device_id": device} if device.type == "cuda" else {}
    try:
        torch.distributed.init_process_group(backend, rank=rank, world_size=world,
                                             timeout=timeout, **kwargs)
    except (RuntimeError, ValueError) as exc:
        raise PrunekitError(
            f"rank {rank}: cannot join the {backend} process group of {world} rank(s) at "
            f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')}: "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}") from None
    return Dist(rank, world, local_rank, active=True)


def _env_int(name: str, default: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None:
        if default is None:
            raise PrunekitError(f"environment variable {name} is not set (torchrun sets it)")
        return default
    try:
        return int(value)
    except ValueError:
        raise PrunekitError(f"environment variable {name}='{value}' is not an integer") from None
