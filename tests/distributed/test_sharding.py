"""Per-rank sharding of the real data readers (LMDB ``Data``, ``ImageData``): no record read
twice or skipped in an epoch, and a read position that means the same for any number of ranks.
Also the launcher's choice of the number of ranks and its refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from prunekit.caffe import array_to_datum, caffe_pb2, parse_text
from prunekit.commands.train import world_size_for
from prunekit.data.data_layer import DataLayer
from prunekit.data.image_data_layer import ImageDataLayer
from prunekit.data.lmdb_io import write_lmdb
from prunekit.errors import PrunekitError
from prunekit.net.layers.base import TRAIN

RECORDS = 12
BATCH = 3


@pytest.fixture(scope="module")
def lmdb_path(tmp_path_factory) -> Path:
    """12 one-pixel Datums whose label is their record number."""
    path = tmp_path_factory.mktemp("shard") / "lmdb"
    values = [array_to_datum(np.full((1, 1, 1), i, np.uint8), i).SerializeToString()
              for i in range(RECORDS)]
    write_lmdb(path, zip([b"%08d" % i for i in range(RECORDS)], values))
    return path


def _data_layer(path: Path, rank: int, world: int, seed: int = 1) -> DataLayer:
    text = (f'name: "d" type: "Data" top: "data" top: "label" '
            f'data_param {{ source: "{path}" batch_size: {BATCH} prefetch: 0 }}')
    layer = DataLayer(parse_text(text, caffe_pb2.LayerParameter()), [], TRAIN)
    layer.set_seed(seed)
    layer.set_shard(rank, world)
    return layer


def _labels(layer, batches: int) -> list[int]:
    return [int(v) for _ in range(batches) for v in layer.next_batch()[1].tolist()]


@pytest.mark.parametrize("world", [2, 4])
def test_one_epoch_over_the_ranks_reads_every_record_once(lmdb_path: Path, world: int) -> None:
    per_rank = RECORDS // BATCH // world
    seen = [label for rank in range(world)
            for label in _labels(_data_layer(lmdb_path, rank, world), per_rank)]
    assert sorted(seen) == list(range(RECORDS))


def test_ranks_batch_k_is_the_single_process_iteration_k(lmdb_path: Path) -> None:
    """Rank 0's and rank 1's batch k = the two batches of a single iter_size-2 iteration k."""
    single = _labels(_data_layer(lmdb_path, 0, 1), 6)
    ranks = [_labels(_data_layer(lmdb_path, r, 2), 3) for r in (0, 1)]
    for k in range(3):
        assert ranks[0][k * BATCH:(k + 1) * BATCH] + ranks[1][k * BATCH:(k + 1) * BATCH] == \
            single[2 * k * BATCH:(2 * k + 2) * BATCH]


@pytest.mark.parametrize("new_world", [1, 3])
def test_saved_position_counts_all_ranks(lmdb_path: Path, new_world: int) -> None:
    """Two ranks read 2 batches each; the state says 4 batches, and any number of ranks
    resumes with batch 4 of the single-process sequence."""
    writers = [_data_layer(lmdb_path, r, 2) for r in (0, 1)]
    for layer in writers:
        _labels(layer, 2)
    state = writers[0].state_dict()
    assert state == writers[1].state_dict() == {"batches": 4, "seed": 1}
    single = _labels(_data_layer(lmdb_path, 0, 1), 4 + new_world)
    resumed = []
    for rank in range(new_world):
        layer = _data_layer(lmdb_path, rank, new_world)
        layer.load_state_dict(state)
        resumed += _labels(layer, 1)
    assert resumed == single[4 * BATCH:]


def test_image_data_shards_a_shuffled_epoch(tmp_path: Path) -> None:
    from PIL import Image

    names = []
    for i in range(RECORDS):
        Image.fromarray(np.full((2, 2), i, np.uint8)).save(tmp_path / f"{i}.png")
        names.append(f"{i}.png {i}")
    (tmp_path / "list.txt").write_text("\n".join(names) + "\n")
    text = (f'name: "d" type: "ImageData" top: "data" top: "label" image_data_param {{ '
            f'source: "{tmp_path / "list.txt"}" root_folder: "{tmp_path}/" batch_size: {BATCH} '
            f'shuffle: true is_color: false }}')
    seen = []
    for rank in (0, 1):
        layer = ImageDataLayer(parse_text(text, caffe_pb2.LayerParameter()), [], TRAIN)
        layer.set_seed(7)
        layer.set_shard(rank, 2)
        seen += _labels(layer, 2)
        layer.close()
    assert sorted(seen) == list(range(RECORDS))
    assert seen != list(range(RECORDS))  # shuffled, yet each image once


def test_number_of_ranks_from_the_flags() -> None:
    assert world_size_for(None, None) is None  # Caffe's single process, no process group
    assert world_size_for(None, 3) == 3
    assert world_size_for(None, 1) == 1  # the data-parallel path with one rank
    assert world_size_for("0,1", None) == 2  # without CUDA: 2 gloo processes, with a warning
    assert world_size_for("0", None) is None
    with pytest.raises(PrunekitError, match="--procs 3 but --gpu '0,1' names 2 GPUs"):
        world_size_for("0,1", 3)
    with pytest.raises(PrunekitError, match="--procs 0: expected a number of processes >= 1"):
        world_size_for(None, 0)
