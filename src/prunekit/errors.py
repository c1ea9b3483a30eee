"""User-facing errors.

Every mistake a user can make (bad prototxt, missing LMDB, wrong blob shape, ...) raises a
:class:`PrunekitError` whose message names the file, layer or line and what was expected. The CLI
prints the message and exits non-zero without a traceback; anything else is a bug in prunekit and
keeps its traceback.
"""


class PrunekitError(Exception):
    """An error caused by user input; the message alone must tell the user what to fix."""
