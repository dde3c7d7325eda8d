"""Commands ``perturbfm data make-synth | import-h5ad | info``."""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import typer

from perturbfm.cli.app import app, comma_values

data_app = typer.Typer(
    help="Dataset artifacts: synthetic data, h5ad import, summaries.", no_args_is_help=True
)
app.add_typer(data_app, name="data")


@data_app.command("make-synth")
def make_synth(
    out: Path = typer.Option(..., "--out", help="Artifact folder to create."),
    n_obs: int = typer.Option(2000, "--n-obs"),
    n_genes: int = typer.Option(200, "--n-genes"),
    n_contexts: int = typer.Option(3, "--n-contexts"),
    n_perts: int = typer.Option(20, "--n-perts"),
    seed: int = typer.Option(0, "--seed"),
    noise: float = typer.Option(0.3, "--noise", help="Standard deviation of the cell noise."),
    combo_fraction: float = typer.Option(
        0.25, "--combo-fraction", help="Share of perturbations that are pairs."
    ),
    memmap: bool = typer.Option(False, "--memmap", help="Write memory-mappable .npy files."),
    overwrite: bool = typer.Option(False, "--overwrite"),
) -> None:
    """Simulate a dataset with a planted gene graph (written to graphs/synthetic.npz)."""
    from omicsrun.atomic import output_dir
    from perturbfm.data.artifact import dataset_hash, save_dataset
    from perturbfm.data.synthetic import make_synthetic, synthetic_graph

    with output_dir(out, overwrite=overwrite, what="dataset") as build:
        ds = make_synthetic(
            n_obs=n_obs,
            n_genes=n_genes,
            n_contexts=n_contexts,
            n_perts=n_perts,
            seed=seed,
            noise=noise,
            combo_fraction=combo_fraction,
        )
        graph = synthetic_graph(n_genes=n_genes, seed=seed)
        save_dataset(ds, build, overwrite=overwrite, memmap=memmap, graphs={"synthetic": graph})
    typer.echo(f"data_dir={out}")
    typer.echo(f"data_hash={dataset_hash(out)}")


@data_app.command("import-h5ad")
def import_h5ad_cmd(
    dataset: Path = typer.Option(..., "--dataset", help="AnnData .h5ad file."),
    out: Path = typer.Option(..., "--out", help="Artifact folder to create."),
    pert_key: str = typer.Option(
        ..., "--pert-key", help="obs column with perturbation labels (A+B = combo)."
    ),
    context_key: str = typer.Option(..., "--context-key", help="obs column with the context (cell type)."),
    control: str = typer.Option(..., "--control", help="Perturbation label of control cells."),
    batch_key: str | None = typer.Option(None, "--batch-key", help="Pair within (context, batch)."),
    layer: str | None = typer.Option(None, "--layer", help="Use this layer instead of X."),
    covariate_keys: list[str] | None = typer.Option(
        None, "--covariate-keys", help="obs columns to keep (repeat or comma-separate)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the control pairing."),
    memmap: bool = typer.Option(
        False, "--memmap", help="Kept for compatibility: artifacts are always memory-mappable .npy files."
    ),
    overwrite: bool = typer.Option(False, "--overwrite"),
) -> None:
    """Import an h5ad file, pairing each cell with a random control of its context (seeded)."""
    from omicsrun.atomic import output_dir
    from perturbfm.data.artifact import dataset_hash, save_dataset
    from perturbfm.data.h5ad import import_h5ad

    start = time.perf_counter()
    with output_dir(out, overwrite=overwrite, what="dataset", inputs=[dataset]) as build:
        ds = import_h5ad(
            dataset,
            pert_key=pert_key,
            context_key=context_key,
            control_label=control,
            batch_key=batch_key,
            layer=layer,
            covariate_keys=comma_values(covariate_keys),
            seed=seed,
        )
        save_dataset(ds, build, overwrite=overwrite, memmap=memmap, progress=sys.stderr.isatty())
    elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"imported {ds.n_obs} cells x {ds.n_genes} genes in {elapsed:.1f} s (peak RSS {peak_mb:.0f} MB)",
        file=sys.stderr,
    )
    typer.echo(f"data_dir={out}")
    typer.echo(f"data_hash={dataset_hash(out, verify=False)}")  # computed by save_dataset just now


@data_app.command("info")
def info(
    data: Path = typer.Argument(..., help="Artifact folder."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Summarise an artifact: cells, genes, contexts, perturbations, controls, format, hash."""
    from perturbfm.data.artifact import list_graphs, open_dataset, read_meta
    from perturbfm.data.summary import describe_dataset

    meta = read_meta(data)
    ds, data_hash = open_dataset(data)
    summary = describe_dataset(ds)
    summary.update(
        format=f"{meta['format']} v{meta['format_version']} ({meta.get('storage', 'npz')})",
        data_hash=data_hash,
        graphs=list_graphs(data),
    )
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    lines = [
        f"dataset      {data}" + (f"  ({summary['name']})" if summary.get("name") else ""),
        f"format       {summary['format']}",
        f"data_hash    {summary['data_hash']}",
        f"cells        {summary['n_cells']}  (controls {summary['n_controls']})",
        f"genes        {summary['n_genes']}",
        f"perturbations {summary['n_perturbations']}  (combinations {summary['n_combinations']})",
        f"batches      {summary['n_batches']}",
        f"graphs       {', '.join(summary['graphs']) or '-'}",
        f"obs columns  {', '.join(summary['obs_columns']) or '-'}",
        "contexts:",
        f"  {'context':<16}{'cells':>8}{'controls':>10}{'perts':>8}",
    ]
    lines += [
        f"  {c:<16}{v['cells']:>8}{v['controls']:>10}{v['perturbations']:>8}"
        for c, v in summary["contexts"].items()
    ]
    typer.echo("\n".join(lines))
