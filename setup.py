"""Builds the one compiled module, IncReg's host step (src/prunekit/prune/increg/_increg_host.c).

Everything else is in pyproject.toml. The module is optional: without a C compiler the install
still succeeds and prunekit runs the same arithmetic in NumPy (slower per iteration, same numbers).
-ffp-contract=off keeps every multiply and add separately rounded, as NumPy does.
"""

import sys

from setuptools import Extension, setup

flags = [] if sys.platform == "win32" else ["-O2", "-ffp-contract=off"]

setup(ext_modules=[Extension("prunekit.prune.increg._increg_host",
                             ["src/prunekit/prune/increg/_increg_host.c"],
                             extra_compile_args=flags, optional=True)])
