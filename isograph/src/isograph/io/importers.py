"""Build a validated :class:`~isograph.bundle.Bundle` from real data.

Three sources, one assembly step:

- :func:`import_count_table`: transcript x sample count table + transcript-to-gene table +
  sample table (+ optional lengths);
- :func:`import_quant_dir`: a folder of per-sample Salmon/kallisto/RSEM outputs
  (tximport-style: estimated counts, effective lengths, gene counts summed from transcripts);
- :func:`import_h5ad`: an AnnData file with transcripts as variables.

Every filter and its effect (how many transcripts/genes it removed) is recorded in the
bundle's provenance, together with the trait and covariate column names.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from isograph.bundle import Bundle
from isograph.io.filters import FILTER_RULE, MAPPING_RULE, expressed, map_transcripts, sum_by_group
from isograph.io.h5ad import read_h5ad_counts
from isograph.io.quantifiers import read_quant_dir
from isograph.io.tables import read_count_table, read_lengths, read_sample_table, read_tx2gene
from omicsrun import InputError
from omicsrun.hashing import sha256_file

Log = Callable[[str], None]
#: Sample-id columns tried, in order, when none is named.
SAMPLE_ID_CANDIDATES = ("sample_id", "names")
DEFAULT_MIN_COUNT = 10.0
DEFAULT_MIN_SAMPLES = 3


def _nolog(_: str) -> None:
    return None


def _preview(values: Sequence[object] | pd.Index | pd.Series | np.ndarray, n: int = 5) -> str:
    items = [str(v) for v in list(values)[:n]]
    more = f" (+{len(values) - n} more)" if len(values) > n else ""
    return f"{items}{more}"


# --- samples ---------------------------------------------------------------------------
def _choose_id_column(table: pd.DataFrame, count_ids: pd.Index, id_column: str | None) -> str:
    if id_column is not None:
        if id_column not in table.columns:
            msg = (
                f"sample table has no column {id_column!r} (--sample-id-column); "
                f"columns are {list(table.columns)}"
            )
            raise InputError(msg)
        return id_column
    present = [c for c in SAMPLE_ID_CANDIDATES if c in table.columns]
    if not present:
        msg = (
            f"sample table has neither of the sample-id columns {list(SAMPLE_ID_CANDIDATES)}; "
            f"columns are {list(table.columns)}; name one with --sample-id-column"
        )
        raise InputError(msg)
    # The first candidate wins unless a later one matches more of the count table's samples
    # (coldata tables often carry a 'sample_id' label beside the 'names' the quantifier used).
    overlaps = [int(table[c].astype(str).isin(count_ids).sum()) for c in present]
    return present[int(np.argmax(overlaps))]


def _align_samples(
    table: pd.DataFrame,
    count_ids: pd.Index,
    *,
    id_column: str | None,
    traits: Sequence[str],
    covariates: Sequence[str],
    only_named_columns: bool,
) -> tuple[pd.DataFrame, np.ndarray, str]:
    """Sample table with ``sample_id`` first, and the count-column order that matches it."""
    col = _choose_id_column(table, count_ids, id_column)
    ids = table[col].astype(str)
    if ids.duplicated().any():
        msg = f"sample table column {col!r} repeats sample id(s) {_preview(ids[ids.duplicated()].unique())}"
        raise InputError(msg)
    only_counts = count_ids.difference(pd.Index(ids), sort=False)
    only_table = pd.Index(ids).difference(count_ids, sort=False)
    if len(only_counts) or len(only_table):
        msg = (
            f"samples differ between the counts ({len(count_ids)}) and the sample table column {col!r} "
            f"({len(ids)}): {len(only_counts)} only in the counts {_preview(only_counts)}, "
            f"{len(only_table)} only in the sample table {_preview(only_table)}"
        )
        raise InputError(msg)
    named = [*traits, *covariates]
    absent = [c for c in named if c not in table.columns]
    if absent:
        msg = (
            f"sample table has no column(s) {absent} named by --trait/--covariate; "
            f"columns are {list(table.columns)}"
        )
        raise InputError(msg)
    for c in named:
        n_levels = table[c].nunique(dropna=True)
        if n_levels < 2:
            msg = f"trait/covariate column {c!r} takes {n_levels} distinct value(s); expected at least 2"
            raise InputError(msg)
    out = table.copy()
    if col != "sample_id" and "sample_id" in out.columns:
        out = out.rename(columns={"sample_id": "sample_id_original"})
    out = out.rename(columns={col: "sample_id"})
    out["sample_id"] = ids.to_numpy()
    keep = ["sample_id", *dict.fromkeys(named)] if only_named_columns else list(out.columns)
    out = out[["sample_id", *[c for c in keep if c != "sample_id"]]].reset_index(drop=True)
    order = count_ids.get_indexer(pd.Index(out["sample_id"]))
    return out, order, col


def _check_counts(counts: np.ndarray, transcript_ids: pd.Index, sample_ids: pd.Index, what: str) -> None:
    bad = ~np.isfinite(counts)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        msg = (
            f"{what} must hold finite counts; found {int(bad.sum())} missing or non-finite value(s), "
            f"first at transcript {transcript_ids[row]!r}, sample {sample_ids[col]!r}"
        )
        raise InputError(msg)
    neg = counts < 0
    if neg.any():
        row, col = np.argwhere(neg)[0]
        msg = (
            f"{what} must hold non-negative counts; found {int(neg.sum())} negative value(s), first "
            f"{counts[row, col]} at transcript {transcript_ids[row]!r}, sample {sample_ids[col]!r}"
        )
        raise InputError(msg)


def _check_filters(min_count: float, min_samples: int | None, n_samples: int) -> int:
    if min_count < 0:
        msg = f"--min-count must be >= 0; found {min_count}"
        raise InputError(msg)
    if min_samples is None:
        return min(DEFAULT_MIN_SAMPLES, n_samples)
    if not 0 <= min_samples <= n_samples:
        msg = f"--min-samples must be between 0 and the {n_samples} samples; found {min_samples}"
        raise InputError(msg)
    return int(min_samples)


def _gene_table_of(gene_of: pd.Series) -> pd.DataFrame:
    table = pd.DataFrame(
        {"transcript_id": gene_of.index.astype(str), "gene_id": gene_of.to_numpy(dtype=object)}
    )
    gene = table["gene_id"].astype("string").str.strip()
    table["gene_id"] = gene
    table = table[gene.notna() & gene.ne("")]
    return table.drop_duplicates("transcript_id").astype(str)


# --- assembly --------------------------------------------------------------------------
def _assemble(
    *,
    transcript_ids: pd.Index,
    sample_ids: pd.Index,
    counts: np.ndarray,
    samples: pd.DataFrame,
    tx2gene: pd.DataFrame,
    lengths: pd.DataFrame | None,
    sample_id_column: str | None,
    min_count: float,
    min_samples: int | None,
    gene_counts: bool,
    traits: Sequence[str],
    covariates: Sequence[str],
    only_named_columns: bool,
    dataset_name: str,
    description: str,
    provenance: dict[str, str],
    log: Log,
) -> Bundle:
    what = f"counts from {provenance.get('source_files', 'the input')}"
    _check_counts(counts, transcript_ids, sample_ids, what)
    if transcript_ids.has_duplicates:
        dup = transcript_ids[transcript_ids.duplicated()]
        msg = f"transcript ids must be unique; found duplicates {_preview(dup)}"
        raise InputError(msg)
    table, order, id_col = _align_samples(
        samples,
        sample_ids,
        id_column=sample_id_column,
        traits=traits,
        covariates=covariates,
        only_named_columns=only_named_columns,
    )
    n_min_samples = _check_filters(min_count, min_samples, len(sample_ids))
    counts = counts[:, order] if not np.array_equal(order, np.arange(len(order))) else counts

    log("mapping transcripts to genes")
    mapping = map_transcripts(transcript_ids, tx2gene)
    if mapping.n_unmapped == len(transcript_ids):
        msg = (
            f"no transcript id of the counts is in the transcript-to-gene table (even without versions); "
            f"counts have e.g. {_preview(transcript_ids, 3)}, the table has e.g. "
            f"{_preview(tx2gene['transcript_id'], 3)}"
        )
        raise InputError(msg)
    mapped = pd.notna(mapping.gene_ids)

    log("filtering transcripts")
    keep = mapped & expressed(counts, min_count=min_count, min_samples=n_min_samples)
    if not keep.any():
        msg = (
            f"no transcript passes the filter (count >= {min_count} in >= {n_min_samples} samples) among "
            f"{int(mapped.sum())} mapped transcripts; lower --min-count/--min-samples"
        )
        raise InputError(msg)
    kept_genes = mapping.gene_ids[keep]
    gene_codes_kept, gene_index = pd.factorize(pd.Series(kept_genes, dtype=object))
    gene_index = pd.Index(gene_index.astype(str))
    transcripts = pd.DataFrame(
        {"transcript_id": transcript_ids[keep].astype(str).to_numpy(), "gene_id": kept_genes.astype(str)}
    )
    if lengths is not None:
        aligned = lengths.reindex(transcripts["transcript_id"])
        for column in aligned.columns:
            transcripts[str(column)] = aligned[column].to_numpy()
        provenance["n_transcripts_without_length"] = str(int(aligned.isna().all(axis=1).sum()))
    genes = pd.DataFrame({"gene_id": gene_index.to_numpy()})
    n_isoforms = np.bincount(gene_codes_kept, minlength=len(gene_index))

    gene_matrix = None
    if gene_counts:
        log("summing gene counts")
        codes = np.full(len(transcript_ids), -1, dtype=np.int64)
        codes[mapped] = gene_index.get_indexer(pd.Index(mapping.gene_ids[mapped].astype(str)))
        gene_matrix = sum_by_group(counts, codes, len(gene_index))

    n_input = len(transcript_ids)
    provenance.update(
        {
            "sample_id_column": id_col,
            "n_samples": str(len(sample_ids)),
            "transcript_gene_rule": MAPPING_RULE,
            "filter_rule": FILTER_RULE,
            "filter_min_count": f"{min_count:g}",
            "filter_min_samples": str(n_min_samples),
            "n_transcripts_input": str(n_input),
            "n_transcripts_mapped_exact": str(mapping.n_exact),
            "n_transcripts_mapped_unversioned": str(mapping.n_unversioned),
            "n_transcripts_dropped_no_gene": str(mapping.n_unmapped),
            "n_transcripts_dropped_low_count": str(int((mapped & ~keep).sum())),
            "n_transcripts_kept": str(int(keep.sum())),
            "n_genes_mapped": str(int(pd.Index(mapping.gene_ids[mapped]).nunique())),
            "n_genes_kept": str(len(gene_index)),
            "n_genes_multi_isoform_expressed": str(int((n_isoforms >= 2).sum())),
            "gene_counts": (
                "sum of all input transcripts mapped to the gene (tximport-style), "
                "before the expression filter"
                if gene_counts
                else "not written (--no-gene-counts): switch-only"
            ),
            "traits": ",".join(traits),
            "covariates": ",".join(covariates),
            "count_dtype": "float32",
        }
    )
    log("validating bundle")
    return Bundle(
        samples=table,
        genes=genes,
        transcripts=transcripts,
        transcript_counts=np.ascontiguousarray(counts[keep]),
        gene_counts=gene_matrix,
        dataset_name=dataset_name,
        description=description,
        provenance=provenance,
    )


def _files_provenance(
    source: str, files: Sequence[Path], **named: str | os.PathLike[str] | None
) -> dict[str, str]:
    """Source, input files, and the path and SHA-256 of each named input file that was given."""
    prov = {"importer": "isograph import", "source": source}
    prov["source_files"] = ",".join(str(p) for p in files)
    for key, path in named.items():
        if path is not None:
            prov[f"{key}_file"] = str(Path(path))
            prov[f"{key}_sha256"] = sha256_file(path)
    return prov


def import_count_table(
    counts: str | os.PathLike[str],
    tx2gene: str | os.PathLike[str],
    samples: str | os.PathLike[str],
    *,
    lengths: str | os.PathLike[str] | None = None,
    sample_id_column: str | None = None,
    min_count: float = DEFAULT_MIN_COUNT,
    min_samples: int | None = None,
    gene_counts: bool = True,
    traits: Sequence[str] = (),
    covariates: Sequence[str] = (),
    only_named_columns: bool = False,
    dataset_name: str = "dataset",
    description: str = "",
    log: Log | None = None,
) -> Bundle:
    """Build a bundle from a transcript x sample count table.

    Parameters
    ----------
    counts
        TSV/CSV (optionally gzipped): first column transcript ids, then one column per sample.
    tx2gene
        Transcript-to-gene table; column rule in :func:`isograph.io.tables.read_tx2gene`,
        id matching (versioned/unversioned) in :data:`isograph.io.filters.MAPPING_RULE`.
    samples
        Sample table (CSV/TSV). Its sample-id column is ``sample_id_column`` or else the one of
        ``sample_id``, ``names`` that matches most count columns. Samples must match the
        count table exactly; the bundle follows the sample table's order.
    lengths
        Optional table: transcript id, then ``length`` / ``mean_effective_length`` columns,
        copied into ``transcripts.parquet``.
    min_count, min_samples
        Expression filter (:data:`~isograph.io.filters.FILTER_RULE`); ``min_samples=None``
        means ``min(3, n_samples)``.
    gene_counts
        Write ``gene_counts`` (summed from transcripts), which turns on the abundance channel.
    traits, covariates
        Sample-table columns recorded in ``provenance["traits"]``/``["covariates"]``
        (comma-separated); each must exist and vary.
    only_named_columns
        Keep only ``sample_id`` and the trait/covariate columns in the sample table.
    dataset_name, description
        Manifest fields.
    log
        Called with a short status message before each long step.

    Returns
    -------
    Bundle
        Transcript counts (n_kept_transcripts, n_samples) float32; gene counts
        (n_genes, n_samples) float32 unless ``gene_counts=False``.

    Raises
    ------
    InputError
        Missing/unreadable files, missing columns, sample mismatch, negative or missing
        counts, unknown trait/covariate columns, nothing left after filtering.
    """
    say = log or _nolog
    say(f"reading counts {counts}")
    tx_ids, sample_ids, matrix = read_count_table(counts)
    say(f"reading transcript-to-gene table {tx2gene}")
    mapping = read_tx2gene(tx2gene, known_ids=tx_ids)
    sample_table = read_sample_table(samples)
    length_table = read_lengths(lengths) if lengths is not None else None
    prov = _files_provenance(
        "count_table",
        [Path(counts)],
        counts=counts,
        tx2gene=tx2gene,
        samples=samples,
        lengths=lengths,
    )
    return _assemble(
        transcript_ids=tx_ids,
        sample_ids=sample_ids,
        counts=matrix,
        samples=sample_table,
        tx2gene=mapping,
        lengths=length_table,
        sample_id_column=sample_id_column,
        min_count=min_count,
        min_samples=min_samples,
        gene_counts=gene_counts,
        traits=traits,
        covariates=covariates,
        only_named_columns=only_named_columns,
        dataset_name=dataset_name,
        description=description,
        provenance=prov,
        log=say,
    )


def import_quant_dir(
    quant_dir: str | os.PathLike[str],
    *,
    tx2gene: str | os.PathLike[str] | None = None,
    samples: str | os.PathLike[str] | None = None,
    sample_id_column: str | None = None,
    min_count: float = DEFAULT_MIN_COUNT,
    min_samples: int | None = None,
    gene_counts: bool = True,
    traits: Sequence[str] = (),
    covariates: Sequence[str] = (),
    only_named_columns: bool = False,
    dataset_name: str = "dataset",
    description: str = "",
    log: Log | None = None,
) -> Bundle:
    """Build a bundle from per-sample Salmon/kallisto/RSEM outputs, tximport-style.

    Counts are ``NumReads``/``est_counts``/``expected_count``; ``transcripts.parquet``
    gains ``length`` and ``mean_effective_length`` (mean of the per-sample effective
    lengths); gene counts are sums over each gene's transcripts (unless ``gene_counts`` is
    false). ``tx2gene`` is required unless the tool reports genes (RSEM). Without a
    ``samples`` table the sample table is just the subfolder names. Other parameters as in
    :func:`import_count_table`.
    """
    say = log or _nolog
    say(f"reading quantifications in {quant_dir}")
    quant = read_quant_dir(quant_dir)
    if tx2gene is not None:
        mapping = read_tx2gene(tx2gene, known_ids=quant.transcript_ids)
    elif quant.gene_ids is not None:
        mapping = _gene_table_of(quant.gene_ids)
    else:
        msg = f"{quant.tool} output names no genes; pass a transcript-to-gene table (--tx2gene)"
        raise InputError(msg)
    sample_table = (
        read_sample_table(samples)
        if samples is not None
        else pd.DataFrame({"sample_id": quant.sample_ids.to_numpy()})
    )
    lengths = pd.DataFrame(
        {
            "length": quant.length,
            "mean_effective_length": quant.effective_length.mean(axis=1, dtype=np.float64),
        },
        index=quant.transcript_ids,
    )
    prov = _files_provenance(quant.tool, quant.files, tx2gene=tx2gene, samples=samples)
    prov["quant_dir"] = str(quant_dir)
    prov["lengths"] = "length from the quantifier; mean_effective_length = mean effective length over samples"
    return _assemble(
        transcript_ids=quant.transcript_ids,
        sample_ids=quant.sample_ids,
        counts=quant.counts,
        samples=sample_table,
        tx2gene=mapping,
        lengths=lengths,
        sample_id_column=sample_id_column,
        min_count=min_count,
        min_samples=min_samples,
        gene_counts=gene_counts,
        traits=traits,
        covariates=covariates,
        only_named_columns=only_named_columns,
        dataset_name=dataset_name,
        description=description,
        provenance=prov,
        log=say,
    )


def import_h5ad(
    path: str | os.PathLike[str],
    *,
    gene_key: str = "gene_id",
    layer: str | None = None,
    tx2gene: str | os.PathLike[str] | None = None,
    samples: str | os.PathLike[str] | None = None,
    sample_id_column: str | None = None,
    min_count: float = DEFAULT_MIN_COUNT,
    min_samples: int | None = None,
    gene_counts: bool = True,
    traits: Sequence[str] = (),
    covariates: Sequence[str] = (),
    only_named_columns: bool = False,
    dataset_name: str = "dataset",
    description: str = "",
    log: Log | None = None,
) -> Bundle:
    """Build a bundle from an AnnData file: obs = samples, var = transcripts.

    Genes come from ``var[gene_key]`` unless a ``tx2gene`` table is given; counts from
    ``X`` or ``layer`` (dense or sparse). The sample table is ``obs`` (index = sample id)
    unless a ``samples`` table is given. Other parameters as in :func:`import_count_table`.
    """
    say = log or _nolog
    say(f"reading {path}")
    data = read_h5ad_counts(path, gene_key=None if tx2gene is not None else gene_key, layer=layer)
    if tx2gene is not None:
        mapping = read_tx2gene(tx2gene, known_ids=data.transcript_ids)
    else:  # read_h5ad_counts returned var[gene_key] (it raises when the column is absent)
        mapping = _gene_table_of(pd.Series(data.gene_ids, dtype=object))
    sample_table = read_sample_table(samples) if samples is not None else data.samples
    prov = _files_provenance(
        "h5ad",
        [Path(path)],
        h5ad=path,
        tx2gene=tx2gene,
        samples=samples,
    )
    prov["h5ad_matrix"] = f"layers[{layer!r}]" if layer else "X"
    if tx2gene is None:
        prov["h5ad_gene_key"] = gene_key
    return _assemble(
        transcript_ids=data.transcript_ids,
        sample_ids=pd.Index(data.samples["sample_id"].astype(str)),
        counts=data.counts,
        samples=sample_table,
        tx2gene=mapping,
        lengths=None,
        sample_id_column=sample_id_column,
        min_count=min_count,
        min_samples=min_samples,
        gene_counts=gene_counts,
        traits=traits,
        covariates=covariates,
        only_named_columns=only_named_columns,
        dataset_name=dataset_name,
        description=description,
        provenance=prov,
        log=say,
    )
