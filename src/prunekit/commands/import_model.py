"""``prunekit import (--onnx M.onnx | --torchvision NAME [--state-dict W.pth])
--out-model deploy.prototxt --out-weights W.caffemodel [--input-shape N,C,H,W]
[--train-val train_val.prototxt --train-source LMDB --test-source LMDB ...]``.

Brings a model in as a Caffe deploy net + caffemodel (prunekit/importer/, docs/import.md).
Nothing is written unless the whole net maps, every blob has ONNX's shape and (with
onnxruntime installed) the outputs equal onnxruntime's on a random input; each file is
written to a temporary name and renamed.
"""

from __future__ import annotations

import argparse
import os
import tempfile

from prunekit.commands.flags import flag
from prunekit.errors import PrunekitError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    flag(parser, "onnx", help="ONNX model to import")
    flag(parser, "torchvision", help="torchvision architecture to import (e.g. resnet18); "
          "random initialisation unless --state-dict")
    flag(parser, "state_dict", help="--torchvision: local .pth state_dict (weights_only load)")
    flag(parser, "input_shape", help="N,C,H,W of the input (needed when the ONNX input size "
          "is dynamic; --torchvision default 1,3,224,224)")
    flag(parser, "out_model", required=True, help="deploy prototxt to write")
    flag(parser, "out_weights", required=True, help=".caffemodel to write")
    flag(parser, "caffe_input", action="store_true",
          help="fold torchvision's RGB [0, 1] mean/std normalisation into the first conv: the "
          "net then takes BGR 0-255 pixels minus mean 103.53,116.28,123.675 (Caffe's Data)")
    flag(parser, "train_val", help="also write a train_val.prototxt (Data layers, "
          "SoftmaxWithLoss, Accuracy) here, and a solver skeleton (--solver)")
    flag(parser, "solver", help="--train-val: solver prototxt to write (default: "
          "solver.prototxt beside the train_val)")
    flag(parser, "train_source", help="--train-val: TRAIN LMDB folder")
    flag(parser, "test_source", help="--train-val: TEST LMDB folder")
    flag(parser, "train_batch", type=int, default=32, help="--train-val: TRAIN batch (32)")
    flag(parser, "test_batch", type=int, default=50, help="--train-val: TEST batch (50)")
    flag(parser, "crop_size", type=int, help="--train-val: crop (default: the input's H = W)")
    flag(parser, "mean_file", help="--train-val: mean .binaryproto")
    flag(parser, "mean_value", help="--train-val: per-channel means, comma-separated")
    flag(parser, "scale", type=float, default=1.0, help="--train-val: pixel scale (1)")
    flag(parser, "prune_method", default="Reg_Row",
          help="--train-val: the solver's prune_method (Reg_Row)")
    flag(parser, "prune_ratio", type=float, default=0.5,
          help="--train-val: prune_ratio of every Convolution (0.5; 0: no prune_param)")


def run(args: argparse.Namespace) -> int:
    if bool(args.onnx) == bool(args.torchvision):
        raise PrunekitError("give exactly one of --onnx FILE or --torchvision NAME")
    if args.state_dict and not args.torchvision:
        raise PrunekitError("--state-dict goes with --torchvision")
    shape = parse_shape(args.input_shape) if args.input_shape else None
    if args.train_val and not (args.train_source and args.test_source):
        raise PrunekitError("--train-val needs --train-source and --test-source")
    _check_folders(args)
    if args.onnx:
        return import_and_write(args, args.onnx, shape)
    from prunekit.importer.torchvision_source import build_model, export_onnx, load_state_dict

    model = build_model(args.torchvision)
    if args.state_dict:
        load_state_dict(model, args.state_dict)
    with tempfile.TemporaryDirectory(prefix="prunekit-import-") as folder:
        path = os.path.join(folder, f"{args.torchvision}.onnx")
        export_onnx(model, shape or (1, 3, 224, 224), path)
        return import_and_write(args, path, None)


def _check_folders(args: argparse.Namespace) -> None:
    """Every file goes into an existing folder: checked before anything is written, so a bad
    --train-val path does not leave the deploy files of a half-done import behind."""
    for path in (args.out_model, args.out_weights, args.train_val, args.solver):
        folder = os.path.dirname(path) if path else ""
        if folder and not os.path.isdir(folder):
            raise PrunekitError(f"cannot write {path}: folder {folder} does not exist")


def parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(x) for x in text.split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise PrunekitError(f"--input-shape '{text}': expected positive integers N,C,H,W")
    return shape


def import_and_write(args: argparse.Namespace, path: str, shape) -> int:
    from prunekit import caffe
    from prunekit.importer import import_onnx
    from prunekit.importer.verify import build_net, check_outputs, check_shapes
    from prunekit.log import get_logger

    name = args.torchvision or None
    imported = import_onnx(path, shape, net_name=name)
    net = build_net(imported)
    check_shapes(imported, net)
    err = check_outputs(imported, net)
    log = get_logger()
    if err is not None:
        log.info("Imported net matches onnxruntime: max |difference| = %.3g of the output "
                 "scale", err)
    if args.caffe_input:
        from prunekit.importer.preprocessing import fold_rgb_normalisation

        fold_rgb_normalisation(imported.net_param, imported.blobs, path)
    caffe.write_prototxt(args.out_model, imported.net_param)
    caffe.write_caffemodel(args.out_weights, caffe.net_with_blobs(imported.net_param,
                                                                  imported.blobs))
    log.info("Wrote %s (%d layers) and %s; outputs: %s", args.out_model,
             len(imported.net_param.layer), args.out_weights,
             ", ".join(f"{o} -> {b}" for o, b in imported.outputs))
    if args.train_val:
        classes = imported.graph.shapes[imported.graph.outputs[0]][-1]
        _write_train_val(args, imported.net_param, imported.graph.inputs[0][1], classes)
    return 0


def _write_train_val(args: argparse.Namespace, deploy, input_shape, classes: int) -> None:
    from prunekit import caffe
    from prunekit.atomic import atomic_write_text
    from prunekit.importer.train_val import DataSettings, solver_text, train_val_net
    from prunekit.log import get_logger

    crop = args.crop_size or (input_shape[2] if len(input_shape) == 4 and
                              input_shape[2] == input_shape[3] else 0)
    from prunekit.importer.preprocessing import BGR_MEAN_VALUES

    try:
        means = [float(v) for v in args.mean_value.split(",")] if args.mean_value else []
    except ValueError:
        raise PrunekitError(f"--mean-value '{args.mean_value}': expected numbers separated by "
                            "commas (e.g. 104,117,123)") from None
    if args.caffe_input and not means and not args.mean_file:
        means = list(BGR_MEAN_VALUES)
    data = DataSettings(args.train_source, args.test_source, args.train_batch, args.test_batch,
                        crop, args.mean_file or "", means, args.scale)
    net = train_val_net(deploy, data, classes, args.prune_ratio)
    solver = args.solver or os.path.join(os.path.dirname(args.train_val), "solver.prototxt")
    prefix = os.path.join(os.path.dirname(args.train_val) or ".", "weights") + "/"
    caffe.write_prototxt(args.train_val, net)
    os.makedirs(prefix, exist_ok=True)  # prunekit train refuses a prefix in a missing folder
    atomic_write_text(solver, solver_text(args.train_val, prefix, args.prune_method, 10,
                                          deploy.name))
    get_logger().info("Wrote %s and %s (snapshots under %s)", args.train_val, solver, prefix)
