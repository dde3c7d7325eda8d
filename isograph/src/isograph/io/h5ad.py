"""Reader of an AnnData ``.h5ad`` holding transcripts as variables and samples as observations."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from omicsrun import InputError


@dataclass(frozen=True)
class H5adTables:
    """What an ``.h5ad`` contributes to a bundle.

    Attributes
    ----------
    transcript_ids : pd.Index, (n_transcripts,)
        ``var`` index.
    gene_ids : pd.Series or None
        ``var[gene_key]`` indexed by transcript id; ``None`` when ``gene_key`` is ``None``.
    samples : pd.DataFrame
        ``obs`` with its index moved into a ``sample_id`` column.
    counts : np.ndarray, float32, (n_transcripts, n_samples)
        ``X`` (or the named layer) transposed, densified when sparse.
    """

    transcript_ids: pd.Index
    gene_ids: pd.Series | None
    samples: pd.DataFrame
    counts: np.ndarray


def read_h5ad_counts(
    path: str | os.PathLike[str], *, gene_key: str | None = "gene_id", layer: str | None = None
) -> H5adTables:
    """Read transcript counts from an AnnData file (obs = samples, var = transcripts).

    Parameters
    ----------
    path
        The ``.h5ad`` file.
    gene_key
        ``var`` column holding each transcript's gene id; ``None`` to skip (a separate
        transcript-to-gene table is then needed).
    layer
        Layer to read instead of ``X`` (e.g. ``"counts"``).

    Raises
    ------
    InputError
        Missing/unreadable file, unknown layer or gene column.
    """
    import anndata

    file = Path(path)
    if not file.is_file():
        msg = f"AnnData file {file} does not exist"
        raise InputError(msg)
    try:
        adata = anndata.read_h5ad(file)
    except Exception as err:  # h5py/anndata raise many types for a file that is not AnnData
        msg = f"{file} is not a readable .h5ad file: {' '.join(str(err).split())}"
        raise InputError(msg) from err
    if layer is None:
        matrix = adata.X
        if matrix is None:
            msg = f"{file} has no X matrix; name a layer with --layer (layers are {sorted(adata.layers)})"
            raise InputError(msg)
    else:
        if layer not in adata.layers:
            msg = f"{file} has no layer {layer!r}; layers are {sorted(adata.layers)}"
            raise InputError(msg)
        matrix = adata.layers[layer]
    gene_ids = None
    if gene_key is not None:
        if gene_key not in adata.var.columns:
            msg = (
                f"{file} var has no gene column {gene_key!r}; "
                f"columns are {list(map(str, adata.var.columns))} "
                f"(pass --gene-key, or a --tx2gene table)"
            )
            raise InputError(msg)
        gene_ids = pd.Series(
            adata.var[gene_key].astype(object).to_numpy(), index=adata.var_names.astype(str), name="gene_id"
        )
    if sp.issparse(matrix):
        counts = np.asarray(matrix.T.toarray(), dtype=np.float32)
    else:
        counts = np.ascontiguousarray(np.asarray(matrix, dtype=np.float32).T)
    samples = adata.obs.copy()
    samples.columns = samples.columns.astype(str)
    if "sample_id" in samples.columns:  # obs_names are the sample ids; keep a differing column aside
        samples = samples.rename(columns={"sample_id": "sample_id_original"})
    samples.insert(0, "sample_id", adata.obs_names.astype(str))
    samples = samples.reset_index(drop=True)
    for col in samples.columns:  # categoricals from h5ad become plain columns in parquet-friendly form
        if isinstance(samples[col].dtype, pd.CategoricalDtype):
            samples[col] = samples[col].astype(samples[col].cat.categories.dtype)
    ids = pd.Index(adata.var_names.astype(str), name="transcript_id")
    return H5adTables(transcript_ids=ids, gene_ids=gene_ids, samples=samples, counts=counts)
