"""One module per CLI command (``prunekit <command>``): its ``add_arguments(parser)`` and
``run(args) -> int``, listed in the verb table of :mod:`prunekit.cli`
(:mod:`prunekit.commands.registry`)."""
