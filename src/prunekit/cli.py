"""``prunekit <command>``: Caffe's tool with its verbs and flags, on PyTorch.

Each verb is a module of :mod:`prunekit.commands` that defines its flags and its run; this file
only lists them (:func:`register`). Flags are accepted with one dash (``-solver``, as Caffe's
gflags) or two (``--solver``). A user mistake (PrunekitError) prints one line naming what to fix
and exits 1, with no traceback.
"""

from __future__ import annotations

import argparse
import sys

from prunekit.commands.registry import Command, add_command, add_command_parsers, run_command
from prunekit.errors import PrunekitError


#: The verbs of ``prunekit``, in ``--help`` order (fill it with :func:`register`).
VERBS: dict[str, Command] = {}


def register(verb: str, module: str, help: str) -> None:
    """Make ``prunekit VERB`` run the command module ``module`` (dotted name), listed in
    ``--help`` with ``help``: Caffe's ``RegisterBrewFunction``. The module defines
    ``add_arguments(parser) -> None`` and ``run(args) -> int`` (:mod:`prunekit.commands.registry`)."""
    add_command(VERBS, verb, module, help)


register("train", "prunekit.commands.train", "train or finetune a model (caffe train)")
register("test", "prunekit.commands.test", "score a model on its TEST phase (caffe test)")
register("time", "prunekit.commands.time", "per-layer forward/backward timing (caffe time)")
register("flops", "prunekit.commands.flops", "parameters and MACs per layer, dense and pruned")
register("compact", "prunekit.commands.compact",
         "remove zero-masked filters, channels and kernel taps (same outputs)")
register("decompose", "prunekit.commands.decompose",
         "low-rank split of conv (Tai et al.) and InnerProduct layers (accnn)")
register("speedup", "prunekit.commands.speedup",
         "theoretical vs measured speedup of one model over another")
register("export", "prunekit.commands.export", "ONNX or TorchScript file that runs without prunekit")
register("data", "prunekit.commands.data", "make datasets (LMDB)")
register("sensitivity", "prunekit.commands.sensitivity",
         "prune one layer at a time to each ratio and score it (no retraining)")
register("plan", "prunekit.commands.plan",
         "per-layer prune_ratios for a target speedup from a sensitivity table")
register("plot", "prunekit.commands.plot",
         "PNG figures of a pruning run, sensitivity curves or a methods table")
register("import", "prunekit.commands.import_model",
         "Caffe prototxt + caffemodel from an ONNX model or torchvision architecture")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prunekit", description="Run Caffe-format CNN (compression) experiments on PyTorch.")
    add_command_parsers(parser, VERBS, dest="command", metavar="COMMAND")
    return parser


def dispatch(args: argparse.Namespace) -> int:
    return run_command(VERBS, args.command, args)


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
