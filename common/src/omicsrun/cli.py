"""Running a Typer app so that our own errors become one line on stderr and exit 2."""

from __future__ import annotations

import sys
from typing import Any

from omicsrun.errors import InputError


def run_app(app: Any, prog_name: str, argv: list[str] | None = None) -> None:
    """Invoke a Typer/Click app; :class:`InputError` becomes ``prog: error: ...`` and exit 2.

    Anything else is a bug and keeps its traceback.
    """
    try:
        app(args=argv, prog_name=prog_name)
    except InputError as err:
        message = " ".join(str(err).split())
        print(f"{prog_name}: error: {message}", file=sys.stderr)
        sys.exit(2)
