"""Run many ``prunekit`` command lines in one interpreter, each like a separate CLI run.

``python tests/fuzz/fuzz_driver.py CASES.json RESULTS.jsonl [--mem-gib G] [--case-s S]``:
each case of CASES.json (``{"id", "argv", "cwd"}``) goes through ``prunekit.cli.main`` with its
own working folder, captured stdout/stderr and a wall-clock limit; a result line per case
(exit code, stderr, seconds, and the traceback of any exception that escaped ``main``) is
appended to RESULTS.jsonl and flushed at once, so a case that kills the interpreter is still
known: it is the first case without a result line. Starting the interpreter and importing torch
costs seconds, cases cost milliseconds to a second, so tests/fuzz/test_fuzz_corpus.py runs the
whole corpus in two drivers.

The whole process runs under RLIMIT_AS (``--mem-gib``): a net that would need more memory than
that must be refused by prunekit before allocating, or the case fails (MemoryError, or the
kernel's refusal to map). A case past ``--case-s`` is interrupted (SIGALRM) and recorded as a
hang; one that does not even return to Python is stopped by faulthandler, which kills the
process and leaves the case without a result line.
"""

from __future__ import annotations

import argparse
import faulthandler
import io
import json
import os
import resource
import signal
import sys
import time
import traceback


class CaseTimeout(BaseException):
    """Raised by SIGALRM inside a case that ran past its limit."""


def _alarm(signum, frame):
    raise CaseTimeout()


def run_case(case: dict, limit_s: float) -> dict:
    from prunekit.cli import main

    out, err = io.StringIO(), io.StringIO()
    old = sys.stdout, sys.stderr, os.getcwd()
    outcome = {"id": case["id"], "rc": None, "traceback": "", "timeout": False}
    start = time.monotonic()
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, limit_s)
    faulthandler.dump_traceback_later(limit_s + 30, exit=True)
    try:
        os.chdir(case["cwd"])
        sys.stdout, sys.stderr = out, err
        outcome["rc"] = main(list(case["argv"]))
    except SystemExit as stop:  # argparse's usage errors
        outcome["rc"] = stop.code if isinstance(stop.code, int) else 1
    except CaseTimeout:
        outcome["timeout"] = True
    except BaseException:  # noqa: BLE001 - anything escaping main is what we look for
        outcome["traceback"] = traceback.format_exc()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        faulthandler.cancel_dump_traceback_later()
        sys.stdout, sys.stderr = old[0], old[1]
        os.chdir(old[2])
    outcome["seconds"] = round(time.monotonic() - start, 3)
    outcome["stderr"] = err.getvalue()[-4000:]
    return outcome


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("cases")
    parser.add_argument("results")
    parser.add_argument("--mem-gib", type=float, default=4.0)
    parser.add_argument("--case-s", type=float, default=20.0)
    args = parser.parse_args()
    limit = int(args.mem_gib * (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import prunekit.cli  # noqa: F401 - import once, before the first case's clock starts

    with open(args.cases) as handle:
        cases = json.load(handle)
    with open(args.results, "a") as results:
        for case in cases:
            results.write(json.dumps(run_case(case, args.case_s)) + "\n")
            results.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
