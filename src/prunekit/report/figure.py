"""matplotlib without a display (Agg backend) and PNGs written atomically."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from prunekit.atomic import atomic_write_bytes  # noqa: E402

DPI = 100


def new_figure(width: float, height: float, rows: int = 1, cols: int = 1):
    """(figure, axes) of ``width`` × ``height`` inches at :data:`DPI`."""
    return plt.subplots(rows, cols, figsize=(width, height), dpi=DPI, squeeze=False)


def save_png(fig, path: str) -> None:
    """Render ``fig`` to ``path`` (temp name, then rename) and free it."""
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
