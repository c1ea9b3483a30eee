"""LMDB I/O and the Data layer on real LMDB folders."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from prunekit.caffe import array_to_datum
from prunekit.data.data_layer import DataLayer
from prunekit.data.lmdb_io import LmdbReader, write_lmdb
from prunekit.errors import PrunekitError
from prunekit.net.layers.base import TEST, TRAIN

COUNT = 10
IMAGES = [np.full((1, 2, 3), 10 * i, np.uint8) + np.arange(6, dtype=np.uint8).reshape(1, 2, 3)
          for i in range(COUNT)]
LABELS = [i % 4 for i in range(COUNT)]


def data_text(source, batch: int = 4, extra: str = "", transform: str = "",
              tops: str = 'top: "data" top: "label"') -> str:
    return (f'name: "d" type: "Data" {tops} transform_param {{ {transform} }} '
            f'data_param {{ source: "{source}" batch_size: {batch} backend: LMDB {extra} }}')


@pytest.fixture
def small_lmdb(tmp_path, datum_lmdb):
    # written in shuffled key order: the reader must still walk keys in sorted order
    order = [3, 7, 0, 9, 1, 5, 2, 8, 6, 4]
    return datum_lmdb(tmp_path / "small_lmdb", [IMAGES[i] for i in order],
                      [LABELS[i] for i in order], keys=[b"%08d" % i for i in order])


def batches(layer, count: int) -> list[list[torch.Tensor]]:
    out = [layer.next_batch() for _ in range(count)]
    layer.close()
    return out


def test_write_and_read_in_key_order_with_wraparound(tmp_path) -> None:
    items = [(b"b", b"2"), (b"a", b"1"), (b"c", b"3")]
    assert write_lmdb(tmp_path / "db", items) == 3
    reader = LmdbReader(tmp_path / "db")
    assert len(reader) == 3 and reader.keys() == [b"a", b"b", b"c"]
    assert list(reader.items()) == sorted(items)
    records = reader.records(2)
    assert [next(records)[1] for _ in range(5)] == [b"3", b"1", b"2", b"3", b"1"]
    records.close()
    reader.close()


def test_write_grows_the_map_and_replaces_atomically(tmp_path) -> None:
    big = [(b"%04d" % i, bytes(4096)) for i in range(100)]  # 400 KiB into a 64 KiB map
    write_lmdb(tmp_path / "db", big, map_size=1 << 16)
    assert len(LmdbReader(tmp_path / "db")) == 100
    write_lmdb(tmp_path / "db", [(b"x", b"y")])
    assert list(LmdbReader(tmp_path / "db").items()) == [(b"x", b"y")]

    def failing():
        yield b"k", b"v"
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        write_lmdb(tmp_path / "other", failing())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db"]


def test_batches_follow_key_order_and_wrap(small_lmdb, layer_param) -> None:
    layer = DataLayer(layer_param(data_text(small_lmdb, transform="scale: 0.5")), [], TRAIN)
    assert layer.top_shapes() == [(4, 1, 2, 3), (4,)]
    got = batches(layer, 4)
    for b, (data, label) in enumerate(got):
        index = [(b * 4 + i) % COUNT for i in range(4)]  # batch 2 is records 8, 9, 0, 1
        expected = np.stack([IMAGES[i] for i in index]).astype(np.float32) * 0.5
        np.testing.assert_array_equal(data.numpy(), expected)
        assert label.dtype == torch.float32 and label.tolist() == [LABELS[i] for i in index]


def test_single_top_and_crop_shapes(small_lmdb, layer_param) -> None:
    layer = DataLayer(layer_param(data_text(small_lmdb, 3, transform="crop_size: 2",
                                            tops='top: "data"')), [], TEST)
    assert layer.top_shapes() == [(3, 1, 2, 2)]
    (data,) = batches(layer, 1)[0]
    np.testing.assert_array_equal(data[0, 0].numpy(), IMAGES[0][0, :, 0:2])  # centre: w0 = 0


@pytest.mark.parametrize("prefetch", [0, 1, 3])
def test_prefetch_does_not_change_batches(small_lmdb, layer_param, prefetch: int) -> None:
    aug = "crop_size: 2 mirror: true"
    reference = DataLayer(layer_param(data_text(small_lmdb, 3, "prefetch: 0", aug)), [], TRAIN)
    reference.set_seed(11)
    other = DataLayer(layer_param(data_text(small_lmdb, 3, f"prefetch: {prefetch}", aug)), [],
                      TRAIN)
    other.set_seed(11)
    for a, b in zip(batches(reference, 7), batches(other, 7)):
        assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_resume_gives_identical_random_batches(small_lmdb, layer_param) -> None:
    text = data_text(small_lmdb, 3, "prefetch: 2", "crop_size: 2 mirror: true")
    first = DataLayer(layer_param(text), [], TRAIN)
    first.set_seed(5)
    batches(first, 3)
    state = first.state_dict()
    assert state == {"batches": 3, "seed": 5}
    rest = [first.next_batch() for _ in range(5)]  # prefetched far beyond what is consumed
    first.close()

    resumed = DataLayer(layer_param(text), [], TRAIN)
    resumed.set_seed(0)
    resumed.load_state_dict(state)
    for a, b in zip(rest, batches(resumed, 5)):
        assert all(torch.equal(x, y) for x, y in zip(a, b))

    first.load_state_dict(state)  # rewinding a running layer restarts its prefetch cleanly
    for a, b in zip(rest, batches(first, 5)):
        assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_random_crops_and_mirrors_depend_on_seed(small_lmdb, layer_param) -> None:
    text = data_text(small_lmdb, 10, "", "crop_size: 2 mirror: true")
    outs = []
    for seed in (1, 2):
        layer = DataLayer(layer_param(text), [], TRAIN)
        layer.set_seed(seed)
        outs.append(batches(layer, 2))
    assert not torch.equal(outs[0][0][0], outs[1][0][0])
    assert not torch.equal(outs[0][0][0], outs[0][1][0])  # same records, new draws per batch


def test_shards_interleave_batches(small_lmdb, layer_param) -> None:
    whole = DataLayer(layer_param(data_text(small_lmdb, 2)), [], TRAIN)
    expected = [b[1].tolist() for b in batches(whole, 6)]
    for rank in (0, 1):
        layer = DataLayer(layer_param(data_text(small_lmdb, 2)), [], TRAIN)
        layer.set_shard(rank, 2)
        assert [b[1].tolist() for b in batches(layer, 3)] == expected[rank::2]


def test_train_and_test_layers_share_one_lmdb(small_lmdb, layer_param) -> None:
    train = DataLayer(layer_param(data_text(small_lmdb)), [], TRAIN)
    test = DataLayer(layer_param(data_text(small_lmdb)), [], TEST)  # LMDB allows one env each
    assert torch.equal(batches(train, 1)[0][0], batches(test, 1)[0][0])
    del train
    assert batches(test, 2)[1][1].tolist() == [LABELS[i] for i in (8, 9, 0, 1)]  # batch 2


def test_close_stops_the_prefetch_thread(small_lmdb, layer_param) -> None:
    layer = DataLayer(layer_param(data_text(small_lmdb, 2, "prefetch: 2")), [], TRAIN)
    layer.next_batch()
    assert any(t.name == "prefetch d" for t in threading.enumerate())
    layer.close()
    assert not any(t.name == "prefetch d" for t in threading.enumerate())


def test_torch_state_dict_of_a_parent_is_unaffected(small_lmdb, layer_param) -> None:
    parent = torch.nn.Module()
    parent.add_module("d", DataLayer(layer_param(data_text(small_lmdb)), [], TRAIN))
    parent.add_module("fc", torch.nn.Linear(2, 2))
    assert sorted(parent.state_dict()) == ["fc.bias", "fc.weight"]


def test_encoded_records_and_force_gray(tmp_path, datum_lmdb, layer_param) -> None:
    bgr = np.stack([np.full((4, 5), v, np.uint8) for v in (10, 100, 200)])
    path = datum_lmdb(tmp_path / "png_lmdb", [bgr], [3], encode="png")
    colour = DataLayer(layer_param(data_text(path, 1)), [], TEST)
    np.testing.assert_array_equal(batches(colour, 1)[0][0][0].numpy(), bgr)
    gray = DataLayer(layer_param(data_text(path, 1, transform="force_gray: true")), [], TEST)
    assert gray.top_shapes()[0] == (1, 1, 4, 5)
    luma = round(0.299 * 200 + 0.587 * 100 + 0.114 * 10)  # R=200, G=100, B=10
    assert abs(batches(gray, 1)[0][0][0, 0, 0, 0].item() - luma) <= 1


def test_bad_record_error_reaches_the_caller(tmp_path, layer_param) -> None:
    good = array_to_datum(IMAGES[0], 0).SerializeToString()
    path = tmp_path / "db"
    write_lmdb(path, [(b"00000000", good), (b"00000001", good), (b"00000002", b"\xff junk")])
    layer = DataLayer(layer_param(data_text(path, 2, "prefetch: 2")), [], TRAIN)
    layer.next_batch()
    with pytest.raises(PrunekitError, match="layer 'd' \\(Data, TRAIN\\).*00000002"):
        layer.next_batch()
    layer.close()


def test_missing_lmdb_names_layer_path_and_fix(tmp_path, layer_param) -> None:
    source = tmp_path / "mnist" / "mnist_train_lmdb"
    with pytest.raises(PrunekitError) as info:
        DataLayer(layer_param(data_text(source)), [], TRAIN)
    message = str(info.value)
    assert message.startswith("layer 'd' (Data, TRAIN): LMDB not found at")
    assert str(source) in message
    assert f"prunekit data mnist --out {source.parent}" in message


def test_not_an_lmdb_empty_lmdb_and_leveldb(tmp_path, layer_param) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(PrunekitError, match="'.*plain' is not an LMDB folder"):
        DataLayer(layer_param(data_text(tmp_path / "plain")), [], TEST)
    write_lmdb(tmp_path / "empty", [])
    with pytest.raises(PrunekitError, match="has no records"):
        DataLayer(layer_param(data_text(tmp_path / "empty")), [], TEST)
    text = data_text(tmp_path / "x").replace("backend: LMDB", "backend: LEVELDB")
    with pytest.raises(PrunekitError, match="layer 'd' \\(Data, TRAIN\\): backend LEVELDB is not "
                                            "supported; only LMDB"):
        DataLayer(layer_param(text), [], TRAIN)


def test_unset_backend_means_lmdb(small_lmdb, layer_param) -> None:
    text = data_text(small_lmdb).replace("backend: LMDB", "")
    assert DataLayer(layer_param(text), [], TRAIN).top_shapes()[0] == (4, 1, 2, 3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="pinned memory needs CUDA")
def test_batches_are_pinned_when_cuda_is_available(small_lmdb, layer_param) -> None:
    layer = DataLayer(layer_param(data_text(small_lmdb)), [], TRAIN)
    assert all(t.is_pinned() for t in batches(layer, 1)[0])
