"""Upgrade V1 layers (``layers { type: CONVOLUTION ... }``) to the current ``layer { }`` form.

Old model-zoo prototxts and caffemodels still use the V1 format. Caffe upgrades them on load
(``UpgradeV1Net``); we do the same so that the rest of prunekit only ever sees ``layer``. Every
V1 ``*_param`` field has a V2 field of the same name and message type, so the layer-specific
settings copy over unchanged; what changes is the type (enum → string) and the per-blob
learning settings (``blobs_lr``/``weight_decay``/``param`` → ``ParamSpec``).
"""

from __future__ import annotations

from prunekit.caffe import caffe_pb2
from prunekit.errors import PrunekitError

V1 = caffe_pb2.V1LayerParameter

#: V1 enum value → V2 type string (as Caffe's ``UpgradeV1LayerType``).
V1_TYPE_NAMES: dict[int, str] = {
    V1.ABSVAL: "AbsVal", V1.ACCURACY: "Accuracy", V1.ARGMAX: "ArgMax", V1.BNLL: "BNLL",
    V1.CONCAT: "Concat", V1.CONTRASTIVE_LOSS: "ContrastiveLoss",
    V1.CONVOLUTION: "Convolution", V1.DECONVOLUTION: "Deconvolution", V1.DATA: "Data",
    V1.DROPOUT: "Dropout", V1.DUMMY_DATA: "DummyData", V1.EUCLIDEAN_LOSS: "EuclideanLoss",
    V1.ELTWISE: "Eltwise", V1.EXP: "Exp", V1.FLATTEN: "Flatten", V1.HDF5_DATA: "HDF5Data",
    V1.HDF5_OUTPUT: "HDF5Output", V1.HINGE_LOSS: "HingeLoss", V1.IM2COL: "Im2col",
    V1.IMAGE_DATA: "ImageData", V1.INFOGAIN_LOSS: "InfogainLoss",
    V1.INNER_PRODUCT: "InnerProduct", V1.LRN: "LRN", V1.MEMORY_DATA: "MemoryData",
    V1.MULTINOMIAL_LOGISTIC_LOSS: "MultinomialLogisticLoss", V1.MVN: "MVN",
    V1.POOLING: "Pooling", V1.POWER: "Power", V1.RELU: "ReLU", V1.SIGMOID: "Sigmoid",
    V1.SIGMOID_CROSS_ENTROPY_LOSS: "SigmoidCrossEntropyLoss", V1.SILENCE: "Silence",
    V1.SOFTMAX: "Softmax", V1.SOFTMAX_LOSS: "SoftmaxWithLoss", V1.SPLIT: "Split",
    V1.SLICE: "Slice", V1.TANH: "TanH", V1.WINDOW_DATA: "WindowData",
    V1.THRESHOLD: "Threshold",
}

# V1 fields that copy one-to-one onto the same-named LayerParameter field.
_SAME_NAME_FIELDS = tuple(
    f.name for f in V1.DESCRIPTOR.fields
    if f.name.endswith("_param") and f.name in caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name
)

# Data layers whose V1 param carried the preprocessing now in transform_param.
_LEGACY_TRANSFORM_PARAMS = ("data_param", "image_data_param", "window_data_param")
_LEGACY_TRANSFORM_FIELDS = ("scale", "mean_file", "crop_size", "mirror")

_HOW_TO_UPGRADE = "upgrade the file with Caffe's upgrade_net_proto_text (or _binary) first"


def needs_upgrade(net: caffe_pb2.NetParameter) -> bool:
    """True when the net still uses the V1 ``layers`` field."""
    return len(net.layers) > 0


def upgrade_net(net: caffe_pb2.NetParameter, source: str = "<net>") -> caffe_pb2.NetParameter:
    """Return a copy of ``net`` with every V1 ``layers`` entry turned into a ``layer``.

    ``source`` (usually the file name) prefixes error messages. Nets without V1 layers are
    returned as a plain copy.
    """
    if net.layers and net.layer:
        raise PrunekitError(
            f"{source}: the net has both 'layer' and legacy 'layers' entries; use one format"
        )
    upgraded = caffe_pb2.NetParameter()
    upgraded.CopyFrom(net)
    if not net.layers:
        return upgraded
    del upgraded.layers[:]
    for v1_layer in net.layers:
        upgraded.layer.append(upgrade_v1_layer(v1_layer, source))
    return upgraded


def upgrade_v1_layer(
    v1_layer: caffe_pb2.V1LayerParameter, source: str = "<net>"
) -> caffe_pb2.LayerParameter:
    """Convert one V1 layer; unknown or pre-V1 layers raise PrunekitError."""
    layer = caffe_pb2.LayerParameter()
    layer.type = _v2_type(v1_layer, source)
    layer.name = v1_layer.name
    layer.bottom.extend(v1_layer.bottom)
    layer.top.extend(v1_layer.top)
    layer.include.extend(v1_layer.include)
    layer.exclude.extend(v1_layer.exclude)
    layer.blobs.extend(v1_layer.blobs)
    layer.loss_weight.extend(v1_layer.loss_weight)
    _copy_param_specs(v1_layer, layer)
    for field in _SAME_NAME_FIELDS:
        if v1_layer.HasField(field):
            getattr(layer, field).CopyFrom(getattr(v1_layer, field))
    _move_legacy_transform(layer)
    return layer


def _v2_type(v1_layer: caffe_pb2.V1LayerParameter, source: str) -> str:
    """The V2 type string, or an error that names the layer and its V1 type."""
    label = f"{source}: layer '{v1_layer.name}'"
    if v1_layer.HasField("layer"):
        raise PrunekitError(f"{label} is in the pre-V1 (V0) format; {_HOW_TO_UPGRADE}")
    type_name = V1_TYPE_NAMES.get(v1_layer.type)
    if type_name is None:
        v1_name = V1.LayerType.Name(v1_layer.type) if v1_layer.HasField("type") else "unset"
        raise PrunekitError(f"{label} has V1 type {v1_name}, which prunekit cannot upgrade; "
                            f"{_HOW_TO_UPGRADE}")
    return type_name


def _copy_param_specs(v1_layer: caffe_pb2.V1LayerParameter, layer: caffe_pb2.LayerParameter) -> None:
    """V1 kept per-blob settings in parallel lists; V2 keeps one ParamSpec per blob."""
    count = max(len(v1_layer.param), len(v1_layer.blob_share_mode),
                len(v1_layer.blobs_lr), len(v1_layer.weight_decay))
    for i in range(count):
        spec = layer.param.add()
        if i < len(v1_layer.param):
            spec.name = v1_layer.param[i]
        if i < len(v1_layer.blob_share_mode):
            spec.share_mode = v1_layer.blob_share_mode[i]
        if i < len(v1_layer.blobs_lr):
            spec.lr_mult = v1_layer.blobs_lr[i]
        if i < len(v1_layer.weight_decay):
            spec.decay_mult = v1_layer.weight_decay[i]


def _move_legacy_transform(layer: caffe_pb2.LayerParameter) -> None:
    """Move scale/mean_file/crop_size/mirror from a V1 data param into transform_param."""
    for param_name in _LEGACY_TRANSFORM_PARAMS:
        if not layer.HasField(param_name):
            continue
        param = getattr(layer, param_name)
        for field in _LEGACY_TRANSFORM_FIELDS:
            if param.HasField(field):
                setattr(layer.transform_param, field, getattr(param, field))
                param.ClearField(field)
