"""Binary protobuf files: .caffemodel (NetParameter), .solverstate (SolverState) and
.binaryproto mean files (BlobProto).

Writes are atomic because these are snapshots: a crash mid-write must not destroy the previous
good snapshot. Reads check that the bytes really are the expected message, since protobuf's
decoder alone accepts many wrong files (an empty file is a valid empty message).
"""

from __future__ import annotations

import os
from typing import TypeVar

from google.protobuf.message import DecodeError, EncodeError, Message

from prunekit.caffe import caffe_pb2
from prunekit.caffe._files import read_user_file, write_user_file
from prunekit.caffe.upgrade import upgrade_net
from prunekit.errors import PrunekitError

M = TypeVar("M", bound=Message)

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

CAFFEMODEL = "Caffe .caffemodel (binary caffe.NetParameter)"
SOLVERSTATE = "Caffe .solverstate (binary caffe.SolverState)"
BINARYPROTO = "Caffe .binaryproto (binary caffe.BlobProto)"


def read_caffemodel(path: str | os.PathLike) -> caffe_pb2.NetParameter:
    """Read trained weights; V1 caffemodels (``layers``) are upgraded to ``layer``."""
    net = read_message(path, caffe_pb2.NetParameter(), CAFFEMODEL)
    if not net.layer and not net.layers:
        raise PrunekitError(f"{os.fspath(path)}: has no layers; expected a {CAFFEMODEL}")
    return upgrade_net(net, os.fspath(path))


def write_caffemodel(path: str | os.PathLike, net_param: caffe_pb2.NetParameter) -> None:
    """Write trained weights atomically."""
    write_message(path, net_param, CAFFEMODEL)


def read_solverstate(path: str | os.PathLike) -> caffe_pb2.SolverState:
    """Read a solver snapshot (iteration, history, IncReg state, prunekit_state)."""
    return read_message(path, caffe_pb2.SolverState(), SOLVERSTATE)


def write_solverstate(path: str | os.PathLike, state: caffe_pb2.SolverState) -> None:
    """Write a solver snapshot atomically."""
    write_message(path, state, SOLVERSTATE)


def read_binaryproto(path: str | os.PathLike) -> caffe_pb2.BlobProto:
    """Read a single blob, e.g. a mean file made by compute_image_mean."""
    blob = read_message(path, caffe_pb2.BlobProto(), BINARYPROTO)
    if not (blob.data or blob.double_data):
        raise PrunekitError(f"{os.fspath(path)}: holds no values; expected a {BINARYPROTO}")
    return blob


def write_binaryproto(path: str | os.PathLike, blob: caffe_pb2.BlobProto) -> None:
    """Write a single blob atomically."""
    write_message(path, blob, BINARYPROTO)


def read_message(path: str | os.PathLike, message: M, kind: str) -> M:
    """Parse the file at ``path`` into ``message``; a wrong file raises PrunekitError."""
    data = read_user_file(path, kind)
    if data.startswith(_HDF5_SIGNATURE):
        raise PrunekitError(f"{os.fspath(path)}: is an HDF5 snapshot; expected a {kind} "
                            f"(set snapshot_format: BINARYPROTO in the solver)")
    try:
        message.ParseFromString(data)
    except DecodeError as err:
        raise PrunekitError(f"{os.fspath(path)}: not a valid {kind}: {err}") from None
    return message


def write_message(path: str | os.PathLike, message: Message, kind: str) -> None:
    """Serialise ``message`` and write it atomically."""
    write_user_file(path, serialize_message(path, message, kind), kind)


def serialize_message(path: str | os.PathLike, message: Message, kind: str) -> bytes:
    """``message``'s bytes for the file ``path`` (a message over 2 GiB is an error naming it)."""
    try:
        return message.SerializeToString()
    except EncodeError as err:
        raise PrunekitError(f"{os.fspath(path)}: cannot write {kind}: {err}") from None
