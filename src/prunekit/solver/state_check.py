"""The structure of a solverstate's ``prunekit_state``, checked before any of it is used.

The field is bytes in a file the user gives (``--snapshot``): truncated, from another program
or hand-made, it must fail as one line naming the file and the entry, never as a KeyError deep
in a restore or, worse, a half-restored solver that trains on. It is read with
``torch.load(weights_only=True)``, which refuses any pickle that would build other objects than
tensors and plain containers (so no code from the file runs); this module then checks that the
containers are the ones prunekit writes (prunekit/solver/snapshot.py, ``_extension_bytes``).
"""

from __future__ import annotations

import torch

from prunekit.errors import PrunekitError

_INT = (int,)
_NUMBER = (int, float)

#: entry -> (what it must be, a test)
ENTRIES = {
    "format": ("an int", lambda v: isinstance(v, _INT)),
    "seed": ("an int", lambda v: isinstance(v, _INT)),
    "torch_rng": ("a uint8 tensor", lambda v: isinstance(v, torch.Tensor)
                  and v.dtype == torch.uint8 and v.dim() == 1),
    "cuda_rng": ("a list of uint8 tensors", lambda v: isinstance(v, list) and all(
        isinstance(t, torch.Tensor) and t.dtype == torch.uint8 for t in v)),
    "smoothed_loss": ("a dict", lambda v: isinstance(v, dict)),
    "train_data": ("a list of dicts", lambda v: isinstance(v, list)
                   and all(isinstance(d, dict) for d in v)),
    "test_data": ("a list of lists of dicts", lambda v: isinstance(v, list) and all(
        isinstance(n, list) and all(isinstance(d, dict) for d in n) for n in v)),
    "hooks": ("a dict by hook name", lambda v: isinstance(v, dict)
              and all(isinstance(k, str) and isinstance(d, dict) for k, d in v.items())),
    "extra_iter_size": ("an int", lambda v: isinstance(v, _INT)),
    "lr_override": ("a number or None", lambda v: v is None or isinstance(v, _NUMBER)),
}


def check_state_payload(payload: object, path: str) -> dict:
    """Return ``payload`` when it has every entry prunekit writes, each of the right kind."""
    if not isinstance(payload, dict):
        raise PrunekitError(f"{path}: prunekit_state holds a {type(payload).__name__}, expected "
                            "the dict prunekit writes")
    for name, (what, ok) in ENTRIES.items():
        if name not in payload:
            raise PrunekitError(f"{path}: prunekit_state has no '{name}' entry")
        if not ok(payload[name]):
            raise PrunekitError(f"{path}: prunekit_state entry '{name}' is not {what}")
    return payload


def wrong_structure(path: str, error: Exception) -> PrunekitError:
    """A nested entry that did not fit while restoring (a data layer's position, a hook's
    state): one line naming the file and the error."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return PrunekitError(f"{path}: prunekit_state has the wrong structure "
                         f"({type(error).__name__}: {text})")


def first_line(error: Exception) -> str:
    """The first line of ``error``'s message (torch's refusal of a pickle is ~35 lines)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
