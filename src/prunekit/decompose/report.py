"""The table ``prunekit decompose`` prints: per split layer rank, MACs and weight error; then
the conv-only and all-layer theoretical speedups counted by :mod:`prunekit.measure.flops` on the
original and the decomposed nets (so they equal what ``prunekit flops`` says of each)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from prunekit.decompose.candidates import Candidate
from prunekit.measure.flops import Totals


@dataclass(frozen=True)
class SplitRow:
    name: str
    kind: str
    rank: int
    full_rank: int
    dense_macs: int
    macs: int
    weight_error: float    # ‖W − Ŵ‖_F / ‖W‖_F of the rank-K approximation


def weight_error(singular: torch.Tensor, rank: int) -> float:
    """Relative Frobenius error of keeping ``rank`` values per group of ``singular`` [g, r]."""
    sq = singular.double() ** 2
    total = float(sq.sum())
    return (float(sq[:, rank:].sum()) / total) ** 0.5 if total > 0 else 0.0


def split_row(c: Candidate, rank: int, singular: torch.Tensor) -> SplitRow:
    return SplitRow(c.name, c.kind, rank, c.full_rank, c.dense_macs, c.macs(rank),
                    weight_error(singular, rank))


def format_report(rows: list[SplitRow], before: Totals, after: Totals) -> str:
    cols = ("layer", "kind", "rank", "full", "MACs", "MACs after", "speedup", "weight err")
    body = [(r.name, r.kind, str(r.rank), str(r.full_rank), f"{r.dense_macs:,}", f"{r.macs:,}",
             f"{r.dense_macs / r.macs:.2f}x", f"{r.weight_error:.4f}") for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h)
              for i, h in enumerate(cols)]
    fmt = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join([
        "MACs per image (multiply-accumulates; FLOPs = 2 x MACs); weight err = |W - W_K|_F / |W|_F",
        "", fmt.format(*cols), *(fmt.format(*b) for b in body), "",
        f"conv MACs:      {before.conv_macs:,} -> {after.conv_macs:,} "
        f"(theoretical conv speedup {before.conv_macs / after.conv_macs:.2f}x)",
        f"all-layer MACs: {before.all_macs:,} -> {after.all_macs:,} "
        f"(theoretical speedup {before.all_macs / after.all_macs:.2f}x)",
        f"params:         {before.params:,} -> {after.params:,}"])
