"""Which pruning snapshots stay on disk.

The fork kept every retrain-test snapshot forever (a VGG-16 run writes a 528 MB caffemodel plus a
solverstate per test). Kept here: the stage models (``_stage<K>``), the latest periodic snapshot
(to resume after a crash), and of the retrain snapshots only those the schedule may still roll
back to or report as the best model.
"""

from __future__ import annotations

import os

from prunekit.log import get_logger
from prunekit.solver.distributed import is_rank0


class Retention:
    def __init__(self) -> None:
        self.periodic: tuple[str, str] | None = None
        self.retrain: dict[str, tuple[str, str]] = {}  # tag + iteration -> paths

    def written(self, tag: str, paths: tuple[str, str]) -> None:
        if tag == "":
            if self.periodic is not None and self.periodic != paths:
                _remove(self.periodic)
            self.periodic = paths
        elif tag.endswith("retrain"):  # _stage<K>-retrain and _finalretrain
            self.retrain[paths[0]] = paths

    def keep_only(self, keep_models: set[str]) -> None:
        """Delete every retrain snapshot whose caffemodel path is not in ``keep_models``."""
        for model, paths in list(self.retrain.items()):
            if model not in keep_models:
                _remove(paths)
                del self.retrain[model]

    def state_dict(self) -> dict:
        return {"periodic": list(self.periodic) if self.periodic else None,
                "retrain": [list(p) for p in self.retrain.values()]}

    def load_state_dict(self, state: dict) -> None:
        self.periodic = tuple(state["periodic"]) if state.get("periodic") else None
        self.retrain = {p[0]: tuple(p) for p in state.get("retrain", [])}


def _remove(paths) -> None:
    if not is_rank0():  # data-parallel runs: rank 0 alone writes and deletes snapshots
        return
    for path in paths:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
    get_logger().info("Removed old snapshot %s", paths[0])
