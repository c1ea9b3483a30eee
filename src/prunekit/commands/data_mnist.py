"""``prunekit data mnist --out DIR [--idx-dir D]``: make the MNIST LMDBs the lenet5 experiment reads."""

from __future__ import annotations

import argparse
from pathlib import Path

from prunekit.commands.flags import flag
from prunekit.log import get_logger


def add_arguments(parser: argparse.ArgumentParser) -> None:
    flag(parser, "out", required=True, help="folder for mnist_train_lmdb and mnist_test_lmdb")
    flag(parser, "idx_dir", help="folder with the four MNIST IDX files (default: embedded digits)")


def run(args: argparse.Namespace) -> int:
    return run_data_mnist(args.out, args.idx_dir)


def run_data_mnist(out: str, idx_dir: str | None = None) -> int:
    from prunekit.data.mnist import make_mnist_lmdbs

    train, test = make_mnist_lmdbs(Path(out), Path(idx_dir) if idx_dir else None)
    log = get_logger()
    log.info("Wrote %s", train)
    log.info("Wrote %s", test)
    return 0
