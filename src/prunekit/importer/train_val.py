"""``--train-val``: a train_val.prototxt around an imported deploy net, and a solver skeleton
with Caffe_IncReg's fields, so ``prunekit train --solver S --weights W`` prunes it at once.

The train_val net is: a TRAIN and a TEST Data layer (LMDB sources, batch sizes and the
transform from the command line), the deploy net's layers without its Input layer (a final
Softmax is dropped: the loss takes logits), SoftmaxWithLoss, and top-1 / top-5 Accuracy in
TEST (top-5 with more than 5 classes). Every Convolution gets ``prune_param { prune_ratio }``
when a ratio is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prunekit import caffe
from prunekit.caffe import caffe_pb2
from prunekit.errors import PrunekitError


@dataclass
class DataSettings:
    """What the Data layers read and how they transform it (Caffe's TransformationParameter)."""

    train_source: str
    test_source: str
    train_batch: int = 32
    test_batch: int = 50
    crop_size: int = 0
    mean_file: str = ""
    mean_values: list[float] = field(default_factory=list)
    scale: float = 1.0


def train_val_net(deploy: caffe_pb2.NetParameter, data: DataSettings, num_classes: int,
                  prune_ratio: float = 0.0) -> caffe_pb2.NetParameter:
    """The train_val NetParameter for ``deploy`` (see the module docstring); top-5 accuracy
    only with more than 5 classes."""
    inputs = [lp for lp in deploy.layer if lp.type == "Input"]
    if len(inputs) != 1 or len(inputs[0].top) != 1:
        raise PrunekitError("--train-val needs a net with exactly one input (the image)")
    net = caffe_pb2.NetParameter(name=deploy.name)
    image = inputs[0].top[0]
    for phase, source, batch in ((caffe_pb2.TRAIN, data.train_source, data.train_batch),
                                 (caffe_pb2.TEST, data.test_source, data.test_batch)):
        _data_layer(net, image, phase, source, batch, data)
    body = [lp for lp in deploy.layer if lp.type != "Input"]
    consumed = {b for lp in body for b in lp.bottom}
    outputs = [t for lp in body for t in lp.top if t not in consumed]
    if len(outputs) != 1:
        raise PrunekitError(f"--train-val needs one net output (the class scores), the net "
                            f"has {len(outputs)}: {', '.join(outputs)}")
    logits = outputs[0]
    if body and body[-1].type == "Softmax" and list(body[-1].top) == [logits]:
        logits = body.pop().bottom[0]
    for lp in body:
        copy = net.layer.add()
        copy.CopyFrom(lp)
        if lp.type == "Convolution" and prune_ratio > 0:
            copy.prune_param.prune_ratio = prune_ratio
    net.layer.add(name="loss", type="SoftmaxWithLoss", bottom=[logits, "label"], top=["loss"])
    for name, top_k in (("accuracy", 1), ("accuracy_top5", 5))[:2 if num_classes > 5 else 1]:
        acc = net.layer.add(name=name, type="Accuracy", bottom=[logits, "label"], top=[name])
        acc.include.add(phase=caffe_pb2.TEST)
        if top_k != 1:
            acc.accuracy_param.top_k = top_k
    return net


def _data_layer(net, image: str, phase: int, source: str, batch: int,
                data: DataSettings) -> None:
    lp = net.layer.add(name="data", type="Data", top=[image, "label"])
    lp.include.add(phase=phase)
    tp = lp.transform_param
    if data.crop_size:
        tp.crop_size = data.crop_size
    tp.mirror = phase == caffe_pb2.TRAIN
    if data.mean_file:
        tp.mean_file = data.mean_file
    tp.mean_value.extend(data.mean_values)
    if data.scale != 1.0:
        tp.scale = data.scale
    lp.data_param.source = source
    lp.data_param.batch_size = batch
    lp.data_param.backend = caffe_pb2.DataParameter.LMDB


SOLVER_TEMPLATE = """\
# Solver skeleton written by `prunekit import --train-val` (docs/import.md): fine-tune and
# prune {net} with {kind}. Fields: docs/pruning-fields.md.
net: "{train_val}"
snapshot_prefix: "{snapshot_prefix}"
snapshot: 1000
display: 20
test_iter: {test_iter}
{test_interval}
test_initialization: false
solver_mode: CPU

momentum: 0.9
base_lr: 0.0005             # ~1/20 of a from-scratch rate: we fine-tune while pruning
lr_policy: "fixed"
{max_iter}
# --------------------------- pruning
prune_method: "{method}"
{method_fields}"""

#: Caffe_IncReg's in-solver regularisation methods (Reg_*, SPP_*): the run ends by itself.
REG_FIELDS = """\
{regularization_type}weight_decay: 0.00025
AA: 0.00025                 # largest per-iteration increase of a group's reg factor
target_reg: 2.5             # ~1e4 x AA
iter_size_prune: 1
iter_size_losseval: 1
iter_size_retrain: 1
iter_size_final_retrain: 1
acc_borderline: -1          # <= 0: prune each layer to its prune_ratio, then retrain
losseval_interval: 1000
retrain_test_interval: 500
"""

#: The method zoo (L1_Row, FPGM_Row, Mag_Weight, ...): masks in rounds, then retraining until
#: max_iter (the lenet5 solver_l1_row.prototxt layout).
ROUND_FIELDS = """\
weight_decay: 0.00025
prune_rounds: 1             # round r at iteration (r-1) x prune_interval
prune_interval: 1000
"""

#: The regularization_type values the solver knows besides L1/L2 (solver validation).
REGULARIZATION_TYPES = ("Reg_Col", "Reg_Row", "Reg-rank_Col", "Reg-rank_Row")


def solver_text(train_val: str, snapshot_prefix: str, method: str, test_iter: int,
                net: str) -> str:
    """The solver skeleton (checked to parse as a SolverParameter): Caffe_IncReg's fields for
    the regularisation methods (Reg_*, SPP_*), prune rounds for the mask methods (whose
    ``regularization_type`` stays the default L2: "L1_Row" is no regularisation)."""
    if method.startswith(("Reg", "SPP")):
        reg = f'regularization_type: "{method}"\n' if method in REGULARIZATION_TYPES else ""
        fields, kind = REG_FIELDS.format(regularization_type=reg), \
            "Caffe_IncReg's in-solver pruning"
        max_iter = "max_iter: 10000000          # the run ends by itself when pruning and " \
                   "retraining are done\n"
        test_interval = "test_interval: 1000000      # pruning tests on retrain_test_interval " \
                        "instead"
    else:
        fields, kind = ROUND_FIELDS, "a mask method's prune rounds"
        max_iter = "max_iter: 10000               # retraining after the last round: your budget\n"
        test_interval = "test_interval: 1000"
    text = SOLVER_TEMPLATE.format(train_val=train_val, snapshot_prefix=snapshot_prefix,
                                  method=method, test_iter=test_iter, net=net, kind=kind,
                                  max_iter=max_iter, test_interval=test_interval,
                                  method_fields=fields)
    caffe.parse_solver_text(text, "<solver skeleton>")
    return text
