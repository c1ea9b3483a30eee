"""``prunekit data imageset [flags] ROOT/ LISTFILE DB_NAME``: Caffe's convert_imageset.

Checks the arguments (root folder, list file, output name) before any image is decoded, so a
mistake costs nothing and leaves nothing behind; see docs/data.md for the flags.
"""

from __future__ import annotations

import argparse
import os

from prunekit.commands.flags import bool_flag, flag
from prunekit.errors import PrunekitError
from prunekit.log import get_logger


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", metavar="ROOT/", help="folder the list's paths are relative to")
    parser.add_argument("list_file", metavar="LISTFILE", help="'relative/path label' lines")
    parser.add_argument("db_name", metavar="DB_NAME", help="LMDB folder to create (must not exist)")
    bool_flag(parser, "gray", help="read images as one gray channel")
    bool_flag(parser, "shuffle", help="shuffle the list (the order depends only on --seed)")
    flag(parser, "seed", type=int, default=0, help="--shuffle's seed (default 0)")
    flag(parser, "backend", default="lmdb", help="lmdb (the only one supported)")
    flag(parser, "resize_width", type=int, default=0, help="width to resize to (with height)")
    flag(parser, "resize_height", type=int, default=0, help="height to resize to (with width)")
    bool_flag(parser, "check_size", help="stop if the images differ in size")
    bool_flag(parser, "encoded", help="store the (JPEG/PNG) file in the Datum, not pixels")
    flag(parser, "encode_type", default="", help="jpg or png: re-encode images as this")
    flag(parser, "threads", type=int, help="decoding worker processes (default: all cores)")


def run(args: argparse.Namespace) -> int:
    return run_data_imageset(args.root, args.list_file, args.db_name, args.gray, args.shuffle,
                             args.seed, args.backend, args.resize_height, args.resize_width,
                             args.check_size, args.encoded, args.encode_type, args.threads)


def run_data_imageset(root: str, list_file: str, db_name: str, gray: bool = False,
                      shuffle: bool = False, seed: int = 0, backend: str = "lmdb",
                      resize_height: int = 0, resize_width: int = 0, check_size: bool = False,
                      encoded: bool = False, encode_type: str = "",
                      threads: int | None = None) -> int:
    from prunekit.data.image_list import read_image_list
    from prunekit.data.imageset import ImagesetOptions, convert_imageset, shuffled
    from prunekit.data.opencv_image import ENCODINGS
    from prunekit.data.ordered_pool import default_workers

    log = get_logger()
    check_backend(backend)
    if encode_type and encode_type.lower() not in ENCODINGS:
        raise PrunekitError(f"--encode_type {encode_type!r}: use jpg or png")
    if check_size and (encoded or encode_type):
        raise PrunekitError("--check_size compares raw pixel counts; it has no meaning with "
                            "--encoded/--encode_type (Caffe's check fails on the second image)")
    if threads is not None and threads < 1:
        raise PrunekitError(f"--threads {threads}: give at least 1")
    root = _checked_root(root)
    _check_output(db_name)
    entries = read_image_list(list_file)
    if shuffle:
        log.info("Shuffling data (seed %d)", seed)
        entries = shuffled(entries, seed)
    log.info("A total of %d images.", len(entries))
    if encode_type and not encoded:
        log.info("encode_type specified, assuming encoded=true.")
    if (resize_height > 0) != (resize_width > 0):
        log.warning("--resize_height %d --resize_width %d: images are resized only when both "
                    "are > 0 (as in Caffe); not resizing", resize_height, resize_width)
    options = ImagesetOptions(
        color=not gray, resize_height=max(0, resize_height), resize_width=max(0, resize_width),
        encoded=encoded or bool(encode_type), encode_type=encode_type, check_size=check_size,
        threads=threads or default_workers())
    report = convert_imageset(root, entries, db_name, options, list_file, log)
    if report.skipped:
        shown = ", ".join(f"{e.line} ({e.name})" for e in report.skipped[:20])
        more = f" and {len(report.skipped) - 20} more" if len(report.skipped) > 20 else ""
        log.warning("Skipped %d of %d images that could not be read, list file '%s' lines %s%s",
                    len(report.skipped), len(entries), list_file, shown, more)
    log.info("Wrote %d images to %s", report.written, db_name)
    return 0


def check_backend(backend: str) -> None:
    """Only LMDB: a LevelDB would need a reader prunekit does not have."""
    if backend.lower() != "lmdb":
        raise PrunekitError(f"--backend {backend}: only lmdb is supported (prunekit's Data "
                            f"layer reads LMDB only)")


def _checked_root(root: str) -> str:
    """ROOT as the prefix Caffe puts before each list path; a missing folder is an error.

    Caffe concatenates ROOT and the path as strings; a folder given without its final slash
    gets one (Caffe would look for 'imagesclass0/...').
    """
    if not root:
        return ""
    if not os.path.isdir(root):
        what = "is not a folder" if os.path.exists(root) else "not found"
        raise PrunekitError(f"image root folder '{root}' {what}")
    return root if root.endswith(os.sep) else root + os.sep


def _check_output(db_name: str) -> None:
    """Refuse an existing DB_NAME and an output folder that cannot be made or written."""
    if os.path.lexists(db_name):
        raise PrunekitError(f"'{db_name}' already exists; not overwriting it (remove it or "
                            f"choose another name)")
    parent = os.path.dirname(os.path.abspath(db_name))
    probe = parent
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise PrunekitError(f"cannot write LMDB '{db_name}': '{probe}' is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PrunekitError(f"cannot write LMDB '{db_name}': folder '{probe}' is not writable")
