"""Rank selection on a built net and the decomposed NetSpec: the steps ``prunekit decompose``
runs, as functions the benchmarks can call on nets with random weights."""

from __future__ import annotations

from prunekit.decompose.candidates import find_candidates
from prunekit.decompose.energies import weight_energies
from prunekit.decompose.rank_selection import select_ranks
from prunekit.decompose.rewrite import new_blobs, rewrite_net
from prunekit.errors import PrunekitError
from prunekit.measure.flops import count_net
from prunekit.net.graph import Net


def target_macs(net: Net, include_fc: bool) -> int:
    """The dense MACs per image the ratio applies to: convs (plus InnerProducts)."""
    return sum(r.macs for r in count_net(net, dense=True)
               if r.kind == "conv" or (include_fc and r.kind == "fc"))


def auto_ranks(net: Net, ratio: float, include_fc: bool = False, search: str = "dp",
               energies: dict[str, list[float]] | None = None) -> dict[str, tuple[str, int]]:
    """{layer: (kind, K)} for a ``ratio``× theoretical speedup; ``energies`` default to the
    weights' (data-free)."""
    cands = find_candidates(net, include_fc)
    if not cands:
        what = "Convolution or InnerProduct" if include_fc else "Convolution"
        raise PrunekitError(f"{net.source}: no {what} layer that a low-rank split would make "
                            "cheaper")
    if energies is None:
        energies = weight_energies(net, cands)
    picked = select_ranks(cands, energies, ratio, target_macs(net, include_fc), search)
    kinds = {c.name: c.kind for c in cands}
    return {name: (kinds[name], rank) for name, rank in picked.items()}


def decompose_net(net_param, net: Net, ranks: dict[str, tuple[str, int]]):
    """(new NetParameter, {new layer: blobs}) for ``net`` (built from ``net_param``, weights
    loaded) split at ``ranks``."""
    geometry = {n: net.layer(n).geometry for n, (kind, _) in ranks.items() if kind == "conv"}
    return rewrite_net(net_param, ranks, geometry), new_blobs(net, ranks)
