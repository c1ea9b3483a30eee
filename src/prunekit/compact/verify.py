"""Check that the compacted net computes what the masked net computes, on a random input.

Compaction is exact by construction (removed channels were constants whose effect was folded
in), so any difference beyond float32 rounding is a bug. Both nets get the same input: the first
top of every data layer standard normal, other tops (labels) zeros, so loss and accuracy layers
run. Compared: the net outputs and every blob read by a layer the trace does not cross (the
logits a Softmax/loss reads), whose channels compaction never changes.

The column stage (column_form.py) is checked twice: layer by layer, each ColumnConvolution
against the dense conv it replaces on the timing input (:func:`compare_outputs`, the run's batch
and layout), and as part of the whole compacted net against the masked one (:func:`compare`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from prunekit.net.graph import Net, store_tops


@dataclass(frozen=True)
class BlobDiff:
    """Largest absolute difference on one compared blob, and the reference's largest |value|."""

    name: str
    max_abs: float
    scale: float

    @property
    def relative(self) -> float:
        """max |Δ| over the output scale (max |reference|), 0 for an all-zero reference."""
        return self.max_abs / self.scale if self.scale > 0 else self.max_abs


def random_feed(net: Net, seed: int = 0) -> dict[str, torch.Tensor]:
    """Inputs for every data top of ``net``: the first top of each data layer N(0, 1), others 0."""
    gen = torch.Generator().manual_seed(seed)
    feed = {}
    for entry, module in net.named_layers():
        if getattr(module, "is_data", False):
            for slot, top in enumerate(entry.tops):
                shape = net.blob_shapes[top]
                feed[top] = (torch.randn(shape, generator=gen) if slot == 0
                             else torch.zeros(shape))
    return feed


@torch.no_grad()
def probe(net: Net, feed: dict[str, torch.Tensor], watch: set[str]) -> dict[str, torch.Tensor]:
    """Forward ``net`` on ``feed``; the bottoms of the layers named in ``watch`` (as
    "layer:bottom") and the net outputs."""
    blobs: dict[str, torch.Tensor] = {}
    seen: dict[str, torch.Tensor] = {}
    loss = torch.zeros(())
    for entry, module in net.named_layers():
        if getattr(module, "is_data", False):
            tops = tuple(feed[t] for t in entry.tops)
        else:
            bottoms = [blobs[b] for b in entry.bottoms]
            if entry.name in watch:
                seen.update({f"{entry.name}:{b}": t for b, t in zip(entry.bottoms, bottoms)})
            out = module(*bottoms)
            tops = (out,) if isinstance(out, torch.Tensor) else tuple(out)
        loss = store_tops(entry, tops, blobs, loss)
    seen.update({name: blobs[name] for name in net.output_names})
    return seen


def compare(reference: Net, compacted: Net, watch: set[str], seed: int = 0) -> list[BlobDiff]:
    """Differences between the two nets on the blobs of the module docstring."""
    feed = random_feed(reference, seed)
    ref = probe(reference, feed, watch)
    new = probe(compacted, feed, watch)
    diffs = []
    for name, a in ref.items():
        b = new.get(name)
        if b is None or b.shape != a.shape or not a.is_floating_point():
            continue
        diffs.append(BlobDiff(name, float((a - b).abs().max()) if a.numel() else 0.0,
                              float(a.abs().max()) if a.numel() else 0.0))
    return diffs


@torch.no_grad()
def compare_outputs(name: str, reference, candidate, x: torch.Tensor) -> BlobDiff:
    """Difference between ``candidate(x)`` and ``reference(x)`` (two forms of one layer, e.g. a
    dense conv and the ColumnConvolution that replaces it), named ``name``."""
    a, b = reference(x), candidate(x)
    return BlobDiff(name, float((a - b).abs().max()) if a.numel() else 0.0,
                    float(a.abs().max()) if a.numel() else 0.0)
