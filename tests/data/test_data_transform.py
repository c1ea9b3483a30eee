"""DataTransformer against hand-computed numpy results."""

from __future__ import annotations

import numpy as np
import pytest

from prunekit.caffe import array_to_blob, caffe_pb2, parse_text, write_binaryproto
from prunekit.data.transform import DataTransformer, batch_draws, merged_transform_param
from prunekit.errors import PrunekitError
from prunekit.net.layers.base import TEST, TRAIN

IMAGE = np.arange(2 * 5 * 7, dtype=np.uint8).reshape(2, 5, 7)  # C=2, H=5, W=7


def transformer(text: str, phase: int = TRAIN) -> DataTransformer:
    tp = parse_text(text, caffe_pb2.TransformationParameter())
    return DataTransformer(tp, phase, "layer 'd' (Data, TRAIN)")


def test_scale_and_single_mean_value_by_hand() -> None:
    x = np.array([[[10, 20, 30], [40, 50, 60]]], dtype=np.uint8)
    out = transformer("scale: 0.5 mean_value: 5")(x)
    expected = np.array([[[2.5, 7.5, 12.5], [17.5, 22.5, 27.5]]], dtype=np.float32)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)


def test_mean_value_per_channel() -> None:
    out = transformer("mean_value: 1 mean_value: 100")(IMAGE)
    np.testing.assert_array_equal(out[0], IMAGE[0].astype(np.float32) - 1)
    np.testing.assert_array_equal(out[1], IMAGE[1].astype(np.float32) - 100)


def test_centre_crop_in_test_phase() -> None:
    t = transformer("crop_size: 3", TEST)
    # offsets (5-3)//2 = 1 and (7-3)//2 = 2 whatever the draws say
    out = t(IMAGE, np.array([0.0, 0.99, 0.99]))
    np.testing.assert_array_equal(out, IMAGE[:, 1:4, 2:5].astype(np.float32))
    assert out[0, 0].tolist() == [9.0, 10.0, 11.0]


def test_mirror_applies_in_test_phase_too() -> None:
    """Caffe's DataTransformer mirrors whenever mirror: true, in TEST as in TRAIN."""
    t = transformer("crop_size: 3 mirror: true", TEST)
    flipped = t(IMAGE, np.array([0.0, 0.99, 0.99]))
    kept = t(IMAGE, np.array([0.9, 0.99, 0.99]))
    np.testing.assert_array_equal(kept, IMAGE[:, 1:4, 2:5].astype(np.float32))
    np.testing.assert_array_equal(flipped, kept[:, :, ::-1])


def test_random_crop_offsets_follow_draws() -> None:
    t = transformer("crop_size: 3")
    # rows: int(0.5 * 3) = 1; columns: int(0.99 * 5) = 4
    out = t(IMAGE, np.array([0.9, 0.5, 0.99]))
    np.testing.assert_array_equal(out, IMAGE[:, 1:4, 4:7].astype(np.float32))
    assert t.offsets(5, 7, np.array([0.0, 0.0, 0.0])) == (0, 0, False)


def test_mirror_flips_columns_after_crop() -> None:
    t = transformer("crop_size: 3 mirror: true")
    flipped = t(IMAGE, np.array([0.1, 0.0, 0.0]))
    np.testing.assert_array_equal(flipped, IMAGE[:, 0:3, 2::-1].astype(np.float32))
    assert flipped[0, 0].tolist() == [2.0, 1.0, 0.0]
    kept = t(IMAGE, np.array([0.6, 0.0, 0.0]))
    np.testing.assert_array_equal(kept, IMAGE[:, 0:3, 0:3].astype(np.float32))


def test_mean_file_cropped_at_data_offset_then_mirrored(tmp_path) -> None:
    mean = np.random.default_rng(0).uniform(0, 50, IMAGE.shape).astype(np.float32)
    path = tmp_path / "mean.binaryproto"
    write_binaryproto(path, array_to_blob(mean[None]))
    t = transformer(f'crop_size: 3 mirror: true scale: 0.25 mean_file: "{path}"')
    out = t(IMAGE, np.array([0.2, 0.7, 0.3]))  # rows int(0.7*3)=2, cols int(0.3*5)=1, flip
    crop = (IMAGE[:, 2:5, 1:4].astype(np.float32) - mean[:, 2:5, 1:4]) * np.float32(0.25)
    np.testing.assert_allclose(out, crop[:, :, ::-1], rtol=0, atol=1e-6)


@pytest.mark.parametrize("text, message", [
    ('mean_file: "m.binaryproto" mean_value: 3', "both mean_file and mean_value"),
    ("force_color: true force_gray: true", "force_color and force_gray"),
])
def test_conflicting_settings_are_errors(text: str, message: str) -> None:
    with pytest.raises(PrunekitError, match=message):
        transformer(text)


def test_shape_mismatches_are_errors(tmp_path) -> None:
    with pytest.raises(PrunekitError, match="3 mean_value entries for 2 channels"):
        transformer("mean_value: 1 mean_value: 2 mean_value: 3").output_shape(IMAGE.shape)
    with pytest.raises(PrunekitError, match="crop_size 6 is larger than the 5×7 image"):
        transformer("crop_size: 6").output_shape(IMAGE.shape)
    path = tmp_path / "mean.binaryproto"
    write_binaryproto(path, array_to_blob(np.zeros((1, 3, 5, 7), np.float32)))
    with pytest.raises(PrunekitError, match="mean.binaryproto"):
        transformer(f'mean_file: "{path}"')(IMAGE)
    with pytest.raises(PrunekitError, match="mean_file 'nowhere.binaryproto' not found"):
        transformer('mean_file: "nowhere.binaryproto"')


def test_output_shape_with_and_without_crop() -> None:
    assert transformer("").output_shape((2, 5, 7)) == (2, 5, 7)
    assert transformer("crop_size: 4").output_shape((2, 5, 7)) == (2, 4, 4)


def test_legacy_data_param_fields_are_merged() -> None:
    lp = parse_text("transform_param { mirror: true } data_param { scale: 0.5 crop_size: 3 "
                    "mirror: false }", caffe_pb2.LayerParameter())
    tp = merged_transform_param(lp.transform_param, lp.data_param)
    assert (tp.scale, tp.crop_size, tp.mirror) == (0.5, 3, True)


def test_draws_are_a_pure_function_of_seed_and_batch() -> None:
    a = batch_draws(7, 3, 5)
    assert a.shape == (5, 3) and (a >= 0).all() and (a < 1).all()
    np.testing.assert_array_equal(a, batch_draws(7, 3, 5))
    assert not np.array_equal(a, batch_draws(7, 4, 5))
    assert not np.array_equal(a, batch_draws(8, 3, 5))
