"""caffemodel / solverstate / binaryproto I/O on real protobuf bytes."""

from __future__ import annotations

import numpy as np
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from prunekit.caffe import (
    array_to_blob,
    blob_to_array,
    caffe_pb2,
    layer_blobs,
    read_binaryproto,
    read_caffemodel,
    read_solverstate,
    write_binaryproto,
    write_caffemodel,
    write_solverstate,
)
from prunekit.errors import PrunekitError


def test_baseline_lenet_caffemodel(lenet_fixture):
    net = read_caffemodel(lenet_fixture / "baseline_lenet5.caffemodel")
    assert net.name == "LeNet"
    blobs = {name: arrays for name, arrays in layer_blobs(net).items() if arrays}
    shapes = {name: [a.shape for a in arrays] for name, arrays in blobs.items()}
    assert shapes == {
        "conv1": [(20, 1, 5, 5), (20,)],
        "conv2": [(50, 20, 5, 5), (50,)],
        "ip1": [(500, 800), (500,)],
        "ip2": [(10, 500), (10,)],
    }
    for arrays in blobs.values():
        assert arrays[0].dtype == np.float32
        assert np.count_nonzero(arrays[0] == 0) == 0  # the baseline is dense
        assert np.isfinite(arrays[0]).all()


def test_caffemodel_round_trip(tmp_path, lenet_fixture):
    net = read_caffemodel(lenet_fixture / "baseline_lenet5.caffemodel")
    conv1 = next(layer for layer in net.layer if layer.name == "conv1")
    conv1.blobs[0].data[0] = 0.0  # a pruned weight must survive as an exact zero
    path = tmp_path / "pruned.caffemodel"
    write_caffemodel(path, net)
    again = read_caffemodel(path)
    assert again == net
    assert layer_blobs(again)["conv1"][0][0, 0, 0, 0] == 0.0


def _increg_state() -> caffe_pb2.SolverState:
    state = caffe_pb2.SolverState(iter=1234, learned_net="w/_iter_1234.caffemodel", current_step=2)
    state.history.append(array_to_blob(np.full((2, 3), 0.5)))
    state.history_score.append(array_to_blob(np.arange(6).reshape(2, 3)))
    state.history_score.append(caffe_pb2.BlobProto())  # non-pruned parameter: empty blob
    state.history_punish.append(array_to_blob(np.full((2, 3), 1e-4)))
    state.prune_state = "retrain"
    state.prune_stage = 3
    state.stage_iter_prune_finished = 1000
    state.last_feasible_prune_iter = 900
    state.current_prune_ratio.append(array_to_blob(np.array([0.5, 0.25])))
    state.last_feasible_prune_ratio.append(array_to_blob(np.array([0.4, 0.2])))
    state.last_infeasible_prune_ratio.append(array_to_blob(np.array([0.6, 0.3])))
    state.prunekit_state = b"\x00\x01opaque\xff"
    return state


def test_solverstate_round_trip_with_increg_fields(tmp_path):
    state = _increg_state()
    path = tmp_path / "_iter_1234.solverstate"
    write_solverstate(path, state)
    again = read_solverstate(path)
    assert again == state
    assert again.prune_state == "retrain" and again.prune_stage == 3
    assert again.prunekit_state == b"\x00\x01opaque\xff"
    np.testing.assert_array_equal(blob_to_array(again.history_score[0]),
                                  np.arange(6, dtype=np.float32).reshape(2, 3))
    assert blob_to_array(again.history_score[1]).shape == (0,)


def _stock_caffe_solverstate_class():
    """BVLC Caffe's SolverState (fields 1-4 only), built at run time from a descriptor."""
    proto = descriptor_pb2.FileDescriptorProto(name="stock_caffe.proto", package="stock")
    message = proto.message_type.add(name="SolverState")
    optional = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
    for name, number, kind in [("iter", 1, "TYPE_INT32"), ("learned_net", 2, "TYPE_STRING"),
                               ("current_step", 4, "TYPE_INT32")]:
        message.field.add(name=name, number=number, label=optional,
                          type=descriptor_pb2.FieldDescriptorProto.Type.Value(kind))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("stock.SolverState"))


def test_stock_caffe_schema_reads_our_solverstate():
    stock = _stock_caffe_solverstate_class().FromString(_increg_state().SerializeToString())
    assert (stock.iter, stock.learned_net, stock.current_step) == (
        1234, "w/_iter_1234.caffemodel", 2)


def test_not_a_caffemodel(tmp_path):
    path = tmp_path / "bad.caffemodel"
    path.write_bytes(b"\x0a\xff\xff\xff\xff\x0f garbage")
    with pytest.raises(PrunekitError, match=r"bad\.caffemodel: not a valid Caffe \.caffemodel "
                                            r"\(binary caffe\.NetParameter\)"):
        read_caffemodel(path)


def test_prototxt_given_as_caffemodel(tmp_path, lenet_fixture):
    with pytest.raises(PrunekitError, match=r"train_val\.prototxt: .*caffe\.NetParameter"):
        read_caffemodel(lenet_fixture / "train_val.prototxt")


def test_empty_caffemodel_is_rejected(tmp_path):
    path = tmp_path / "empty.caffemodel"
    path.write_bytes(b"")
    with pytest.raises(PrunekitError, match="has no layers"):
        read_caffemodel(path)


def test_hdf5_snapshot_is_explained(tmp_path):
    path = tmp_path / "w.caffemodel.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 32)
    with pytest.raises(PrunekitError, match="HDF5"):
        read_caffemodel(path)


def test_missing_solverstate(tmp_path):
    with pytest.raises(PrunekitError, match=r"x\.solverstate: no such file \(expected a Caffe "
                                            r"\.solverstate"):
        read_solverstate(tmp_path / "x.solverstate")


def test_failed_write_keeps_previous_file(tmp_path):
    path = tmp_path / "w.caffemodel"
    good = caffe_pb2.NetParameter(name="good")
    good.layer.add(name="a", type="ReLU")
    write_caffemodel(path, good)
    bad = caffe_pb2.NetParameter(name="bad")
    bad.layer.add(name="clip", type="Clip").clip_param.SetInParent()  # required min/max unset
    with pytest.raises(PrunekitError, match="cannot write"):
        write_caffemodel(path, bad)
    assert read_caffemodel(path) == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.caffemodel"]


def test_mean_binaryproto_round_trip(tmp_path):
    mean = np.random.default_rng(0).uniform(0, 255, (1, 3, 4, 5)).astype(np.float32)
    path = tmp_path / "mean.binaryproto"
    write_binaryproto(path, array_to_blob(mean, legacy=True))
    blob = read_binaryproto(path)
    assert (blob.num, blob.channels, blob.height, blob.width) == (1, 3, 4, 5)
    np.testing.assert_array_equal(blob_to_array(blob), mean)


def test_empty_binaryproto_is_rejected(tmp_path):
    path = tmp_path / "mean.binaryproto"
    path.write_bytes(b"")
    with pytest.raises(PrunekitError, match=r"mean\.binaryproto: holds no values"):
        read_binaryproto(path)
