"""Refuse a net that cannot fit in memory before allocating it.

A prototxt with ``dim: 100000`` or ``batch_size: 2000000000`` would otherwise make torch try to
allocate terabytes: on Linux a mapping larger than RAM + swap fails with a traceback, and one
that merely exceeds free memory succeeds lazily and then gets the process killed by the OOM killer
while the fillers touch it. So every blob's size is known from its shape first (the shapes come
from meta tensors, :mod:`prunekit.net.shapes`) and compared with the memory this process can
still get: the smallest of the kernel's ``MemAvailable``, the cgroup's limit less its use (a
container or a cluster job) and the address-space limit (``ulimit -v``) less what the process has
mapped. Sizes are bytes of float32 values (4 bytes each).
"""

from __future__ import annotations

import math
import os
import resource
from collections.abc import Sequence

from prunekit.errors import PrunekitError

FLOAT_BYTES = 4
GIB = float(1 << 30)


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_available() -> int | None:
    try:
        with open("/sys/fs/cgroup/memory.max") as handle:
            limit = handle.read().strip()
        if limit == "max":
            return None
        with open("/sys/fs/cgroup/memory.current") as handle:
            return int(limit) - int(handle.read().strip())
    except (OSError, ValueError):
        return None


def _address_space_available() -> int | None:
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmSize:"):
                    return soft - int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def available_bytes() -> int | None:
    """Bytes this process can still allocate on the host (None: unknown, no check)."""
    known = [b for b in (_meminfo_available(), _cgroup_available(), _address_space_available())
             if b is not None]
    return max(0, min(known)) if known else None


def shape_bytes(shape: Sequence[int]) -> int:
    """Bytes of a float32 blob of ``shape`` (Python ints: no overflow for absurd shapes)."""
    return FLOAT_BYTES * math.prod(int(d) for d in shape)


def check_shape(where: str, what: str, shape: Sequence[int]) -> None:
    """Every dimension of a blob must be positive (Caffe checks >= 0; a 0 makes an empty batch
    or a division by zero in a filler, so it is refused here too)."""
    if any(int(d) <= 0 for d in shape):
        raise PrunekitError(f"{where}: {what} has shape {[int(d) for d in shape]}; every "
                            "dimension must be positive")


def check_fits(where: str, what: str, nbytes: int, device: str = "cpu") -> None:
    """Refuse to allocate ``nbytes`` more for ``what`` when ``device`` ("cpu", "cuda:N"; "skip":
    no check) cannot hold them.

    A Net checks its blobs while it is built (on a machine without a GPU: they will live on the
    host), when it is placed on a GPU, and before its first forward on the host; parameter
    blobs are checked before each is allocated."""
    if device == "skip":
        return
    free = available_bytes() if device == "cpu" else _gpu_free(device)
    if free is not None and nbytes > free:
        raise PrunekitError(
            f"{where}: {what} needs {nbytes / GIB:.3g} GiB but only {free / GIB:.3g} GiB of "
            f"{'memory' if device == 'cpu' else device + ' memory'} is available; lower the batch "
            "size or the shapes")


def _gpu_free(device: str) -> int | None:
    import torch

    try:
        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    except (RuntimeError, AssertionError, ValueError):
        return None
