"""Command ``perturbfm demo``: synthetic and real data, splits, every baseline, panels, reports."""

from __future__ import annotations

from pathlib import Path

import typer

from perturbfm.cli.app import app


@app.command("demo")
def demo(
    out: Path = typer.Option(..., "--out", help="Folder for the demo's data, splits, runs and summary."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier demo in --out."),
) -> None:
    """Run the end-to-end demo and print the baseline x split summary table."""
    from perturbfm.demo import run_demo

    summary = run_demo(out, overwrite=overwrite, progress=lambda msg: typer.echo(msg, err=True))
    typer.echo(summary["markdown"])
    typer.echo(f"summary={summary['paths']['markdown']}")
