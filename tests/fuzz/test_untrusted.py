"""Untrusted files (issue 18 item 4): no code runs from a model or solver file."""

from __future__ import annotations

import io
import pickle
import re
from pathlib import Path

import pytest

from prunekit import caffe
from prunekit.errors import PrunekitError
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST
from prunekit.solver.snapshot import _read_extension
from prunekit.solver.state_check import check_state_payload

SRC = Path(__file__).resolve().parents[2] / "src" / "prunekit"

PYTHON_LAYER = '''name: "py"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 1 dim: 1 dim: 4 dim: 4 } } }
layer { name: "py" type: "Python" bottom: "data" top: "out"
        python_param { module: "os" layer: "system" param_str: "touch /tmp/x" } }
'''


def test_python_layer_is_refused_naming_file_layer_and_module() -> None:
    with pytest.raises(PrunekitError) as err:
        Net(caffe.parse_net_text(PYTHON_LAYER, "py.prototxt"), TEST, source="py.prototxt")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("py.prototxt: layer 'py' (Python): Python layers are refused")
    assert "module 'os', class 'system'" in message
    assert "cannot run Caffe Python layers" in message


class _Marker:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_a_pickle_in_prunekit_state_is_refused_in_one_line_and_never_run(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    pickle.dump(_Marker(tmp_path / "ran"), buffer)
    with pytest.raises(PrunekitError) as err:
        _read_extension(buffer.getvalue(), "x.solverstate")
    assert not (tmp_path / "ran").exists()
    message = str(err.value)
    assert message.startswith("x.solverstate: prunekit_state is unreadable (")
    assert "\n" not in message and len(message) < 400, message


@pytest.mark.parametrize("payload, needle", [
    ([1, 2], "holds a list"),
    ({"format": 1}, "no 'seed' entry"),
])
def test_prunekit_state_of_the_wrong_structure_is_named(payload, needle) -> None:
    with pytest.raises(PrunekitError, match=needle):
        check_state_payload(payload, "x.solverstate")


_LOADS = re.compile(r"\b(torch\.load|pickle\.loads?|np\.load|numpy\.load|joblib\.load|"
                    r"marshal\.loads?|shelve\.open|dill\.)\s*\(")


def _call_text(text: str, open_paren: int) -> str:
    """The text of a call from its opening parenthesis to the matching closing one."""
    depth = 0
    for index in range(open_paren, len(text)):
        depth += {"(": 1, ")": -1}.get(text[index], 0)
        if depth == 0:
            return text[open_paren:index + 1]
    return text[open_paren:]


def test_no_pickle_is_loaded_anywhere_in_prunekit() -> None:
    """Every torch.load passes weights_only=True; no pickle/np.load(allow_pickle) at all."""
    offending = []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text()
        for match in _LOADS.finditer(text):
            call = _call_text(text, match.end() - 1)
            if not (match.group(1) == "torch.load" and "weights_only=True" in call):
                offending.append(f"{path.relative_to(SRC)}: {match.group(1)}{call}")
        if "allow_pickle=True" in text:
            offending.append(f"{path.relative_to(SRC)}: allow_pickle=True")
    assert not offending, offending
    assert any("torch.load" in p.read_text() for p in SRC.rglob("*.py"))  # the grep finds calls
