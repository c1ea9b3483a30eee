"""The one registry of Caffe layer types.

Each entry maps a Caffe ``type`` string to ``"module:Class"``; modules are imported lazily so a
net only pays for the layer types it uses. Adding a layer type = one new file + one line here.
"""

from __future__ import annotations

import importlib

from prunekit.errors import PrunekitError

LAYER_TYPES: dict[str, str] = {
    # data sources (prunekit.data): produce tops from a dataset or from the caller
    "Input": "prunekit.data.input_layer:InputLayer",
    "Data": "prunekit.data.data_layer:DataLayer",
    "ImageData": "prunekit.data.image_data_layer:ImageDataLayer",
    "DummyData": "prunekit.data.dummy_data_layer:DummyDataLayer",
    # vision
    "Convolution": "prunekit.net.layers.convolution:Convolution",
    "Deconvolution": "prunekit.net.layers.deconvolution:Deconvolution",
    "ColumnConvolution": "prunekit.net.layers.column_convolution:ColumnConvolution",
    "InnerProduct": "prunekit.net.layers.inner_product:InnerProduct",
    "Pooling": "prunekit.net.layers.pooling:Pooling",
    "LRN": "prunekit.net.layers.lrn:LRN",
    # activations
    "ReLU": "prunekit.net.layers.activations:ReLU",
    "PReLU": "prunekit.net.layers.prelu:PReLU",
    "Sigmoid": "prunekit.net.layers.activations:Sigmoid",
    "TanH": "prunekit.net.layers.activations:TanH",
    "ELU": "prunekit.net.layers.activations:ELU",
    "Clip": "prunekit.net.layers.clip:Clip",
    "Swish": "prunekit.net.layers.swish:Swish",
    "HardSwish": "prunekit.net.layers.hard_swish:HardSwish",
    "Power": "prunekit.net.layers.power:Power",
    "Dropout": "prunekit.net.layers.dropout:Dropout",
    # normalisation and affine
    "BatchNorm": "prunekit.net.layers.batch_norm:BatchNorm",
    "Scale": "prunekit.net.layers.scale:Scale",
    "Bias": "prunekit.net.layers.bias:Bias",
    # blob plumbing
    "Eltwise": "prunekit.net.layers.eltwise:Eltwise",
    "Concat": "prunekit.net.layers.concat:Concat",
    "Slice": "prunekit.net.layers.slice:Slice",
    "Split": "prunekit.net.layers.split:Split",
    "Flatten": "prunekit.net.layers.flatten:Flatten",
    "Reshape": "prunekit.net.layers.reshape:Reshape",
    "Silence": "prunekit.net.layers.silence:Silence",
    "ShuffleChannel": "prunekit.net.layers.shuffle_channel:ShuffleChannel",
    # outputs and losses
    "Softmax": "prunekit.net.layers.softmax:Softmax",
    "SoftmaxWithLoss": "prunekit.net.layers.softmax_loss:SoftmaxWithLoss",
    "EuclideanLoss": "prunekit.net.layers.euclidean_loss:EuclideanLoss",
    "Accuracy": "prunekit.net.layers.accuracy:Accuracy",
}


def layer_class(type_name: str, layer_name: str) -> type:
    """Return the module class for Caffe layer type ``type_name``.

    Raises PrunekitError naming the layer when the type is unknown, so a typo in a prototxt is
    reported as "layer 'conv1': unknown type 'Convolutoin'" rather than a KeyError.
    """
    target = LAYER_TYPES.get(type_name)
    if target is None:
        known = ", ".join(sorted(LAYER_TYPES))
        raise PrunekitError(
            f"layer '{layer_name}': unknown layer type '{type_name}' (known types: {known})"
        )
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)
