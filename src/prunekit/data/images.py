"""Image decoding with OpenCV's conventions: CHW uint8, colour channels in BGR order.

Caffe reads images with OpenCV, so colour nets expect B, G, R channel order and means such as
103.939/116.779/123.68 are BGR. Resizing is bilinear with half-pixel centres (cv::INTER_LINEAR).
"""

from __future__ import annotations

import io
import os

import numpy as np
import torch
from PIL import Image

_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "F"}


def pil_to_chw(image: Image.Image, color: bool | None) -> np.ndarray:
    """PIL image -> CHW uint8: 3 channels BGR (color True), 1 channel (False), native (None)."""
    if color is None:
        color = image.mode not in _GRAY_MODES
    if not color:
        return np.asarray(image.convert("L"), dtype=np.uint8)[None].copy()
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1].transpose(2, 0, 1))


def decode_image(data: bytes, color: bool | None = None) -> np.ndarray:
    """Decode encoded image bytes (JPEG, PNG, ...) to CHW uint8; see :func:`pil_to_chw`."""
    with Image.open(io.BytesIO(data)) as image:
        return pil_to_chw(image, color)


def load_image(path: str | os.PathLike, color: bool, height: int = 0, width: int = 0) -> np.ndarray:
    """Read an image file to CHW uint8, resized to height×width pixels when both are > 0.

    Raises OSError when the file is missing or not an image.
    """
    with Image.open(path) as image:
        chw = pil_to_chw(image, color)
    if height > 0 and width > 0 and chw.shape[1:] != (height, width):
        chw = resize_bilinear(chw, height, width)
    return chw


def resize_bilinear(chw: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a CHW uint8 image to height×width pixels, rounded like OpenCV."""
    tensor = torch.from_numpy(chw.astype(np.float32))[None]
    out = torch.nn.functional.interpolate(tensor, size=(height, width), mode="bilinear",
                                          align_corners=False, antialias=False)
    return out[0].round().clamp(0, 255).to(torch.uint8).numpy()
