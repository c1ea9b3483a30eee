"""One module per CLI command (``prunekit <command>``)."""
