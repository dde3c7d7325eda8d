"""Command ``perturbfm graphs build``: gene graphs aligned to an artifact's genes."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from perturbfm.cli.app import app

graphs_app = typer.Typer(help="Gene graphs for the graph models (v1-v3).", no_args_is_help=True)
app.add_typer(graphs_app, name="graphs")


@graphs_app.command("build")
def build(
    data: Path = typer.Option(..., "--data", help="Dataset artifact folder (the graph goes to its graphs/)."),
    name: str = typer.Option(..., "--name", help="Graph name: writes graphs/<name>.npz."),
    source: str = typer.Option(..., "--from", help="orgdb | coexpression | edges."),
    split: str | None = typer.Option(
        None, "--split", help="coexpression: split whose training controls are used."
    ),
    edges: Path | None = typer.Option(None, "--edges", help="edges: CSV/TSV with gene_a, gene_b[, weight]."),
    species: str = typer.Option("human", "--species", help="orgdb: human | mouse."),
    orgdb: Path | None = typer.Option(None, "--orgdb", help="orgdb: SQLite file (default: Debian's path)."),
    top_k: int = typer.Option(20, "--top-k", help="Neighbours kept per gene (orgdb, coexpression)."),
    split_dir: Path | None = typer.Option(None, "--split-dir"),
    overwrite: bool = typer.Option(False, "--overwrite"),
) -> None:
    """Build a graph; print graph=<path> and a JSON summary."""
    from perturbfm.data.graph_build import build_graph_file

    path, info = build_graph_file(
        data,
        name,
        source=source,  # type: ignore[arg-type]  # checked inside
        split_hash=split,
        split_dir=split_dir,
        edges=edges,
        species=species,  # type: ignore[arg-type]  # checked inside
        orgdb=orgdb,
        top_k=top_k,
        overwrite=overwrite,
    )
    typer.echo(f"graph={path}")
    typer.echo(json.dumps(info, sort_keys=True))
