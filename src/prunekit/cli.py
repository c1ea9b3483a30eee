"""``prunekit <command>``: Caffe's tool with its verbs and flags, on PyTorch.

Flags are accepted with one dash (``-solver``, as Caffe's gflags) or two (``--solver``). A user
mistake (PrunekitError) prints one line naming what to fix and exits 1, with no traceback.
"""

from __future__ import annotations

import argparse
import sys

from prunekit.errors import PrunekitError


def _flag(parser: argparse.ArgumentParser, name: str, **kwargs) -> None:
    """``-name`` and ``--name`` (Caffe's gflags style), plus ``--na-me`` for multi-word flags."""
    spellings = [f"-{name}", f"--{name}"]
    if "_" in name:
        spellings.append(f"--{name.replace('_', '-')}")
    parser.add_argument(*spellings, dest=name, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prunekit", description="Run Caffe-format CNN (compression) experiments on PyTorch.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = commands.add_parser("train", help="train or finetune a model (caffe train)")
    _flag(train, "solver", required=True, help="solver.prototxt")
    _flag(train, "weights", help="comma-separated .caffemodel files to finetune from")
    _flag(train, "snapshot", help=".solverstate to resume from")
    _flag(train, "gpu", help="GPU id, comma list or 'all' (several GPUs: one data-parallel "
          "process each); absent: CPU (or the solver's solver_mode)")
    _flag(train, "procs", type=int, help="N data-parallel processes (gloo on the CPU; with "
          "--gpu one per GPU); see docs/distributed.md")
    _flag(train, "data_workers", type=int, help="worker processes decoding JPEG/PNG data per "
          "Data/ImageData layer (default: cores per process; 0: a thread); see docs/data.md")

    test = commands.add_parser("test", help="score a model on its TEST phase (caffe test)")
    _flag(test, "model", required=True, help="net prototxt")
    _flag(test, "weights", help=".caffemodel to score")
    _flag(test, "iterations", type=int, default=50, help="number of batches (default 50)")
    _flag(test, "gpu", help="GPU id; absent: CPU")

    time = commands.add_parser("time", help="per-layer forward/backward timing (caffe time)")
    _flag(time, "model", required=True, help="net prototxt")
    _flag(time, "iterations", type=int, default=50, help="timed iterations (default 50)")
    _flag(time, "phase", default="TRAIN", help="TRAIN (default) or TEST")
    _flag(time, "gpu", help="GPU id; absent: CPU")
    _flag(time, "weights", help="optional .caffemodel (Caffe times filler weights)")
    _flag(time, "batch_size", type=int, help="override the batch size of the input/data layers")
    _flag(time, "json", help="also write the results as JSON to this file")
    _flag(time, "channels_last", action="store_true",
          help="time with NHWC weights and activations (the layout to deploy on CPUs)")

    flops = commands.add_parser("flops", help="parameters and MACs per layer, dense and pruned")
    _flag(flops, "model", required=True, help="net prototxt")
    _flag(flops, "weights", help=".caffemodel: count its non-zeros and skip pruned structure")
    _flag(flops, "phase", default="TEST", help="TEST (default) or TRAIN")
    _flag(flops, "json", nargs="?", const="-",
          help="JSON instead of the table (alone), or also write it to this file")

    compact = commands.add_parser(
        "compact", help="remove zero-masked filters, channels and kernel taps (same outputs)")
    _flag(compact, "model", required=True, help="net prototxt of the masked model")
    _flag(compact, "weights", required=True, help="masked .caffemodel")
    _flag(compact, "out_model", required=True, help="compacted prototxt to write")
    _flag(compact, "out_weights", required=True, help="compacted .caffemodel to write")
    _flag(compact, "round_to", type=int, default=1,
          help="keep filter counts multiples of N (tensor cores; default 1)")
    _flag(compact, "phase", default="TEST", help="TEST (default) or TRAIN net to compact")
    _flag(compact, "fold_bn", action="store_true",
          help="then fold BatchNorm (+ Scale) into the conv before it (inference only; TEST)")
    _flag(compact, "column_conv", default="auto",
          help="auto (default: time both forms, keep the faster), always or never: convs with "
          "scattered zero weight columns become ColumnConvolution layers")
    _flag(compact, "batch", type=int,
          help="batch size --column-conv auto times at (default: the prototxt's)")
    _flag(compact, "channels_last", action="store_true",
          help="--column-conv auto times NHWC (the layout to deploy on CPUs)")

    decompose = commands.add_parser(
        "decompose", help="low-rank split of conv (Tai et al.) and InnerProduct layers (accnn)")
    _flag(decompose, "model", required=True, help="net prototxt")
    _flag(decompose, "weights", required=True, help="trained .caffemodel")
    _flag(decompose, "save_model", required=True,
          help="PREFIX: writes PREFIX.prototxt, PREFIX.caffemodel and PREFIX.json (the ranks)")
    _flag(decompose, "ratio", type=float, help="target theoretical conv-MAC speedup (rank selection)")
    _flag(decompose, "config", help="rank JSON {conv_params: {layer: K}, fc_params: {layer: K}}")
    _flag(decompose, "layer", help="split this one layer (with --K)")
    decompose.add_argument("-K", "--K", dest="k", type=int, help="rank for --layer")
    _flag(decompose, "include_fc", action="store_true",
          help="--ratio: also split InnerProducts; the target counts conv + InnerProduct MACs")
    _flag(decompose, "search", default="dp", help="--ratio: dp (exact knapsack, default) or greedy")
    _flag(decompose, "energy", default="weights",
          help="--ratio: weights (singular values, default) or data (responses on TEST batches)")
    _flag(decompose, "batches", type=int, default=4, help="--energy data: TEST batches (default 4)")

    speedup = commands.add_parser(
        "speedup", help="theoretical vs measured speedup of one model over another")
    _flag(speedup, "model", required=True, help="net prototxt of the model to measure (e.g. compacted)")
    _flag(speedup, "weights", help="its .caffemodel")
    _flag(speedup, "vs_model", required=True, help="net prototxt of the reference (e.g. dense)")
    _flag(speedup, "vs_weights", help="the reference's .caffemodel")
    _flag(speedup, "gpu", help="GPU id; absent: CPU")
    _flag(speedup, "batch", type=int, help="batch size for both nets (default: the prototxts')")
    _flag(speedup, "phase", default="TEST", help="TEST (default) or TRAIN")
    _flag(speedup, "iterations", type=int, default=10, help="timed iterations per round (default 10)")
    _flag(speedup, "rounds", type=int, default=5, help="interleaved rounds (default 5)")
    _flag(speedup, "json", help="also write the results as JSON to this file")
    _flag(speedup, "channels_last", action="store_true",
          help="time both nets with NHWC weights and activations (often faster on CPUs)")
    _flag(speedup, "fold_bn", action="store_true",
          help="fold BatchNorm (+ Scale) into the conv before it in both nets before timing "
          "(as deployed; TEST phase only)")

    export = commands.add_parser("export", help="ONNX or TorchScript file that runs without prunekit")
    _flag(export, "model", required=True, help="deploy prototxt (Input layers)")
    _flag(export, "weights", help=".caffemodel (e.g. from prunekit compact)")
    _flag(export, "onnx", help="write an ONNX model here")
    _flag(export, "torchscript", help="write a TorchScript model here")
    _flag(export, "batch", type=int, help="batch size of the exported inputs (default: the prototxt's)")
    _flag(export, "opset", type=int, default=17, help="ONNX opset (default 17)")

    data = commands.add_parser("data", help="make datasets (LMDB)")
    datasets = data.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    mnist = datasets.add_parser("mnist", help="MNIST LMDBs (embedded 5,000 digits, or your IDX files)")
    _flag(mnist, "out", required=True, help="folder for mnist_train_lmdb and mnist_test_lmdb")
    _flag(mnist, "idx_dir", help="folder with the four MNIST IDX files (default: embedded digits)")
    _add_image_data_parsers(datasets)

    sensitivity = commands.add_parser(
        "sensitivity", help="prune one layer at a time to each ratio and score it (no retraining)")
    _flag(sensitivity, "model", required=True, help="net prototxt (its TEST phase is scored)")
    _flag(sensitivity, "weights", required=True, help="trained .caffemodel")
    _flag(sensitivity, "unit", default="Row", help="Row (filters, default), Col, Channel "
          "(coupled output channels) or Shape (kernel positions)")
    _flag(sensitivity, "criterion", default="l1", help="l1 (default) or fpgm (Row/Channel)")
    _flag(sensitivity, "ratios", default="0.1:0.9:0.1", help="START:STOP:STEP or a comma list")
    _flag(sensitivity, "iterations", type=int, default=10, help="TEST batches per point (default 10)")
    _flag(sensitivity, "gpu", help="GPU id; absent: CPU")
    _flag(sensitivity, "out", required=True, help="S.json to write (the text table goes to S.txt)")
    _flag(sensitivity, "timing_iterations", type=int, default=3,
          help="forward passes timed for each layer's time share (0: skip; default 3)")
    _flag(sensitivity, "batch", type=int, help="batch size (default: the prototxt's)")

    plan = commands.add_parser(
        "plan", help="per-layer prune_ratios for a target speedup from a sensitivity table")
    _flag(plan, "sensitivity", required=True, help="S.json of prunekit sensitivity")
    _flag(plan, "speedup", type=float, required=True, help="target speedup (e.g. 4)")
    _flag(plan, "by", default="macs", help="macs (theoretical conv MACs, default) or latency "
          "(measured forward time on this machine, checked after compaction)")
    _flag(plan, "model", required=True, help="train_val.prototxt to copy with prune_param blocks")
    _flag(plan, "out", required=True, help="planned prototxt to write")
    _flag(plan, "deploy", help="--by latency: the prototxt to time (default --model)")
    _flag(plan, "weights", help="--by latency: .caffemodel (default: random He-normal weights)")
    _flag(plan, "batch", type=int, help="--by latency: batch size to time at")
    _flag(plan, "gpu", help="--by latency: GPU id; absent: CPU")
    _flag(plan, "channels_last", action="store_true", help="--by latency: time NHWC")
    _flag(plan, "json", help="also write the plan as JSON to this file")

    plot = commands.add_parser("plot", help="PNG figures of a pruning run, sensitivity curves or "
                               "a methods table")
    _flag(plot, "logs", nargs="+", help="a pruning run: its Caffe log (stderr) and [app] log "
          "(stdout), in any order")
    _flag(plot, "sensitivity", help="S.json of prunekit sensitivity")
    _flag(plot, "methods", help="a methods_table results .json (benchmarks/methods_table.py)")
    _flag(plot, "out", required=True, help="PNG file to write")

    from prunekit.commands import import_model  # `prunekit import` (docs/import.md)

    import_model.add_arguments(commands.add_parser(
        "import", help="Caffe prototxt + caffemodel from an ONNX model or torchvision architecture"))
    return parser


def _bool_flag(parser: argparse.ArgumentParser, name: str, help: str) -> None:
    """A gflags boolean: ``-name``/``--name`` sets it, ``-noname``/``--noname`` clears it
    (``-name=true``/``-name=false`` become those two in :func:`_normalise_flags`)."""
    _flag(parser, name, action="store_true", default=False, help=help)
    parser.add_argument(f"-no{name}", f"--no{name}", dest=name, action="store_false",
                        help=argparse.SUPPRESS)


def _add_image_data_parsers(datasets) -> None:
    """``data imageset`` / ``data mean`` / ``data list``: Caffe's convert_imageset and
    compute_image_mean, and the list file they read (docs/data.md)."""
    imageset = datasets.add_parser(
        "imageset", help="LMDB of Datums from image files listed in a file (convert_imageset)")
    imageset.add_argument("root", metavar="ROOT/", help="folder the list's paths are relative to")
    imageset.add_argument("list_file", metavar="LISTFILE", help="'relative/path label' lines")
    imageset.add_argument("db_name", metavar="DB_NAME", help="LMDB folder to create (must not exist)")
    _bool_flag(imageset, "gray", help="read images as one gray channel")
    _bool_flag(imageset, "shuffle", help="shuffle the list (the order depends only on --seed)")
    _flag(imageset, "seed", type=int, default=0, help="--shuffle's seed (default 0)")
    _flag(imageset, "backend", default="lmdb", help="lmdb (the only one supported)")
    _flag(imageset, "resize_width", type=int, default=0, help="width to resize to (with height)")
    _flag(imageset, "resize_height", type=int, default=0, help="height to resize to (with width)")
    _bool_flag(imageset, "check_size", help="stop if the images differ in size")
    _bool_flag(imageset, "encoded", help="store the (JPEG/PNG) file in the Datum, not pixels")
    _flag(imageset, "encode_type", default="", help="jpg or png: re-encode images as this")
    _flag(imageset, "threads", type=int, help="decoding worker processes (default: all cores)")

    mean = datasets.add_parser("mean", help="per-pixel mean .binaryproto of an LMDB (compute_image_mean)")
    mean.add_argument("db", metavar="DB", help="LMDB of raw or encoded Datums")
    mean.add_argument("out", metavar="OUT.binaryproto", help="mean file to write")
    _flag(mean, "backend", default="lmdb", help="lmdb (the only one supported)")

    listing = datasets.add_parser(
        "list", help="list file ('path label' lines) from a folder per class or a flat folder")
    listing.add_argument("root", metavar="ROOT", help="folder of class folders, or of images")
    _flag(listing, "out", required=True, help="list file to write, e.g. train.txt")
    _flag(listing, "labels", help="class folder names in label order, one per line "
          "(e.g. ILSVRC12 synsets.txt; default: sorted folder names)")
    _flag(listing, "val_labels", help="flat ROOT: '<file name> <label>' lines, or one label a "
          "line for the sorted file names (ILSVRC12 val ground truth)")


def dispatch(args: argparse.Namespace) -> int:
    if args.command == "train":
        from prunekit.commands.train import run_train

        if args.data_workers is not None:
            from prunekit.data.worker_count import set_data_workers

            set_data_workers(args.data_workers)
        return run_train(args.solver, args.weights, args.snapshot, args.gpu, args.procs)
    if args.command == "test":
        from prunekit.commands.test import run_test

        return run_test(args.model, args.weights, args.iterations, args.gpu)
    if args.command == "time":
        from prunekit.commands.time import run_time

        return run_time(args.model, args.iterations, args.phase, args.gpu, args.weights,
                        args.batch_size, args.json, args.channels_last)
    if args.command == "flops":
        from prunekit.commands.flops import run_flops

        return run_flops(args.model, args.weights, args.phase, args.json)
    if args.command == "compact":
        from prunekit.commands.compact import run_compact

        return run_compact(args.model, args.weights, args.out_model, args.out_weights,
                           args.round_to, args.phase, args.fold_bn, args.column_conv,
                           args.batch, args.channels_last)
    if args.command == "decompose":
        from prunekit.commands.decompose import run_decompose

        return run_decompose(args.model, args.weights, args.save_model, args.ratio, args.config,
                             args.layer, args.k, args.include_fc, args.search, args.energy,
                             args.batches)
    if args.command == "speedup":
        from prunekit.commands.speedup import run_speedup

        return run_speedup(args.model, args.weights, args.vs_model, args.vs_weights, args.gpu,
                           args.batch, args.phase, args.iterations, args.rounds, args.json,
                           args.channels_last, args.fold_bn)
    if args.command == "export":
        from prunekit.commands.export import run_export

        return run_export(args.model, args.weights, args.onnx, args.torchscript, args.batch,
                          args.opset)
    if args.command == "data" and args.dataset == "imageset":
        from prunekit.commands.data_imageset import run_data_imageset

        return run_data_imageset(args.root, args.list_file, args.db_name, args.gray, args.shuffle,
                                 args.seed, args.backend, args.resize_height, args.resize_width,
                                 args.check_size, args.encoded, args.encode_type, args.threads)
    if args.command == "data" and args.dataset == "mean":
        from prunekit.commands.data_mean import run_data_mean

        return run_data_mean(args.db, args.out, args.backend)
    if args.command == "data" and args.dataset == "list":
        from prunekit.commands.data_list import run_data_list

        return run_data_list(args.root, args.out, args.labels, args.val_labels)
    if args.command == "data":
        from prunekit.commands.data import run_data_mnist

        return run_data_mnist(args.out, args.idx_dir)
    if args.command == "sensitivity":
        from prunekit.commands.sensitivity import run_sensitivity_command

        return run_sensitivity_command(args.model, args.weights, args.unit, args.criterion,
                                       args.ratios, args.iterations, args.gpu, args.out,
                                       args.timing_iterations, args.batch)
    if args.command == "plan":
        from prunekit.commands.plan import run_plan

        return run_plan(args.sensitivity, args.speedup, args.by, args.model, args.out,
                        args.weights, args.batch, args.gpu, args.channels_last, args.json,
                        args.deploy)
    if args.command == "plot":
        from prunekit.commands.plot import run_plot

        return run_plot(args.logs, args.sensitivity, args.methods, args.out)
    if args.command == "import":
        from prunekit.commands.import_model import run

        return run(args)
    raise AssertionError(args.command)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(_normalise_flags(sys.argv[1:] if argv is None else argv))
    try:
        return dispatch(args)
    except PrunekitError as error:
        print(f"prunekit {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"prunekit {args.command}: interrupted", file=sys.stderr)
        return 130


def _normalise_flags(argv: list[str]) -> list[str]:
    """Caffe writes ``-gpu=0``/``--gpu=0`` too; argparse handles ``=`` only for known prefixes,
    so split ``-flag=value`` into two arguments. gflags booleans written ``-flag=true`` become
    ``-flag`` and ``-flag=false`` become ``-noflag`` (gflags' own spelling of false)."""
    out: list[str] = []
    for arg in argv:
        if arg.startswith("-") and "=" in arg and not arg.startswith("--="):
            flag, value = arg.split("=", 1)
            if value.lower() in ("true", "false"):
                dashes = "--" if flag.startswith("--") else "-"
                out.append(flag if value.lower() == "true" else dashes + "no" + flag.lstrip("-"))
                continue
            out += [flag, value]
        else:
            out.append(arg)
    return out


if __name__ == "__main__":
    sys.exit(main())
