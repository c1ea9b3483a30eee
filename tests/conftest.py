"""Shared test helpers: where the real Caffe fixtures live (never copied into this repo)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = (REPO / ".." / "shared" / "fixtures").resolve()
LENET_FIXTURE = SHARED_FIXTURES / "caffe_increg_lenet5"


@pytest.fixture
def lenet_fixture() -> Path:
    """Folder with the Caffe_IncReg lenet5 train_val/solver prototxts and baseline caffemodel."""
    if not LENET_FIXTURE.is_dir():
        pytest.skip(f"shared fixtures not found at {LENET_FIXTURE}")
    return LENET_FIXTURE
