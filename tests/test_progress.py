"""The one progress bar: counts on stderr when enabled, silent when not."""

from __future__ import annotations

from toolkit._progress import progress_bar


def test_enabled_bar_counts_done_of_total_on_stderr_and_leaves_stdout_alone(capsys):
    with progress_bar(3, enabled=True, description="preprocess", unit="patients") as advance:
        for _ in range(3):
            advance()
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "preprocess" in captured.err and "3/3 patients" in captured.err


def test_disabled_bar_prints_nothing(capsys):
    with progress_bar(3, enabled=False, description="preprocess", unit="patients") as advance:
        advance()
    assert capsys.readouterr() == ("", "")
