"""Caffe's ``ImageData`` layer: image files named in a list file, with labels.

The list file (``image_data_param.source``) has one ``relative/path label`` per line (the label
after the last space). Images are read from ``root_folder``/path as BGR (``is_color``, default) or
gray, optionally resized to ``new_height``×``new_width`` pixels (OpenCV, as Caffe), then
transformed, in worker processes (:mod:`prunekit.data.workers`). With ``shuffle`` the order of
every epoch is a permutation drawn from (seed, epoch).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from prunekit.data.batch_maker import BatchMaker, FileDecoder
from prunekit.data.data_layer import TransformingSource
from prunekit.data.source import rng_for
from prunekit.errors import PrunekitError


def read_list_file(path: str, where: str) -> list[tuple[str, int, int]]:
    """(image path, label, line number) for each non-empty line of an ImageData list file."""
    if not os.path.isfile(path):
        raise PrunekitError(f"{where}: image list file '{path}' not found")
    entries = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            parts = line.strip().rsplit(maxsplit=1)
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise PrunekitError(f"{where}: list file '{path}' line {number}: expected "
                                    f"'relative/path label', got {line.strip()!r}")
            entries.append((parts[0], int(parts[1]), number))
    if not entries:
        raise PrunekitError(f"{where}: list file '{path}' names no images")
    return entries


class ImageDataLayer(TransformingSource):
    """``type: "ImageData"``: batches of images listed in ``image_data_param.source``."""

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)
        ip = param.image_data_param
        self.source = ip.source
        self.root = ip.root_folder
        self.color = bool(ip.is_color)
        self.size = (int(ip.new_height), int(ip.new_width))
        if (self.size[0] > 0) != (self.size[1] > 0):
            raise PrunekitError(f"{self.where}: set new_height and new_width together "
                                f"(got {self.size[0]} and {self.size[1]})")
        self.shuffle = bool(ip.shuffle)
        self._rand_skip = int(ip.rand_skip)
        self._setup_transform(param, ip, int(ip.batch_size))
        self.lines = read_list_file(ip.source, self.where)
        self.maker = BatchMaker(FileDecoder(self.where, ip.source, ip.root_folder, self.color,
                                            self.size), self.transform, self.where)
        self.parallel = True
        self._set_top_shapes(self.maker.decoder(self.lines[0])[0].shape)

    def _order(self, epoch: int) -> np.ndarray | None:
        """The permutation of list entries used in ``epoch`` (None: list order)."""
        if not self.shuffle:
            return None
        return rng_for(self.seed, 1, epoch).permutation(len(self.lines))

    def _items(self, start: int) -> Iterator[list[tuple[str, int, int]]]:
        n, count = self.batch_size, len(self.lines)
        skip = self._skip(self._rand_skip)
        epoch, order = -1, None
        local = start
        while True:
            first = skip + self.global_batch(local) * n
            entries = []
            for position in range(first, first + n):
                if position // count != epoch:
                    epoch = position // count
                    order = self._order(epoch)
                index = position % count
                entries.append(self.lines[int(order[index]) if order is not None else index])
            yield entries
            local += 1
