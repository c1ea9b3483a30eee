"""Which nets a solver names, in Caffe's order (Solver::InitTrainNet / InitTestNets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from prunekit import caffe
from prunekit.errors import PrunekitError
from prunekit.solver.net_sources import test_sources as _test_sources
from prunekit.solver.net_sources import train_source

NET = 'name: "{name}" layer {{ name: "in" type: "Input" top: "x" input_param {{ shape {{ dim: 1 }} }} }}'


def _solver(tmp_path: Path, text: str):
    (tmp_path / "a.prototxt").write_text(NET.format(name="file_a"))
    (tmp_path / "b.prototxt").write_text(NET.format(name="file_b"))
    return caffe.parse_solver_text(text.replace("DIR", str(tmp_path)))


def test_test_nets_come_inline_first_then_files_then_the_generic_net(tmp_path: Path) -> None:
    param = _solver(tmp_path, f'net: "DIR/a.prototxt" test_net: "DIR/b.prototxt" '
                              f'test_net_param {{ {NET.format(name="inline")} }} test_iter: 1 '
                              'test_iter: 1 test_iter: 1 test_iter: 1')
    train = train_source(param, "s.prototxt")
    names = [s.param.name for s in _test_sources(param, "s.prototxt", train)]
    assert train.param.name == "file_a"
    assert names == ["inline", "file_b", "file_a", "file_a"]


def test_without_a_generic_net_each_test_net_needs_its_test_iter(tmp_path: Path) -> None:
    param = _solver(tmp_path, 'train_net: "DIR/a.prototxt" test_net: "DIR/b.prototxt" '
                              'test_iter: 1 test_iter: 2')
    with pytest.raises(PrunekitError, match=r"s\.prototxt: 1 test net\(s\) but 2 test_iter"):
        _test_sources(param, "s.prototxt", train_source(param, "s.prototxt"))


def test_states_merge_the_net_state_and_the_solver_state(tmp_path: Path) -> None:
    inline = NET.format(name="n") + ' state { level: 2 stage: "from_net" }'
    param = _solver(tmp_path, f'net_param {{ {inline} }} train_state {{ stage: "from_solver" }} '
                              'test_iter: 1 test_state { level: 5 }')
    train = train_source(param, "s.prototxt")
    (test,) = _test_sources(param, "s.prototxt", train)
    assert (train.level, train.stages) == (2, ("from_net", "from_solver"))
    assert (test.level, test.stages) == (5, ("from_net",))
    assert train.label == "s.prototxt (net_param)"


def test_test_state_count_must_match(tmp_path: Path) -> None:
    param = _solver(tmp_path, 'net: "DIR/a.prototxt" test_iter: 1 test_iter: 1 test_state {} ')
    with pytest.raises(PrunekitError, match="1 test_state value"):
        _test_sources(param, "s.prototxt", train_source(param, "s.prototxt"))
