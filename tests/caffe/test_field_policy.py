"""Every field of SolverParameter and LayerParameter is honoured, refused or warned about.

The walk goes over the protobuf descriptors of the messages prunekit parses, so a field added
to caffe.proto (BVLC's or the fork's) fails here until someone decides what it does.
"""

from __future__ import annotations

import logging

import pytest

from prunekit.caffe import caffe_pb2
from prunekit.caffe import field_policy as fp
from prunekit.log import get_logger
from prunekit.net.registry import LAYER_TYPES


class _Messages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def log_lines():
    """Every message of the 'prunekit' logger during the test (it does not propagate)."""
    handler = _Messages()
    get_logger().addHandler(handler)
    try:
        yield handler
    finally:
        get_logger().removeHandler(handler)


def _exactly_once(name: str, tables: list[dict | tuple]) -> int:
    return sum(name in table for table in tables)


def test_every_solver_field_is_in_exactly_one_table() -> None:
    tables = [fp.SOLVER_HONOURED, fp.SOLVER_REFUSED, fp.SOLVER_WARNED]
    fields = [f.name for f in caffe_pb2.SolverParameter.DESCRIPTOR.fields]
    assert len(fields) > 80  # the fork's fields are in the walk too
    unlisted = [name for name in fields if _exactly_once(name, tables) == 0]
    twice = [name for name in fields if _exactly_once(name, tables) > 1]
    assert not unlisted, f"SolverParameter fields neither honoured nor refused/warned: {unlisted}"
    assert not twice, twice
    stale = [name for table in tables for name in table if name not in fields]
    assert not stale, f"tables name fields caffe.proto does not have: {stale}"


def test_every_layer_field_is_in_exactly_one_table() -> None:
    tables = [fp.LAYER_HONOURED, fp.LAYER_PARAM_READERS, fp.LAYER_PARAM_OF_UNKNOWN_TYPES,
              fp.LAYER_REFUSED, fp.LAYER_WARNED]
    fields = [f.name for f in caffe_pb2.LayerParameter.DESCRIPTOR.fields]
    unlisted = [name for name in fields if _exactly_once(name, tables) == 0]
    twice = [name for name in fields if _exactly_once(name, tables) > 1]
    assert not unlisted, f"LayerParameter fields neither honoured nor refused/warned: {unlisted}"
    assert not twice, twice
    stale = [name for table in tables for name in table if name not in fields]
    assert not stale, stale


def test_param_message_readers_are_registered_layer_types() -> None:
    """A ``*_param`` said to be read must be read by a layer type prunekit really has."""
    for field, readers in fp.LAYER_PARAM_READERS.items():
        missing = [t for t in readers if t not in LAYER_TYPES]
        assert not missing, (field, missing)


def test_unknown_type_messages_belong_to_unregistered_types() -> None:
    """The messages filed as "type not registered" really have no registered reader: if a
    layer type reading one is added, the message must move to LAYER_PARAM_READERS."""
    registered = {name.lower() for name in LAYER_TYPES}
    for field in fp.LAYER_PARAM_OF_UNKNOWN_TYPES:
        stem = field.removesuffix("_param").replace("_", "")
        assert stem not in registered, field


def test_warned_layer_field_is_reported_once_by_name(log_lines) -> None:
    from prunekit.net.graph import Net
    from prunekit.net.layers.base import TRAIN

    net = caffe_pb2.NetParameter()
    layer = net.layer.add(name="in", type="Input", top=["x"])
    layer.input_param.shape.add().dim.extend([1, 2])
    relu = net.layer.add(name="r", type="ReLU", bottom=["x"], top=["y"], phase=caffe_pb2.TEST)
    relu.pooling_param.pool = caffe_pb2.PoolingParameter.MAX
    Net(net, TRAIN, source="a.prototxt")
    Net(net, TRAIN, source="a.prototxt")
    phase = [m for m in log_lines.messages if "'r'" in m and "phase is ignored" in m]
    pooling = [m for m in log_lines.messages if "pooling_param is ignored" in m]
    assert len(phase) == 1 and "a.prototxt" in phase[0]
    assert len(pooling) == 1 and "ReLU" in pooling[0]
