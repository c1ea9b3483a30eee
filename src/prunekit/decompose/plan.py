"""User-given ranks (``--config`` or ``--layer/--K``) checked against the built net."""

from __future__ import annotations

from prunekit.decompose.candidates import Candidate, make_candidate, why_not
from prunekit.errors import PrunekitError
from prunekit.net.graph import Net

KINDS = {"Convolution": "conv", "InnerProduct": "fc"}


def check_ranks(net: Net, ranks: dict[str, tuple[str | None, int]],
                source: str) -> dict[str, tuple[str, int]]:
    """{layer: (kind, K)} after checking each layer exists, can be split, is of the kind its
    section says (None: any) and K ≤ its full rank; ``source`` names where the ranks came from."""
    entries = {entry.name: (entry, module) for entry, module in net.named_layers()}
    out = {}
    for name, (kind, rank) in ranks.items():
        if name not in entries:
            raise PrunekitError(f"{source}: layer '{name}' is not in the net "
                                f"({net.source}, {'TEST' if net.phase else 'TRAIN'} phase)")
        entry, module = entries[name]
        reason = why_not(entry, module, net.blob_shapes)
        if reason:
            raise PrunekitError(f"{source}: layer '{name}' {reason}")
        actual = KINDS[entry.type]
        if kind is not None and kind != actual:
            section = "conv_params" if kind == "conv" else "fc_params"
            raise PrunekitError(f"{source}: layer '{name}' is listed in {section} but is a "
                                f"{entry.type} layer")
        cand = make_candidate(entry, module, net.blob_shapes)
        if rank > cand.full_rank:
            raise PrunekitError(f"{source}: layer '{name}': rank {rank} exceeds its full rank "
                                f"{cand.full_rank} (already exact there)")
        out[name] = (actual, rank)
    return out


def candidates_for(net: Net, ranks: dict[str, tuple[str, int]]) -> dict[str, Candidate]:
    """The cost model of every layer in ``ranks`` (even if its split does not pay off)."""
    entries = {entry.name: (entry, module) for entry, module in net.named_layers()}
    return {name: make_candidate(*entries[name], net.blob_shapes) for name in ranks}
