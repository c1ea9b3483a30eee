"""`prunekit export` where the optional onnx / onnxruntime packages are missing: one line naming
the extra to install (no traceback, no file), or a plain "NOT checked" when only onnxruntime is
missing. Absence is simulated in a real CLI subprocess by wrapping every meta-path finder so
that the hidden packages are not found (exactly what Python sees when they are not installed);
.ci/run also runs the CLI from a real install without extras."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import LENET_DIR

#: Run ``prunekit.cli`` with the packages named in argv[1] (comma-separated) not findable.
HIDING_PRELUDE = r"""
import runpy, sys
hidden = set(sys.argv[1].split(","))

class Hide:
    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in hidden:
            return None
        find = getattr(self.finder, "find_spec", None)
        return find(name, path, target) if find else None

sys.meta_path[:] = [Hide(f) for f in sys.meta_path]
sys.argv = ["prunekit"] + sys.argv[2:]
runpy.run_module("prunekit.cli", run_name="__main__")
"""


def _export_without(hidden: str, workdir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", HIDING_PRELUDE, hidden, "export", "--model",
         str(LENET_DIR / "deploy.prototxt"), "--onnx", "m.onnx", "--batch", "1"],
        cwd=workdir, env=dict(os.environ), capture_output=True, text=True, timeout=300)


def test_export_onnx_without_onnx_is_one_line_naming_the_extra(tmp_path: Path) -> None:
    proc = _export_without("onnx,onnxruntime,onnxscript", tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "'onnx'" in lines[0] and "pip install 'prunekit[onnx]'" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_export_onnx_without_onnxruntime_says_not_checked(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    proc = _export_without("onnxruntime", tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert "NOT checked: onnxruntime is not installed" in proc.stderr
    assert "Round trip" not in proc.stderr
    assert (tmp_path / "m.onnx").stat().st_size > 0
    assert list(tmp_path.iterdir()) == [tmp_path / "m.onnx"]


def test_the_prelude_really_hides_a_package(tmp_path: Path) -> None:
    """The simulation itself: a hidden package cannot be imported, the others still can."""
    code = HIDING_PRELUDE.split("sys.argv = ")[0] + (
        "import importlib.util, json\n"
        "print(json.dumps([importlib.util.find_spec('onnxruntime') is None,"
        " importlib.util.find_spec('numpy') is None]))\n")
    out = subprocess.run([sys.executable, "-c", code, "onnxruntime"], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert out.strip() == "[true, false]"
