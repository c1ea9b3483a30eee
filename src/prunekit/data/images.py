"""Image decoding as Caffe does it, with OpenCV: CHW uint8, colour channels in BGR order.

Caffe decodes encoded Datums with ``cv::imdecode`` and reads ImageData files with ``cv::imread``
+ ``cv::resize`` (bilinear, ``INTER_LINEAR``); calling the same OpenCV functions gives the same
pixels (a different JPEG decoder, e.g. PIL's, can differ by a grey level here and there). Colour
nets therefore expect B, G, R channel order, and means such as 103.939/116.779/123.68 are BGR.
"""

from __future__ import annotations

import os

import cv2
import numpy as np


def _flag(color: bool | None) -> int:
    """OpenCV read flag: 3-channel BGR (True), 1-channel (False), the file's own (None).

    None keeps gray images gray and colour images BGR; an alpha channel or 16-bit depth is
    dropped (Caffe's native decode would keep them, which its transformer cannot use either).
    """
    if color is None:
        return cv2.IMREAD_ANYCOLOR
    return cv2.IMREAD_COLOR if color else cv2.IMREAD_GRAYSCALE


def hwc_to_chw(image: np.ndarray) -> np.ndarray:
    """OpenCV's H×W(×C) array -> a C×H×W view (no copy; callers crop before copying)."""
    return image[None] if image.ndim == 2 else image.transpose(2, 0, 1)


def decode_image(data: bytes, color: bool | None = None) -> np.ndarray:
    """Decode encoded image bytes (JPEG, PNG, ...) to CHW uint8 with ``cv2.imdecode``.

    Raises ValueError when the bytes are not a decodable image.
    """
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), _flag(color))
    if image is None:
        raise ValueError("not a decodable image (corrupt or unknown format)")
    return hwc_to_chw(image)


def load_image(path: str | os.PathLike, color: bool, height: int = 0, width: int = 0) -> np.ndarray:
    """Read an image file to CHW uint8, resized to height×width pixels when both are > 0
    (Caffe's ReadImageToCVMat). Raises FileNotFoundError / OSError for a missing or bad file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(str(path))
    with open(path, "rb") as handle:
        data = handle.read()
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), _flag(color))
    if image is None:
        raise OSError(f"'{path}' is not a decodable image")
    if height > 0 and width > 0 and image.shape[:2] != (height, width):
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    return hwc_to_chw(image)

