"""``prunekit data mnist --out DIR [--idx-dir D]``: make the MNIST LMDBs the lenet5 experiment reads."""

from __future__ import annotations

from pathlib import Path

from prunekit.log import get_logger


def run_data_mnist(out: str, idx_dir: str | None = None) -> int:
    from prunekit.data.mnist import make_mnist_lmdbs

    train, test = make_mnist_lmdbs(Path(out), Path(idx_dir) if idx_dir else None)
    log = get_logger()
    log.info("Wrote %s", train)
    log.info("Wrote %s", test)
    return 0
