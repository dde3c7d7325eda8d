"""Running a Typer app so that every user error is one line on stderr and exit status 2.

- our :class:`InputError` (bad input, existing results, a busy or unwritable target);
- Click's usage errors (a missing or malformed option, an unknown command), which Typer
  would draw as a multi-line box: ``isograph fit: error: Missing option '--out'. (see
  'isograph fit --help')``; ``--help`` and a bare group name still show the rich help;
- an operating-system refusal to write (no space, read-only, no permission): one line too.

Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from typing import Any

from omicsrun.errors import InputError


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _fail(prog: str, message: str, code: int = 2) -> None:
    print(f"{prog}: error: {_one_line(message)}", file=sys.stderr)
    sys.exit(code)


def _click_exceptions() -> Any:
    # Typer >= 0.26 carries its own copy of Click; older Typer uses Click itself.
    import importlib

    try:
        return importlib.import_module("typer._click.exceptions")
    except ImportError:
        return importlib.import_module("click.exceptions")


def run_app(app: Any, prog_name: str, argv: list[str] | None = None) -> None:
    """Invoke a Typer/Click app; user errors become ``prog: error: ...`` and exit 2.

    Anything else is a bug and keeps its traceback.
    """
    import typer

    from omicsrun.commit import WRITE_ERRNOS

    cex = _click_exceptions()
    from omicsrun.validate import guard_cli_numbers

    command = guard_cli_numbers(typer.main.get_command(app))
    try:
        code = command.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except InputError as err:
        _fail(prog_name, str(err))
    except getattr(cex, "NoArgsIsHelpError", ()) as err:  # Click >= 8.2
        # A group named without a subcommand: show its (rich) help, as Typer would.
        if err.ctx is not None:
            print(err.ctx.get_help(), file=sys.stderr)
        sys.exit(2)
    except cex.UsageError as err:
        where = err.ctx.command_path if err.ctx is not None else prog_name
        hint = f" (see '{where} --help')" if err.ctx is not None else ""
        _fail(where, f"{err.format_message()}{hint}")
    except cex.ClickException as err:
        _fail(prog_name, err.format_message())
    except (KeyboardInterrupt, typer.Abort):
        _fail(prog_name, "interrupted", 130)
    except OSError as err:
        if err.errno not in WRITE_ERRNOS:
            raise
        where = f": {err.filename}" if err.filename else ""
        _fail(prog_name, f"{err.strerror}{where}")
    # Like Click's standalone mode: always leave through SystemExit with the command's status.
    sys.exit(code if isinstance(code, int) else 0)
