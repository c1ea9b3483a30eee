"""The nets a solver trains and tests, built from its SolverParameter (Caffe's
``Solver::InitTrainNet`` / ``InitTestNets``): one TRAIN net and one TEST net per ``test_iter``
entry, the TEST nets sharing the TRAIN net's weights; from net files or inline ``net_param``
/ ``train_net_param`` / ``test_net_param`` (solver/net_sources.py).
"""

from __future__ import annotations

import torch

from prunekit.log import get_logger
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST, TRAIN
from prunekit.net.weights import share_weights
from prunekit.solver.net_sources import test_sources, train_source


def build_nets(param, solver_path: str, device: torch.device, seed: int):
    """The TRAIN net, its TEST nets (sharing its weights, on ``device``) and the TRAIN net's
    NetParameter; which nets, from files or inline, is solver/net_sources.py's decision."""
    log = get_logger()
    train = train_source(param, solver_path)
    log.info("Creating training net from %s", _described(train.label, solver_path))
    net = Net(train.param, TRAIN, level=train.level, stages=train.stages, source=train.label)
    test_nets = []
    for index, source in enumerate(test_sources(param, solver_path, train)):
        log.info("Creating test net (#%d) specified by %s", index,
                 _described(source.label, solver_path))
        test_nets.append(Net(source.param, TEST, level=source.level, stages=source.stages,
                             source=source.label))
    for n in [net, *test_nets]:
        n.set_seed(seed)
        n.place(device)
    for test_net in test_nets:
        share_weights(test_net, net)
    return net, test_nets, train.param


def _described(label: str, solver_path: str) -> str:
    """Caffe's wording: "net file: X" for a file, "train_net_param" etc. for an inline net."""
    if label.startswith(f"{solver_path} ("):
        return label[len(solver_path) + 2:-1]
    return f"net file: {label}"
