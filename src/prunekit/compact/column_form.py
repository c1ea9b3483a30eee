"""A 2-D Convolution with whole zero weight columns rewritten as a ColumnConvolution.

A column of Caffe's per-group weight matrix (local input channel c at kernel tap (i, j), index
``c·kh·kw + i·kw + j``) is *zero* when it is zero in every filter of every group (the layer
keeps one column set for all groups; see src/prunekit/net/layers/column_convolution.py). The
column form keeps the other columns: weight blob (num_output, n_kept), the same bias, the same
convolution_param, plus ``column_param.kept_column``.
"""

from __future__ import annotations

import numpy as np

from prunekit.caffe import caffe_pb2


def kept_columns(weight: np.ndarray, group: int) -> np.ndarray:
    """Sorted int64 indices of the columns that are non-zero in some filter of some group.

    ``weight``: the Convolution blob (num_output, C/g, kh, kw).
    """
    del group  # rows of all groups share the column index space: any non-zero keeps it
    flat = np.asarray(weight).reshape(weight.shape[0], -1)
    return np.flatnonzero(np.abs(flat).sum(0) > 0).astype(np.int64)


def column_layer_param(conv: caffe_pb2.LayerParameter,
                       kept: np.ndarray) -> caffe_pb2.LayerParameter:
    """A copy of Convolution ``conv`` as type ColumnConvolution with ``kept`` columns (no blobs)."""
    out = caffe_pb2.LayerParameter()
    out.CopyFrom(conv)
    del out.blobs[:]
    out.type = "ColumnConvolution"
    out.column_param.kept_column[:] = [int(c) for c in kept]
    return out


def column_blobs(blobs: list[np.ndarray], kept: np.ndarray) -> list[np.ndarray]:
    """[weight (num_output, n_kept), bias...] from the Convolution blobs [weight, bias...]."""
    weight = np.asarray(blobs[0])
    flat = weight.reshape(weight.shape[0], -1)
    return [np.ascontiguousarray(flat[:, kept], dtype=np.float32)] + list(blobs[1:])
