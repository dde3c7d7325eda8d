"""Commands ``perturbfm export`` and ``perturbfm leaderboard``."""

from __future__ import annotations

from pathlib import Path

import typer

from perturbfm.cli.app import app


@app.command("export")
def export(
    run: Path = typer.Option(..., "--run", help="Run folder (from `train baseline` or `eval predictions`)."),
    out: Path = typer.Option(..., "--out", help="New folder for the AnnData pairs."),
    split_dir: Path | None = typer.Option(
        None, "--split-dir", help="Split store (default $PERTURBFM_SPLIT_DIR or ./splits)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier export in --out."),
) -> None:
    """Write pred_<context>.h5ad / real_<context>.h5ad pairs that cell-eval and PerturBench read."""
    from perturbfm.runs.anndata_io import export_run

    out_dir = export_run(run, out, split_dir=split_dir, overwrite=overwrite)
    typer.echo(f"out_dir={out_dir}")


@app.command("leaderboard")
def leaderboard(
    runs: Path = typer.Option(..., "--runs", help="Folder of run folders."),
    out: Path = typer.Option(Path("leaderboard.html"), "--out", help="HTML file to write."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing leaderboard file."),
) -> None:
    """Every run of each split side by side; models picked on validation metrics only."""
    from perturbfm.report.leaderboard import write_leaderboard

    path = write_leaderboard(runs, out, overwrite=overwrite)
    typer.echo(f"leaderboard={path}")
