"""Command ``perturbfm ablate``: named configs x seeds into one summary table."""

from __future__ import annotations

from pathlib import Path

import typer

from perturbfm.cli.app import app


@app.command("ablate")
def ablate(
    data: Path = typer.Option(..., "--data", help="Dataset artifact folder."),
    split: str = typer.Option(..., "--split", help="Split hash (or a unique prefix)."),
    configs: Path = typer.Option(..., "--configs", help="JSON list of config names/objects."),
    out: Path = typer.Option(..., "--out", help="Folder for summary.csv and summary.json."),
    graph: list[str] | None = typer.Option(
        None, "--graph", help="Graph names for the graph configs (repeatable)."
    ),
    seeds: int = typer.Option(1, "--seeds", help="Seeds 0..N-1 per config."),
    runs_root: Path = typer.Option(Path("runs"), "--runs-root"),
    split_dir: Path | None = typer.Option(None, "--split-dir"),
    cluster: str = typer.Option("serial", "--cluster", help="serial | local | slurm | tcp://scheduler."),
    n_workers: int | None = typer.Option(None, "--n-workers"),
    overwrite: bool = typer.Option(False, "--overwrite"),
) -> None:
    """Run every config for every seed (one run folder each) and print the summary table."""
    from rich.console import Console

    from perturbfm.runs.ablate import run_ablation

    with Console(stderr=True).status("perturbfm ablate: starting") as status:
        table = run_ablation(
            data_dir=data,
            split_hash=split,
            configs_path=configs,
            out_dir=out,
            graphs=graph or [],
            seeds=seeds,
            runs_root=runs_root,
            split_dir=split_dir,
            cluster=cluster,
            n_workers=n_workers,
            overwrite=overwrite,
            progress=lambda done, total: status.update(f"perturbfm ablate: {done}/{total} runs"),
        )
    typer.echo(table.drop(columns=["run_dir"]).to_string(index=False))
    typer.echo(f"summary={out / 'summary.csv'}")
