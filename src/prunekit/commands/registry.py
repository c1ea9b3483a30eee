"""Verb tables: how ``prunekit <verb>`` finds its command (Caffe's ``RegisterBrewFunction``).

A command is a module with ``add_arguments(parser) -> None`` (its flags) and
``run(args) -> int`` (the exit code). A table maps each verb to its module and one-line help;
:mod:`prunekit.cli` holds the top-level table and ``prunekit data`` one of datasets.

A verb's flags are defined only when its own parser parses or prints help: ``prunekit --help``
needs only the table, and ``prunekit data list`` does not import torch through the modules of
``compact`` or ``export``.
"""

from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class Command:
    """One verb: the dotted name of its module and the help line ``--help`` lists it with."""

    module: str
    help: str


def add_command(table: dict[str, Command], verb: str, module: str, help: str) -> None:
    """Register ``verb`` in ``table``; verbs are listed in the order they were added."""
    if verb in table:
        raise ValueError(f"verb '{verb}' is registered twice ({table[verb].module}, {module})")
    table[verb] = Command(module, help)


def add_command_parsers(parser: argparse.ArgumentParser, table: dict[str, Command], dest: str,
                        metavar: str) -> None:
    """One sub-parser per verb of ``table``; the chosen verb lands in ``args.<dest>``."""
    verbs = parser.add_subparsers(dest=dest, metavar=metavar, required=True,
                                  parser_class=CommandParser)
    for verb, command in table.items():
        verbs.add_parser(verb, help=command.help, command_module=command.module)


def run_command(table: dict[str, Command], verb: str, args: argparse.Namespace) -> int:
    """``run(args)`` of ``verb``'s module: the exit code."""
    return load_command(table[verb].module).run(args)


def load_command(name: str) -> ModuleType:
    """The command module ``name``, checked to have what a command needs."""
    module = importlib.import_module(name)
    for function in ("add_arguments", "run"):
        if not callable(getattr(module, function, None)):
            raise TypeError(f"command module {name} has no {function}()")
    return module


class CommandParser(argparse.ArgumentParser):
    """The parser of one verb: calls its module's ``add_arguments`` the first time it parses or
    formats help, so only the verb that runs imports its module."""

    def __init__(self, *args, command_module: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._pending = command_module

    def _define(self) -> None:
        if self._pending is not None:
            module, self._pending = self._pending, None
            load_command(module).add_arguments(self)

    def parse_known_args(self, args=None, namespace=None):
        self._define()
        return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        self._define()
        return super().format_usage()

    def format_help(self) -> str:
        self._define()
        return super().format_help()
