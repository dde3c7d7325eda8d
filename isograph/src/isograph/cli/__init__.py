"""The ``isograph`` command line: one Typer app, commands grouped by module.

Each command module parses arguments, builds the config and calls one library function;
the science lives in the library. Our own :class:`omicsrun.InputError` becomes one line on
stderr and exit status 2.
"""

from __future__ import annotations

from isograph.cli.app import app
from omicsrun.cli import run_app


def _register() -> None:
    # Importing a command module attaches its commands to ``app``.
    from isograph.cli import benchmark, data, explain, fit  # noqa: F401


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``isograph`` script."""
    _register()
    run_app(app, "isograph", argv)


__all__ = ["app", "main"]
