"""BlobProto ⇄ numpy, including legacy shapes and double storage."""

from __future__ import annotations

import numpy as np
import pytest

from prunekit.caffe import array_to_blob, blob_to_array, caffe_pb2, layer_blobs, set_layer_blobs
from prunekit.errors import PrunekitError


def test_shape_field_round_trip():
    arr = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7
    blob = array_to_blob(arr)
    assert list(blob.shape.dim) == [2, 3, 4] and not blob.HasField("num")
    out = blob_to_array(caffe_pb2.BlobProto.FromString(blob.SerializeToString()))
    np.testing.assert_array_equal(out, arr)
    assert out.dtype == np.float32


def test_legacy_dims_are_read_as_nchw():
    blob = caffe_pb2.BlobProto(num=2, channels=1, height=1, width=3)
    blob.data.extend([1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(blob_to_array(blob), [[[[1, 2, 3]]], [[[4, 5, 6]]]])


def test_legacy_write_pads_leading_ones():
    blob = array_to_blob(np.zeros((10, 5)), legacy=True)
    assert (blob.num, blob.channels, blob.height, blob.width) == (1, 1, 10, 5)
    assert not blob.HasField("shape")
    with pytest.raises(PrunekitError, match="5-d"):
        array_to_blob(np.zeros((1, 1, 1, 1, 2)), legacy=True)


def test_double_data_is_used_and_cast():
    blob = caffe_pb2.BlobProto()
    blob.shape.dim.extend([2])
    blob.double_data.extend([0.1, 2.5])
    out = blob_to_array(blob)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.array([0.1, 2.5], dtype=np.float32))


def test_scalar_shape_needs_one_value():
    blob = caffe_pb2.BlobProto()
    blob.shape.SetInParent()
    blob.data.append(3.0)
    assert blob_to_array(blob).shape == () and float(blob_to_array(blob)) == 3.0


def test_count_mismatch_names_blob():
    blob = caffe_pb2.BlobProto()
    blob.shape.dim.extend([2, 3])
    blob.data.extend([1.0] * 5)
    with pytest.raises(PrunekitError, match=r"conv1 blob 0: has 5 values but its shape \[2, 3\] "
                                            r"needs 6"):
        blob_to_array(blob, "conv1 blob 0")


def test_values_without_shape_are_rejected():
    blob = caffe_pb2.BlobProto()
    blob.data.extend([1.0, 2.0])
    with pytest.raises(PrunekitError, match="no shape"):
        blob_to_array(blob)


def test_layer_blobs_and_set_layer_blobs():
    net = caffe_pb2.NetParameter()
    net.layer.add(name="data", type="Input")
    conv = net.layer.add(name="conv", type="Convolution")
    weight, bias = np.ones((4, 3, 1, 1)), np.arange(4)
    set_layer_blobs(conv, [weight, bias])
    set_layer_blobs(conv, [weight, bias])  # replaces, does not append
    blobs = layer_blobs(net)
    assert list(blobs) == ["data", "conv"] and blobs["data"] == []
    assert [a.shape for a in blobs["conv"]] == [(4, 3, 1, 1), (4,)]
    np.testing.assert_array_equal(blobs["conv"][1], bias)


def test_layer_blobs_v1_and_duplicates():
    net = caffe_pb2.NetParameter()
    v1 = net.layers.add(name="ip", type=caffe_pb2.V1LayerParameter.INNER_PRODUCT)
    set_layer_blobs(v1, [np.zeros((2, 2))])
    assert layer_blobs(net)["ip"][0].shape == (2, 2)
    net2 = caffe_pb2.NetParameter()
    for _ in range(2):
        set_layer_blobs(net2.layer.add(name="dup"), [np.zeros(1)])
    with pytest.raises(PrunekitError, match="two layers named 'dup'"):
        layer_blobs(net2, "m.caffemodel")


@pytest.mark.parametrize("count", [0, 1, 31, 32, 4096, 70000])
def test_array_to_blob_bytes_equal_protobufs_own_encoding(count):
    """array_to_blob writes field 5 from the array's memory; protobuf's own packing of the same
    values (data.extend) must give the same bytes (lengths around the varint byte boundaries)."""
    values = np.random.default_rng(count).standard_normal(count).astype(np.float32)
    reference = caffe_pb2.BlobProto()
    reference.shape.dim.extend([count])
    reference.data.extend(values.tolist())
    blob = array_to_blob(values)
    assert blob.SerializeToString() == reference.SerializeToString()
    np.testing.assert_array_equal(blob_to_array(blob), values)
