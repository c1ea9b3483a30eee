"""The progress bar draws on a terminal only, and its line carries the count and the rate."""

from __future__ import annotations

import io

from prunekit.progress_bar import ProgressBar


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_silent_when_not_a_terminal(monkeypatch):
    monkeypatch.delenv("PRUNEKIT_PROGRESS", raising=False)
    stream = io.StringIO()
    with ProgressBar(10, "decode", unit="images", stream=stream) as bar:
        bar.update(10)
    assert stream.getvalue() == ""
    assert bar.done == 10


def test_draws_count_and_rate_on_a_terminal(monkeypatch):
    monkeypatch.delenv("PRUNEKIT_PROGRESS", raising=False)
    stream = _Tty()
    with ProgressBar(4, "decode", unit="images", stream=stream) as bar:
        bar.update(4)
    text = stream.getvalue()
    assert "4/4" in text and "images/s" in text and text.endswith("\n")
    line = bar.line(now=bar._start + 2.0)
    assert "2.0 images/s" in line


def test_forced_off_on_a_terminal(monkeypatch):
    monkeypatch.setenv("PRUNEKIT_PROGRESS", "0")
    stream = _Tty()
    with ProgressBar(None, "scan", stream=stream) as bar:
        bar.update(3)
    assert stream.getvalue() == ""
    assert "3 items" in bar.line()
