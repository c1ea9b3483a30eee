"""Snapshots that resume exactly: ``<prefix>_iter_<N>.caffemodel`` + ``.solverstate``.

The solverstate is Caffe's message (iter, learned_net, history, current_step), so Caffe and
prunekit read each other's files. What Caffe loses on resume — RNG states, data positions, the
smoothed-loss window, the seed, pruning-hook state — goes into the extension field
``prunekit_state`` (serialized with ``torch.save``), which Caffe ignores. Both files are written
to a temporary name and renamed, so an interrupted write leaves no partial snapshot.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import numpy as np
import torch

from prunekit import caffe
from prunekit.errors import PrunekitError
from prunekit.net.weights import load_caffemodel, save_caffemodel
from prunekit.solver.state_check import check_state_payload, first_line, wrong_structure

STATE_FORMAT = 1


def snapshot_paths(prefix: str, iteration: int) -> tuple[str, str]:
    base = f"{prefix}_iter_{iteration}"
    return base + ".caffemodel", base + ".solverstate"


def write_snapshot(solver, tag: str = "") -> tuple[str, str]:
    """Write the model then the state; the state names the model file (Caffe's learned_net).

    ``tag`` goes between prefix and ``_iter_`` (the pruning fork's ``_stage1``, ``_stage1-retrain``).
    """
    model_path, state_path = snapshot_paths(solver.snapshot_prefix + tag, solver.iter)
    folder = os.path.dirname(model_path)
    if folder and not os.path.isdir(folder):
        raise PrunekitError(
            f"snapshot_prefix '{solver.snapshot_prefix}': folder '{folder}' does not exist"
        )
    solver.log.info("Snapshotting to binary proto file %s", model_path)
    with _disk_errors(model_path, None):
        save_caffemodel(solver.net, model_path)
    solver.log.info("Snapshotting solver state to binary proto file %s", state_path)
    state = caffe.caffe_pb2.SolverState(
        iter=solver.iter, learned_net=model_path, current_step=solver.current_step
    )
    for hist in solver.history:
        state.history.append(caffe.array_to_blob(hist.detach().cpu().float().numpy()))
    state.prunekit_state = _extension_bytes(solver)
    with _disk_errors(state_path, model_path):
        caffe.write_solverstate(state_path, state)
    return model_path, state_path


@contextmanager
def _disk_errors(path: str, orphan: str | None) -> Iterator[None]:
    """A failed write (full disk, quota, file size limit) becomes one line naming the file.

    The atomic write already removed its temporary file, so ``path`` is untouched (an earlier
    snapshot stays intact). ``orphan``: the caffemodel this solverstate would have named; it is
    removed too, so no model without its state is left (and the space it took comes back).
    """
    try:
        yield
    except (OSError, PrunekitError) as error:
        if orphan:
            with suppress(OSError):
                os.unlink(orphan)
        if isinstance(error, OSError):
            error = f"cannot write snapshot {path}: {error.strerror or error}"
        removed = f"; removed {orphan}, which it would have named" if orphan else ""
        raise PrunekitError(f"{error}{removed}; earlier snapshots are untouched") from None


def restore_snapshot(solver, path: str, rollback: bool = False) -> None:
    """Load a solverstate (ours or Caffe's) into ``solver``; its learned_net into the nets.

    ``rollback=True`` is the pruning fork's internal Restore: weights, history, iteration and the
    hooks' model state (masks, λ, ranks) come back, while the data position, the RNG and the
    hooks' schedule bookkeeping carry on.
    """
    state = caffe.read_solverstate(path)
    if state.iter < 0 or state.current_step < 0:
        raise PrunekitError(f"{path}: iter {state.iter} and current_step {state.current_step} "
                            "must be >= 0 (a damaged or hand-edited solverstate)")
    solver.log.info("Restoring previous solver status from %s", path)
    if state.learned_net:
        if not os.path.isfile(state.learned_net):
            raise PrunekitError(
                f"{path}: names the model file '{state.learned_net}', which does not exist "
                "(a solverstate must stay next to its caffemodel)"
            )
        load_caffemodel(solver.net, state.learned_net)
    _restore_history(solver, state, path)
    solver.iter = state.iter
    solver.current_step = state.current_step
    if rollback:
        payload = _read_extension(state.prunekit_state, path) if state.prunekit_state else {}
        for hook in solver.hooks:
            hook.load_rollback_state(payload.get("hooks", {}).get(hook.name, {}))
    elif state.prunekit_state:
        _load_extension(solver, state.prunekit_state, path)
    else:
        solver.log.warning(
            "%s has no prunekit state (written by Caffe?): RNG, data position and the loss "
            "window start afresh, so the run will not repeat the original batch for batch", path
        )


def _restore_history(solver, state, path: str) -> None:
    if len(state.history) != len(solver.history):
        raise PrunekitError(
            f"{path}: has {len(state.history)} history blobs but this net and solver type need "
            f"{len(solver.history)} (different net or solver type?)"
        )
    for index, (blob, hist) in enumerate(zip(state.history, solver.history)):
        array = caffe.blob_to_array(blob, f"{path}: history blob {index}")
        if array.size != hist.numel():
            raise PrunekitError(
                f"{path}: history blob {index} has {array.size} values, expected {hist.numel()}"
            )
        hist.copy_(torch.from_numpy(np.ascontiguousarray(array)).reshape(hist.shape))


def _extension_bytes(solver) -> bytes:
    payload = {
        "format": STATE_FORMAT,
        "seed": solver.seed,
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "smoothed_loss": solver.smoothed.state_dict(),
        "train_data": [layer.state_dict() for layer in solver.net.data_layers()],
        "test_data": [[layer.state_dict() for layer in net.data_layers()]
                      for net in solver.test_nets],
        "hooks": {hook.name: hook.state_dict() for hook in solver.hooks},
        "extra_iter_size": solver.extra_iter_size,
        "lr_override": solver.lr_override,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def _read_extension(data: bytes, path: str) -> dict:
    try:
        with warnings.catch_warnings():  # torch's notes on foreign pickles: the error says it
            warnings.simplefilter("ignore")
            payload = torch.load(io.BytesIO(data), weights_only=True)
    except Exception as exc:  # corrupt or foreign bytes, or a pickle weights_only refuses
        raise PrunekitError(f"{path}: prunekit_state is unreadable ({first_line(exc)})") from None
    check_state_payload(payload, path)
    if payload.get("format") != STATE_FORMAT:
        raise PrunekitError(f"{path}: prunekit_state format {payload.get('format')} is unknown")
    return payload


def _load_extension(solver, data: bytes, path: str) -> None:
    payload = _read_extension(data, path)
    try:
        _apply_extension(solver, payload, path)
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as err:
        raise wrong_structure(path, err) from None


def _apply_extension(solver, payload: dict, path: str) -> None:
    solver.seed = payload["seed"]
    for net in [solver.net, *solver.test_nets]:
        net.set_seed(solver.seed)
    torch.set_rng_state(payload["torch_rng"])
    if payload["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(payload["cuda_rng"])
    solver.smoothed.load_state_dict(payload["smoothed_loss"])
    _load_data_states(solver.net, payload["train_data"], path)
    for net, states in zip(solver.test_nets, payload["test_data"]):
        _load_data_states(net, states, path)
    for hook in solver.hooks:
        if hook.name in payload["hooks"]:
            hook.load_state_dict(payload["hooks"][hook.name])
    solver.extra_iter_size = payload["extra_iter_size"]
    solver.lr_override = payload["lr_override"]


def _load_data_states(net, states: list, path: str) -> None:
    layers = net.data_layers()
    if len(layers) != len(states):
        raise PrunekitError(f"{path}: saved {len(states)} data layer positions, net has {len(layers)}")
    for layer, state in zip(layers, states):
        layer.load_state_dict(state)
