"""A diverging run says so once, instead of printing nan losses silently."""

import logging

from prunekit.caffe import parse_net_text, parse_solver_text
from prunekit.net.graph import Net
from prunekit.solver.solver import Solver

NET = """
layer { name: "d" type: "DummyData" top: "x" top: "y"
  dummy_data_param { shape { dim: 4 dim: 3 } shape { dim: 4 dim: 1 }
    data_filler { type: "gaussian" std: 1 } data_filler { type: "gaussian" std: 1 } } }
layer { name: "ip" type: "InnerProduct" bottom: "x" top: "p"
  inner_product_param { num_output: 1 weight_filler { type: "gaussian" std: 1 } } }
layer { name: "loss" type: "EuclideanLoss" bottom: "p" bottom: "y" top: "loss" }
"""


def test_nan_loss_is_reported_once(tmp_path, caplog) -> None:
    logger = logging.getLogger("prunekit")
    logger.addHandler(caplog.handler)
    try:
        param = parse_solver_text("base_lr: 1e6 momentum: 0.9 max_iter: 30 lr_policy: 'fixed'")
        net = Net(parse_net_text(NET), 0)
        Solver(param, net, [], snapshot_prefix=str(tmp_path / "s"), seed=1).step(30)
    finally:
        logger.removeHandler(caplog.handler)
    warnings = [r for r in caplog.records if "diverged" in r.getMessage()]
    assert len(warnings) == 1
    assert "loss is nan" in warnings[0].getMessage() or "loss is inf" in warnings[0].getMessage()
