"""Caffe file formats: the only package in prunekit that knows protobuf.

``caffe_pb2`` is generated from our own ``caffe.proto`` (BVLC field numbers plus the
Caffe_IncReg extensions), so real Caffe prototxts, caffemodels and solverstates parse. The
functions here read and write those files and convert blobs and Datums to numpy; every user
mistake raises :class:`prunekit.errors.PrunekitError` naming the file (and line, for text).
"""

from prunekit.caffe import caffe_pb2
from prunekit.caffe.binaryproto import (
    read_binaryproto,
    read_caffemodel,
    read_solverstate,
    write_binaryproto,
    write_caffemodel,
    write_solverstate,
)
from prunekit.caffe.blobs import (array_to_blob, blob_shape, blob_to_array, layer_blobs,
                                  net_with_blobs, set_layer_blobs)
from prunekit.caffe.datum import array_to_datum, datum_from_bytes, datum_to_array, image_datum_bytes
from prunekit.caffe.prototxt import (
    parse_net_text,
    parse_solver_text,
    parse_text,
    read_net_prototxt,
    read_solver_prototxt,
    to_text,
    write_prototxt,
)
from prunekit.caffe.upgrade import needs_upgrade, upgrade_net, upgrade_v1_layer

__all__ = [
    "caffe_pb2",
    "read_net_prototxt", "read_solver_prototxt", "parse_net_text", "parse_solver_text",
    "parse_text", "to_text", "write_prototxt",
    "read_caffemodel", "write_caffemodel", "read_solverstate", "write_solverstate",
    "read_binaryproto", "write_binaryproto",
    "blob_shape", "blob_to_array", "array_to_blob", "layer_blobs", "set_layer_blobs",
    "net_with_blobs",
    "datum_to_array", "array_to_datum", "datum_from_bytes", "image_datum_bytes",
    "needs_upgrade", "upgrade_net", "upgrade_v1_layer",
]
