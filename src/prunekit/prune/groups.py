"""Caffe's weight-matrix view of a Conv/IP weight: rows, columns, channels, without copies.

A convolution weight ``[N, C/g, k...]`` is the matrix ``[N, C/g·K]`` (K = kh·kw, the product of
the kernel dims): a **row** is a filter, a **column** a pair (input channel within the group,
kernel position), numbered ``j·K + kernel_offset``. The column numbering is the same in every
group's slice of rows, so a column index names "the same position in every group" (Caffe_IncReg's
view). An InnerProduct weight ``[N, K]`` is the matrix itself (for ``transpose: true`` pass
``weight.t()``: every function here works on that view, the in-place ones write through it).

Column flags/masks come in two shapes, accepted by every function that takes them:

* ``[num_cols]`` — one flag per column, shared by all groups (Caffe's view);
* ``[g, num_cols]`` — one flag per column and group; group ``i`` owns rows
  ``i·N/g … (i+1)·N/g − 1``. Needed for grouped/depthwise convs, where input channel ``c``
  lives in group ``c // (C/g)`` only.

Everything is vectorised: scores are one reduction, masks one broadcast, zeroing one
``masked_fill_`` on a view of the weight.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "num_rows", "num_cols", "kernel_size", "column_l1", "row_l1", "col_broadcast",
    "row_broadcast", "col_view_shape", "row_view_shape", "expand_col_mask", "expand_row_mask",
    "combined_mask", "zero_groups_",
    "rebuild_from_zeros", "zero_columns_per_group", "zero_column_count", "channel_of_column",
    "columns_of_channel", "columns_of_channel_fc",
]


# ---------------------------------------------------------------------------- sizes
def num_rows(w: torch.Tensor) -> int:
    """Rows of the matrix view: filters (conv) or outputs (IP)."""
    return int(w.shape[0])


def num_cols(w: torch.Tensor) -> int:
    """Columns of the matrix view: C/g·kh·kw (conv) or K (IP)."""
    return math.prod(w.shape[1:])


def kernel_size(w: torch.Tensor) -> int:
    """Columns per input channel: kh·kw (product of the kernel dims), 1 for an IP weight."""
    return math.prod(w.shape[2:])


def _grouped(w: torch.Tensor, group: int) -> torch.Tensor:
    """``w`` viewed as [g, N/g, rest...] (splitting dim 0 is always a view)."""
    n = num_rows(w)
    if group < 1 or n % group:
        raise ValueError(f"{n} rows cannot be split into {group} groups")
    return w.unflatten(0, (group, n // group))


def _matrix(w: torch.Tensor) -> torch.Tensor:
    """[N, num_cols] (a view when ``w`` is contiguous)."""
    return w.reshape(num_rows(w), num_cols(w))


# ---------------------------------------------------------------------------- scores
def column_l1(w: torch.Tensor, group: int | None = None) -> torch.Tensor:
    """Σ over rows of |w| per column: ``[num_cols]``, or ``[group, num_cols]`` per group."""
    if group is None:
        return _matrix(w).abs().sum(0)
    return _grouped(w, group).abs().flatten(2).sum(1)


def row_l1(w: torch.Tensor) -> torch.Tensor:
    """Σ over columns of |w| per row: ``[num_rows]``."""
    return _matrix(w).abs().sum(1)


# ---------------------------------------------------------------------------- masks
def _col_layout(values: torch.Tensor, w: torch.Tensor) -> tuple[int, torch.Tensor]:
    """(g, values as [g, 1, rest...]) for a [num_cols] or [g, num_cols] column tensor."""
    values = torch.as_tensor(values, device=w.device)
    ncols = num_cols(w)
    if values.dim() == 1 and values.numel() == ncols:
        g = 1
    elif values.dim() == 2 and values.shape[1] == ncols:
        g = int(values.shape[0])
    else:
        raise ValueError(f"column tensor of shape {tuple(values.shape)} does not fit a weight "
                         f"of shape {tuple(w.shape)} ({ncols} columns): expected [{ncols}] or "
                         f"[group, {ncols}]")
    return g, values.reshape((g, 1) + tuple(w.shape[1:]))


def _row_layout(values: torch.Tensor, w: torch.Tensor, g: int) -> torch.Tensor:
    """A [num_rows] tensor viewed as [g, N/g, 1, ...] (broadcasts against the grouped view)."""
    values = torch.as_tensor(values, device=w.device)
    if values.shape != (num_rows(w),):
        raise ValueError(f"row tensor of shape {tuple(values.shape)} does not fit a weight of "
                         f"shape {tuple(w.shape)}: expected [{num_rows(w)}]")
    return values.reshape((g, num_rows(w) // g) + (1,) * (w.dim() - 1))


def col_view_shape(w: torch.Tensor) -> tuple[int, ...]:
    """``[1, C/g, k...]``: the shape that makes a per-column vector broadcast against ``w``."""
    return (1,) + tuple(w.shape[1:])


def row_view_shape(w: torch.Tensor) -> tuple[int, ...]:
    """``[N, 1, ...]``: the shape that makes a per-row vector broadcast against ``w``."""
    return (num_rows(w),) + (1,) * (w.dim() - 1)


def col_broadcast(values: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """A per-column ``[num_cols]`` tensor (scores, factors, flags) viewed as ``[1, C/g, k...]``,
    ready to multiply ``w`` by broadcasting (no copy)."""
    g, v = _col_layout(values, w)
    if g != 1:
        raise ValueError("col_broadcast takes a [num_cols] tensor; use expand_col_mask for "
                         "per-group columns")
    return v[0]


def row_broadcast(values: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """A per-row ``[num_rows]`` tensor viewed as ``[N, 1, ...]`` (no copy)."""
    return _row_layout(values, w, 1)[0]


def combined_mask(col_keep: torch.Tensor | None, row_keep: torch.Tensor | None,
                  w: torch.Tensor) -> torch.Tensor:
    """Weight-shaped mask in ``w``'s dtype: 1 where both the column and the row are kept.

    ``col_keep`` is ``[num_cols]`` or ``[g, num_cols]`` (bool or 0/1), ``row_keep`` ``[num_rows]``;
    either may be None (all kept). One broadcast ``logical_and``, materialised once (it is the
    mask blob Caffe keeps per layer).
    """
    g, col = (1, None) if col_keep is None else _col_layout(col_keep, w)
    row = None if row_keep is None else _row_layout(row_keep, w, g)
    full = (g, num_rows(w) // g) + tuple(w.shape[1:])
    if col is None and row is None:
        keep = torch.ones(full, dtype=torch.bool, device=w.device)
    elif row is None:
        keep = col.bool().expand(full)
    elif col is None:
        keep = row.bool().expand(full)
    else:
        keep = torch.logical_and(col.bool(), row.bool())
    return keep.to(w.dtype).reshape(w.shape)


def expand_col_mask(col_keep: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Weight-shaped float mask from column flags ``[num_cols]`` or ``[g, num_cols]``."""
    return combined_mask(col_keep, None, w)


def expand_row_mask(row_keep: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Weight-shaped float mask from row flags ``[num_rows]``."""
    return combined_mask(None, row_keep, w)


def _as_flags(sel, n: int, device) -> torch.Tensor:
    """Bool [n] from a bool mask, an index tensor/list, or an int."""
    t = torch.as_tensor(sel, device=device)
    if t.dtype == torch.bool:
        return t
    flags = torch.zeros(n, dtype=torch.bool, device=device)
    flags[t.long().reshape(-1)] = True
    return flags


@torch.no_grad()
def zero_groups_(w: torch.Tensor, cols=None, rows=None) -> torch.Tensor:
    """Set the given columns and rows of ``w`` to exactly +0, in place; returns ``w``.

    ``cols``: bool ``[num_cols]`` / ``[g, num_cols]`` (per group) or column indices (all groups);
    ``rows``: bool ``[num_rows]`` or row indices. Works through views (e.g. ``ip.weight.t()``).
    """
    if cols is not None:
        c = torch.as_tensor(cols, device=w.device)
        if c.dtype != torch.bool:
            c = _as_flags(c, num_cols(w), w.device)
        g, c = _col_layout(c, w)
        _grouped(w, g).masked_fill_(c, 0)
    if rows is not None:
        r = _as_flags(rows, num_rows(w), w.device)
        _row_layout(r, w, 1)  # shape check
        w.masked_fill_(r.reshape((-1,) + (1,) * (w.dim() - 1)), 0)
    return w


# ---------------------------------------------------------------------------- rebuild
@torch.no_grad()
def rebuild_from_zeros(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(pruned_cols bool[num_cols], pruned_rows bool[num_rows]) from exact zeros (section 2.5).

    A column counts as pruned when it is 0 in every row, a row when all its weights are 0
    (−0.0 is 0; NaN is not). For the per-group view Caffe uses for its counts see
    ``zero_columns_per_group`` and ``zero_column_count``.
    """
    zero = _matrix(w) == 0
    return zero.all(0), zero.all(1)


@torch.no_grad()
def zero_columns_per_group(w: torch.Tensor, group: int) -> torch.Tensor:
    """bool ``[group, num_cols]``: column j is all-zero within group i's rows."""
    return (_grouped(w, group) == 0).flatten(2).all(1)


@torch.no_grad()
def zero_column_count(w: torch.Tensor, group: int = 1) -> float:
    """Caffe's fractional ``num_pruned_col``: a column zero in k of the g groups counts k/g."""
    return float(zero_columns_per_group(w, group).sum().item()) / group


# ---------------------------------------------------------------------------- channels
def channel_of_column(col, w: torch.Tensor):
    """Input channel (within the group) of column ``col`` (int or index tensor)."""
    return col // kernel_size(w)


def columns_of_channel(ch, w: torch.Tensor):
    """Columns of input channel ``ch`` (within the group): the K = kh·kw consecutive columns
    ``ch·K … ch·K + K − 1``. A slice for an int, an index tensor ``[len(ch)·K]`` for indices."""
    return _block(ch, kernel_size(w))


def columns_of_channel_fc(ch, spatial: int):
    """Columns of channel ``ch`` for an IP reading a C×H×W blob (``spatial`` = H·W): Caffe
    flattens channel-major, so they are ``ch·HW … ch·HW + HW − 1``."""
    return _block(ch, spatial)


def _block(ch, size: int):
    if isinstance(ch, int):
        return slice(ch * size, (ch + 1) * size)
    ch = torch.as_tensor(ch).long().reshape(-1)
    return (ch[:, None] * size + torch.arange(size, device=ch.device)).reshape(-1)
