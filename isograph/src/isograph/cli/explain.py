"""Commands ``isograph explain-module``, ``isograph annotate-structure`` and ``isograph report``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from isograph.cli.app import app
from omicsrun import InputError


def _read_table(path: Path, what: str):  # type: ignore[no-untyped-def]
    import pandas as pd

    if not path.is_file():
        msg = f"{what} {str(path)!r} does not exist"
        raise InputError(msg)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    sep = "," if path.name.lower().removesuffix(".gz").endswith(".csv") else "\t"
    return pd.read_csv(path, sep=sep)


@app.command("explain-module")
def explain_module_command(
    output_dir: Annotated[Path, typer.Option("--output-dir", "--out", help="Folder to write.")],
    fit: Annotated[
        Path | None, typer.Option("--fit", "--artifact-dir", help="Fit folder written by 'isograph fit'.")
    ] = None,
    bundle: Annotated[
        Path | None,
        typer.Option(
            "--bundle", help="Bundle that was fitted: feature table and metadata are derived from it."
        ),
    ] = None,
    feature_table: Annotated[
        Path | None, typer.Option("--feature-table", help="Samples x features (parquet/TSV/CSV).")
    ] = None,
    feature_meta: Annotated[
        Path | None,
        typer.Option("--feature-meta", help="feature_id, gene_id, feature_type (+ gene_name ...)."),
    ] = None,
    module_ids: Annotated[
        list[str] | None, typer.Option("--module-ids", help="Modules to explain (repeatable; default all).")
    ] = None,
    module_score_table: Annotated[
        Path | None,
        typer.Option("--module-score-table", help="Samples x modules scores (overrides eigengenes)."),
    ] = None,
    annotation_table: Annotated[
        Path | None, typer.Option("--annotation-table", help="Output of 'isograph annotate-structure'.")
    ] = None,
    plot: Annotated[bool, typer.Option("--plot", help="Write driver, gradient and heatmap figures.")] = False,
    output_format: Annotated[
        str, typer.Option("--output-format", help="png, pdf or both (comma-separated also accepted).")
    ] = "png",
    enrichment: Annotated[
        bool,
        typer.Option("--enrichment/--no-enrichment", help="GO BP + KEGG over-representation per module."),
    ] = True,
    enrich_top: Annotated[
        int,
        typer.Option("--enrich-top", help="Also enrich the top N positive and N negative drivers (0: off)."),
    ] = 200,
    species: Annotated[
        str, typer.Option("--species", help="human, mouse, or a path to an org.*.eg.sqlite file.")
    ] = "human",
    high_low_percentile: Annotated[
        float, typer.Option("--high-low-percentile", help="Top/bottom percent of samples contrasted.")
    ] = 25.0,
    vae_attribution: Annotated[
        bool, typer.Option("--vae-attribution", help="Decoder-Jacobian attribution (fit with --backend vae).")
    ] = False,
    vae_fdr_threshold: Annotated[float, typer.Option("--vae-fdr-threshold")] = 0.05,
    vae_percentile_threshold: Annotated[float, typer.Option("--vae-percentile-threshold")] = 90.0,
    integrated_gradients: Annotated[
        bool, typer.Option("--integrated-gradients", help="Captum IG through the VAE encoder.")
    ] = False,
    ig_n_steps: Annotated[int, typer.Option("--ig-n-steps")] = 100,
    ig_baseline: Annotated[str, typer.Option("--ig-baseline", help="zero or mean.")] = "zero",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an earlier explain folder.")
    ] = False,
) -> None:
    """Driver genes, transcript polarity and high-vs-low contrasts per module (seed 003)."""
    from isograph.annotation.orgdb import find_orgdb
    from isograph.explain import ExplainConfig, explain_module
    from isograph.explain.core import read_fit_tables
    from omicsrun.atomic import output_dir as commit_output

    if fit is None:
        msg = "--fit (or --artifact-dir) is required: the fit folder to explain"
        raise InputError(msg)
    formats = tuple(
        f.strip() for part in output_format.replace("both", "png,pdf").split(",") for f in part.split()
    )
    ig = ig_baseline if ig_baseline in ("zero", "mean") else None
    if ig is None:
        msg = f"--ig-baseline must be 'zero' or 'mean'; found {ig_baseline!r}"
        raise InputError(msg)
    use_enrichment = enrichment and (species not in ("human", "mouse") or find_orgdb(species) is not None)  # type: ignore[arg-type]
    if enrichment and not use_enrichment:
        typer.echo(f"note: no org.*.eg.db for {species}; enrichment skipped", err=True)
    config = ExplainConfig(
        plot=plot,
        output_formats=formats,  # type: ignore[arg-type]
        high_low_percentile=high_low_percentile,
        enrichment=use_enrichment,
        enrich_top=enrich_top,
        species=species,
        vae_attribution=vae_attribution,
        vae_fdr_threshold=vae_fdr_threshold,
        vae_percentile_threshold=vae_percentile_threshold,
        integrated_gradients=integrated_gradients,
        ig_n_steps=ig_n_steps,
        ig_baseline=ig,  # type: ignore[arg-type]
    )
    # Claimed before any work: lock, writability, not an input; committed only when complete.
    inputs = [fit, bundle, feature_table, feature_meta, module_score_table, annotation_table]
    with commit_output(output_dir, overwrite=overwrite, what="explain output", inputs=inputs) as build:
        gene_level = None
        if bundle is not None:
            if feature_table is not None or feature_meta is not None:
                msg = "give either --bundle or --feature-table with --feature-meta, not both"
                raise InputError(msg)
            from isograph.bundle import read_bundle
            from isograph.explain.inputs import features_from_bundle

            data = read_bundle(bundle)
            table, meta, gene_level = features_from_bundle(data, read_fit_tables(fit)["manifest"])
        elif feature_table is not None and feature_meta is not None:
            table = _read_table(feature_table, "feature table")
            meta = _read_table(feature_meta, "feature metadata")
        else:
            msg = "give --bundle DIR, or both --feature-table and --feature-meta"
            raise InputError(msg)
        results = explain_module(
            fit,
            table,
            meta,
            module_ids=module_ids or None,
            config=config,
            output_dir=build,
            module_score_table=None
            if module_score_table is None
            else _read_table(module_score_table, "score table"),
            annotation_table=None
            if annotation_table is None
            else _read_table(annotation_table, "annotation table"),
            overwrite=overwrite,
            gene_level_matrix=gene_level,
        )
        for module_id, result in results.items():
            drivers = result.gene_driver_table
            top = drivers[drivers["in_module"]].head(5)
            names = ", ".join(
                f"{n if isinstance(n, str) else g} ({r:+.2f})"
                for g, n, r in zip(top["gene_id"], top["gene_name"], top["r"], strict=True)
            )
            typer.echo(f"{module_id}: top drivers {names}")
    typer.echo(f"wrote {output_dir}")


@app.command("annotate-structure")
def annotate_structure_command(
    gtf: Annotated[Path, typer.Option("--gtf", help="GENCODE or Ensembl GTF (plain or .gz).")],
    switch_pairs: Annotated[
        Path,
        typer.Option(
            "--switch-pairs", help="gene_id, transcript_up, transcript_down (explain's switch_pairs.tsv)."
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "--out", help="TSV of structural labels to write.")],
    gtf_cache: Annotated[
        Path | None,
        typer.Option("--gtf-cache", help="Parquet cache of the parsed GTF (written on first use)."),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output file.")] = False,
) -> None:
    """Label switch pairs: exon gain/loss, alternative TSS/TES, CDS and UTR changes, biotype switches."""
    from isograph.annotate.gtf import load_gtf
    from isograph.annotate.structure import annotate_switch_pairs, read_switch_pairs
    from omicsrun.commit import commit_file

    inputs = [gtf, switch_pairs, gtf_cache]
    with commit_file(output, overwrite=overwrite, what="annotation output", inputs=inputs) as tmp:
        pairs = read_switch_pairs(switch_pairs)
        table = load_gtf(gtf, cache=gtf_cache)
        labelled = annotate_switch_pairs(table, pairs)
        tmp.write_text(labelled.to_csv(sep="\t", index=False))
    found = int(labelled["found"].sum())
    typer.echo(f"wrote {output}: {found} of {len(labelled)} pairs found in the GTF ({table.dialect} dialect)")


@app.command("report")
def report_command(
    fit: Annotated[Path, typer.Option("--fit", help="Fit folder.")],
    out: Annotated[Path, typer.Option("--out", help="HTML file to write.")],
    explain: Annotated[Path | None, typer.Option("--explain", help="Explain folder of this fit.")] = None,
    bundle: Annotated[
        Path | None, typer.Option("--bundle", help="Bundle (signed trait heatmap, isoform-fraction plots).")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing report.")] = False,
) -> None:
    """One self-contained HTML page about a fit: the first thing to open."""
    from isograph.report import write_report
    from omicsrun.commit import commit_file

    with commit_file(out, overwrite=overwrite, what="report", inputs=[fit, explain, bundle]) as tmp:
        write_report(fit, tmp, explain_dir=explain, bundle_dir=bundle)
    typer.echo(f"wrote {out}")
