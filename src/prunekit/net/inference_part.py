"""The inference part of a train_val-style net, as a Caffe user's deploy.prototxt would be.

A train_val net feeds ``data`` and ``label`` from its Input layer and ends in loss layers and
``Accuracy``. Deploying it (``prunekit export``) needs only the path from the data to the scores:

* ``Accuracy`` layers and every loss layer (Caffe's types ending in ``Loss``) are dropped;
* a ``SoftmaxWithLoss`` becomes the ``Softmax`` a deploy file ends with (same ``softmax_param``,
  top ``prob`` unless that name is taken), as ``compression_experiments/*/deploy.prototxt`` do;
* Input tops nobody reads any more (the labels) are dropped with their ``input_param`` shape,
  and an Input layer left with no top goes.

Nothing else changes, so a deploy prototxt passes through untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prunekit.caffe import caffe_pb2


@dataclass
class InferencePart:
    """The rewritten net and one phrase per change (empty when the net was already a deploy)."""

    net_param: caffe_pb2.NetParameter
    changes: list[str] = field(default_factory=list)


def _is_training_only(layer: caffe_pb2.LayerParameter) -> bool:
    return layer.type == "Accuracy" or layer.type.endswith("Loss")


def inference_part(param: caffe_pb2.NetParameter) -> InferencePart:
    """``param`` without its losses, Accuracy and label inputs (see the module docstring)."""
    out = caffe_pb2.NetParameter()
    out.CopyFrom(param)
    del out.layer[:]
    changes: list[str] = []
    taken = {name for layer in param.layer for name in (layer.name, *layer.top)}
    for layer in param.layer:
        if not _is_training_only(layer):
            out.layer.add().CopyFrom(layer)
            continue
        if layer.type == "SoftmaxWithLoss":
            name = "prob" if "prob" not in taken else f"{layer.name}_prob"
            taken.add(name)
            softmax = out.layer.add(name=name, type="Softmax", bottom=[layer.bottom[0]], top=[name])
            softmax.include.extend(layer.include)
            softmax.exclude.extend(layer.exclude)
            if layer.HasField("softmax_param"):
                softmax.softmax_param.CopyFrom(layer.softmax_param)
            changes.append(f"{layer.type} '{layer.name}' -> Softmax '{name}'")
        else:
            changes.append(f"dropped {layer.type} '{layer.name}'")
    changes += _drop_unread_inputs(out)
    return InferencePart(out, changes)


def _drop_unread_inputs(param: caffe_pb2.NetParameter) -> list[str]:
    """Remove Input tops (and their shapes) that no layer reads; Input layers left empty go."""
    read = {bottom for layer in param.layer for bottom in layer.bottom}
    changes: list[str] = []
    for layer in list(param.layer):
        if layer.type != "Input" or all(top in read for top in layer.top):
            continue
        shapes = list(layer.input_param.shape)
        per_top = len(shapes) == len(layer.top)
        keep = [i for i, top in enumerate(layer.top) if top in read]
        changes += [f"dropped input '{top}'" for top in layer.top if top not in read]
        if not keep:
            param.layer.remove(layer)
            continue
        tops = [layer.top[i] for i in keep]
        del layer.top[:]
        layer.top.extend(tops)
        if per_top:
            del layer.input_param.shape[:]
            layer.input_param.shape.extend(shapes[i] for i in keep)
    return changes
