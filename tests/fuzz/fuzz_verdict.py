"""What a fuzz case must end with, as one function the test and a person debugging both use."""

from __future__ import annotations

import os


def problems(case: dict, result: dict | None) -> list[str]:
    """Why ``result`` (a driver result line, None when the case never finished) is not clean.

    Clean: exit 0, or exit 1 with the last stderr line ``prunekit <command>: error: ...``
    naming one of the case's ``needles``; no traceback; no time-out; and, unless it succeeded,
    none of the case's output files (nor a hidden ``.name.*.tmp`` beside them) left behind.
    """
    if result is None:
        return ["no result: the driver died in this case (crash, memory kill or hard hang)"]
    found = []
    if result["timeout"]:
        found.append(f"ran past its time limit ({result['seconds']} s)")
    if result["traceback"] or "Traceback" in result["stderr"]:
        found.append("traceback: " + (result["traceback"] or result["stderr"])[-1500:])
    if result["rc"] not in (0, None):
        lines = [line for line in result["stderr"].splitlines() if line.strip()]
        last = lines[-1] if lines else ""
        if result["rc"] != 1 or ": error: " not in last or not last.startswith("prunekit "):
            found.append(f"exit {result['rc']} without a one-line error: {last[:300]!r}")
        elif not any(needle in last for needle in case["needles"]):
            found.append(f"error names none of {case['needles']}: {last[:400]!r}")
    if result["rc"] != 0:
        found += [f"left {path}" for path in _leftovers(case["outputs"])]
    return found


def _leftovers(outputs: list[str]) -> list[str]:
    left = [path for path in outputs if os.path.lexists(path)]
    for folder in {os.path.dirname(path) for path in outputs}:
        if os.path.isdir(folder):
            names = {os.path.basename(path) for path in outputs}
            left += [os.path.join(folder, n) for n in os.listdir(folder)
                     if n.endswith(".tmp") or any(n.startswith(f".{m}.") for m in names)]
    return left
