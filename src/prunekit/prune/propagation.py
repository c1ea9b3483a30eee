"""Neighbour propagation of structured pruning, through the real channel graph.

Col unit: when a layer's pruned columns leave an input channel unread by every consumer, the
producer filters of that channel (all Eltwise-coupled ones together) are zeroed. Row unit: a
pruned filter kills its channel, and the consumers lose the columns that read it; a depthwise
conv's filter that reads only that channel dies with it (its row is pruned). As in the fork, what
a pruning step finds is queued and applied at the next training forward, with the fork's log
lines; unlike the fork, neighbours come from ``ChannelGraph`` (prunekit/prune/dependency.py), a
query over the channel model every layer declares its rule to (prunekit/net/channels.py).
"""

from __future__ import annotations

from typing import TextIO

import torch

from prunekit.prune import app_log
from prunekit.prune.dependency import ChannelGraph


class Propagator:
    def __init__(self, net, layers, config, out: TextIO) -> None:
        self.layers = layers
        self.by_name = {layer.name: layer for layer in layers}
        self.unit = config.unit
        self.out = out
        self.enabled = config.if_update_row_col
        self.graph = ChannelGraph(net) if self.enabled else None
        self.accept = {layer.name: layer.if_update_row_col for layer in layers}
        self.pending: list[tuple[str, str, list[int]]] = []  # (layer, "row"|"col", indices)

    def pruned(self, layer, newly: torch.Tensor) -> None:
        """``layer`` just pruned the groups in bool mask ``newly``: queue what follows (the
        targets' flags are read from their host copies: no device sync per group)."""
        if self.graph is None:
            return
        if self.unit == "Col":
            cols = {l.name: l.col_pruned.cpu() for l in self.layers}
            for hit in self.graph.dead_input_channels(layer.name, cols, self.accept):
                target = self.by_name[hit.layer]
                rows = [r for r in hit.rows.tolist() if not target.row_pruned_host[r]]
                if rows:
                    self.pending.append((hit.layer, "row", rows))
        else:
            rows = {l.name: l.row_pruned.cpu() for l in self.layers}
            for hit in self.graph.rows_dying_with(layer.name, newly.cpu(), rows, self.accept):
                target = self.by_name.get(hit.layer)
                if target is None:
                    continue
                dying = [r for r in hit.rows.tolist() if not target.row_pruned_host[r]]
                if dying:
                    self.pending.append((hit.layer, "row", dying))
            for hit in self.graph.consumer_columns_of_pruned_rows(layer.name, newly.cpu(), rows,
                                                                  self.accept):
                if hit.groups is not None:
                    continue  # a column of one group only: the Caffe matrix view cannot mark it
                target = self.by_name[hit.layer]
                cols = [c for c in hit.columns.tolist() if not target.col_pruned_host[c]]
                if cols:
                    self.pending.append((hit.layer, "col", cols))

    def apply_pending(self) -> bool:
        """Apply the queued rows/columns (the fork does this at the next TRAIN forward);
        True when anything was applied."""
        pending, self.pending = self.pending, []
        for name, kind, indices in pending:
            layer = self.by_name[name]
            index = torch.tensor(indices, dtype=torch.long, device=layer.weight.device)
            if kind == "row":
                app_log.emit(self.out, app_log.update_num_pruned_row(name))
                layer.prune("Row", index)
                for row in indices:
                    app_log.emit(self.out, app_log.pruned_row(name, row))
            else:
                layer.prune("Col", index)
                for col in indices:
                    app_log.emit(self.out, app_log.pruned_channel(name, col))
        return bool(pending)

    def state_dict(self) -> dict:
        return {"pending": [list(p) for p in self.pending]}

    def load_state_dict(self, state: dict) -> None:
        self.pending = [(p[0], p[1], list(p[2])) for p in state.get("pending", [])]
