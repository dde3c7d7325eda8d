"""The Typer app every command module attaches to."""

import typer

app = typer.Typer(
    name="isograph",
    help="Co-regulated modules of isoform switches from bulk RNA-seq transcript counts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
