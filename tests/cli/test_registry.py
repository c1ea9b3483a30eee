"""The verb tables: every registered verb is a command module, ``--help`` lists the table, and a
command made in a test (one file + one ``register`` call) runs through the real entry point."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import REPO, run_cli
from prunekit.cli import VERBS
from prunekit.commands.data import DATASETS
from prunekit.commands.registry import Command, add_command, load_command

HELLO_COMMAND = '''
"""``prunekit hello --name N [--shout]``: a command registered by a test."""

import argparse

from prunekit.commands.flags import bool_flag, flag
from prunekit.errors import PrunekitError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    flag(parser, "name", required=True, help="who to greet")
    flag(parser, "times", type=int, default=1, help="greetings (default 1)")
    bool_flag(parser, "shout", help="upper case")


def run(args: argparse.Namespace) -> int:
    if not args.name.isalpha():
        raise PrunekitError(f"--name '{args.name}': expected letters only")
    text = f"hello {args.name}"
    print("\\n".join([text.upper() if args.shout else text] * args.times))
    return 7
'''


def _listed(help_text: str) -> list[str]:
    """The names of the sub-command listing of an argparse ``--help``, in order."""
    block = help_text.split("positional arguments:", 1)[1].split("options:", 1)[0]
    return [m.group(1) for m in re.finditer(r"^    (\S+)", block, re.M)]


@pytest.mark.parametrize("table", [VERBS, DATASETS], ids=["verbs", "datasets"])
def test_every_registered_verb_is_a_command_module(table: dict[str, Command]) -> None:
    for verb, command in table.items():
        module = load_command(command.module)
        parser = argparse.ArgumentParser(prog=f"prunekit {verb}")
        module.add_arguments(parser)
        defined = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
        assert defined, f"{command.module}.add_arguments defines no argument"
        assert command.help.strip(), verb


def test_help_lists_every_verb_in_table_order(tmp_path: Path) -> None:
    top = run_cli(["--help"], tmp_path, check=True).stdout
    assert _listed(top) == list(VERBS)
    for command in VERBS.values():
        assert " ".join(command.help.split()) in " ".join(top.split())
    data = run_cli(["data", "--help"], tmp_path, check=True).stdout
    assert _listed(data) == list(DATASETS)


def test_a_verb_imports_only_its_own_command_module(tmp_path: Path) -> None:
    code = ("import sys; from prunekit.cli import main; main(sys.argv[1:]); "
            "print(sorted(m for m in sys.modules if m.startswith('prunekit.commands.')))")
    proc = subprocess.run([sys.executable, "-c", code, "data", "list", str(tmp_path),
                           "--out", str(tmp_path / "list.txt")], capture_output=True, text=True,
                          timeout=120)
    loaded = proc.stdout.strip().splitlines()[-1]
    assert loaded == str(sorted(["prunekit.commands.data", "prunekit.commands.data_list",
                                 "prunekit.commands.flags", "prunekit.commands.registry"])), (
        proc.stdout, proc.stderr)


def _run_with_hello(args: list[str], folder: Path) -> subprocess.CompletedProcess:
    """``prunekit ARGS`` through ``prunekit.cli.main`` with ``hello`` registered from ``folder``."""
    code = ("import sys; from prunekit.cli import main, register; "
            "register('hello', 'hello_command', 'greet someone'); sys.exit(main())")
    path = os.pathsep.join([str(folder), str(REPO / "src"), os.environ.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-c", code, *args], cwd=folder, capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, PYTHONPATH=path))


def test_a_command_registered_from_a_test_runs_through_main(tmp_path: Path) -> None:
    (tmp_path / "hello_command.py").write_text(HELLO_COMMAND)

    listed = _run_with_hello(["--help"], tmp_path)
    assert _listed(listed.stdout) == [*VERBS, "hello"], listed.stdout
    assert "greet someone" in listed.stdout

    proc = _run_with_hello(["hello", "-name=ada", "--times", "2", "-shout=true"], tmp_path)
    assert (proc.returncode, proc.stdout) == (7, "HELLO ADA\nHELLO ADA\n"), proc.stderr
    proc = _run_with_hello(["hello", "--name", "ada", "-noshout"], tmp_path)
    assert (proc.returncode, proc.stdout) == (7, "hello ada\n"), proc.stderr

    bad = _run_with_hello(["hello", "--name", "ada1"], tmp_path)
    assert bad.returncode == 1
    assert bad.stderr == "prunekit hello: error: --name 'ada1': expected letters only\n"
    missing = _run_with_hello(["hello"], tmp_path)
    assert missing.returncode == 2
    assert "prunekit hello: error: the following arguments are required: -name/--name" in (
        missing.stderr)


def test_a_verb_registered_twice_or_without_run_is_refused(tmp_path: Path) -> None:
    table: dict[str, Command] = {}
    add_command(table, "hello", "hello_command", "greet")
    with pytest.raises(ValueError, match="'hello' is registered twice"):
        add_command(table, "hello", "other_command", "greet again")
    (tmp_path / "no_run_command.py").write_text("def add_arguments(parser):\n    pass\n")
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(TypeError, match="no_run_command has no run"):
            load_command("no_run_command")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("no_run_command", None)
