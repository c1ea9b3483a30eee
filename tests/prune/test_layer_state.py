"""PrunedLayer: λ and running ranks live on the host as float64 NumPy arrays, the pruned flags as
device tensors with a host copy refreshed whenever they change; snapshots keep the tensor format
every earlier snapshot used, and such snapshots load."""

from __future__ import annotations

import io

import numpy as np
import torch

from prunekit.prune.layer_state import PrunedLayer


def _layer(weight: torch.Tensor | None = None) -> PrunedLayer:
    if weight is None:
        weight = torch.arange(1.0, 1.0 + 4 * 3 * 2 * 2).reshape(4, 3, 2, 2)  # no zeros
    return PrunedLayer(name="conv", index=0, type="Convolution",
                       weight=torch.nn.Parameter(weight), blob_index=0, prune_ratio=0.5,
                       prune_ratio_step=0.1, if_update_row_col=False, current_prune_ratio=0.5)


def test_group_state_is_host_float64():
    layer = _layer()
    assert layer.reg is None
    layer.ensure_group_state("Col")
    assert isinstance(layer.reg, np.ndarray) and isinstance(layer.running_rank, np.ndarray)
    assert layer.reg.dtype == np.float64 and layer.running_rank.dtype == np.float64
    assert layer.reg.tolist() == [0.0] * 12 and layer.running_rank.tolist() == [0.0] * 12
    # a second call keeps what is there (a resume); another unit's size replaces it
    layer.reg[3] = 0.5
    layer.ensure_group_state("Col", reg_value=1.0)
    assert layer.reg[3] == 0.5
    layer.ensure_group_state("Row", reg_value=1.0)
    assert layer.reg.tolist() == [1.0] * 4 and layer.running_rank.tolist() == [0.0] * 4


def test_host_flags_follow_every_change():
    layer = _layer()
    assert layer.col_pruned_host.dtype == bool and not layer.col_pruned_host.any()
    assert layer.group_pruned_host("Row").shape == (4,)
    layer.prune("Col", torch.tensor([False, True] + [False] * 9 + [True]))
    assert np.flatnonzero(layer.group_pruned_host("Col")).tolist() == [1, 11]
    assert layer.num_pruned("Col") == 2 and layer.num_pruned_col == 2
    layer.prune("Row", np.array([2]))  # host indices work too
    assert np.flatnonzero(layer.row_pruned_host).tolist() == [2]
    assert layer.row_pruned.tolist() == [False, False, True, False]
    w = layer.weight.detach().reshape(4, 12)
    assert (w[:, [1, 11]] == 0).all() and (w[2] == 0).all()
    assert int((w == 0).sum()) == 4 * 2 + 12 - 2        # columns 1, 11 and row 2
    # the host copy is a copy: changing it by mistake does not touch the device flags
    layer.col_pruned_host[0] = True
    assert not bool(layer.col_pruned[0])


def test_rebuild_from_zeros_refreshes_host_flags():
    w = torch.ones(2, 3)
    w[:, 1] = 0
    layer = _layer(w)
    layer.rebuild_from_zeros()
    assert layer.col_pruned_host.tolist() == [False, True, False]
    assert layer.num_pruned_col == 1 and layer.num_pruned_row == 0


def test_apply_mask_only_when_something_is_pruned():
    layer = _layer()
    before = layer.weight.detach().clone()
    layer.apply_mask_()
    assert torch.equal(layer.weight.detach(), before)
    layer.prune("Col", torch.tensor([0]))
    with torch.no_grad():
        layer.weight.add_(1.0)                       # an update moved the pruned column
    layer.apply_mask_()
    assert (layer.weight.detach().reshape(4, 12)[:, 0] == 0).all()
    assert layer.weight.requires_grad


def _through_torch_save(state: dict) -> dict:
    """What a solverstate does with the hook state: torch.save, then a weights_only load."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)


def test_state_dict_round_trip_is_exact_and_tensor_only():
    layer = _layer()
    layer.ensure_group_state("Col")
    layer.reg = np.linspace(0.0, 0.1226, 12)
    layer.running_rank = np.arange(12.0)[::-1] / 3.0      # not representable exactly in decimal
    layer.prune("Col", torch.tensor([4, 7]))
    state = layer.state_dict()
    for key in ("col_pruned", "row_pruned", "reg", "running_rank"):
        assert isinstance(state[key], torch.Tensor) and state[key].device.type == "cpu", key
    assert state["reg"].dtype == torch.float64 and state["running_rank"].dtype == torch.float64
    loaded = _through_torch_save(state)

    other = _layer()
    other.load_state_dict(loaded)
    assert isinstance(other.reg, np.ndarray) and other.reg.dtype == np.float64
    assert np.array_equal(other.reg, layer.reg)                  # bit for bit
    assert np.array_equal(other.running_rank, layer.running_rank)
    assert np.flatnonzero(other.col_pruned_host).tolist() == [4, 7]
    assert other.num_pruned_col == 2
    # the loaded arrays are the layer's own: the state tensors do not alias them
    loaded["reg"][0] = 99.0
    assert other.reg[0] == 0.0
    # a later in-place change of the layer's arrays does not reach a state taken before
    layer.reg[1] = -1.0
    assert state["reg"][1].item() != -1.0


def test_loads_a_snapshot_written_with_tensor_state():
    # what PrunedLayer.state_dict wrote before λ and the ranks moved to the host
    old = {"col_pruned": torch.tensor([False, True] + [False] * 10),
           "row_pruned": torch.zeros(4, dtype=torch.bool),
           "current_prune_ratio": 0.3, "iter_prune_finished": 17,
           "reg": torch.full((12,), 0.25, dtype=torch.float64),
           "running_rank": torch.arange(12, dtype=torch.float64)}
    layer = _layer()
    layer.load_state_dict(_through_torch_save(old))
    assert layer.reg.tolist() == [0.25] * 12
    assert layer.running_rank.tolist() == [float(i) for i in range(12)]
    assert layer.current_prune_ratio == 0.3 and layer.iter_prune_finished == 17
    assert layer.col_pruned_host.tolist() == [False, True] + [False] * 10
    # a state without λ (written before the method started) keeps the layer's own
    layer.load_state_dict({k: v for k, v in old.items() if k not in ("reg", "running_rank")})
    assert layer.reg.tolist() == [0.25] * 12
