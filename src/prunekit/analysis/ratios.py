"""``--ratios`` of ``prunekit sensitivity``: ``START:STOP:STEP`` (inclusive) or a comma list."""

from __future__ import annotations

from prunekit.errors import PrunekitError


def parse_ratios(text: str) -> list[float]:
    """``0.1:0.9:0.1`` → [0.1, 0.2, …, 0.9]; ``0.25,0.5`` → [0.25, 0.5]. Each in (0, 1)."""
    try:
        if ":" in text:
            start, stop, step = (float(x) for x in text.split(":"))
            if step <= 0:
                raise ValueError
            n = int(round((stop - start) / step)) + 1
            values = [round(start + i * step, 6) for i in range(n)]
        else:
            values = [float(x) for x in text.split(",")]
    except ValueError:
        raise PrunekitError(f"--ratios {text}: expected START:STOP:STEP (e.g. 0.1:0.9:0.1) or a "
                            "comma list of fractions") from None
    bad = [v for v in values if not 0 < v < 1]
    if not values or bad:
        raise PrunekitError(f"--ratios {text}: every ratio must lie in (0, 1); got {bad or values}")
    return values
