"""Caffe's weight fillers (``include/caffe/filler.hpp``) on torch tensors.

A FillerParameter names how a blob starts: constant, uniform, gaussian (optionally sparse), xavier,
msra, positive_unitball or bilinear. Fan sizes follow Caffe exactly: fan_in = count / shape[0] and
fan_out = count / shape[1], so a conv weight [N, C/g, kh, kw] has fan_in = C/g·kh·kw. Random fillers
draw from torch's global RNG so ``torch.manual_seed`` makes a net's initialisation reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from prunekit.errors import PrunekitError

_FAN_IN, _FAN_OUT, _AVERAGE = 0, 1, 2  # FillerParameter.VarianceNorm values


def fill_(tensor: torch.Tensor, filler_param) -> None:
    """Fill ``tensor`` in place as Caffe's filler ``filler_param.type`` would.

    Raises PrunekitError for an unknown type or a parameter Caffe rejects (e.g. ``sparse`` on a
    filler other than gaussian).
    """
    kind = filler_param.type
    filler = _FILLERS.get(kind)
    if filler is None:
        known = ", ".join(sorted(_FILLERS))
        raise PrunekitError(f"unknown filler type '{kind}' (known: {known})")
    if kind != "gaussian" and filler_param.sparse != -1:
        raise PrunekitError(f"filler '{kind}' does not support sparse (only gaussian does)")
    with torch.no_grad():
        filler(tensor, filler_param)


def _constant(t: torch.Tensor, fp) -> None:
    t.fill_(fp.value)


def _uniform(t: torch.Tensor, fp) -> None:
    t.uniform_(fp.min, fp.max)


def _gaussian(t: torch.Tensor, fp) -> None:
    """Gaussian; with sparse >= 0 each weight survives with probability sparse / shape[0].

    Caffe's intent: on average ``sparse`` non-zero inputs per output unit.
    """
    t.normal_(fp.mean, fp.std)
    if fp.sparse < 0:
        return
    if t.dim() < 1:
        raise PrunekitError("gaussian filler with sparse needs a blob with at least one axis")
    keep = fp.sparse / t.shape[0]
    if keep > 1:
        raise PrunekitError(
            f"gaussian filler: sparse ({fp.sparse}) must not exceed the number of outputs "
            f"({t.shape[0]})")
    t.mul_(torch.bernoulli(torch.full_like(t, keep)))


def _positive_unitball(t: torch.Tensor, fp) -> None:
    """Uniform [0, 1), then each of the shape[0] rows is divided by its sum (rows sum to 1)."""
    t.uniform_(0, 1)
    rows = t.view(t.shape[0], -1)
    rows.div_(rows.sum(dim=1, keepdim=True))


def fan_in_out(shape: torch.Size) -> tuple[int, int]:
    """Caffe's fans: fan_in = count / shape[0]; fan_out = count / shape[1] (count if 1-D)."""
    if len(shape) < 1:
        raise PrunekitError("xavier/msra fillers need a blob with at least one axis")
    total = math.prod(shape)
    fan_in = total // shape[0]
    fan_out = total // shape[1] if len(shape) > 1 else total
    return fan_in, fan_out


def _variance_n(t: torch.Tensor, fp) -> float:
    """The n of Var = c / n chosen by variance_norm (FAN_IN, FAN_OUT or their AVERAGE)."""
    fan_in, fan_out = fan_in_out(t.shape)
    if fp.variance_norm == _FAN_OUT:
        return float(fan_out)
    if fp.variance_norm == _AVERAGE:
        return (fan_in + fan_out) / 2.0
    return float(fan_in)


def _xavier(t: torch.Tensor, fp) -> None:
    """U(-a, a) with a = sqrt(3 / n): variance 1 / n (Glorot & Bengio, Caffe's variant)."""
    scale = math.sqrt(3.0 / _variance_n(t, fp))
    t.uniform_(-scale, scale)


def _msra(t: torch.Tensor, fp) -> None:
    """N(0, 2 / n) (He et al. 2015)."""
    t.normal_(0.0, math.sqrt(2.0 / _variance_n(t, fp)))


def _bilinear(t: torch.Tensor, fp) -> None:
    """Bilinear upsampling kernel for Deconvolution, identical for every (out, in) pair."""
    if t.dim() != 4 or t.shape[2] != t.shape[3]:
        raise PrunekitError(
            f"bilinear filler needs a 4-axis blob with square kernels, got shape {tuple(t.shape)}")
    f = math.ceil(t.shape[3] / 2.0)
    c = (2 * f - 1 - f % 2) / (2.0 * f)
    pos = torch.arange(t.shape[3], dtype=torch.float64)
    profile = 1 - (pos / f - c).abs()
    t.copy_((profile[:, None] * profile[None, :]).expand_as(t))


_FILLERS: dict[str, Callable[[torch.Tensor, object], None]] = {
    "constant": _constant,
    "uniform": _uniform,
    "gaussian": _gaussian,
    "positive_unitball": _positive_unitball,
    "xavier": _xavier,
    "msra": _msra,
    "bilinear": _bilinear,
}
