"""``prunekit data DATASET ...``: make datasets; each DATASET is a command of its own, in the
table below (the same scheme as the verbs of :mod:`prunekit.cli`)."""

from __future__ import annotations

import argparse

from prunekit.commands.registry import Command, add_command, add_command_parsers, run_command

#: The datasets of ``prunekit data``, in ``--help`` order.
DATASETS: dict[str, Command] = {}
add_command(DATASETS, "mnist", "prunekit.commands.data_mnist",
            "MNIST LMDBs (embedded 5,000 digits, or your IDX files)")
add_command(DATASETS, "imageset", "prunekit.commands.data_imageset",
            "LMDB of Datums from image files listed in a file (convert_imageset)")
add_command(DATASETS, "mean", "prunekit.commands.data_mean",
            "per-pixel mean .binaryproto of an LMDB (compute_image_mean)")
add_command(DATASETS, "list", "prunekit.commands.data_list",
            "list file ('path label' lines) from a folder per class or a flat folder")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_command_parsers(parser, DATASETS, dest="dataset", metavar="DATASET")


def run(args: argparse.Namespace) -> int:
    return run_command(DATASETS, args.dataset, args)
