"""Commands: ``isograph benchmark`` and ``isograph fixtures list|generate``."""

from __future__ import annotations

from pathlib import Path

import typer

from isograph.cli.app import app
from omicsrun import InputError

fixtures_app = typer.Typer(help="Synthetic fixture suites with planted modules.", no_args_is_help=True)
app.add_typer(fixtures_app, name="fixtures")

_EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}


@app.command("benchmark", context_settings=_EXTRA)
def benchmark_command(
    ctx: typer.Context,
    suite: str = typer.Option(..., "--suite", help="Fixture suite: core_v1, scale_v1, multiplex_v1, ..."),
    backend: list[str] = typer.Option(["baseline"], "--backend", help="Registered backend (repeatable)."),
    fixture: list[str] = typer.Option(None, "--fixture", help="Only these fixtures (repeatable)."),
    stage: str | None = typer.Option(None, "--stage", help="Run name; default <suite>-<backend>."),
    seed: list[int] = typer.Option([0], "--seed", help="Seed of fixtures, fits and scores (repeatable)."),
    root: Path = typer.Option(Path(), "--root", help="Folder holding benchmarks/ and artifacts/."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier run of this stage."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress display on stderr."),
    cluster: str = typer.Option(
        "local", "--cluster", help="serial, local (Dask, all cores), slurm, or a scheduler tcp://host:port."
    ),
    workers: int | None = typer.Option(None, "--workers", help="Dask workers (local) or SLURM jobs."),
    stability: int = typer.Option(
        0, "--stability", help="Also refit each fixture on N subsamples; writes <stage>-stability.json."
    ),
) -> None:
    """Generate (or reuse), fit and score a fixture suite; write JSON reports under artifacts/reports/.

    Fixtures x backends x seeds run on Dask (``--cluster``). Dotted overrides for the fit go
    after ``--``, e.g. ``-- baseline.min_module_size=10 latent.n_factors=12``.
    """
    from isograph.benchmark import run_benchmark_grid, summary_table
    from isograph.fit import parse_overrides

    results = run_benchmark_grid(
        suite=suite,
        backends=backend,
        seeds=seed,
        fixtures=fixture or None,
        stage=stage,
        root=root,
        overwrite=overwrite,
        overrides=parse_overrides([a for a in ctx.args if a != "--"]),
        stability=stability,
        show_progress=progress,
        cluster=cluster,
        n_workers=workers,
    )
    for result in results:
        bench = result["benchmark"]
        typer.echo(f"== {bench['stage']} (backend {bench['backend']}, seed {bench['seed']})")
        table = summary_table(bench, result["runtime"])
        typer.echo(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        paths = result["paths"]
        typer.echo(f"reports: {paths['benchmark']} {paths['runtime']} {paths['calibration']}")


@fixtures_app.command("list")
def fixtures_list() -> None:
    """List suites, their fixtures and sizes."""
    from isograph.fixtures import ON_REQUEST_SUITES, SUITES

    for suite, fixtures in SUITES.items():
        note = " (generated only when named)" if suite in ON_REQUEST_SUITES else ""
        typer.echo(f"{suite}{note}")
        for name, spec in fixtures.items():
            kind = "multiplex" if spec.multiplex else "switch-only"
            typer.echo(
                f"  {name}: {spec.n_genes} genes x {spec.n_samples} samples, {kind}; {spec.description}"
            )


@fixtures_app.command("generate")
def fixtures_generate(
    suite: str = typer.Option(..., "--suite", help="Fixture suite."),
    out: Path = typer.Option(..., "--out", help="Folder to write <fixture>/ bundles into."),
    fixture: list[str] = typer.Option(None, "--fixture", help="Only these fixtures (repeatable)."),
    seed: int = typer.Option(0, "--seed", help="Generator seed."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing bundles."),
) -> None:
    """Write fixture bundles to ``OUT/<fixture>/``: all of them or none.

    Every target is checked and locked before any fixture is made; each bundle is built
    aside, and the bundles replace earlier ones together, only once all are complete.
    """
    from contextlib import ExitStack

    from isograph.bundle import write_bundle
    from isograph.fixtures import fixture_spec, make_fixture, suite_fixtures
    from omicsrun.atomic import output_dir

    names = list(dict.fromkeys(fixture)) if fixture else suite_fixtures(suite)
    if seed < 0:
        msg = f"--seed must be a non-negative integer; found {seed}"
        raise InputError(msg)
    for name in names:  # every name is known before any target is touched
        fixture_spec(suite, name)
    with ExitStack() as stack:
        # Claimed (checked, locked) one by one before any work; committed on leaving the block.
        builds = {
            name: stack.enter_context(output_dir(out / name, overwrite=overwrite, what="bundle"))
            for name in names
        }
        for name in names:
            write_bundle(make_fixture(suite, name, seed=seed), builds[name], overwrite=overwrite)
    for name in names:
        typer.echo(str(out / name))
