"""Build gene graphs aligned to a dataset's ``var`` (``perturbfm graphs build``).

Three sources, each giving a symmetric, non-negative (G, G) adjacency kept sparse to the
``top_k`` strongest neighbours of every gene (union of both directions):

``orgdb``  co-annotation in GO biological process and KEGG, read offline from the SQLite
  file that Debian's ``r-bioc-org.hs.eg.db`` (human) or ``r-bioc-org.mm.eg.db`` (mouse)
  installs. Genes are matched by symbol, then by Ensembl gene id (version stripped). Terms
  annotating more than ``max_term_size`` genes are dropped (too broad to mean anything, as
  GEARS does with its GO graph); the weight of a pair is the Jaccard index of their term
  sets.
``coexpression``  absolute Pearson correlation of the control expression of one split's
  *training* control rows only (never validation or test cells), pairs below
  ``min_abs_corr`` dropped. The graph records the split and data hashes; training with it
  on another split is refused.
``edges``  a user's edge table (CSV/TSV with ``gene_a``, ``gene_b`` and optional ``weight``);
  genes not in ``var`` are dropped and counted.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from omicsrun import InputError

Species = Literal["human", "mouse"]
ORGDB_PATHS: dict[str, str] = {
    "human": "/usr/lib/R/site-library/org.Hs.eg.db/extdata/org.Hs.eg.sqlite",
    "mouse": "/usr/lib/R/site-library/org.Mm.eg.db/extdata/org.Mm.eg.sqlite",
}
_PACKAGES = {"human": "r-bioc-org.hs.eg.db", "mouse": "r-bioc-org.mm.eg.db"}


def _top_k_symmetric(weights: sp.spmatrix | np.ndarray, top_k: int) -> np.ndarray:
    """Keep each row's ``top_k`` largest positive entries, symmetrise by max; dense float32."""
    w = sp.csr_matrix(weights, dtype=np.float64)
    w.setdiag(0)
    w.eliminate_zeros()
    rows, cols, vals = [], [], []
    for i in range(w.shape[0]):  # per row of a sparse matrix: a partial sort of its few entries
        start, stop = w.indptr[i], w.indptr[i + 1]
        if stop == start:
            continue
        data, idx = w.data[start:stop], w.indices[start:stop]
        keep = np.argsort(-data, kind="stable")[:top_k]
        rows.append(np.full(keep.size, i))
        cols.append(idx[keep])
        vals.append(data[keep])
    n = w.shape[0]
    if not rows:
        return np.zeros((n, n), dtype=np.float32)
    kept = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    return kept.maximum(kept.T).toarray().astype(np.float32)


def orgdb_path(species: Species, path: str | os.PathLike[str] | None = None) -> Path:
    """The org.*.eg.db SQLite file, or InputError saying which Debian package installs it."""
    if species not in ORGDB_PATHS:
        msg = f"species must be one of {sorted(ORGDB_PATHS)}; found {species!r}"
        raise InputError(msg)
    found = Path(path) if path is not None else Path(ORGDB_PATHS[species])
    if not found.is_file():
        msg = (
            f"no {species} annotation database at {found}; install Debian's {_PACKAGES[species]} "
            "(tools/install-system-deps.sh) or pass --orgdb PATH"
        )
        raise InputError(msg)
    return found


def graph_from_orgdb(
    var: Sequence[str],
    *,
    species: Species = "human",
    path: str | os.PathLike[str] | None = None,
    top_k: int = 20,
    max_term_size: int = 200,
) -> tuple[np.ndarray, dict[str, object]]:
    """GO-BP + KEGG co-annotation graph over ``var`` (see the module docstring).

    Returns
    -------
    adjacency
        (G, G) float32.
    info
        ``n_matched`` genes found in the database, ``n_terms`` used, ``n_edges``.
    """
    db = orgdb_path(species, path)
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        symbols = pd.read_sql_query("SELECT _id, symbol FROM gene_info", con)
        ensembl = pd.read_sql_query("SELECT _id, ensembl_id FROM ensembl", con)
        go = pd.read_sql_query("SELECT DISTINCT _id, go_id AS term FROM go_bp", con)
        kegg = pd.read_sql_query("SELECT DISTINCT _id, 'KEGG:' || path_id AS term FROM kegg", con)
    names = pd.Series([str(v) for v in var])
    by_symbol = dict(zip(symbols["symbol"], symbols["_id"], strict=False))
    by_ensembl = dict(zip(ensembl["ensembl_id"], ensembl["_id"], strict=False))
    internal = names.map(by_symbol)
    unmatched = internal.isna()
    internal[unmatched] = names[unmatched].str.split(".").str[0].map(by_ensembl)
    gene_pos = pd.Series(np.arange(len(names)), index=internal.to_numpy()).loc[lambda s: s.index.notna()]
    terms = pd.concat([go, kegg], ignore_index=True)
    terms = terms[terms["_id"].isin(gene_pos.index)]
    terms = terms.assign(pos=gene_pos.reindex(terms["_id"]).to_numpy())
    terms = terms.explode("pos").dropna(subset=["pos"])
    sizes = terms.groupby("term")["pos"].transform("nunique")
    terms = terms[(sizes >= 2) & (sizes <= max_term_size)]
    term_codes, term_index = pd.factorize(terms["term"])
    incidence = sp.csr_matrix(
        (np.ones(len(terms)), (terms["pos"].to_numpy(dtype=np.int64), term_codes)),
        shape=(len(names), len(term_index)),
    )
    incidence.data[:] = 1.0
    shared = (incidence @ incidence.T).tocoo()
    n_terms = np.asarray(incidence.sum(axis=1)).ravel()
    union = n_terms[shared.row] + n_terms[shared.col] - shared.data
    jaccard = sp.csr_matrix(
        (shared.data / np.maximum(union, 1), (shared.row, shared.col)), shape=shared.shape
    )
    adjacency = _top_k_symmetric(jaccard, top_k)
    info = {
        "n_genes": len(names),
        "n_matched": int(gene_pos.index.nunique()),
        "n_terms": len(term_index),
        "n_edges": int((adjacency > 0).sum() // 2),
        "database": str(db),
    }
    if info["n_matched"] == 0:
        msg = (
            f"none of the {len(names)} genes (e.g. {names[:3].tolist()}) is a {species} symbol or Ensembl "
            f"gene id in {db}"
        )
        raise InputError(msg)
    return adjacency, info


def graph_from_coexpression(
    x_control: np.ndarray, *, top_k: int = 20, min_abs_corr: float = 0.2
) -> tuple[np.ndarray, dict[str, object]]:
    """|Pearson r| graph of control expression rows ``x_control`` (n_cells, G) (training rows only)."""
    x = np.asarray(x_control, dtype=np.float64)
    if x.shape[0] < 3:
        msg = f"a co-expression graph needs at least 3 training control cells; found {x.shape[0]}"
        raise InputError(msg)
    centred = x - x.mean(axis=0)
    sd = np.sqrt((centred**2).sum(axis=0))
    z = np.divide(centred, sd, out=np.zeros_like(centred), where=sd > 0)
    corr = np.abs(z.T @ z)
    corr[corr < min_abs_corr] = 0.0
    adjacency = _top_k_symmetric(corr, top_k)
    return adjacency, {"n_cells": int(x.shape[0]), "n_edges": int((adjacency > 0).sum() // 2)}


def graph_from_edges(
    var: Sequence[str], table: str | os.PathLike[str]
) -> tuple[np.ndarray, dict[str, object]]:
    """Adjacency from an edge table with columns ``gene_a``, ``gene_b`` [, ``weight``]."""
    path = Path(table)
    if not path.is_file():
        msg = f"edge table {path} does not exist"
        raise InputError(msg)
    edges = pd.read_csv(path, sep=None, engine="python")
    missing = [c for c in ("gene_a", "gene_b") if c not in edges.columns]
    if missing:
        msg = f"edge table {path.name} has no column {missing[0]!r}; columns are {list(edges.columns)}"
        raise InputError(msg)
    weight = edges["weight"].to_numpy(dtype=np.float64) if "weight" in edges.columns else np.ones(len(edges))
    if not np.isfinite(weight).all() or (weight < 0).any():
        msg = f"edge table {path.name}: weights must be finite and non-negative"
        raise InputError(msg)
    index = pd.Index([str(v) for v in var])
    a = index.get_indexer(pd.Index(edges["gene_a"].astype(str)))
    b = index.get_indexer(pd.Index(edges["gene_b"].astype(str)))
    keep = (a >= 0) & (b >= 0) & (a != b)
    if not keep.any():
        msg = f"edge table {path.name}: none of its {len(edges)} edges joins two genes of the dataset's var"
        raise InputError(msg)
    n = len(index)
    adj = sp.coo_matrix((weight[keep], (a[keep], b[keep])), shape=(n, n)).tocsr()
    adjacency = adj.maximum(adj.T).toarray().astype(np.float32)
    return adjacency, {"n_edges_in_table": len(edges), "n_edges_kept": int(keep.sum())}


GraphSource = Literal["orgdb", "coexpression", "edges"]


def build_graph_file(
    data_dir: str | os.PathLike[str],
    name: str,
    *,
    source: GraphSource,
    split_hash: str | None = None,
    split_dir: str | os.PathLike[str] | None = None,
    edges: str | os.PathLike[str] | None = None,
    species: Species = "human",
    orgdb: str | os.PathLike[str] | None = None,
    top_k: int = 20,
    overwrite: bool = False,
) -> tuple[Path, dict[str, object]]:
    """Build graph ``name`` for the artifact ``data_dir`` into ``<data_dir>/graphs/<name>.npz``.

    ``coexpression`` needs ``split_hash``: only that split's training control rows are read.
    An existing graph file is refused unless ``overwrite``; it is replaced only by a complete
    new one (built aside, renamed over it), and a second writer of the same graph is refused
    (:func:`omicsrun.commit.commit_file`).
    """
    from omicsrun.commit import commit_file
    from perturbfm.data.artifact import open_dataset, read_meta
    from perturbfm.data.graph import save_graph

    if not name or not all(ch.isalnum() or ch in "._-" for ch in name):
        msg = f"graph name must be letters, digits, '.', '_' or '-'; found {name!r}"
        raise InputError(msg)
    if not isinstance(top_k, int) or top_k < 1:
        msg = f"top_k must be a positive integer; found {top_k!r}"
        raise InputError(msg)
    if source not in ("orgdb", "coexpression", "edges"):
        msg = f"graph source must be orgdb, coexpression or edges; found {source!r}"
        raise InputError(msg)
    if source == "coexpression" and split_hash is None:
        msg = "a co-expression graph needs --split: it is computed from that split's training controls only"
        raise InputError(msg)
    if source == "edges" and edges is None:
        msg = "--from edges needs --edges FILE (columns gene_a, gene_b[, weight])"
        raise InputError(msg)
    read_meta(data_dir)  # an artifact, before its graphs/ folder is created
    out = Path(data_dir) / "graphs" / f"{name}.npz"
    # Claimed before any work: refused when it exists (without overwrite) or is being written.
    with commit_file(out, overwrite=overwrite, what="graph", inputs=[edges, orgdb]) as tmp:
        ds, data_hash = open_dataset(data_dir)
        meta: dict[str, object] = {"source": source, "data_hash": data_hash}
        if source == "orgdb":
            adjacency, info = graph_from_orgdb(ds.var, species=species, path=orgdb, top_k=top_k)
            meta["species"] = species
        elif source == "coexpression":
            from perturbfm.splits import SplitStore

            split = SplitStore(root=split_dir).load(str(split_hash), data_hash=data_hash)
            train = np.asarray(split.train_idx)
            rows = train[ds.is_control[train]]
            adjacency, info = graph_from_coexpression(ds.rows(rows, "control"), top_k=top_k)
            meta["split_hash"] = split.frozen_hash
        else:
            adjacency, info = graph_from_edges(ds.var, str(edges))
            meta["edge_table"] = str(Path(str(edges)).resolve())
        meta["info"] = info
        save_graph(tmp, adjacency, ds.var, meta=meta)
    return out, info
