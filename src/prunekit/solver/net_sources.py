"""Which nets a solver trains and tests, from files or written inline, as Caffe's Solver decides.

Caffe's ``Solver::InitTrainNet``: exactly one of ``train_net_param``, ``train_net``,
``net_param``, ``net`` gives the TRAIN net (inline messages count like files). ``InitTestNets``:
the ``test_net_param`` nets first, then the ``test_net`` files, then the generic net
(``net_param`` or ``net``) once for every remaining ``test_iter`` value; with no generic net
there must be exactly one ``test_iter`` per test net. ``test_state``, if given, is one per test
net. The state of each net is its NetParameter's ``state`` merged with the solver's
``train_state`` / ``test_state`` (the phase is always TRAIN / TEST).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from prunekit import caffe
from prunekit.errors import PrunekitError

_TRAIN_FIELDS = ("train_net_param", "train_net", "net_param", "net")


@dataclass
class NetSource:
    """One net of the solver: its NetParameter, where it came from (for messages) and state."""

    param: object
    label: str
    level: int
    stages: tuple[str, ...]


def _read(path: str, solver_path: str):
    if not os.path.isfile(path):
        raise PrunekitError(
            f"{solver_path}: net file '{path}' not found (paths are relative to the folder "
            f"you run from: {os.getcwd()})"
        )
    return caffe.read_net_prototxt(path)


def _state(net_param, solver_state) -> tuple[int, tuple[str, ...]]:
    """Caffe: net_state.MergeFrom(net_param.state()); net_state.MergeFrom(solver's state)."""
    merged = caffe.caffe_pb2.NetState()
    merged.MergeFrom(net_param.state)
    if solver_state is not None:
        merged.MergeFrom(solver_state)
    return merged.level, tuple(merged.stage)


def train_source(param, solver_path: str) -> NetSource:
    """The TRAIN net of the solver at ``solver_path``."""
    given = [f for f in _TRAIN_FIELDS if param.HasField(f)]
    if not given:
        raise PrunekitError(f"{solver_path}: no net given (set one of net, net_param, "
                            "train_net, train_net_param)")
    if len(given) > 1:
        raise PrunekitError(f"{solver_path}: {' and '.join(given)} both give the training net; "
                            "keep one")
    field = given[0]
    if field.endswith("_param"):
        net_param, label = getattr(param, field), f"{solver_path} ({field})"
    else:
        label = getattr(param, field)
        net_param = _read(label, solver_path)
    level, stages = _state(net_param, param.train_state if param.HasField("train_state") else None)
    return NetSource(net_param, label, level, stages)


def test_sources(param, solver_path: str, train: NetSource) -> list[NetSource]:
    """The TEST nets, in Caffe's order, each with the test_state for its position."""
    if param.HasField("net") and param.HasField("net_param"):
        raise PrunekitError(f"{solver_path}: net and net_param both give the net; keep one")
    listed: list[tuple[object, str]] = [
        (p, f"{solver_path} (test_net_param #{i})") for i, p in enumerate(param.test_net_param)]
    listed += [(None, path) for path in param.test_net]
    generic = "net_param" if param.HasField("net_param") else "net" if param.HasField("net") else ""
    count = len(param.test_iter)
    if (count < len(listed)) if generic else (count != len(listed)):
        raise PrunekitError(
            f"{solver_path}: {len(listed)} test net(s) but {count} test_iter value(s); give one "
            "test_iter per test net")
    if generic:
        listed += [(None, "")] * (count - len(listed))
    if len(param.test_state) not in (0, len(listed)):
        raise PrunekitError(f"{solver_path}: {len(param.test_state)} test_state value(s) for "
                            f"{len(listed)} test net(s); give none or one per test net")
    sources = []
    for index, (net_param, label) in enumerate(listed):
        if net_param is None and not label:  # the generic net: the same one the TRAIN net reads
            net_param, label = _generic(param, generic, solver_path, train)
        elif net_param is None:
            net_param = train.param if label == train.label else _read(label, solver_path)
        state = param.test_state[index] if param.test_state else None
        level, stages = _state(net_param, state)
        sources.append(NetSource(net_param, label, level, stages))
    return sources


def _generic(param, field: str, solver_path: str, train: NetSource):
    if field == "net_param":
        return param.net_param, f"{solver_path} (net_param)"
    if param.net == train.label:
        return train.param, train.label
    return _read(param.net, solver_path), param.net
