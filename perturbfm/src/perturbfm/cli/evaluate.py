"""Command ``perturbfm eval predictions``: evaluate a predictions file on a split."""

from __future__ import annotations

from pathlib import Path

import typer

from perturbfm.cli.app import app

eval_app = typer.Typer(
    help="Evaluate predictions on a frozen split (every metric panel).", no_args_is_help=True
)
app.add_typer(eval_app, name="eval")


@eval_app.command("predictions")
def predictions(
    data: Path = typer.Option(..., "--data", help="Dataset artifact folder."),
    split: str = typer.Option(..., "--split", help="Split hash (or a unique prefix)."),
    preds: Path = typer.Option(
        ...,
        "--preds",
        help="predictions.npz with mean, optional var (n, n_genes) and idx (n,); or an AnnData "
        ".h5ad of predicted cells (cell-eval layout: obs[--pert-key], the dataset's genes).",
    ),
    out: Path = typer.Option(..., "--out", help="New output folder (refused when it already holds results)."),
    seed: int = typer.Option(0, "--seed"),
    split_dir: Path | None = typer.Option(
        None, "--split-dir", help="Split store (default $PERTURBFM_SPLIT_DIR or ./splits)."
    ),
    pert_key: str = typer.Option(
        "target_gene", "--pert-key", help=".h5ad only: obs column of the perturbation."
    ),
    context_key: str | None = typer.Option(
        None,
        "--context-key",
        help=".h5ad only: obs column of the context (needed when the test set has several).",
    ),
    control_label: str = typer.Option(
        "non-targeting", "--control-label", help=".h5ad only: label of control cells (ignored)."
    ),
    metrics: str | None = typer.Option(
        None,
        "--metrics",
        help="Comma-separated group-level metrics to compute instead of every panel, e.g. "
        "cell-eval's four: pearson_delta_celleval,pds_l1,mse_all,mae_all (no report then).",
    ),
) -> None:
    """Validate the predictions, evaluate every panel, write the run files; print out_dir=<folder>."""
    from perturbfm.runs import eval_predictions

    out_dir = eval_predictions(
        data_dir=data,
        split_hash=split,
        preds_path=preds,
        out_dir=out,
        seed=seed,
        split_dir=split_dir,
        pert_key=pert_key,
        context_key=context_key,
        control_label=control_label,
        metrics=None if metrics is None else metrics.split(","),
    )
    typer.echo(f"out_dir={out_dir}")
