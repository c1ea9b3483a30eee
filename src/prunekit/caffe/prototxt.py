"""Prototxt (protobuf text format) reading and writing for nets and solvers.

Caffe reads prototxt with protobuf's TextFormat, which accepts ``#`` comments and ``field : value``
spacing; google.protobuf.text_format accepts the same language, so files that Caffe accepts parse
here unchanged. Parse errors come back as ``path:line:col: reason`` so editors can jump to them.
"""

from __future__ import annotations

import os
import re
from typing import TypeVar

from google.protobuf import text_format
from google.protobuf.message import Message

from prunekit.caffe import caffe_pb2
from prunekit.caffe._files import read_user_file, write_user_file
from prunekit.caffe.upgrade import upgrade_net
from prunekit.errors import PrunekitError

M = TypeVar("M", bound=Message)

# text_format puts "line:col : " in front of its reason; we rebuild the location ourselves.
_LOCATION_PREFIX = re.compile(r"^\d+(:\d+)?\s*:\s*")


def parse_net_text(text: str, source: str = "<string>") -> caffe_pb2.NetParameter:
    """Parse a net prototxt; V1 ``layers`` are upgraded to ``layer``."""
    net = parse_text(text, caffe_pb2.NetParameter(), source)
    return upgrade_net(net, source)


def parse_solver_text(text: str, source: str = "<string>") -> caffe_pb2.SolverParameter:
    """Parse a solver prototxt (stock Caffe plus the Caffe_IncReg fields)."""
    return parse_text(text, caffe_pb2.SolverParameter(), source)


def read_net_prototxt(path: str | os.PathLike) -> caffe_pb2.NetParameter:
    """Read a net definition (train_val.prototxt, deploy.prototxt)."""
    return parse_net_text(_read_text(path, "Caffe net prototxt"), os.fspath(path))


def read_solver_prototxt(path: str | os.PathLike) -> caffe_pb2.SolverParameter:
    """Read a solver definition (solver.prototxt)."""
    return parse_solver_text(_read_text(path, "Caffe solver prototxt"), os.fspath(path))


def to_text(message: Message) -> str:
    """Text format as Caffe writes it: one field per line, two-space indent, shortest floats."""
    return text_format.MessageToString(message)


def write_prototxt(path: str | os.PathLike, message: Message) -> None:
    """Write ``message`` as prototxt atomically (readers see the old file or the whole new one)."""
    write_user_file(path, to_text(message).encode("utf-8"), "prototxt")


def parse_text(text: str, message: M, source: str = "<string>") -> M:
    """Parse ``text`` into ``message``; syntax errors become ``source:line:col: reason``."""
    try:
        return text_format.Parse(text, message)
    except text_format.ParseError as err:
        raise PrunekitError(_located(err, source)) from None


def _located(err: text_format.ParseError, source: str) -> str:
    reason = _LOCATION_PREFIX.sub("", str(err))
    line, col = err.GetLine(), err.GetColumn()
    if line is None:
        return f"{source}: {reason}"
    if col is None:
        return f"{source}:{line}: {reason}"
    return f"{source}:{line}:{col}: {reason}"


def _read_text(path: str | os.PathLike, kind: str) -> str:
    data = read_user_file(path, kind)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise PrunekitError(
            f"{os.fspath(path)}: not a text {kind} (not UTF-8 text; is it a binary file "
            f"such as a .caffemodel?)"
        ) from None
