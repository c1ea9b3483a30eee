"""Pruning methods: group views, per-group scores, regularisation factors and masks."""
