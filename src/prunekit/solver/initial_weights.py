"""The caffemodels a training run starts from: ``--weights`` or the solver's ``weights`` field.

BVLC Caffe's ``tools/caffe.cpp`` (train): with ``--snapshot`` the solver's ``weights`` are
cleared (the solverstate's model is the start); otherwise ``--weights`` replaces them
(``clear_weights(); add_weights(FLAGS_weights)``). ``Solver::InitTrainNet`` then loads every
``weights`` entry in order, each a comma-separated list, with ``CopyTrainedLayersFrom`` (a later
file overwrites the layers an earlier one set). Paths are relative to the folder you run from,
as in Caffe.
"""

from __future__ import annotations

from prunekit.log import get_logger


def initial_weight_files(param, weights_flag: str | None, snapshot_flag: str | None) -> list[str]:
    """The caffemodel paths to load before training, in load order (see module docstring)."""
    log = get_logger()
    from_solver = [path for entry in param.weights for path in entry.split(",") if path]
    if snapshot_flag:
        if from_solver:
            log.info("Resuming from %s: the solver's weights (%s) are not loaded, as in Caffe",
                     snapshot_flag, ", ".join(from_solver))
        return []
    if weights_flag:
        if from_solver:
            log.info("--weights %s replaces the solver's weights (%s), as in Caffe", weights_flag,
                     ", ".join(from_solver))
        return [path for path in weights_flag.split(",") if path]
    return from_solver
