#!/usr/bin/env python3
"""Check every measured figure in README.md and docs/*.md against the results file it cites.

Why: a number in the README is only worth something if a command produced it and a file in
benchmarks/results/ still says it. This script keeps the prose and the results in step.

The pages are cut into claims: a paragraph, a list item, or a table (with the paragraph right
before it, its caption); code blocks are skipped. In a claim:

* a *citation* is a path ``benchmarks/results/<file>.md`` (or ``.json``); an ``…`` in the name
  stands for any text and must match exactly one file;
* a *figure* is a measured number with its unit: a decimal followed by ``x``/``×`` or ``%``,
  or any number followed by ``ms`` or ``images/s``; chains such as ``6.57 → 3.23 ms``,
  ``822 / 1,529 images/s`` and ``1.96–2.15x`` are figures each. Whole numbers before ``x`` or
  ``%`` (targets such as "4x", "75% of the columns") and kernel sizes (5x5) are settings, not
  figures;
* a figure matches a cited file when some number in that file (its Markdown text or any value
  in the JSON of the same stem) rounds to it at the figure's decimals, directly or as a fraction
  shown in percent (0.974 → 97.4%) or as a signed overhead (+0.169 → 16.9%).

A claim fails when it cites a file that does not exist, when one of its figures matches none of
its cited files, or when it says "measured" and holds figures but cites no results file.
Exit status 1 with one line per failure (page:line, the figure, why), 0 when all claims hold.

    python benchmarks/check_claims.py                       # README.md and docs/**/*.md
    python benchmarks/check_claims.py --root /some/checkout # another copy (the test's doctored one)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: a results path; ``<date>_…`` placeholders (no real name) are not citations.
CITATION = re.compile(r"benchmarks/results/([^\s`'\"()\[\],;<>]+?\.(?:md|json))")
_NUM = r"\d[\d,]*(?:\.\d+)?"
_JOIN = r"\s*(?:→|/|–|-)\s*"
#: a chain of numbers joined by → / – and ending in a unit.
FIGURE = re.compile(rf"(?<![\w.\-])(?P<chain>[+−-]?{_NUM}(?:{_JOIN}[+−-]?{_NUM})*)"
                    rf"(?P<unit>[x×](?![\w\d])|%|\s?ms\b|\s?images/s)")
MEASURED = re.compile(r"\bmeasured\b|\bMeasured\b|\*\*Measured\*\*")


@dataclass(frozen=True)
class Claim:
    page: Path
    line: int
    text: str


@dataclass(frozen=True)
class Failure:
    page: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.message}"


def pages(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def claims(page: Path) -> list[Claim]:
    """Paragraphs, list items and tables (a table keeps the paragraph before it)."""
    out: list[Claim] = []
    block: list[str] = []
    start = 0
    in_code = False
    previous: Claim | None = None

    def flush() -> None:
        nonlocal block, previous
        if block:
            text = "\n".join(block)
            claim = Claim(page, start, text)
            if text.lstrip().startswith("|") and previous is not None:
                claim = Claim(page, previous.line, previous.text + "\n" + text)
                out.remove(previous)
            out.append(claim)
            previous = claim
        block = []

    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith("```"):
            flush()
            in_code = not in_code
            continue
        if in_code:
            continue
        is_item = re.match(r"\s*(?:[-*]|\d+\.)\s", line) is not None
        is_heading = line.startswith("#")
        if not line.strip() or is_heading or (is_item and block and not _is_table(block)):
            flush()
            if is_heading:
                previous = None                       # a table after a heading has no caption
        if line.strip() and not is_heading:
            if not block:
                start = number
            block.append(line)
    flush()
    return out


def _is_table(block: list[str]) -> bool:
    return block[0].lstrip().startswith("|")


def figures(text: str) -> list[tuple[str, float, int, str]]:
    """(as written, value, decimals, unit) of every figure in ``text``."""
    found = []
    clean = re.sub(r"`[^`]*`", " ", text)           # commands and paths hold no figures
    clean = re.sub(r"\(?benchmarks/results/\S+", " ", clean)
    for match in FIGURE.finditer(clean):
        unit = match.group("unit").strip()
        for raw in re.split(_JOIN, match.group("chain")):
            raw = raw.strip()
            digits = raw.lstrip("+−-").replace(",", "")
            decimals = len(digits.split(".")[1]) if "." in digits else 0
            unit = "x" if unit == "×" else unit
            if unit in ("x", "%") and decimals == 0:
                continue                              # a target or a setting, not a result
            found.append((raw + ("" if unit in ("x", "%") else " ") + unit, float(digits),
                          decimals, unit))
    return found


@lru_cache(maxsize=None)
def numbers_in(path: Path) -> tuple[float, ...]:
    """Every number in the results file and in the JSON (or Markdown) of the same stem."""
    values: list[float] = []
    for file in {path, path.with_suffix(".md"), path.with_suffix(".json")}:
        if not file.is_file():
            continue
        text = file.read_text(encoding="utf-8")
        values += [float(n.replace(",", "")) for n in re.findall(r"\d[\d,]*\.?\d*(?:e-?\d+)?", text)
                   if _is_float(n.replace(",", ""))]
        if file.suffix == ".json":
            _walk(json.loads(text), values)
    return tuple(values)


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _walk(node, values: list[float]) -> None:
    if isinstance(node, bool):
        return
    if isinstance(node, (int, float)):
        values.append(abs(float(node)))
    elif isinstance(node, dict):
        for value in node.values():
            _walk(value, values)
    elif isinstance(node, list):
        for value in node:
            _walk(value, values)


def matches(value: float, decimals: int, unit: str, candidates: tuple[float, ...]) -> bool:
    scale = 10 ** decimals
    target = round(value * scale)
    for n in candidates:
        forms = [n, n * 100] if unit == "%" else [n]
        if any(round(f * scale + 1e-9) == target for f in forms):
            return True
    return False


def resolve(root: Path, name: str) -> list[Path]:
    folder = root / "benchmarks" / "results"
    if "…" in name:
        pattern = re.compile(re.escape(name).replace("…", ".*") + "$")
        return sorted(p for p in folder.iterdir() if pattern.match(p.name))
    path = folder / name
    return [path] if path.is_file() else []


def check_claim(root: Path, claim: Claim) -> list[Failure]:
    rel = str(claim.page.relative_to(root))
    failures: list[Failure] = []
    cited: list[Path] = []
    for name in CITATION.findall(claim.text):
        found = resolve(root, name)
        if len(found) != 1:
            failures.append(Failure(rel, claim.line, f"cites benchmarks/results/{name}, which "
                                    f"matches {len(found)} files (expected exactly one)"))
        cited += found
    numbers = tuple(n for path in cited for n in numbers_in(path))
    figs = figures(claim.text)
    if not cited:
        if figs and MEASURED.search(claim.text):
            failures.append(Failure(rel, claim.line, f"says measured ({', '.join(f[0] for f in figs[:4])}"
                                    f"{' …' if len(figs) > 4 else ''}) but cites no "
                                    "benchmarks/results/ file"))
        return failures
    for written, value, decimals, unit in figs:
        if not matches(value, decimals, unit, numbers):
            failures.append(Failure(rel, claim.line, f"{written} is in none of "
                                    f"{', '.join(p.name for p in cited)}"))
    return failures


def check(root: Path) -> tuple[int, list[Failure]]:
    """(number of claims citing a results file, failures) for the pages under ``root``."""
    failures: list[Failure] = []
    citing = 0
    for page in pages(root):
        for claim in claims(page):
            citing += bool(CITATION.search(claim.text))
            failures += check_claim(root, claim)
    return citing, failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=REPO, help="checkout to check")
    args = parser.parse_args(argv)
    citing, failures = check(args.root.resolve())
    for failure in failures:
        print(failure)
    print(f"check_claims: {citing} claims cite results files; {len(failures)} failures",
          file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
