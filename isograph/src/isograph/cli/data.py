"""Commands ``isograph import`` (real data -> bundle) and ``isograph export`` (bundle -> JSON summary).

Each command parses its arguments and calls one library function
(:mod:`isograph.io`, :mod:`isograph.export`); nothing here computes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from isograph.annotation.names import attach_gene_names
from isograph.bundle import read_bundle, write_bundle
from isograph.cli.app import app
from isograph.export import check_export_target, export_summary
from isograph.io import import_count_table, import_h5ad, import_quant_dir
from isograph.io.importers import DEFAULT_MIN_COUNT, DEFAULT_MIN_SAMPLES
from omicsrun import InputError
from omicsrun.atomic import output_dir
from omicsrun.commit import commit_file

_err = Console(stderr=True)


@contextmanager
def _status(first: str) -> Iterator[Callable[[str], None]]:
    # A transient status line on stderr: shown on a terminal, silent when stderr is a file.
    with _err.status(first) as status:

        def log(message: str) -> None:
            status.update(f"[bold]isograph import[/]: {message}")

        yield log


def _names(values: list[str] | None) -> list[str]:
    """Repeatable options that also accept comma-separated lists: ``--trait a --trait b,c``."""
    out: list[str] = []
    for value in values or []:
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return list(dict.fromkeys(out))


@app.command("import")
def import_(
    out: Annotated[Path, typer.Option("--out", help="Bundle folder to create.")],
    counts: Annotated[
        Path | None,
        typer.Option("--counts", help="Transcript x sample count table (TSV/CSV, optionally .gz)."),
    ] = None,
    quant_dir: Annotated[
        Path | None,
        typer.Option("--quant-dir", help="Folder of per-sample Salmon/kallisto/RSEM output folders."),
    ] = None,
    h5ad: Annotated[
        Path | None, typer.Option("--h5ad", help="AnnData file: obs = samples, var = transcripts.")
    ] = None,
    tx2gene: Annotated[
        Path | None,
        typer.Option(
            "--tx2gene",
            help="Transcript-to-gene table: columns transcript_id + gene_id if present, else the first two "
            "columns; versioned ids fall back to unversioned matching.",
        ),
    ] = None,
    samples: Annotated[Path | None, typer.Option("--samples", help="Sample table (CSV/TSV).")] = None,
    lengths: Annotated[
        Path | None,
        typer.Option(
            "--lengths", help="Transcript lengths: id, length, mean_effective_length (--counts only)."
        ),
    ] = None,
    sample_id_column: Annotated[
        str | None,
        typer.Option(
            "--sample-id-column",
            help="Sample-id column of the sample table [default: 'sample_id' or 'names', whichever matches].",
        ),
    ] = None,
    gene_key: Annotated[
        str, typer.Option("--gene-key", help="var column with gene ids (--h5ad).")
    ] = "gene_id",
    layer: Annotated[str | None, typer.Option("--layer", help="Layer to read instead of X (--h5ad).")] = None,
    min_count: Annotated[
        float, typer.Option("--min-count", help="Keep a transcript with count >= this ...")
    ] = DEFAULT_MIN_COUNT,
    min_samples: Annotated[
        int | None,
        typer.Option(
            "--min-samples",
            help=f"... in at least this many samples [default: min({DEFAULT_MIN_SAMPLES}, n)].",
        ),
    ] = None,
    no_gene_counts: Annotated[
        bool, typer.Option("--no-gene-counts", help="Do not write gene counts (switch-only bundle).")
    ] = False,
    trait: Annotated[
        list[str] | None, typer.Option("--trait", help="Trait column (repeatable or comma-separated).")
    ] = None,
    covariate: Annotated[
        list[str] | None,
        typer.Option("--covariate", help="Covariate column to regress out (repeatable or comma-separated)."),
    ] = None,
    only_named_columns: Annotated[
        bool,
        typer.Option(
            "--only-named-columns", help="Keep only sample_id, traits and covariates in the sample table."
        ),
    ] = False,
    name: Annotated[
        str | None, typer.Option("--name", help="Dataset name [default: the --out folder name].")
    ] = None,
    description: Annotated[str, typer.Option("--description", help="Free-text description.")] = "",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing bundle folder.")
    ] = False,
    gene_names: Annotated[
        str,
        typer.Option(
            "--gene-names",
            help="Gene names from: 'auto' (installed org.Hs.eg.db when ids are human Ensembl/Entrez), "
            "'human'/'mouse', a GTF, a gene_id/gene_name table, or 'none'.",
        ),
    ] = "auto",
) -> None:
    """Build a dataset bundle from a count table, quantifier outputs or an .h5ad file."""
    sources = {"--counts": counts, "--quant-dir": quant_dir, "--h5ad": h5ad}
    given = [flag for flag, value in sources.items() if value is not None]
    if len(given) != 1:
        msg = f"give exactly one of --counts, --quant-dir, --h5ad; found {given or 'none'}"
        raise InputError(msg)
    if lengths is not None and counts is None:
        msg = "--lengths goes with --counts; quantifier outputs carry their own lengths"
        raise InputError(msg)
    if gene_names not in ("auto", "none", "human", "mouse") and not Path(gene_names).is_file():
        msg = f"--gene-names {gene_names!r} is neither auto, none, human, mouse nor an existing file"
        raise InputError(msg)
    # The source's own inputs are bound here; the options every importer shares are passed once below.
    if counts is not None:
        if tx2gene is None or samples is None:
            msg = "--counts needs --tx2gene (transcript-to-gene table) and --samples (sample table)"
            raise InputError(msg)
        importer = partial(import_count_table, counts, tx2gene, samples, lengths=lengths)
    elif quant_dir is not None:
        importer = partial(import_quant_dir, quant_dir, tx2gene=tx2gene, samples=samples)
    else:
        assert h5ad is not None  # exactly one source was checked above
        importer = partial(
            import_h5ad, h5ad, gene_key=gene_key, layer=layer, tx2gene=tx2gene, samples=samples
        )
    inputs = [counts, quant_dir, h5ad, tx2gene, samples, lengths]
    with (
        output_dir(out, overwrite=overwrite, what="bundle", inputs=inputs) as build,
        _status("isograph import: starting") as log,
    ):
        bundle = importer(
            sample_id_column=sample_id_column,
            min_count=min_count,
            min_samples=min_samples,
            gene_counts=not no_gene_counts,
            traits=_names(trait),
            covariates=_names(covariate),
            only_named_columns=only_named_columns,
            dataset_name=name or out.resolve().name,
            description=description,
            log=log,
        )
        from isograph.annotation.names import resolve_name_source

        source = resolve_name_source(gene_names, bundle.gene_ids)
        if source is not None:
            log(f"attaching gene names from {source}")
            bundle = attach_gene_names(bundle, source)
        log(f"writing {out}")
        write_bundle(bundle, build, overwrite=overwrite)
    prov = bundle.provenance
    typer.echo(
        f"wrote {out}: {bundle.n_samples} samples, {bundle.n_transcripts} transcripts of "
        f"{bundle.n_genes} genes ({prov['n_genes_multi_isoform_expressed']} with >= 2 expressed isoforms); "
        f"dropped {prov['n_transcripts_dropped_no_gene']} without a gene and "
        f"{prov['n_transcripts_dropped_low_count']} "
        f"below {prov['filter_min_count']} counts in {prov['filter_min_samples']} samples; "
        f"gene counts {'written' if bundle.is_multiplex else 'not written'}; "
        f"gene names for {prov.get('n_genes_named', 0)} genes"
    )


@app.command("export")
def export(
    bundle: Annotated[Path, typer.Option("--bundle", help="Bundle folder.")],
    out: Annotated[Path, typer.Option("--out", help="JSON file to write.")],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing file.")] = False,
) -> None:
    """Write a JSON summary of a bundle: samples, genes, transcripts, assays, traits, provenance."""
    check_export_target(out, overwrite=overwrite)
    with commit_file(out, overwrite=overwrite, what="export target", inputs=[bundle]) as tmp:
        summary = export_summary(read_bundle(bundle), tmp, overwrite=True)
    typer.echo(
        f"wrote {out}: {summary['n_samples']} samples, {summary['n_genes']} genes, "
        f"{summary['n_transcripts']} transcripts, assays {sorted(summary['assays'])}"
    )
