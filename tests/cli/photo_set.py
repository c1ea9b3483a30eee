"""A small ImageNet-style folder of real photos for the end-to-end tests.

scikit-learn ships two real JPEG photos (china.jpg, flower.jpg, 640x427). Random crops, scales and
flips of them, re-encoded with OpenCV, give JPEGs of varied sizes in folder-per-class layout
(``ROOT/<class>/<name>.JPEG``), the layout of ImageNet's train folder, so ``prunekit data list``,
``data imageset`` and ``data mean`` see what they would see on ImageNet, only far fewer files.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def _photos_bgr() -> list[np.ndarray]:
    from sklearn.datasets import load_sample_images

    return [img[:, :, ::-1].copy() for img in load_sample_images().images]  # RGB -> BGR


def _variant(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random crop (30-90% of each side), scaled by 0.4-1.2, flipped half the time."""
    h, w = photo.shape[:2]
    ch, cw = int(h * rng.uniform(0.3, 0.9)), int(w * rng.uniform(0.3, 0.9))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    crop = photo[y:y + ch, x:x + cw]
    s = rng.uniform(0.4, 1.2)
    out = cv2.resize(crop, (max(16, int(cw * s)), max(16, int(ch * s))), interpolation=cv2.INTER_AREA)
    return out[:, ::-1] if rng.random() < 0.5 else out


def make_photo_folder(root: Path, classes: int, per_class: int, seed: int) -> list[Path]:
    """Write ``classes`` folders n0000000k/ of ``per_class`` JPEGs under ``root``; returns the files.

    Class k draws from photo k % 2, so the classes differ in content, not only in name."""
    rng = np.random.default_rng(seed)
    photos = _photos_bgr()
    files = []
    for k in range(classes):
        folder = root / f"n{k:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            path = folder / f"n{k:08d}_{i}.JPEG"
            assert cv2.imwrite(str(path), np.ascontiguousarray(_variant(photos[k % 2], rng)))
            files.append(path)
    return files


def photo_variants(count: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    """``count`` BGR uint8 images of height x width in memory: square crops (60-400 pixels) of the
    two photos, resized, flipped half the time (for tests that write their own Datums)."""
    photos = _photos_bgr()
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        photo = photos[i % 2]
        side = int(rng.integers(60, 400))
        y, x = int(rng.integers(0, photo.shape[0] - side)), int(rng.integers(0, photo.shape[1] - side))
        image = cv2.resize(photo[y:y + side, x:x + side], (width, height),
                           interpolation=cv2.INTER_AREA)
        out.append(np.ascontiguousarray(image[:, ::-1]) if rng.random() < 0.5 else image)
    return out
