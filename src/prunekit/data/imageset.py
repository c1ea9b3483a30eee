"""convert_imageset: the images of a list file into an LMDB of Caffe Datums.

Same Datums as Caffe's tool (see :mod:`prunekit.data.opencv_image`), keys ``%08d_<path as in the
list>`` where the number is the entry's position (after shuffling), so an unreadable image leaves
a gap, as in Caffe. Differences, on purpose: ``--shuffle`` draws its order from ``seed`` (Caffe's
is not reproducible), images decode in worker processes (the LMDB is the same for any count), a
list line without a label is refused (Caffe reads label 0), and the LMDB appears only when
complete and never replaces an existing one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from prunekit.caffe.datum import image_datum_bytes
from prunekit.data import opencv_image as cvi
from prunekit.data.image_list import ListEntry
from prunekit.data.images import hwc_to_chw
from prunekit.data.lmdb_io import write_lmdb
from prunekit.data.ordered_pool import ordered_map
from prunekit.errors import PrunekitError
from prunekit.progress_bar import ProgressBar

_LOG_EVERY = 1000  # Caffe commits and logs "Processed N files." every 1000 images


@dataclass(frozen=True)
class ImagesetOptions:
    """convert_imageset's flags (``--shuffle`` acts on the list before, see :func:`shuffled`).
    ``encode_type`` "" with ``encoded``: each file's own extension is its encoding."""

    color: bool = True
    resize_height: int = 0
    resize_width: int = 0
    encoded: bool = False
    encode_type: str = ""
    check_size: bool = False
    threads: int = 1


@dataclass
class ImagesetReport:
    """What a conversion did: images written and the list entries that could not be read."""

    written: int = 0
    skipped: list[ListEntry] = field(default_factory=list)


# A task for a worker: (file path, label, encoding or "" for a raw Datum).
_Task = tuple[str, int, str]
# Its result: None (unreadable) or (serialized Datum, channels*height*width, bytes of data).
_Result = tuple[bytes, int, int] | None
_OPTIONS: ImagesetOptions | None = None  # set in each worker by _init_worker


def _init_worker(options: ImagesetOptions) -> None:
    global _OPTIONS
    _OPTIONS = options
    cvi.quiet_opencv()


def _convert(task: _Task) -> _Result:
    """Caffe's ReadImageToDatum for one file; runs in a worker process."""
    path, label, encoding = task
    opts = _OPTIONS
    image = cvi.read_image(path, opts.color, opts.resize_height, opts.resize_width)
    if image is None:
        return None
    if not encoding:
        chw = hwc_to_chw(image)
        return image_datum_bytes(chw, label), chw.size, chw.size
    resized = opts.resize_height > 0 or opts.resize_width > 0
    data = None
    if not resized and cvi.matches_extension(path, encoding):
        data = cvi.read_file_bytes(path)  # the file as it is, no re-encoding
    if data is None:
        data = cvi.encode_image(image, encoding, path)
    return image_datum_bytes(data, label), 0, len(data)


def entry_encoding(entry: ListEntry, options: ImagesetOptions, list_name: str) -> str:
    """The encoding of one entry's Datum: "" (raw), ``encode_type``, or with ``encoded`` alone
    the file's extension (as Caffe guesses it)."""
    if options.encode_type:
        return options.encode_type.lower()
    if not options.encoded:
        return ""
    name = entry.name
    ext = name.rsplit(".", 1)[-1].lower() if "." in os.path.basename(name) else ""
    if ext not in cvi.ENCODINGS:
        raise PrunekitError(f"list file '{list_name}' line {entry.line}: cannot guess the "
                            f"encoding of '{name}' from its extension; give --encode_type "
                            f"jpg or png")
    return ext


def shuffled(entries: list[ListEntry], seed: int) -> list[ListEntry]:
    """The entries in a random order that depends only on ``seed``."""
    order = np.random.default_rng(seed).permutation(len(entries))
    return [entries[i] for i in order]


def convert_imageset(root: str, entries: list[ListEntry], db_path: str, options: ImagesetOptions,
                     list_name: str, log: logging.Logger) -> ImagesetReport:
    """Write the Datums of ``entries`` (files ``root + path``) to a new LMDB at ``db_path``.

    Raises PrunekitError when no image could be read (no LMDB is left behind then).
    """
    tasks = [(root + entry.name, entry.label, entry_encoding(entry, options, list_name))
             for entry in entries]
    workers = max(1, min(options.threads, len(tasks)))
    report = ImagesetReport()
    with ProgressBar(len(tasks), "imageset", unit="images") as bar, \
            ordered_map(_convert, tasks, workers, _init_worker, (options,)) as results:
        records = _records(entries, tasks, results, options, report, bar, log)
        try:
            write_lmdb(db_path, records, overwrite=False)
        except OSError as err:
            raise PrunekitError(f"cannot write LMDB '{db_path}': {err.strerror or err}") from None
    return report


def _records(entries: list[ListEntry], tasks: list[_Task], results: Iterable[_Result],
             options: ImagesetOptions, report: ImagesetReport, bar: ProgressBar,
             log: logging.Logger) -> Iterator[tuple[bytes, bytes]]:
    """(key, Datum) in list order; logs skips and progress as Caffe does."""
    first_size = None
    for index, (entry, task, result) in enumerate(zip(entries, tasks, results)):
        bar.update()
        if result is None:
            bar.clear()
            log.error("Could not open or find file %s (list line %d)", task[0], entry.line)
            report.skipped.append(entry)
            continue
        value, pixels, data_bytes = result
        if options.check_size:
            first_size = pixels if first_size is None else first_size
            if data_bytes != first_size:
                raise PrunekitError(f"--check_size: '{task[0]}' (list line {entry.line}) has "
                                    f"{data_bytes} values, the first image {first_size}")
        yield b"%08d_" % index + entry.path, value
        report.written += 1
        if report.written % _LOG_EVERY == 0:
            bar.clear()
            log.info("Processed %d files.", report.written)
    bar.clear()
    if report.written % _LOG_EVERY:
        log.info("Processed %d files.", report.written)
    if report.written == 0:
        raise PrunekitError(f"none of the {len(entries)} listed images could be read "
                            f"(first: '{tasks[0][0]}'); no LMDB written")
