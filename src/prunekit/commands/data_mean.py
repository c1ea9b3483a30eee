"""``prunekit data mean DB OUT.binaryproto``: Caffe's compute_image_mean.

Writes the mean image that ``transform_param { mean_file }`` reads, and logs the per-channel
means the way Caffe does (``mean_value channel [c]: v``), ready to paste as ``mean_value`` lines.
"""

from __future__ import annotations

import argparse

from prunekit.commands.data_imageset import check_backend
from prunekit.commands.flags import flag
from prunekit.log import get_logger


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("db", metavar="DB", help="LMDB of raw or encoded Datums")
    parser.add_argument("out", metavar="OUT.binaryproto", help="mean file to write")
    flag(parser, "backend", default="lmdb", help="lmdb (the only one supported)")


def run(args: argparse.Namespace) -> int:
    return run_data_mean(args.db, args.out, args.backend)


def run_data_mean(db: str, out: str, backend: str = "lmdb") -> int:
    from prunekit.caffe import write_binaryproto
    from prunekit.data.image_mean import compute_image_mean

    check_backend(backend)
    log = get_logger()
    mean = compute_image_mean(db, log)
    log.info("Write to %s", out)
    write_binaryproto(out, mean.blob)
    log.info("Number of channels: %d", len(mean.channel_means))
    for channel, value in enumerate(mean.channel_means):
        log.info("mean_value channel [%d]: %s", channel, f"{value:.6g}")
    return 0
