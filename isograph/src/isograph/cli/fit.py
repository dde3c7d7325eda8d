"""``isograph fit``: modules, edges, trait tests and feature scores for one bundle."""

from __future__ import annotations

from pathlib import Path

import typer

from isograph.cli.app import app
from omicsrun.parallel import CLUSTER_HELP, check_cluster


@app.command("fit")
def fit_command(
    overrides: list[str] | None = typer.Argument(
        None, help="Dotted overrides after '--', e.g. -- baseline.min_module_size=5 features.pseudocount=1"
    ),
    bundle: Path = typer.Option(..., "--bundle", help="Dataset bundle folder."),
    out: Path = typer.Option(..., "--out", help="Output folder (must not already hold results)."),
    backend: str = typer.Option("baseline", "--backend", help="Backend name."),
    seed: int = typer.Option(0, "--seed", help="Random seed passed to the backend."),
    regress_covariates: bool = typer.Option(
        True, "--regress-covariates/--no-regress-covariates", help="Regress nuisance covariates out."
    ),
    covariate: list[str] | None = typer.Option(
        None,
        "--covariate",
        help=(
            "Covariate column to regress out (repeatable); "
            "default: the bundle's recorded covariates, else batch/sex/age."
        ),
    ),
    trait: list[str] | None = typer.Option(
        None,
        "--trait",
        help=(
            "Trait column to test (repeatable); "
            "default: the bundle's recorded traits and covariates, else every column."
        ),
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing fit folder."),
    stability: int = typer.Option(
        0, "--stability", help="Refit on this many subsamples; per-gene/module stability + consensus."
    ),
    stability_fraction: float = typer.Option(
        0.8, "--stability-fraction", help="Share of samples per subsample."
    ),
    stability_strata: str | None = typer.Option(
        None,
        "--stability-strata",
        help="Column to stratify subsamples by; default: the first recorded trait.",
    ),
    cluster: str = typer.Option("local", "--cluster", help="Where resamples run: " + CLUSTER_HELP),
) -> None:
    """Fit modules to a bundle and write the fit folder."""
    from rich.console import Console

    from isograph.bundle import read_bundle
    from isograph.fit import fit_bundle, parse_overrides, write_fit
    from isograph.fit.summary import fit_summary
    from omicsrun.atomic import output_dir

    parsed = parse_overrides(overrides or [])
    cluster = check_cluster(cluster)  # before any work, not after the full-data fit
    if stability < 0 or (stability and not 0 < stability_fraction < 1):
        from omicsrun import InputError

        msg = (
            "--stability must be >= 0 and --stability-fraction in (0, 1); "
            f"found {stability} and {stability_fraction}"
        )
        raise InputError(msg)
    # Claimed before any work: lock, writability and input checks; committed only when complete.
    # Progress on stderr (a transient status line on a terminal, silent when redirected).
    with (
        output_dir(out, overwrite=overwrite, what="fit output", inputs=[bundle]) as build,
        Console(stderr=True).status("isograph fit: reading bundle") as status,
    ):
        data = read_bundle(bundle)
        status.update(
            f"isograph fit: features + backend {backend} on {data.n_genes} genes x {data.n_samples} samples"
        )
        result = fit_bundle(
            data,
            backend=backend,
            seed=seed,
            overrides=parsed,
            regress_covariates=regress_covariates,
            covariates=covariate or None,
            traits=trait or None,
        )
        if stability:
            from dataclasses import replace

            from isograph.stability import default_strata, stability_selection

            status.update(f"isograph fit: stability on {stability} subsamples ({cluster})")
            stab = stability_selection(
                data,
                result.modules,
                n_resamples=stability,
                fraction=stability_fraction,
                strata_key=stability_strata or default_strata(data),
                seed=seed,
                fit_kwargs={
                    "backend": backend,
                    "seed": seed,
                    "overrides": parsed,
                    "regress_covariates": regress_covariates,
                    "covariates": covariate or None,
                    "traits": trait or None,
                },
                cluster=cluster,
            )
            result = replace(result, stability=stab)
        status.update(f"isograph fit: writing {out}")
        write_fit(result, build, overwrite=overwrite)
    path = out
    n_modules = result.eigengenes.shape[1]
    typer.echo(f"wrote {path} ({n_modules} modules, {len(result.edges)} edges, backend {backend})")
    for line in result.diagnostics.get("warnings", []):
        typer.echo(f"warning: {line}", err=True)
    for line in fit_summary(result):
        typer.echo(line)
    if result.stability is not None:
        for row in result.stability.summary["modules"]:
            typer.echo(
                f"  {row['module_id']}: {row['n_genes']} genes, stability {row['stability']:.2f}, "
                f"{row['n_consensus_genes']} in the consensus"
            )
