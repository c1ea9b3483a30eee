"""Name the machine a measurement ran on, for result files (GPU model, or CPU model and threads)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def machine_name(device: torch.device) -> str:
    """``NVIDIA H100 80GB HBM3`` or ``AMD EPYC 7B13 x2 threads2`` (CPU model, cores, torch threads)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name or platform.machine()} x{os.cpu_count()} threads{torch.get_num_threads()}"
