"""End-to-end fixtures: scratch folders with real MNIST LMDBs made by the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_helpers import run_cli


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory) -> Path:
    """A folder holding data/mnist/{mnist_train_lmdb,mnist_test_lmdb} made by the real CLI."""
    root = tmp_path_factory.mktemp("mnist_root")
    run_cli(["data", "mnist", "--out", "data/mnist"], root, check=True)
    return root


@pytest.fixture
def workdir(tmp_path: Path, mnist_root: Path) -> Path:
    """A scratch folder whose data/mnist points at the shared LMDBs."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mnist").symlink_to(mnist_root / "data" / "mnist")
    return tmp_path
