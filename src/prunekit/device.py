"""Pick the torch device from caffe's ``--gpu`` flag and the solver's ``solver_mode``.

Caffe semantics: ``--gpu 0`` (an id), ``--gpu 0,1`` or ``--gpu all``; without the flag a solver
with ``solver_mode: GPU`` uses its ``device_id``. A machine without CUDA runs on the CPU with a
warning instead of failing, so the same experiment folder runs on a laptop.
"""

from __future__ import annotations

import torch

from prunekit.errors import PrunekitError
from prunekit.log import get_logger


def parse_gpu_flag(flag: str | None) -> list[int] | None:
    """``None`` → no flag; ``"all"`` → every visible GPU; ``"0,1"`` → [0, 1]."""
    if flag is None or flag == "":
        return None
    if flag == "all":
        return list(range(torch.cuda.device_count())) or [0]
    try:
        return [int(part) for part in flag.replace("-", ",").split(",") if part != ""]
    except ValueError:
        raise PrunekitError(f"--gpu '{flag}': expected a GPU id, a comma list of ids, or 'all'") from None


def resolve_device(gpu_flag: str | None, solver_param=None) -> torch.device:
    """The device to run on, logging Caffe's "Use GPU with device ID n" / "Use CPU." line."""
    log = get_logger()
    ids = parse_gpu_flag(gpu_flag)
    if ids is None and solver_param is not None and solver_param.solver_mode == 1:  # GPU
        ids = [solver_param.device_id]
    if not ids:
        log.info("Use CPU.")
        return torch.device("cpu")
    if not torch.cuda.is_available():
        log.warning("GPU %s requested but CUDA is not available: running on the CPU", ids[0])
        log.info("Use CPU.")
        return torch.device("cpu")
    if ids[0] >= torch.cuda.device_count():
        raise PrunekitError(
            f"--gpu {ids[0]}: only {torch.cuda.device_count()} GPU(s) visible"
        )
    if len(ids) > 1:
        log.warning("several GPUs given (%s): this process uses GPU %d; run data-parallel "
                    "training through torchrun", ids, ids[0])
    torch.cuda.set_device(ids[0])  # events, synchronize() and new tensors follow this device
    torch.backends.cudnn.benchmark = True
    log.info("Use GPU with device ID %d", ids[0])
    log.info("GPU device name: %s", torch.cuda.get_device_name(ids[0]))
    return torch.device("cuda", ids[0])
