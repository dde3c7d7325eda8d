"""``isograph export``: a JSON summary of a dataset bundle (seed 001, "Export Outputs").

The summary says what a bundle holds: sample, gene and transcript counts, genes with two or
more transcripts (those the switch channel can score), assays present and whether the
abundance channel is on, every sample-table column with its type and number of levels,
truth tables, and the provenance recorded at import.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from isograph.bundle import Bundle
from isograph.bundle.io import FORMAT_NAME, FORMAT_VERSION
from omicsrun import InputError
from omicsrun.atomic import write_json

SUMMARY_FORMAT = "isograph-bundle-summary"
SUMMARY_VERSION = 1


def _column_kind(values: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(values):
        return "boolean"
    if pd.api.types.is_numeric_dtype(values):
        return "numeric"
    return "categorical"


def _column_summary(values: pd.Series, *, role: str) -> dict[str, Any]:
    n_levels = int(values.nunique(dropna=True))
    entry: dict[str, Any] = {
        "type": _column_kind(values),
        "dtype": str(values.dtype),
        "n_levels": n_levels,
        "n_missing": int(values.isna().sum()),
        "role": role,
    }
    if entry["type"] != "numeric" and n_levels <= 20:
        counts = values.astype(str)[values.notna()].value_counts().sort_index()
        entry["levels"] = {str(k): int(v) for k, v in counts.items()}
    return entry


def _split_names(text: str | None) -> list[str]:
    return [name for name in (text or "").split(",") if name]


def summarize_bundle(bundle: Bundle) -> dict[str, Any]:
    """Summarise a bundle as a JSON-ready dict.

    Parameters
    ----------
    bundle
        A validated bundle.

    Returns
    -------
    dict
        ``dataset_name``, ``suite_name``, ``description``, ``n_samples``, ``n_genes``,
        ``n_transcripts``, ``n_multi_isoform_genes`` (genes with >= 2 transcripts),
        ``transcripts_per_gene`` (min/median/max), ``assays`` (name -> [n_features,
        n_samples]), ``multiplex`` (bool: gene counts present), ``library_size``
        (transcript-count totals per sample: min/median/max), ``sample_columns`` (column ->
        type, dtype, n_levels, n_missing, role = trait/covariate/other, levels when
        categorical with <= 20 levels), ``traits``, ``covariates``, ``truth_tables``,
        ``provenance``, ``format``/``format_version`` of the summary and of the bundle.
    """
    per_gene = bundle.transcripts_per_gene().to_numpy()
    traits = _split_names(bundle.provenance.get("traits"))
    covariates = _split_names(bundle.provenance.get("covariates"))
    roles = {name: "covariate" for name in covariates} | {name: "trait" for name in traits}
    assays = {"transcript_counts": [bundle.n_transcripts, bundle.n_samples]}
    if bundle.gene_counts is not None:
        assays["gene_counts"] = [bundle.n_genes, bundle.n_samples]
    library = bundle.transcript_counts.sum(axis=0, dtype=np.float64)
    columns = {
        str(name): _column_summary(bundle.samples[name], role=roles.get(str(name), "other"))
        for name in bundle.trait_columns()
    }
    return {
        "format": SUMMARY_FORMAT,
        "format_version": SUMMARY_VERSION,
        "bundle_format": FORMAT_NAME,
        "bundle_format_version": FORMAT_VERSION,
        "dataset_name": bundle.dataset_name,
        "suite_name": bundle.suite_name,
        "description": bundle.description,
        "n_samples": bundle.n_samples,
        "n_genes": bundle.n_genes,
        "n_transcripts": bundle.n_transcripts,
        "n_multi_isoform_genes": int((per_gene >= 2).sum()),
        "transcripts_per_gene": {
            "min": int(per_gene.min()) if per_gene.size else 0,
            "median": float(np.median(per_gene)) if per_gene.size else 0.0,
            "max": int(per_gene.max()) if per_gene.size else 0,
        },
        "assays": assays,
        "multiplex": bundle.is_multiplex,
        "library_size": {
            "min": float(library.min()) if library.size else 0.0,
            "median": float(np.median(library)) if library.size else 0.0,
            "max": float(library.max()) if library.size else 0.0,
        },
        "sample_columns": columns,
        "traits": [t for t in traits if t in columns],
        "covariates": [c for c in covariates if c in columns],
        "truth_tables": sorted(bundle.truth),
        "provenance": dict(bundle.provenance),
    }


def check_export_target(path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Refuse a folder, or an existing file unless ``overwrite``; return the path.

    Raises
    ------
    InputError
        When ``path`` is a folder, or exists and ``overwrite`` is false.
    """
    out = Path(path)
    if out.is_dir():
        msg = f"export target {out} is a folder; expected a .json file path"
        raise InputError(msg)
    if out.exists() and not overwrite:
        msg = f"export target {out} already exists; choose a new file or pass --overwrite"
        raise InputError(msg)
    return out


def export_summary(
    bundle: Bundle, path: str | os.PathLike[str], *, overwrite: bool = False
) -> dict[str, Any]:
    """Write :func:`summarize_bundle` to ``path`` atomically; refuse an existing file unless ``overwrite``.

    Raises
    ------
    InputError
        When ``path`` exists (and ``overwrite`` is false) or is a folder.
    """
    out = check_export_target(path, overwrite=overwrite)
    summary = summarize_bundle(bundle)
    write_json(out, summary)
    return summary
