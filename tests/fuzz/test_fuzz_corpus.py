"""The fuzz corpus through the real CLI: every case ends cleanly (issue 18 item 2).

Clean means exit 0, or exit 1 with a last stderr line ``prunekit <command>: error: ...`` that
names the mutated file (or, for bad data found while running, the layer); no traceback; within
the per-case time limit; under an address-space limit (a net too big for memory must be refused
before it is allocated); and no output file, nor a hidden temporary one, left by a failed run.

The cases (tests/fuzz/fuzz_corpus.py, seeded) run in two driver processes side by side
(tests/fuzz/fuzz_driver.py: many cases per interpreter, each through ``prunekit.cli.main``), so
the corpus costs about two interpreter start-ups plus the cases themselves. The counts per kind
are printed and checked, so a corpus that silently shrank fails too.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fuzz_corpus
from fuzz_verdict import problems

SEED = int(os.environ.get("PRUNEKIT_FUZZ_SEED", "18"))
DRIVER = Path(__file__).with_name("fuzz_driver.py")
MEM_GIB, CASE_S = 3.0, 60.0


def _start_driver(cases: list[dict], folder: Path, name: str) -> tuple[subprocess.Popen, Path]:
    (folder / f"{name}.json").write_text(json.dumps(cases))
    results = folder / f"{name}.jsonl"
    env = dict(os.environ, MALLOC_ARENA_MAX="2", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, str(DRIVER), str(folder / f"{name}.json"),
                             str(results), "--mem-gib", str(MEM_GIB), "--case-s", str(CASE_S)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc, results


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[list[dict], dict[str, dict]]:
    """Every case and its result, from two drivers running half of the cases each."""
    if not fuzz_corpus.LENET_FIXTURE.is_dir():
        pytest.skip(f"shared fixtures not found at {fuzz_corpus.LENET_FIXTURE}")
    root = tmp_path_factory.mktemp("fuzz")
    materials = fuzz_corpus.make_materials(root)
    cases = fuzz_corpus.make_cases(root, materials, SEED)
    halves = [cases[0::2], cases[1::2]]
    runs = [_start_driver(half, root, f"driver{i}") for i, half in enumerate(halves)]
    for proc, _ in runs:
        output, _ = proc.communicate(timeout=900)
        if proc.returncode != 0:  # died in a case: that case and the rest have no result
            print(f"driver exit {proc.returncode}:\n{output[-3000:]}")
    results = {}
    for _, path in runs:
        for line in path.read_text().splitlines():
            result = json.loads(line)
            results[result["id"]] = result
    return cases, results


def test_every_fuzz_case_ends_cleanly(corpus) -> None:
    cases, results = corpus
    ran = collections.Counter(case["kind"] for case in cases if case["id"] in results)
    refused = collections.Counter(case["kind"] for case in cases
                                  if results.get(case["id"], {}).get("rc") == 1)
    print(f"\nfuzz corpus (seed {SEED}):")
    for kind in sorted(ran):
        print(f"  {kind:12s} {ran[kind]:4d} cases, {refused[kind]:4d} refused with a one-line "
              f"error, {ran[kind] - refused[kind]:4d} ran to exit 0")
    expected = {kind: count for kind, (_, count) in fuzz_corpus.KINDS.items()}
    for kind, count in expected.items():
        assert ran[kind] == count, (kind, ran[kind], count)
    assert ran["nasty"] >= 60 and ran["output"] >= 15, ran
    bad = {case["id"]: found for case in cases
           if (found := problems(case, results.get(case["id"])))}
    report = "\n".join(f"{cid} ({' '.join(next(c['argv'] for c in cases if c['id'] == cid))}):"
                       f"\n    " + "\n    ".join(p[:600] for p in found)
                       for cid, found in list(bad.items())[:20])
    assert not bad, f"{len(bad)} of {len(cases)} cases not clean:\n{report}"


def test_most_cases_are_refused_and_some_run(corpus) -> None:
    """The corpus really exercises both paths: mostly refusals, some successful runs (a corpus
    of only parse errors would test little)."""
    cases, results = corpus
    codes = collections.Counter(results[c["id"]]["rc"] for c in cases if c["id"] in results)
    assert codes[1] > len(cases) // 2, codes
    assert codes[0] >= 20, codes


def test_no_pickle_from_a_solverstate_ran(corpus) -> None:
    """Some solverstate cases carry a pickle whose unpickling would create PICKLE_RAN."""
    cases, _ = corpus
    root = Path(cases[0]["cwd"])
    assert not (root / "PICKLE_RAN").exists()
