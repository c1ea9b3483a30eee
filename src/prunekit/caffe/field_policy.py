"""What prunekit does with every field of a SolverParameter and a LayerParameter.

A researcher moving a Caffe experiment here must be able to trust that a solver.prototxt means
what it meant in Caffe. So every field of those two messages is in exactly one of three tables:

* ``HONOURED``: prunekit does what Caffe (or the Caffe_IncReg fork) does with it; the value says
  where.
* ``REFUSED``: setting it is an error (the run would not mean what the file says).
* ``WARNED``: setting it has no effect here; a warning names the field and why, once per process.

:func:`check_solver_fields` and :func:`check_layer_fields` are the one place that reads the last
two tables; training calls the first, every net build the second. ``tests/caffe/
test_field_policy.py`` walks the protobuf descriptors and fails on a field that is in none of the
tables, so a field added to ``caffe.proto`` cannot be dropped silently.
"""

from __future__ import annotations

from prunekit.errors import PrunekitError
from prunekit.log import get_logger

_PRUNE = "prune/config.py (PruneConfig) and the method it selects"

#: SolverParameter fields prunekit acts on, and where.
SOLVER_HONOURED: dict[str, str] = {
    "net": "solver/net_sources.py", "net_param": "solver/net_sources.py (inline net)",
    "train_net": "solver/net_sources.py", "test_net": "solver/net_sources.py",
    "train_net_param": "solver/net_sources.py (inline net)",
    "test_net_param": "solver/net_sources.py (inline net)",
    "train_state": "solver/net_sources.py", "test_state": "solver/net_sources.py",
    "test_iter": "solver/solver.py test_all", "test_interval": "solver/solver.py",
    "test_compute_loss": "solver/solver.py test_all",
    "test_initialization": "solver/solver.py", "base_lr": "solver/lr_policy.py",
    "display": "solver/solver.py", "average_loss": "solver/smoothed_loss.py",
    "max_iter": "solver/solver.py", "iter_size": "solver/solver.py",
    "lr_policy": "solver/lr_policy.py", "gamma": "solver/lr_policy.py",
    "power": "solver/lr_policy.py", "stepsize": "solver/lr_policy.py",
    "stepvalue": "solver/lr_policy.py", "momentum": "solver/update_rules.py",
    "weight_decay": "solver/regularize.py", "regularization_type": "solver/regularize.py",
    "clip_gradients": "solver/regularize.py", "snapshot": "solver/solver.py",
    "snapshot_prefix": "commands/train.py", "snapshot_after_train": "solver/solver.py",
    "snapshot_format": "solver/validate.py (BINARYPROTO; HDF5 is refused there)",
    "snapshot_diff": "solver/validate.py (false; true is refused there)",
    "solver_mode": "device.py", "device_id": "device.py",
    "random_seed": "commands/train_process.py", "type": "solver/update_rules.py",
    "solver_type": "solver/update_rules.py (the deprecated enum)",
    "delta": "solver/update_rules.py", "momentum2": "solver/update_rules.py",
    "rms_decay": "solver/update_rules.py",
    "debug_info": "solver/debug_info.py (per-layer lines on display iterations)",
    "weights": "solver/initial_weights.py (--weights takes precedence, as in BVLC Caffe)",
    # The Caffe_IncReg fork's fields and prunekit's pruning options (docs/pruning-fields.md).
    # prune_interval, prune_begin_iter and the stage fields (retrain_test_interval,
    # losseval_interval, iter_size_*, acc_borderline, ...) are being checked per method family
    # by the prune side (issue 18); prune/config.py is where each is read.
    **{name: _PRUNE for name in (
        "prune_method", "AA", "target_reg", "speedup", "compRatio", "acc_borderline",
        "baseline_acc", "retrain_test_interval", "losseval_interval", "IF_update_row_col",
        "IF_eswpf", "IF_speedup_count_fc", "IF_compr_count_conv", "IF_scheme1_when_Reg_rank",
        "IF_use_acc1", "iter_size_prune", "iter_size_losseval", "iter_size_retrain",
        "iter_size_final_retrain", "kk", "prune_interval", "prune_begin_iter",
        "prune_ratio_begin_ave", "standard_sparsity", "mul_lr_decay", "max_cnt_lr_decay",
        "accuracy_gap_threshold", "incre_pr_bottomline", "cnt_after_max_acc", "coeff_acc_2_pr",
        "tr_mul_bottom", "standard_incre_pr", "target_reg_cap", "prune_log_verbose",
        "rank_restart_each_stage", "spp_score_decay", "spp_delta", "spp_mask_mode",
        "prune_rounds", "sparsity_lambda")},
}

#: SolverParameter fields whose setting is an error here, with the reason.
SOLVER_REFUSED: dict[str, str] = {}

#: SolverParameter fields that have no effect here: set, they draw one warning with the reason.
SOLVER_WARNED: dict[str, str] = {
    "layer_wise_reduce": "it only overlaps Caffe's multi-GPU gradient reduction with backward; "
                         "prunekit all-reduces after backward (same numbers), so it has no effect",
}

#: LayerParameter fields prunekit acts on. Per-layer ``*_param`` messages are read by the layer
#: types named in LAYER_PARAM_READERS; a layer type that is not registered is refused by
#: net/registry.py, so its message is never silently ignored either.
LAYER_HONOURED: dict[str, str] = {
    "name": "net/graph.py", "type": "net/registry.py", "bottom": "net/graph.py",
    "top": "net/graph.py", "loss_weight": "net/graph.py", "param": "net/graph.py (lr_mult, "
    "decay_mult, name for sharing)", "include": "net/state_rules.py",
    "exclude": "net/state_rules.py", "propagate_down": "net/propagate_down.py",
}

#: ``*_param`` message → the layer types that read it.
LAYER_PARAM_READERS: dict[str, tuple[str, ...]] = {
    "transform_param": ("Data", "ImageData"), "loss_param": ("SoftmaxWithLoss",),
    "accuracy_param": ("Accuracy",), "batch_norm_param": ("BatchNorm",),
    "bias_param": ("Bias",), "concat_param": ("Concat",),
    "convolution_param": ("Convolution", "Deconvolution", "ColumnConvolution"),
    "data_param": ("Data",), "dropout_param": ("Dropout",), "dummy_data_param": ("DummyData",),
    "eltwise_param": ("Eltwise",), "elu_param": ("ELU",), "flatten_param": ("Flatten",),
    "image_data_param": ("ImageData",), "inner_product_param": ("InnerProduct",),
    "input_param": ("Input",), "lrn_param": ("LRN",), "pooling_param": ("Pooling",),
    "prelu_param": ("PReLU",), "relu_param": ("ReLU",), "reshape_param": ("Reshape",),
    "scale_param": ("Scale",), "softmax_param": ("Softmax", "SoftmaxWithLoss"),
    "slice_param": ("Slice",), "column_param": ("ColumnConvolution",),
    "clip_param": ("Clip",), "power_param": ("Power",), "swish_param": ("Swish",),
    "shuffle_channel_param": ("ShuffleChannel",),
    "prune_param": ("Convolution", "InnerProduct"),
    # Their one field, ``engine``, picks Caffe's CPU/GPU or cuDNN code for the same function.
    "sigmoid_param": ("Sigmoid",), "tanh_param": ("TanH",),
}

#: Messages of layer types prunekit does not have: net/registry.py refuses the type itself.
LAYER_PARAM_OF_UNKNOWN_TYPES = (
    "argmax_param", "contrastive_loss_param", "crop_param", "embed_param", "exp_param",
    "hdf5_data_param", "hdf5_output_param", "hinge_loss_param", "infogain_loss_param",
    "log_param", "memory_data_param", "mvn_param", "parameter_param",
    "python_param", "recurrent_param", "reduction_param", "spp_param",
    "threshold_param", "tile_param", "window_data_param",
)

LAYER_REFUSED: dict[str, str] = {}

LAYER_WARNED: dict[str, str] = {
    "phase": "a layer runs in the phase of the net it is in (Caffe sets this field itself)",
    "blobs": "weights written inside a prototxt layer are not loaded; give them in a "
             ".caffemodel (--weights)",
}

_warned: set[str] = set()


def is_set(message, field: str) -> bool:
    """True when ``field`` is present in ``message`` (a non-empty list for repeated fields)."""
    if message.DESCRIPTOR.fields_by_name[field].is_repeated:
        return len(getattr(message, field)) > 0
    return message.HasField(field)


def warn_once(key: str, text: str) -> None:
    """One warning per ``key`` per process (the TRAIN and TEST nets share their layers)."""
    if key in _warned:
        return
    _warned.add(key)
    get_logger().warning("%s", text)


def check_solver_fields(param, path: str) -> None:
    """Refuse the REFUSED solver fields that are set; warn once about the WARNED ones."""
    for field, why in SOLVER_REFUSED.items():
        if is_set(param, field):
            raise PrunekitError(f"{path}: {field} is not supported: {why}")
    for field, why in SOLVER_WARNED.items():
        if is_set(param, field):
            warn_once(f"solver.{field}", f"{path}: {field} is ignored: {why}")


def check_layer_fields(lp, where: str) -> None:
    """Refuse/warn about the LayerParameter fields of ``lp`` prunekit does not act on, and
    about a ``*_param`` message its layer type does not read (Caffe also ignores those, but a
    ``convolution_param`` on a Pooling layer is almost always a copy-and-paste slip)."""
    for field, why in LAYER_REFUSED.items():
        if is_set(lp, field):
            raise PrunekitError(f"{where}: {field} is not supported: {why}")
    for field, why in LAYER_WARNED.items():
        if is_set(lp, field):
            warn_once(f"layer.{lp.name}.{field}", f"{where}: {field} is ignored: {why}")
    for field, readers in LAYER_PARAM_READERS.items():
        if lp.HasField(field) and lp.type not in readers:
            warn_once(f"layer.{lp.name}.{field}",
                      f"{where}: {field} is ignored: a {lp.type} layer does not read it "
                      f"(read by {', '.join(readers)})")
