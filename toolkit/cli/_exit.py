"""How a command stops on an error it cannot go past: `error: MESSAGE` on stderr, then exit."""

from __future__ import annotations

import typer


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print the error; return the exit to raise (`raise fail(...) from None`)."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)
