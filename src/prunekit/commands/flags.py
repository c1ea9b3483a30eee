"""Flag spellings shared by every command's ``add_arguments``: Caffe's gflags style on argparse.

Caffe writes ``-solver`` (one dash); prunekit also takes ``--solver`` and, for multi-word flags,
``--out-model`` beside ``--out_model``. The ``-flag=value`` and ``-flag=true|false`` forms are
split before parsing (:func:`prunekit.cli._normalise_flags`).
"""

from __future__ import annotations

import argparse


def flag(parser: argparse.ArgumentParser, name: str, **kwargs) -> None:
    """``-name`` and ``--name`` (Caffe's gflags style), plus ``--na-me`` for multi-word flags."""
    spellings = [f"-{name}", f"--{name}"]
    if "_" in name:
        spellings.append(f"--{name.replace('_', '-')}")
    parser.add_argument(*spellings, dest=name, **kwargs)


def bool_flag(parser: argparse.ArgumentParser, name: str, help: str) -> None:
    """A gflags boolean: ``-name``/``--name`` sets it, ``-noname``/``--noname`` clears it
    (``-name=true``/``-name=false`` become those two in :func:`prunekit.cli._normalise_flags`)."""
    flag(parser, name, action="store_true", default=False, help=help)
    parser.add_argument(f"-no{name}", f"--no{name}", dest=name, action="store_false",
                        help=argparse.SUPPRESS)
