"""``python -m prunekit ARGS`` = ``prunekit ARGS`` (what ``torchrun -m prunekit train ...`` runs)."""

import sys

from prunekit.cli import main

sys.exit(main())
