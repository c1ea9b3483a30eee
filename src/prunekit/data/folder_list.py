"""List files (``relative/path label`` lines) from image folders, for ``data imageset``.

Two layouts:

- a folder per class (ImageNet's train/): labels are the class folders' positions in sorted
  order, which for ILSVRC12 is the order of Caffe's ``synsets.txt``; or the order of a labels
  file (one class name per line, anything after the name ignored, so ``synset_words.txt`` works);
- a flat folder (ImageNet's val/) plus a file of ``<file name> <label>`` lines, the label an
  integer (Caffe's ``val.txt``) or a class name looked up in the labels file.

The class names in label order are what :func:`write_class_names` writes next to the list, in the
labels-file format, so the same file can be given back as ``--labels``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from prunekit.atomic import atomic_write_text
from prunekit.errors import PrunekitError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".ppm", ".pgm", ".pbm", ".tif",
                    ".tiff", ".webp"}


@dataclass
class ImageListing:
    """List-file lines (path relative to the root, label) and class names in label order
    (empty when the labels are integers from a file and no names were given)."""

    lines: list[tuple[str, int]]
    class_names: list[str]


def is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _visible(names: list[str]) -> list[str]:
    return sorted(n for n in names if not n.startswith("."))


def image_files(folder: Path) -> list[str]:
    """Image files under ``folder`` (recursively, hidden entries skipped), as sorted relative
    POSIX paths."""
    found = []
    for current, dirs, files in os.walk(folder):
        dirs[:] = _visible(dirs)
        rel = Path(current).relative_to(folder)
        found += [(rel / f).as_posix() for f in _visible(files) if is_image(f)]
    return sorted(found)


def read_class_names(path: str) -> list[str]:
    """Class names in label order: the first word of each non-blank line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise PrunekitError(f"labels file '{path}': cannot read: {err.strerror}") from None
    names = [line.split()[0] for line in lines if line.strip()]
    if not names:
        raise PrunekitError(f"labels file '{path}' names no classes")
    seen: dict[str, int] = {}
    for number, name in enumerate(names):
        if name in seen:
            raise PrunekitError(f"labels file '{path}': class '{name}' is named twice "
                                f"(labels {seen[name]} and {number})")
        seen[name] = number
    return names


def list_class_folders(root: Path, class_names: list[str] | None) -> ImageListing:
    """A folder per class: every image of class folder ``c`` gets ``c``'s label."""
    folders = _visible([d.name for d in root.iterdir() if d.is_dir()])
    loose = [f.name for f in root.iterdir() if f.is_file() and is_image(f.name)]
    if loose:
        raise PrunekitError(f"'{root}' holds class folders and also {len(loose)} images directly "
                            f"inside (e.g. '{sorted(loose)[0]}'); give a folder per class only")
    names = class_names if class_names is not None else folders
    unknown = sorted(set(folders) - set(names))
    if unknown:
        raise PrunekitError(f"'{root}': class folder(s) {', '.join(unknown[:5])} are not in the "
                            f"labels file ({len(unknown)} in all)")
    lines = []
    for label, name in enumerate(names):
        if name in folders:
            lines += [(f"{name}/{path}", label) for path in image_files(root / name)]
    return ImageListing(lines, list(names))


def read_file_labels(path: str, class_names: list[str] | None) -> dict[str, int]:
    """``<file name> <label>`` lines -> {file name: label}; a label that is not an integer is a
    class name looked up in ``class_names``."""
    index = {name: label for label, name in enumerate(class_names or [])}
    labels: dict[str, int] = {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise PrunekitError(f"val labels file '{path}': cannot read: {err.strerror}") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2:
            raise PrunekitError(f"val labels file '{path}' line {number}: expected "
                                f"'<file name> <label>', got {line.strip()!r}")
        name, label = parts
        if label.lstrip("-").isdigit():
            labels[name] = int(label)
        elif label in index:
            labels[name] = index[label]
        else:
            raise PrunekitError(f"val labels file '{path}' line {number}: '{label}' is neither an "
                                f"integer label nor a class of the labels file"
                                f"{'' if class_names else ' (give --labels)'}")
    return labels


def list_flat_folder(root: Path, val_labels: str, class_names: list[str] | None) -> ImageListing:
    """A flat folder of images; each file's label comes from the ``val_labels`` file, found by
    file name or by the path relative to ``root``."""
    labels = read_file_labels(val_labels, class_names)
    lines = []
    for path in image_files(root):
        label = labels.get(path, labels.get(os.path.basename(path)))
        if label is None:
            raise PrunekitError(f"'{root / path}' has no label in '{val_labels}'")
        lines.append((path, label))
    return ImageListing(lines, list(class_names or []))


def write_list(path: Path, lines: list[tuple[str, int]]) -> None:
    """``path label`` lines (Caffe splits each line at its last space)."""
    _write(path, "".join(f"{p} {label}\n" for p, label in lines), "list file")


def write_class_names(path: Path, names: list[str]) -> None:
    """One class name per line in label order (label = line number - 1), like synsets.txt."""
    _write(path, "".join(f"{name}\n" for name in names), "labels file")


def _write(path: Path, text: str, kind: str) -> None:
    try:
        atomic_write_text(path, text)
    except OSError as err:
        raise PrunekitError(f"cannot write {kind} '{path}': {err.strerror or err}") from None
