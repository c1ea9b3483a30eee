"""Image files to Datum payloads with OpenCV, the way Caffe's convert_imageset does it.

Caffe's ``ReadImageToDatum`` reads with ``cv::imread`` (colour: 3 channels BGR; ``--gray``: one
channel), resizes with ``cv::resize`` (bilinear, ``INTER_LINEAR``) only when both height and width
are > 0, and stores CHW bytes. With an encoding it keeps the file's own bytes when the image needs
no resize and the file's extension already is that encoding; otherwise it re-encodes the decoded
(and resized) image with ``cv::imencode`` at OpenCV's defaults (JPEG quality 95). Using the same
OpenCV calls makes the bytes the same as Caffe's (checked against real Caffe output in
tests/cli/test_data_imageset_cli.py).
"""

from __future__ import annotations

import cv2
import numpy as np

from prunekit.data.images import hwc_to_chw
from prunekit.errors import PrunekitError

ENCODINGS = ("jpg", "jpeg", "png")


def quiet_opencv() -> None:
    """One OpenCV thread (worker processes parallelise instead) and no warnings on stderr
    (a corrupt file is reported once, by the caller, with its list line)."""
    cv2.setNumThreads(1)
    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    except AttributeError:  # very old OpenCV builds lack the logging module
        pass


def read_image(path: str, color: bool, height: int = 0, width: int = 0) -> np.ndarray | None:
    """HWC (colour, BGR) or HW (gray) uint8 pixels, resized when height and width are > 0;
    None when the file is missing or not a decodable image (Caffe skips it)."""
    image = cv2.imread(path, cv2.IMREAD_COLOR if color else cv2.IMREAD_GRAYSCALE)
    if image is None:
        return None
    if height > 0 and width > 0:
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    return image


def matches_extension(path: str, encoding: str) -> bool:
    """Caffe's matchExt: the file's extension (lower case) is ``encoding`` (jpeg counts as jpg)."""
    ext = path.rsplit(".", 1)[-1].lower()
    encoding = encoding.lower()
    return ext == encoding or (encoding == "jpg" and ext == "jpeg")


def encode_image(image: np.ndarray, encoding: str, where: str) -> bytes:
    """Re-encode pixels as ``encoding`` (jpg, jpeg or png) with OpenCV's default settings."""
    try:
        ok, buffer = cv2.imencode("." + encoding, image)
    except cv2.error as err:
        ok, buffer = False, err
    if not ok:
        raise PrunekitError(f"{where}: OpenCV cannot encode the image as {encoding}: {buffer}")
    return buffer.tobytes()


def read_file_bytes(path: str) -> bytes | None:
    """The file's bytes (Caffe's ReadFileToDatum); None when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def decode_native(data: bytes) -> np.ndarray | None:
    """Decode an encoded Datum as Caffe's DecodeDatumNative (``imdecode`` flag -1: channels as
    stored, no EXIF rotation); CHW uint8, or None when the bytes are no image."""
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        return None
    return np.ascontiguousarray(hwc_to_chw(image))

