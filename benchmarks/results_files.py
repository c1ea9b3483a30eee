"""Writing a benchmark's results: ``<stem>.json`` (the record: machine, date, torch, command,
settings, rows) and ``<stem>.md`` (the printed table), side by side under benchmarks/results/.

One helper so every benchmark writes the pair the same way; a re-run always gets a new stem
(its UTC minute is in the name), never an edit of an old file.
"""

from __future__ import annotations

import json
from pathlib import Path


def write_results(stem: Path, record: dict, lines: list[str]) -> None:
    """Write ``stem``.json (``record``, indented) and ``stem``.md (``lines``), then say so."""
    stem.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {stem}.json and .md")
