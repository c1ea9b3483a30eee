"""Who made, and who reads, each version of each blob of a built net.

An in-place layer (top = bottom) starts a new version of its blob, so "the blob conv1" names
different tensors before and after it. The build passes that change how layers run
(prunekit/net/fuse_bn_scale.py, prunekit/net/in_place.py) may only touch a version that a known
set of layers reads; this is where they find out.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class BlobVersions:
    """``producers[i][k]``: index of the layer that made bottom k of layer i (-1: none);
    ``readers[(p, name)]``: indices of the layers that read the version of ``name`` made by
    layer p, in net order (a layer reading it twice is listed twice)."""

    producers: list[list[int]] = field(default_factory=list)
    readers: dict[tuple[int, str], list[int]] = field(default_factory=dict)

    def sole_reader(self, producer: int, name: str) -> int | None:
        """The one layer that reads this version, or None when 0 or several do."""
        found = self.readers.get((producer, name), [])
        return found[0] if len(found) == 1 else None


def blob_versions(entries) -> BlobVersions:
    """Walk ``entries`` (Net.entries, in net order) once."""
    latest: dict[str, int] = {}
    out = BlobVersions()
    for i, entry in enumerate(entries):
        made_by = [latest.get(bottom, -1) for bottom in entry.bottoms]
        out.producers.append(made_by)
        for bottom, p in zip(entry.bottoms, made_by):
            out.readers.setdefault((p, bottom), []).append(i)
        for top in entry.tops:
            latest[top] = i
    return out
