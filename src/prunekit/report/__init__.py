"""Logs and results → tables and PNG figures (matplotlib, headless Agg backend)."""
