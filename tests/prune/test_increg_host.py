"""increg_host: the compiled IncReg step and its NumPy twin give bit-identical numbers.

A run's numbers must not depend on whether the C module was built, so every output of every
step (running ranks, λ, crossers, the λ-fell entries, the gradient) is compared exactly over
runs long enough to prune most columns, with ties, both increment schemes and odd shapes.
"""

import numpy as np
import pytest

from prunekit.prune.increg import host as increg_host
from prunekit.prune.increg.math import increment_table, scheme2_kk

needs_c = pytest.mark.skipif(increg_host.BACKEND != "c", reason="C module not built")


def test_the_install_built_the_c_module():
    """pip install -e . compiles _increg_host (CI has gcc); without it runs are slower."""
    assert increg_host.BACKEND == "c"


def _run(backend_c: bool, rows: int, cols: int, steps: int, scheme: int, ties: bool, seed: int):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((rows, cols)).astype(np.float32)
    if ties:  # many equal column norms: the stable order decides
        w = np.round(w).astype(np.float32)
    h, reg = np.zeros(cols), np.zeros(cols)
    pruned = np.zeros(cols, dtype=bool)
    aa, target = 0.02, 0.5
    history = []
    target_count = max(int(cols * 0.75), 1)
    for step in range(1, steps + 1):
        n_p = target_count - int(pruned.sum())
        if n_p <= 0:
            break
        kw = ({"scheme": 1, "kk": 0.25} if scheme == 1
              else {"scheme": 2, "kk2": scheme2_kk(pruned.sum() / target_count)})
        table = increment_table(kw["scheme"], cols - int(pruned.sum()), n_p, aa, kw.get("kk"),
                                kw.get("kk2"), "<f8")
        grad = rng.standard_normal((rows, cols)).astype(np.float32)
        num, newly, reduced = increg_host.col_step(w, grad, h, reg, pruned, table, n_p, step, 0,
                                                   target, aa, kw, use_c=backend_c)
        history.append((num, newly.copy(), reduced, h.copy(), reg.copy(), grad))
        pruned = pruned | newly
        w = np.where(pruned, np.float32(0.0) * w, w)  # what IncReg's masks do to the weights
        w += np.float32(0.01) * rng.standard_normal((rows, cols)).astype(np.float32) * ~pruned
    return history


@needs_c
@pytest.mark.parametrize("rows,cols,scheme,ties", [
    (20, 25, 1, False), (50, 500, 1, False), (50, 500, 2, False), (7, 64, 1, True),
    (9, 1, 1, False), (3, 300, 2, True)])
def test_c_and_numpy_agree_bit_for_bit(rows, cols, scheme, ties):
    c = _run(True, rows, cols, 150, scheme, ties, seed=cols + rows)
    py = _run(False, rows, cols, 150, scheme, ties, seed=cols + rows)
    assert len(c) == len(py) > 10
    assert sum(step[0] for step in c) > 0, "the run should prune something"
    for step, (a, b) in enumerate(zip(c, py)):
        assert a[0] == b[0], f"step {step}: number pruned"
        np.testing.assert_array_equal(a[1], b[1], err_msg=f"step {step}: crossers")
        assert a[2] == b[2], f"step {step}: λ-fell entries"
        for k, what in ((3, "H"), (4, "λ"), (5, "grad")):
            assert a[k].tobytes() == b[k].tobytes(), f"step {step}: {what}"


@needs_c
def test_more_crossers_than_n_p_keeps_the_lowest_ranked():
    """With every λ just under the target, all cross at once; only n_p (lowest j) are pruned."""
    cols = 40
    w = np.tile(np.arange(cols, dtype=np.float32), (3, 1))  # column i has L1 3i: rank = i
    table = increment_table(1, cols, 5, 1.0, 0.25, None, "<f8")
    out = []
    for use_c in (True, False):
        h, reg = np.arange(cols, dtype=np.float64), np.full(cols, 9.99)
        num, newly, _ = increg_host.col_step(w, None, h, reg, np.zeros(cols, dtype=bool), table,
                                             5, 2, 0, 10.0, 1.0, {"scheme": 1, "kk": 0.25},
                                             use_c=use_c)
        out.append((num, np.flatnonzero(newly).tolist(), h.tobytes()))
    assert out[0] == out[1]
    assert out[0][0] == 5 and out[0][1] == [0, 1, 2, 3, 4]


@needs_c
def test_bad_arguments_are_errors_not_crashes():
    from prunekit.prune.increg import _increg_host
    h, reg = np.zeros(4), np.zeros(4)
    pruned, newly = np.zeros(4, dtype=bool), np.zeros(4, dtype=bool)
    table = np.ones(4)
    with pytest.raises(ValueError, match="whole number of rows"):
        _increg_host.col_step(np.zeros(6, np.float32), None, h, reg, pruned, table, newly,
                              1, 1, 0, 1.0)
    with pytest.raises(TypeError, match="item format"):
        _increg_host.col_step(np.zeros(8, np.float64), None, h, reg, pruned, table, newly,
                              1, 1, 0, 1.0)
    with pytest.raises(ValueError, match="table has 2 entries"):
        _increg_host.col_step(np.zeros(8, np.float32), None, h, reg, pruned, np.ones(2), newly,
                              1, 1, 0, 1.0)
