"""Bad input: one clear line naming the file/layer/line and what was expected; exit 1; no
traceback; no partial snapshot left behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cli_helpers import LENET_DIR, run_cli
from prunekit import caffe


def _assert_clean_failure(proc, *needles: str) -> None:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr)


def _copy_lenet(folder: Path, transform=lambda text: text) -> Path:
    path = folder / "train_val.prototxt"
    path.write_text(transform((LENET_DIR / "train_val.prototxt").read_text()))
    return path


def test_prototxt_syntax_error_names_file_and_line(workdir: Path) -> None:
    lines = (LENET_DIR / "train_val.prototxt").read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if "num_output: 20" in line)
    lines[index] = "    num_output: twenty"
    (workdir / "bad.prototxt").write_text("\n".join(lines) + "\n")
    proc = run_cli(["test", "--model", "bad.prototxt", "--weights", "x.caffemodel"], workdir)
    _assert_clean_failure(proc, f"bad.prototxt:{index + 1}:")


def test_blob_shape_mismatch_names_layer_and_shapes(workdir: Path, lenet_fixture: Path) -> None:
    _copy_lenet(workdir, lambda t: t.replace("num_output: 500", "num_output: 400"))
    proc = run_cli(["test", "--model", "train_val.prototxt", "--iterations", "1",
                    "--weights", str(lenet_fixture / "baseline_lenet5.caffemodel")], workdir)
    _assert_clean_failure(proc, "layer 'ip1'", "[500, 800]", "[400, 800]")


def test_missing_lmdb_names_its_path(tmp_path: Path) -> None:
    _copy_lenet(tmp_path)
    proc = run_cli(["time", "--model", "train_val.prototxt", "--iterations", "1"], tmp_path)
    _assert_clean_failure(proc, "data/mnist/mnist_train_lmdb")


def test_unknown_layer_type_names_layer_and_type(workdir: Path) -> None:
    _copy_lenet(workdir, lambda t: t.replace('type: "Pooling"', 'type: "Poolling"', 1))
    proc = run_cli(["time", "--model", "train_val.prototxt", "--iterations", "1"], workdir)
    _assert_clean_failure(proc, "layer 'pool1'", "'Poolling'")


def test_missing_weights_file_is_named(workdir: Path) -> None:
    _copy_lenet(workdir)
    proc = run_cli(["test", "--model", "train_val.prototxt", "--weights", "nope.caffemodel"], workdir)
    _assert_clean_failure(proc, "nope.caffemodel")


def test_missing_snapshot_folder_fails_before_training(workdir: Path) -> None:
    _copy_lenet(workdir)
    (workdir / "solver.prototxt").write_text(
        'net: "train_val.prototxt"\nbase_lr: 0.01\nmax_iter: 5\nsnapshot_prefix: "nowhere/x"\n')
    proc = run_cli(["train", "--solver", "solver.prototxt"], workdir)
    _assert_clean_failure(proc, "nowhere")
    assert "Iteration" not in proc.stderr


def test_error_mid_run_leaves_no_partial_files(workdir: Path) -> None:
    """A resume whose history does not fit the net fails cleanly, and nothing half-written
    (no temporary file, no new snapshot) is left in the snapshot folder."""
    _copy_lenet(workdir)
    (workdir / "snap").mkdir()
    solver = 'net: "train_val.prototxt"\nbase_lr: 0.01\nmax_iter: 4\nsnapshot: 2\nsnapshot_prefix: "snap/a"\ntype: "{}"\n'
    (workdir / "solver.prototxt").write_text(solver.format("SGD"))
    run_cli(["train", "--solver", "solver.prototxt"], workdir, check=True)
    before = sorted(p.name for p in (workdir / "snap").iterdir())
    (workdir / "solver.prototxt").write_text(solver.format("Adam"))
    proc = run_cli(["train", "--solver", "solver.prototxt", "--snapshot", "snap/a_iter_2.solverstate"], workdir)
    _assert_clean_failure(proc, "a_iter_2.solverstate", "history")
    assert sorted(p.name for p in (workdir / "snap").iterdir()) == before


def test_sigint_stops_with_a_complete_snapshot(workdir: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    _copy_lenet(workdir)
    (workdir / "snap").mkdir()
    (workdir / "solver.prototxt").write_text(
        'net: "train_val.prototxt"\nbase_lr: 0.01\nmax_iter: 100000\ndisplay: 1\n'
        'snapshot_prefix: "snap/run"\n')
    proc = subprocess.Popen([sys.executable, "-m", "prunekit.cli", "train", "--solver",
                             "solver.prototxt"], cwd=workdir, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if "Iteration 3, loss" in line:
            break
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=120)[1]
    assert proc.returncode == 0, rest
    assert "Optimization stopped early." in rest
    models = list((workdir / "snap").glob("run_iter_*.caffemodel"))
    states = list((workdir / "snap").glob("run_iter_*.solverstate"))
    assert len(models) == 1 and len(states) == 1
    assert not [p for p in (workdir / "snap").iterdir() if p.name.endswith(".tmp")]
    assert caffe.read_solverstate(states[0]).iter >= 4
    blobs = caffe.layer_blobs(caffe.read_caffemodel(models[0]))
    assert blobs["conv1"][0].shape == (20, 1, 5, 5) and np.isfinite(blobs["conv1"][0]).all()
    time.sleep(0)


def test_conflicting_pruning_fields_are_refused(tmp_path: Path, lenet_fixture: Path) -> None:
    """prune_method and regularization_type must name the same method (the fork read one for
    the algorithm and the other for the unit, and failed silently when they differed)."""
    text = (lenet_fixture / "solver.prototxt").read_text()
    text = text.replace('regularization_type: "Reg_Col"', 'regularization_type: "Reg_Row"')
    (tmp_path / "solver.prototxt").write_text(text)
    proc = run_cli(["train", "--solver", "solver.prototxt"], tmp_path)
    _assert_clean_failure(proc, "solver.prototxt", "Reg_Row", "Reg_Col")


def test_single_dash_equals_flags_are_accepted(workdir: Path) -> None:
    _copy_lenet(workdir)
    proc = run_cli(["time", "-model=train_val.prototxt", "-iterations=1", "-phase=TEST"], workdir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Average Forward pass:" in proc.stderr
