"""``prunekit data list ROOT --out train.txt [--labels synsets.txt] [--val-labels FILE]``.

Writes the list file ``data imageset`` reads, and next to it ``<out stem>_labels.txt``: the class
names in label order (line n is label n-1), in the format ``--labels`` reads back. See
docs/data.md for the two folder layouts.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from prunekit.commands.flags import flag
from prunekit.errors import PrunekitError
from prunekit.log import get_logger


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", metavar="ROOT", help="folder of class folders, or of images")
    flag(parser, "out", required=True, help="list file to write, e.g. train.txt")
    flag(parser, "labels", help="class folder names in label order, one per line "
         "(e.g. ILSVRC12 synsets.txt; default: sorted folder names)")
    flag(parser, "val_labels", help="flat ROOT: '<file name> <label>' lines, or one label a "
         "line for the sorted file names (ILSVRC12 val ground truth)")


def run(args: argparse.Namespace) -> int:
    return run_data_list(args.root, args.out, args.labels, args.val_labels)


def run_data_list(root: str, out: str, labels: str | None = None,
                  val_labels: str | None = None) -> int:
    from prunekit.data import folder_list as fl

    folder = Path(root)
    if not folder.is_dir():
        raise PrunekitError(f"image folder '{root}' "
                            f"{'is not a folder' if folder.exists() else 'not found'}")
    names = fl.read_class_names(labels) if labels else None
    has_classes = any(d.is_dir() and not d.name.startswith(".") for d in folder.iterdir())
    if val_labels:
        if has_classes:
            raise PrunekitError(f"--val-labels is for a flat folder of images, but '{root}' has "
                                f"sub-folders")
        listing = fl.list_flat_folder(folder, val_labels, names)
    elif has_classes:
        listing = fl.list_class_folders(folder, names)
    else:
        raise PrunekitError(f"'{root}' has no class folders; for a flat folder of images give "
                            f"--val-labels FILE ('<file name> <label>' lines)")
    if not listing.lines:
        raise PrunekitError(f"no images found under '{root}' (extensions: "
                            f"{', '.join(sorted(fl.IMAGE_EXTENSIONS))})")
    out_path = Path(out)
    fl.write_list(out_path, listing.lines)
    log = get_logger()
    log.info("Wrote %d images of %d classes to %s", len(listing.lines),
             len({label for _, label in listing.lines}), out_path)
    if listing.class_names:
        names_path = out_path.with_name(out_path.stem + "_labels.txt")
        fl.write_class_names(names_path, listing.class_names)
        log.info("Wrote the class of each label to %s (label 0 = %s, label %d = %s)", names_path,
                 listing.class_names[0], len(listing.class_names) - 1, listing.class_names[-1])
    return 0
