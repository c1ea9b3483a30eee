"""The nets a solver trains and tests, built from its SolverParameter (Caffe's
``Solver::InitTrainNet`` / ``InitTestNets``): one TRAIN net and one TEST net per ``test_iter``
entry, the TEST nets sharing the TRAIN net's weights.
"""

from __future__ import annotations

import os

import torch

from prunekit import caffe
from prunekit.errors import PrunekitError
from prunekit.log import get_logger
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST, TRAIN
from prunekit.net.weights import share_weights


def build_nets(param, solver_path: str, device: torch.device, seed: int):
    """The TRAIN net, one TEST net per ``test_iter`` entry (sharing its weights, on ``device``)
    and the TRAIN net's NetParameter."""
    log = get_logger()
    train_file, test_files = _net_files(param, solver_path)
    log.info("Creating training net from net file: %s", train_file)
    train_param = caffe.read_net_prototxt(train_file)
    state = param.train_state
    net = Net(train_param, TRAIN, level=state.level, stages=state.stage, source=train_file)
    test_nets = []
    for index, test_file in enumerate(test_files):
        log.info("Creating test net (#%d) specified by net file: %s", index, test_file)
        test_param = train_param if test_file == train_file else caffe.read_net_prototxt(test_file)
        tstate = param.test_state[index] if index < len(param.test_state) else None
        test_nets.append(Net(test_param, TEST, level=tstate.level if tstate else 0,
                             stages=tstate.stage if tstate else (), source=test_file))
    for n in [net, *test_nets]:
        n.set_seed(seed)
        n.place(device)
    for test_net in test_nets:
        share_weights(test_net, net)
    return net, test_nets, train_param


def _net_files(param, solver_path: str) -> tuple[str, list[str]]:
    train_file = param.train_net or param.net
    if not train_file:
        raise PrunekitError(f"{solver_path}: no net given (set `net:` or `train_net:`)")
    test_files = list(param.test_net) or ([param.net] * len(param.test_iter) if param.net else [])
    if len(param.test_iter) != len(test_files):
        raise PrunekitError(
            f"{solver_path}: {len(test_files)} test net(s) but {len(param.test_iter)} test_iter "
            "value(s); give one test_iter per test net"
        )
    for path in [train_file, *test_files]:
        if not os.path.isfile(path):
            raise PrunekitError(
                f"{solver_path}: net file '{path}' not found (paths are relative to the folder "
                f"you run from: {os.getcwd()})"
            )
    return train_file, test_files
