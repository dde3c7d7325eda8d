"""The Typer app every command module attaches to (sub-apps: data, splits, train, eval)."""

import typer

app = typer.Typer(
    name="perturbfm",
    help="Perturbation response prediction with hash-locked splits and full metric panels.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def comma_values(values: list[str] | None) -> list[str]:
    """Values of a repeatable option, each occurrence also split at commas (blanks dropped)."""
    return [k.strip() for v in values or [] for k in v.split(",") if k.strip()]
