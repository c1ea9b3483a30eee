"""benchmarks/check_claims.py on the repository's own README.md and docs/ (every measured figure
matches the results file it cites) and on doctored copies, which it must reject."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "check_claims.py"
#: A README figure and the results file it cites (README.md, the time_vs_plain sentence).
FIGURE = "1.05x (ResNet-50)"
CITED = "benchmarks/results/2026-12-03T1230Z_amd-epyc-x2-threads2_time_vs_plain_resnet50_b2.md"


def _check(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--root", str(root)],
                          capture_output=True, text=True, timeout=120)


def _copy(tmp_path: Path) -> Path:
    """README.md, docs/ and benchmarks/results/ of this checkout under tmp_path."""
    root = tmp_path / "checkout"
    (root / "benchmarks").mkdir(parents=True)
    shutil.copy(REPO / "README.md", root / "README.md")
    shutil.copytree(REPO / "docs", root / "docs")
    shutil.copytree(REPO / "benchmarks" / "results", root / "benchmarks" / "results")
    return root


def test_readme_and_docs_figures_match_their_results_files() -> None:
    proc = _check(REPO)
    assert proc.returncode == 0, proc.stdout
    citing = int(proc.stderr.split("check_claims: ")[1].split()[0])
    assert citing >= 15, proc.stderr          # the pages do cite results files


def test_the_readme_keeps_its_two_commands_first() -> None:
    lines = (REPO / "README.md").read_text().splitlines()
    assert lines[3].startswith("python3 -m venv .venv && . .venv/bin/activate && pip install "
                               "torch==2.13.0 && pip install -e '.[test]' && sh compression_")
    assert lines[4] == ".venv/bin/python -m pytest -q"


def _doctor(root: Path, old: str, new: str) -> None:
    readme = root / "README.md"
    text = readme.read_text()
    assert text.count(old) == 1, old
    readme.write_text(text.replace(old, new))


@pytest.mark.parametrize("old,new,expected", [
    (FIGURE, "1.15x (ResNet-50)", "1.15x is in none of"),                    # a wrong figure
    (CITED, CITED.replace("1230Z", "1231Z"), "matches 0 files"),           # a missing file
    ("## Layout", "Measured on this CPU: 3.21x faster forward.\n\n## Layout",
     "says measured (3.21x)"),                                              # no citation
], ids=["wrong-figure", "missing-file", "uncited"])
def test_a_doctored_readme_fails(tmp_path: Path, old: str, new: str, expected: str) -> None:
    root = _copy(tmp_path)
    assert _check(root).returncode == 0            # the copy itself passes
    _doctor(root, old, new)
    proc = _check(root)
    assert proc.returncode == 1
    assert expected in proc.stdout and proc.stdout.startswith("README.md:"), proc.stdout


def test_a_doctored_results_file_fails(tmp_path: Path) -> None:
    """The figure stays, the file it cites changes: the claim no longer holds (README's Reg_Row
    LeNet-5: `prunekit time` forward 6.57 → 3.23 ms, from the lenet5_compact results)."""
    root = _copy(tmp_path)
    assert "6.57 → 3.23 ms per batch of 64" in (root / "README.md").read_text()
    stem = root / "benchmarks/results/2026-11-23T0614Z_amd-epyc-x2-threads2_lenet5_compact_b64"
    for suffix, written in ((".md", "3.226"), (".json", "3.22588")):
        path = stem.with_suffix(suffix)
        assert written in path.read_text()
        path.write_text(path.read_text().replace(written, "3.926"))
    proc = _check(root)
    assert proc.returncode == 1 and "3.23 ms is in none of" in proc.stdout, proc.stdout
