"""``prunekit plot (--logs ACC PRUNE | --sensitivity S.json | --methods M.json) --out F.png``:
(a) a pruning run from its logs, (b) sensitivity curves, (c) a methods table as accuracy
against measured speedup (:mod:`prunekit.report`)."""

from __future__ import annotations

import argparse
import json

from prunekit.commands.flags import flag
from prunekit.errors import PrunekitError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    flag(parser, "logs", nargs="+", help="a pruning run: its Caffe log (stderr) and [app] log "
         "(stdout), in any order")
    flag(parser, "sensitivity", help="S.json of prunekit sensitivity")
    flag(parser, "methods", help="a methods_table results .json (benchmarks/methods_table.py)")
    flag(parser, "out", required=True, help="PNG file to write")


def run(args: argparse.Namespace) -> int:
    return run_plot(args.logs, args.sensitivity, args.methods, args.out)


def _json(path: str, flag: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise PrunekitError(f"{flag} {path}: cannot read it ({e.strerror})") from None
    except json.JSONDecodeError as e:
        raise PrunekitError(f"{flag} {path}: not JSON (line {e.lineno}: {e.msg})") from None


def run_plot(logs: list[str] | None, sensitivity: str | None, methods: str | None,
             out: str) -> int:
    given = [x for x in (logs, sensitivity, methods) if x]
    if len(given) != 1:
        raise PrunekitError("plot: give exactly one of --logs, --sensitivity or --methods")
    if not out.lower().endswith(".png"):
        raise PrunekitError(f"--out {out}: expected a .png file")
    if logs:
        from prunekit.report.run_log import read_run
        from prunekit.report.run_plot import plot_run

        plot_run(read_run(logs), out)
    elif sensitivity:
        from prunekit.commands.plan import read_sensitivity
        from prunekit.report.sensitivity_plot import plot_sensitivity

        plot_sensitivity(read_sensitivity(sensitivity), out)
    else:
        from prunekit.report.methods_plot import plot_methods

        plot_methods(_json(methods, "--methods"), out, methods)
    print(f"Wrote {out}")
    return 0
