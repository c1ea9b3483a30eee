"""ImageData with real PNG files; DummyData and Input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from prunekit.data.dummy_data_layer import DummyDataLayer
from prunekit.data.image_data_layer import ImageDataLayer
from prunekit.data.input_layer import InputLayer
from prunekit.errors import PrunekitError
from prunekit.net.layers.base import TEST, TRAIN

# 5 images 4×6 (H×W); image i has R = 10 i + column, G = 100 + i, B = 200 - 10 i
RGB = [np.stack([np.tile(10 * i + np.arange(6), (4, 1)), np.full((4, 6), 100 + i),
                 np.full((4, 6), 200 - 10 * i)], axis=2).astype(np.uint8) for i in range(5)]


@pytest.fixture
def image_list(tmp_path):
    (tmp_path / "img").mkdir()
    for i, rgb in enumerate(RGB):
        Image.fromarray(rgb, "RGB").save(tmp_path / "img" / f"im {i}.png")  # a space in the name
    lines = [f"im {i}.png {i + 10}" for i in range(5)]
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n\n")
    return tmp_path


def image_text(root, batch: int = 2, extra: str = "", transform: str = "") -> str:
    return (f'name: "img" type: "ImageData" top: "data" top: "label" '
            f'transform_param {{ {transform} }} image_data_param {{ source: "{root}/list.txt" '
            f'root_folder: "{root}/img/" batch_size: {batch} {extra} }}')


def take(layer, count: int) -> list[list[torch.Tensor]]:
    out = [layer.next_batch() for _ in range(count)]
    layer.close()
    return out


def bgr(i: int) -> np.ndarray:
    return RGB[i][:, :, ::-1].transpose(2, 0, 1).astype(np.float32)


def test_list_order_bgr_values_and_wraparound(image_list, layer_param) -> None:
    layer = ImageDataLayer(layer_param(image_text(image_list)), [], TEST)
    assert layer.top_shapes() == [(2, 3, 4, 6), (2,)]
    got = take(layer, 3)
    order = [0, 1, 2, 3, 4, 0]
    for b, (data, label) in enumerate(got):
        for k in range(2):
            np.testing.assert_array_equal(data[k].numpy(), bgr(order[2 * b + k]))
        assert label.tolist() == [order[2 * b] + 10, order[2 * b + 1] + 10]


def test_gray_and_resize(image_list, layer_param) -> None:
    text = image_text(image_list, 1, "is_color: false new_height: 2 new_width: 3")
    layer = ImageDataLayer(layer_param(text), [], TEST)
    assert layer.top_shapes()[0] == (1, 1, 2, 3)
    data = take(layer, 1)[0][0][0, 0].numpy()
    # OpenCV's own gray reading (Caffe's imread), which differs from PIL's convert("L") by up to 1
    gray = cv2.imread(str(image_list / "img" / "im 0.png"), cv2.IMREAD_GRAYSCALE).astype(np.float64)
    # halving both sides bilinearly with half-pixel centres = the mean of each 2×2 block
    blocks = gray.reshape(2, 2, 3, 2).mean(axis=(1, 3))
    assert np.abs(data - blocks).max() <= 0.5 + 1e-9


def test_shuffle_is_a_seeded_permutation_per_epoch(image_list, layer_param) -> None:
    def labels(seed: int) -> list[int]:
        layer = ImageDataLayer(layer_param(image_text(image_list, 5, "shuffle: true")), [],
                               TRAIN)
        layer.set_seed(seed)
        return [b[1].tolist() for b in take(layer, 4)]

    epochs = labels(3)
    assert all(sorted(e) == [10, 11, 12, 13, 14] for e in epochs)
    assert len({tuple(e) for e in epochs}) > 1  # reshuffled every epoch
    assert labels(3) == epochs and labels(4) != epochs


def test_resume_with_shuffle_crop_and_mirror(image_list, layer_param) -> None:
    text = image_text(image_list, 3, "shuffle: true", "crop_size: 3 mirror: true")
    first = ImageDataLayer(layer_param(text), [], TRAIN)
    first.set_seed(9)
    take(first, 2)
    state = first.state_dict()
    expected = take(first, 4)
    resumed = ImageDataLayer(layer_param(text), [], TRAIN)
    resumed.load_state_dict(state)
    for a, b in zip(expected, take(resumed, 4)):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_missing_image_names_the_list_line(image_list, layer_param) -> None:
    (image_list / "img" / "im 3.png").unlink()
    layer = ImageDataLayer(layer_param(image_text(image_list)), [], TRAIN)
    layer.next_batch()
    with pytest.raises(PrunekitError, match=r"layer 'img' \(ImageData, TRAIN\): image "
                                            r"'.*im 3.png' \(list file '.*list.txt' line 4\) "
                                            "not found"):
        layer.next_batch()
    layer.close()


def test_bad_list_files(tmp_path, layer_param) -> None:
    text = image_text(tmp_path)
    with pytest.raises(PrunekitError, match="image list file '.*list.txt' not found"):
        ImageDataLayer(layer_param(text), [], TRAIN)
    (tmp_path / "list.txt").write_text("a.png 1\nb.png\n")
    with pytest.raises(PrunekitError, match="line 2: expected 'relative/path label'"):
        ImageDataLayer(layer_param(text), [], TRAIN)
    (tmp_path / "list.txt").write_text("a.png 1\n")
    bad_size = text.replace("batch_size: 2", "batch_size: 2 new_height: 5")
    with pytest.raises(PrunekitError, match="new_height and new_width together"):
        ImageDataLayer(layer_param(bad_size), [], TRAIN)


def test_dummy_data_constant_and_legacy_shapes(layer_param) -> None:
    layer = DummyDataLayer(layer_param(
        'name: "dd" type: "DummyData" top: "a" top: "b" dummy_data_param { '
        'num: 2 channels: 3 channels: 1 height: 4 width: 5 '
        'data_filler { type: "constant" value: 3 } }'), [], TRAIN)
    assert layer.top_shapes() == [(2, 3, 4, 5), (2, 1, 4, 5)]
    a, b = layer.next_batch()
    assert (a == 3).all() and (b == 3).all()
    a.add_(1)  # a consumer writing into a top must not change the next batch
    assert (layer.next_batch()[0] == 3).all()


def test_dummy_data_refills_deterministically(layer_param) -> None:
    text = ('name: "dd" type: "DummyData" top: "x" top: "y" dummy_data_param { '
            'shape { dim: 4 dim: 8 } data_filler { type: "uniform" min: 2 max: 3 } '
            'data_filler { type: "constant" value: 1 } }')

    def run(seed: int) -> list[list[torch.Tensor]]:
        layer = DummyDataLayer(layer_param(text), [], TRAIN)
        layer.set_seed(seed)
        return [layer.next_batch() for _ in range(3)]

    torch.manual_seed(0)
    before = torch.rand(1)
    first = run(1)
    torch.manual_seed(0)
    run(1)
    assert torch.equal(torch.rand(1), before)  # the global torch RNG is left alone
    x0, y0 = first[0]
    assert x0.shape == (4, 8) and ((x0 >= 2) & (x0 <= 3)).all() and (y0 == 1).all()
    assert not torch.equal(first[0][0], first[1][0])  # uniform tops are refilled each batch
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, run(1)))
    assert not torch.equal(first[0][0], run(2)[0][0])


def test_dummy_data_without_filler_is_zeros_and_checks_counts(layer_param) -> None:
    layer = DummyDataLayer(layer_param('name: "dd" type: "DummyData" top: "x" '
                                       'dummy_data_param { shape { dim: 2 dim: 3 } }'), [], TEST)
    assert torch.equal(layer.next_batch()[0], torch.zeros(2, 3))
    with pytest.raises(PrunekitError, match="2 data_filler entries for 3 tops"):
        DummyDataLayer(layer_param(
            'name: "dd" type: "DummyData" top: "a" top: "b" top: "c" dummy_data_param { '
            'shape { dim: 1 } data_filler { type: "constant" } data_filler { type: "constant" }'
            ' }'), [], TEST)
    with pytest.raises(PrunekitError, match="not both"):
        DummyDataLayer(layer_param('name: "dd" type: "DummyData" top: "x" dummy_data_param { '
                                   'shape { dim: 1 } num: 1 }'), [], TEST)


def test_input_layer_zeros_then_given_tensors(layer_param) -> None:
    layer = InputLayer(layer_param('name: "in" type: "Input" top: "data" top: "im_info" '
                                   'input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } '
                                   'shape { dim: 1 dim: 3 } }'), [], TEST)
    assert layer.top_shapes() == [(1, 3, 8, 8), (1, 3)]
    data, info = layer.next_batch()
    assert torch.equal(data, torch.zeros(1, 3, 8, 8)) and info.shape == (1, 3)
    given = [torch.ones(1, 3, 8, 8), torch.full((1, 3), 2.0)]
    layer.set_inputs(given)
    assert all(a is b for a, b in zip(layer.next_batch(), given))
    assert all(a is b for a, b in zip(layer.next_batch(), given))
    with pytest.raises(PrunekitError, match="got 1 inputs for 2 tops"):
        layer.set_inputs(given[:1])
    with pytest.raises(PrunekitError, match="2 shapes for 3 tops"):
        InputLayer(layer_param('name: "in" type: "Input" top: "a" top: "b" top: "c" '
                               'input_param { shape { dim: 1 } shape { dim: 2 } }'), [], TEST)
