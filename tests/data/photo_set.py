"""Small real-photo images for the data tests: crops, scales and flips of scikit-learn's two
sample photos (real JPEG content, so decoding does real work), BGR H×W×3 uint8."""

from __future__ import annotations

import cv2
import numpy as np


def photo_variants(count: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    from sklearn.datasets import load_sample_images

    photos = [np.ascontiguousarray(p[:, :, ::-1]) for p in load_sample_images().images]
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
