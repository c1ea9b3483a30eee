"""Optional dependencies: which pip extra brings each one, and the one-line message when missing.

prunekit's core (training, pruning, compaction, data) needs only its install requirements;
ONNX export needs ``onnx`` (torch's exporter writes through it) and checks the written file with
``onnxruntime``. Both come with the ``onnx`` extra (and with ``test``, which the test suite uses).
A missing one is a :class:`~prunekit.errors.PrunekitError` naming the extra, never a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from prunekit.errors import PrunekitError

#: module name -> the extra of pyproject.toml that installs it.
EXTRA_OF = {"onnx": "onnx", "onnxruntime": "onnx"}


def install_hint(module: str) -> str:
    """``pip install 'prunekit[onnx]'`` (or the module itself for one with no extra)."""
    extra = EXTRA_OF.get(module)
    return f"pip install 'prunekit[{extra}]'" if extra else f"pip install {module}"


def available(module: str) -> bool:
    """True when ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(module: str, needed_for: str) -> ModuleType:
    """``module`` imported, or a one-line PrunekitError: what needs it and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise PrunekitError(
            f"{needed_for} needs the optional package '{module}', which is not installed "
            f"({error.__class__.__name__}: {error}); install it with {install_hint(module)}"
        ) from None
