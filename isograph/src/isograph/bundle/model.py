"""The dataset bundle, validated once when it is built.

A bundle holds a sample table, a gene table, a transcript table, a transcript x sample count
matrix, optionally a gene x sample count matrix (which switches on the abundance channel),
and, for synthetic fixtures, truth tables. Everything downstream assumes a valid bundle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from omicsrun import InputError

# Truth tables a bundle may carry: name -> (required columns, feature-table kind in the manifest).
TRUTH_KINDS: dict[str, tuple[tuple[str, ...], str]] = {
    "truth_modules": (("gene_id", "module_id"), "truth_module"),
    "truth_switch": (("gene_id", "has_switch"), "truth_switch"),
    "truth_roles": (("gene_id", "module_id", "role"), "truth_role"),
}
ROLES = ("switch_only", "abundance_only", "coupled", "discordant")


def _require_columns(table: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        msg = f"{what} has no column {missing[0]!r}; columns are {list(map(str, table.columns))}"
        raise InputError(msg)


def _require_unique_ids(values: pd.Series, what: str) -> None:
    if values.isna().any():
        n_missing = int(values.isna().sum())
        msg = f"{what} has {n_missing} missing id(s); every row needs one"
        raise InputError(msg)
    dup = values[values.duplicated()]
    if len(dup):
        examples = list(map(str, dup.unique()[:3]))
        msg = f"{what} ids must be unique; found {len(dup)} duplicate(s), e.g. {examples}"
        raise InputError(msg)


def _check_counts(matrix: np.ndarray, n_rows: int, n_cols: int, what: str, row_what: str) -> np.ndarray:
    arr = np.asarray(matrix)
    if arr.ndim != 2 or arr.shape != (n_rows, n_cols):
        msg = (
            f"{what} must have shape ({n_rows} {row_what}, {n_cols} samples) to match the tables; "
            f"found shape {arr.shape}"
        )
        raise InputError(msg)
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        msg = f"{what} must be real numbers; found dtype {arr.dtype}"
        raise InputError(msg)
    finite = np.isfinite(arr)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        msg = (
            f"{what} must hold finite counts; found {int((~finite).sum())} non-finite value(s), "
            f"first at row {row}, column {col}"
        )
        raise InputError(msg)
    if arr.size and arr.min() < 0:
        row, col = np.argwhere(arr < 0)[0]
        msg = f"{what} must hold non-negative counts; found {arr[row, col]} at row {row}, column {col}"
        raise InputError(msg)
    return arr


@dataclass(frozen=True, eq=False)
class Bundle:
    """A validated IsoGraph dataset bundle.

    Parameters
    ----------
    samples
        One row per sample: ``sample_id`` plus any traits and covariates (``Dx``, ``Age``, ``batch``...).
    genes
        One row per gene: ``gene_id`` (+ optional ``gene_name``, ``chrom``, ``start``, ``end``).
    transcripts
        One row per transcript: ``transcript_id``, ``gene_id`` (+ optional ``length``,
        ``transcript_name``, ``transcript_type``).
    transcript_counts
        Counts, shape (n_transcripts, n_samples); rows in ``transcripts`` order, columns in
        ``samples`` order.
    gene_counts
        Optional counts, shape (n_genes, n_samples); its presence switches on the abundance channel.
    truth
        Truth tables of synthetic fixtures keyed by name (see :data:`TRUTH_KINDS`).
    dataset_name, suite_name, description, provenance
        Manifest fields.

    Raises
    ------
    InputError
        On any inconsistency, naming what was expected and what was found.
    """

    samples: pd.DataFrame
    genes: pd.DataFrame
    transcripts: pd.DataFrame
    transcript_counts: np.ndarray
    gene_counts: np.ndarray | None = None
    truth: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    dataset_name: str = "dataset"
    suite_name: str | None = None
    description: str = ""
    provenance: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require_columns(self.samples, ("sample_id",), "sample table")
        _require_columns(self.genes, ("gene_id",), "gene table")
        _require_columns(self.transcripts, ("transcript_id", "gene_id"), "transcript table")
        _require_unique_ids(self.samples["sample_id"], "sample table")
        _require_unique_ids(self.genes["gene_id"], "gene table")
        _require_unique_ids(self.transcripts["transcript_id"], "transcript table")
        known = pd.Index(self.genes["gene_id"])
        absent = ~self.transcripts["gene_id"].isin(known)
        if absent.any():
            row = self.transcripts.loc[absent].iloc[0]
            msg = (
                f"transcript table names genes absent from the gene table: {int(absent.sum())} "
                f"transcript(s), e.g. {row['transcript_id']!r} -> gene {row['gene_id']!r}"
            )
            raise InputError(msg)
        n_samples = len(self.samples)
        tx = _check_counts(
            self.transcript_counts, len(self.transcripts), n_samples, "transcript counts", "transcripts"
        )
        object.__setattr__(self, "transcript_counts", tx)
        if self.gene_counts is not None:
            gc = _check_counts(self.gene_counts, len(self.genes), n_samples, "gene counts", "genes")
            object.__setattr__(self, "gene_counts", gc)
        for name, table in self.truth.items():
            if name not in TRUTH_KINDS:
                msg = f"unknown truth table {name!r}; expected one of {sorted(TRUTH_KINDS)}"
                raise InputError(msg)
            columns, _ = TRUTH_KINDS[name]
            _require_columns(table, columns, f"truth table {name!r}")
            stray = ~table["gene_id"].isin(known)
            if stray.any():
                msg = (
                    f"truth table {name!r} names {int(stray.sum())} gene(s) absent from the gene table, "
                    f"e.g. {table.loc[stray, 'gene_id'].iloc[0]!r}"
                )
                raise InputError(msg)
        object.__setattr__(self, "truth", dict(self.truth))
        object.__setattr__(self, "provenance", {str(k): str(v) for k, v in self.provenance.items()})

    # --- shape helpers -------------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        return len(self.samples)

    @property
    def n_genes(self) -> int:
        return len(self.genes)

    @property
    def n_transcripts(self) -> int:
        return len(self.transcripts)

    @property
    def is_multiplex(self) -> bool:
        """True when gene counts are present (abundance channel on)."""
        return self.gene_counts is not None

    @property
    def sample_ids(self) -> pd.Index:
        return pd.Index(self.samples["sample_id"].astype(str))

    @property
    def gene_ids(self) -> pd.Index:
        return pd.Index(self.genes["gene_id"].astype(str))

    def transcripts_per_gene(self) -> pd.Series:
        """Number of transcripts of each gene, in gene-table order."""
        counts = self.transcripts["gene_id"].value_counts()
        return counts.reindex(self.genes["gene_id"], fill_value=0).astype(int)

    def trait_columns(self) -> list[str]:
        """Sample-table columns other than ``sample_id`` (traits and covariates)."""
        return [c for c in self.samples.columns if c != "sample_id"]
