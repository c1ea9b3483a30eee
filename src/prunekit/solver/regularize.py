"""Weight decay and gradient clipping with Caffe's semantics (``Regularize``, ``ClipGradients``)."""

from __future__ import annotations

import logging

import torch

from prunekit.errors import PrunekitError


def add_weight_decay(ref, weight_decay: float, kind: str) -> None:
    """grad += λ·w (L2) or λ·sign(w) (L1), λ = weight_decay × decay_mult of the blob.

    Pruning methods register their own ``regularization_type`` names (e.g. "Reg_Col"), which add
    plain L2 decay here and their group terms in a hook, as the IncReg fork does.
    """
    decay = weight_decay * ref.decay_mult
    if not decay:
        return
    kind = kind or "L2"
    if kind == "L1":
        ref.tensor.grad.add_(torch.sign(ref.tensor), alpha=decay)
    elif kind == "L2" or kind in EXTRA_L2_TYPES:
        ref.tensor.grad.add_(ref.tensor, alpha=decay)
    else:
        raise PrunekitError(
            f"solver: unknown regularization_type '{kind}' (expected L2, L1"
            + "".join(f", {k}" for k in sorted(EXTRA_L2_TYPES)) + ")"
        )


# regularization_type values that pruning methods use; plain decay is L2 for all of them.
EXTRA_L2_TYPES: set[str] = {"Reg_Col", "Reg_Row", "Reg-rank_Col", "Reg-rank_Row"}


def clip_gradients(params: list[torch.Tensor], clip: float, log: logging.Logger) -> None:
    """Scale all gradients down together when their global L2 norm exceeds ``clip``."""
    if not params:
        return
    norm = float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in params)))
    if norm > clip:
        factor = clip / norm
        log.info("Gradient clipping: scaling down gradients (L2 norm %s > %s) by scale factor %s",
                 f"{norm:.6g}", f"{clip:.6g}", f"{factor:.6g}")
        for p in params:
            p.grad.mul_(factor)
