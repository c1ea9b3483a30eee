"""Weight-matrix views of prunekit.prune.groups against explicit loops."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from prunekit.prune import groups as G


@pytest.fixture
def conv_w() -> torch.Tensor:
    """A group-2 conv weight: 6 filters, 3 input channels per group, 2×3 kernel."""
    torch.manual_seed(0)
    return torch.randn(6, 3, 2, 3)


@pytest.fixture
def ip_w() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(5, 7)


def _col(w, n, j):
    """Weight at row n, column j of the matrix view, by explicit index arithmetic."""
    k = w[0, 0].numel() if w.dim() > 2 else 1
    if w.dim() == 2:
        return w[n, j]
    c, pos = divmod(j, k)
    kw = w.shape[3]
    return w[n, c, pos // kw, pos % kw]


def test_sizes(conv_w, ip_w):
    assert (G.num_rows(conv_w), G.num_cols(conv_w), G.kernel_size(conv_w)) == (6, 18, 6)
    assert (G.num_rows(ip_w), G.num_cols(ip_w), G.kernel_size(ip_w)) == (5, 7, 1)


@pytest.mark.parametrize("which", ["conv", "ip"])
def test_l1_scores_match_loops(which, conv_w, ip_w):
    w = conv_w if which == "conv" else ip_w
    n, m = G.num_rows(w), G.num_cols(w)
    cols = torch.tensor([sum(abs(float(_col(w, r, j))) for r in range(n)) for j in range(m)])
    rows = torch.tensor([sum(abs(float(_col(w, r, j))) for j in range(m)) for r in range(n)])
    torch.testing.assert_close(G.column_l1(w), cols)
    torch.testing.assert_close(G.row_l1(w), rows)


def test_column_l1_per_group(conv_w):
    per = G.column_l1(conv_w, group=2)
    assert per.shape == (2, 18)
    for g in range(2):
        for j in range(18):
            want = sum(abs(float(_col(conv_w, r, j))) for r in range(3 * g, 3 * g + 3))
            assert per[g, j].item() == pytest.approx(want, rel=1e-5)
    torch.testing.assert_close(per.sum(0), G.column_l1(conv_w))


def test_masks_match_loops(conv_w):
    col_keep = torch.rand(18) > 0.5
    row_keep = torch.tensor([True, False, True, True, False, True])
    cm, rm = G.expand_col_mask(col_keep, conv_w), G.expand_row_mask(row_keep, conv_w)
    both = G.combined_mask(col_keep, row_keep, conv_w)
    assert cm.shape == rm.shape == both.shape == conv_w.shape and both.dtype == conv_w.dtype
    for n in range(6):
        for j in range(18):
            c, pos = divmod(j, 6)
            idx = (n, c, pos // 3, pos % 3)
            assert cm[idx] == float(col_keep[j])
            assert rm[idx] == float(row_keep[n])
            assert both[idx] == float(col_keep[j] and row_keep[n])


def test_per_group_column_mask(conv_w):
    keep = torch.ones(2, 18, dtype=torch.bool)
    keep[1, 4] = False  # column 4 only in group 1 (rows 3..5)
    m = G.expand_col_mask(keep, conv_w)
    zero = (m == 0).nonzero().tolist()
    assert sorted(zero) == sorted([[n, 0, 1, 1] for n in (3, 4, 5)])
    rows = torch.tensor([True, True, False, True, True, True])
    both = G.combined_mask(keep, rows, conv_w)
    torch.testing.assert_close(both, m * G.expand_row_mask(rows, conv_w))
    assert int((both == 0).sum()) == 18 + 3


def test_combined_mask_applies_with_one_multiply(ip_w):
    col_keep = torch.tensor([1, 0, 1, 1, 0, 1, 1], dtype=torch.float32)
    masked = ip_w * G.combined_mask(col_keep, None, ip_w)
    assert (masked[:, 1] == 0).all() and (masked[:, 4] == 0).all()
    torch.testing.assert_close(masked[:, 0], ip_w[:, 0])


def test_broadcast_views_share_storage(conv_w):
    factors = torch.arange(18, dtype=torch.float32)
    view = G.col_broadcast(factors, conv_w)
    assert view.shape == (1, 3, 2, 3) and view.data_ptr() == factors.data_ptr()
    assert G.row_broadcast(torch.arange(6.0), conv_w).shape == (6, 1, 1, 1)
    with pytest.raises(ValueError):
        G.expand_col_mask(torch.ones(17, dtype=torch.bool), conv_w)


def test_zero_groups_in_place(conv_w):
    w = conv_w.clone()
    ptr = w.data_ptr()
    G.zero_groups_(w, cols=[0, 7], rows=torch.tensor([2]))
    assert w.data_ptr() == ptr
    for n in range(6):
        for j in range(18):
            v = float(_col(w, n, j))
            if j in (0, 7) or n == 2:
                assert v == 0 and str(v) == "0.0"  # +0, not -0
            else:
                assert v == float(_col(conv_w, n, j))


def test_zero_groups_per_group_and_through_transposed_view(conv_w, ip_w):
    w = conv_w.clone()
    cols = torch.zeros(2, 18, dtype=torch.bool)
    cols[0, 5] = True
    G.zero_groups_(w, cols=cols)
    assert (w[:3, 0, 1, 2] == 0).all() and (w[3:, 0, 1, 2] != 0).all()
    # IP stored transposed ([K, N]): prune through the [N, K] view
    stored = ip_w.t().contiguous()
    G.zero_groups_(stored.t(), cols=[3], rows=[1])
    assert (stored[3, :] == 0).all() and (stored[:, 1] == 0).all()
    assert (stored[0, 0] == ip_w[0, 0])


def test_rebuild_from_zeros(conv_w):
    w = conv_w.clone()
    w[:, 1, 0, 2] = 0                # column 1·6+2 = 8, all rows
    w[:3, 2, 1, 0] = 0               # column 2·6+3 = 15, group 0 only
    w[:3, 0, 0, 0] = -0.0            # column 0, group 0, negative zero counts
    w[4] = 0                         # row 4 (also zeroes its group-1 part of every column)
    cols, rows = G.rebuild_from_zeros(w)
    assert cols.nonzero().flatten().tolist() == [8]
    assert rows.nonzero().flatten().tolist() == [4]
    per = G.zero_columns_per_group(w, 2)
    assert per[0].nonzero().flatten().tolist() == [0, 8, 15]
    assert per[1].nonzero().flatten().tolist() == [8]
    assert G.zero_column_count(w, 2) == pytest.approx(1 + 0.5 + 0.5)
    assert G.zero_column_count(w, 1) == 1
    w[0, 0, 0, 0] = float("nan")
    assert G.rebuild_from_zeros(w)[0].nonzero().flatten().tolist() == [8]


def test_channel_columns(conv_w):
    assert G.channel_of_column(13, conv_w) == 2
    assert G.columns_of_channel(1, conv_w) == slice(6, 12)
    cols = G.columns_of_channel(torch.tensor([0, 2]), conv_w)
    assert cols.tolist() == [0, 1, 2, 3, 4, 5, 12, 13, 14, 15, 16, 17]
    assert G.channel_of_column(cols, conv_w).tolist() == [0] * 6 + [2] * 6
    # the columns of a channel are exactly where the weight touches that channel
    w = torch.zeros_like(conv_w)
    w[:, 1] = 1
    touched = (G.column_l1(w) != 0).nonzero().flatten()
    assert touched.tolist() == list(range(18))[G.columns_of_channel(1, conv_w)]


def test_columns_of_channel_fc_follow_flatten_order():
    c, h, wd = 4, 3, 2
    x = torch.arange(c).float().view(1, c, 1, 1).expand(1, c, h, wd)
    flat = x.flatten(1)[0]
    for ch in range(c):
        where = (flat == ch).nonzero().flatten().tolist()
        assert where == list(range(c * h * wd))[G.columns_of_channel_fc(ch, h * wd)]
    assert G.columns_of_channel_fc([1, 3], 6).tolist() == list(range(6, 12)) + list(range(18, 24))


def test_zeroed_channel_columns_make_the_conv_blind_to_that_channel(conv_w):
    """Zero the columns of input channel 4 (= group 1, channel 1 within it) in group 1 only."""
    torch.manual_seed(2)
    x = torch.randn(1, 6, 5, 5)
    w = conv_w.clone()
    cols = torch.zeros(2, 18, dtype=torch.bool)
    cols[1, G.columns_of_channel(4 % 3, w)] = True
    G.zero_groups_(w, cols=cols)
    y = F.conv2d(x, w, groups=2)
    x2 = x.clone()
    x2[:, 4] += 10
    torch.testing.assert_close(F.conv2d(x2, w, groups=2), y)
    x2[:, 1] += 10  # channel 1 (group 0) is still read
    assert not torch.allclose(F.conv2d(x2, w, groups=2), y)
