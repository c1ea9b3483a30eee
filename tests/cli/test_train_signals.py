"""Caffe's -sigint_effect / -sighup_effect and SIGTERM's snapshot-then-stop, on a real
``prunekit train`` process; signals act between iterations, as in Caffe."""

from __future__ import annotations

import re
import signal
from pathlib import Path

from cli_helpers import run_cli
from prunekit import caffe
from tiny_solver import TINY_SOLVER, write_tiny
from train_process_helpers import start_train, wait_for

LONG = TINY_SOLVER.replace("max_iter: 4", "max_iter: 100000") + "snapshot_after_train: false\n"


def _states(folder: Path) -> dict[int, Path]:
    return {caffe.read_solverstate(p).iter: p for p in (folder / "snap").glob("*.solverstate")}


def test_sigterm_snapshots_then_stops_and_the_snapshot_resumes(tmp_path: Path) -> None:
    write_tiny(tmp_path, solver=LONG)
    proc = start_train(tmp_path)
    seen: list[str] = []
    wait_for(proc, "Iteration 3, loss", seen)
    proc.send_signal(signal.SIGTERM)
    rest = proc.communicate(timeout=120)[1]
    assert proc.returncode == 0, rest
    assert "SIGTERM received: stopping after iteration" in rest
    assert "Optimization stopped early." in rest
    states = _states(tmp_path)  # written although snapshot_after_train is false
    assert len(states) == 1, states
    (stopped_at, state), = states.items()
    assert stopped_at >= 4
    assert (tmp_path / "snap" / f"tiny_iter_{stopped_at}.caffemodel").is_file()
    assert not [p for p in (tmp_path / "snap").iterdir() if p.name.startswith(".")]

    solver = tmp_path / "solver.prototxt"
    solver.write_text(solver.read_text().replace("max_iter: 100000", f"max_iter: {stopped_at + 2}"))
    resumed = run_cli(["train", "--solver", "solver.prototxt", "--snapshot", str(state)],
                      tmp_path, check=True)
    iterations = [int(m) for m in re.findall(r"Iteration (\d+), loss", resumed.stderr)]
    # two iterations from where it stopped, then the final display line at max_iter
    assert iterations == [stopped_at, stopped_at + 1, stopped_at + 2], iterations


def test_sighup_snapshots_and_trains_on_then_sigint_stops(tmp_path: Path) -> None:
    """Caffe's defaults: SIGHUP snapshot, SIGINT stop (no final snapshot here, since
    snapshot_after_train is false)."""
    write_tiny(tmp_path, solver=LONG)
    proc = start_train(tmp_path)
    seen: list[str] = []
    wait_for(proc, "Iteration 2, loss", seen)
    proc.send_signal(signal.SIGHUP)
    wait_for(proc, "SIGHUP received: writing a snapshot", seen)
    hup_iter = int(re.search(r"Iteration (\d+), loss", "".join(seen[-40:])).group(1))
    wait_for(proc, f"Iteration {hup_iter + 3}, loss", seen)  # it trains on
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=120)[1]
    assert proc.returncode == 0, rest
    assert "Optimization stopped early." in rest
    states = _states(tmp_path)
    assert len(states) == 1 and min(states) >= hup_iter, states


def test_effect_none_ignores_the_signal(tmp_path: Path) -> None:
    write_tiny(tmp_path, solver=LONG)
    proc = start_train(tmp_path, "-sigint_effect", "none", "--sigterm_effect", "stop")
    seen: list[str] = []
    wait_for(proc, "Iteration 2, loss", seen)
    proc.send_signal(signal.SIGINT)
    wait_for(proc, "SIGINT received: ignored", seen)
    at = len(seen)
    wait_for(proc, "loss =", seen)  # still training after the SIGINT
    assert len(seen) > at
    proc.send_signal(signal.SIGTERM)
    rest = proc.communicate(timeout=120)[1]
    assert proc.returncode == 0 and "Optimization stopped early." in rest
    assert _states(tmp_path) == {}  # stop (not snapshot_stop) with snapshot_after_train false


def test_unknown_effect_is_refused(tmp_path: Path) -> None:
    write_tiny(tmp_path)
    proc = run_cli(["train", "--solver", "solver.prototxt", "--sighup_effect", "restart"],
                   tmp_path)
    assert proc.returncode == 2 and "invalid choice: 'restart'" in proc.stderr
