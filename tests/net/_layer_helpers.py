"""Shared helpers for the layer tests: build a layer from prototxt text, compare with numpy."""

from __future__ import annotations

import numpy as np
import torch
from google.protobuf import text_format

from prunekit.caffe import caffe_pb2
from prunekit.net.layers.base import TRAIN
from prunekit.net.registry import layer_class


def make_layer(text: str, *bottom_shapes: tuple[int, ...], phase: int = TRAIN):
    """Parse a LayerParameter from prototxt text and build it through the registry."""
    param = text_format.Parse(text, caffe_pb2.LayerParameter())
    return layer_class(param.type, param.name)(param, [tuple(s) for s in bottom_shapes], phase)


def randn(*shape: int, seed: int = 0) -> np.ndarray:
    """Reproducible float32 test data (as numpy, so references stay independent of torch)."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def run(layer, *bottoms: np.ndarray):
    """Forward numpy bottoms through ``layer``; numpy result(s) back."""
    out = layer(*(torch.from_numpy(b) for b in bottoms))
    if isinstance(out, tuple):
        return tuple(o.detach().numpy() for o in out)
    return out.detach().numpy()


def set_blob(layer, name: str, value: np.ndarray) -> None:
    """Overwrite a layer blob (parameter or buffer) with ``value``."""
    with torch.no_grad():
        getattr(layer, name).copy_(torch.from_numpy(np.asarray(value, dtype=np.float32)))
