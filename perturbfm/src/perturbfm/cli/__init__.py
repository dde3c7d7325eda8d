"""The ``perturbfm`` command line: ``data``, ``splits``, ``train``, ``eval``, ``demo``.

Command modules parse arguments and call one library function each; our own
:class:`omicsrun.InputError` becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

from omicsrun.cli import run_app
from perturbfm.cli.app import app


def _register() -> None:
    # Importing a command module attaches its commands (or sub-apps) to ``app``.
    from perturbfm.cli import ablate, data, demo, evaluate, export, graphs, splits, train  # noqa: F401


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``perturbfm`` script."""
    _register()
    run_app(app, "perturbfm", argv)


__all__ = ["app", "main"]
