"""The ``graph`` backend: graph-Laplacian smoothing of the features, then the latent model.

Algorithm
---------
1. A gene graph: by default a symmetric k-nearest-neighbour graph of the features, with
   neighbours by cosine similarity of their embeddings on the top ``n_components`` principal
   components of the samples (brute force, blockwise; the correlation of two standardised
   features is the cosine of their full embeddings); or a user edge table
   (``edges_path``: a CSV/TSV/parquet with ``gene_a``, ``gene_b``, ``weight``) joining every
   feature of one gene to the same-channel feature of the other.
2. Tikhonov smoothing on that graph: each sample's feature vector ``x`` becomes
   ``y = argmin ||y - x||^2 + lambda y^T L y = (I + lambda L)^-1 x`` with L the normalised
   Laplacian ``I - D^-1/2 A D^-1/2``. The sparse system is solved for all samples at once by
   conjugate gradients (no p x p matrix; the graph stays sparse).
3. The smoothed features, re-standardised, go through the latent backend
   (:func:`isograph.backends.latent.fit_latent`): factor analysis, rotation, assignment.

Diagnostics: graph density, number of edges, smoothing strength ``lambda``, the relative
change ``||Y - X||_F / ||X||_F``, CG iterations, and the mean correlation of neighbouring
features before and after smoothing.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from scipy import sparse

from isograph.backends.base import BackendResult, register
from isograph.backends.latent import LatentConfig, fit_latent
from isograph.features.build import FeatureSet
from omicsrun import InputError


@dataclass(frozen=True)
class GraphConfig(LatentConfig):
    """Hyper-parameters of the graph backend (``graph.<name>``): the latent ones plus the graph's.

    Attributes
    ----------
    graph
        ``knn`` (from the data) or ``edges`` (the table at ``edges_path``).
    edges_path
        User edge table (``gene_a``, ``gene_b``, ``weight``); required when ``graph=edges``.
    n_neighbors
        Neighbours per feature in the kNN graph.
    n_components
        Principal components of the feature embedding used to find neighbours.
    smoothing
        lambda of ``(I + lambda L)^-1``; 0 switches smoothing off.
    cg_tol, cg_max_iter
        Conjugate-gradient tolerance (relative residual) and iteration cap.
    """

    graph: Literal["knn", "edges"] = "knn"
    edges_path: str | None = None
    n_neighbors: int = 10
    n_components: int = 50
    smoothing: float = 1.0
    cg_tol: float = 1e-6
    cg_max_iter: int = 500

    def validate(self, prefix: str = "graph") -> None:
        """Raise :class:`InputError` naming the first out-of-range field."""
        super().validate(prefix)
        checks = [
            ("graph", self.graph in ("knn", "edges"), "knn or edges"),
            ("edges_path", self.graph != "edges" or bool(self.edges_path), "a table path when graph=edges"),
            ("n_neighbors", self.n_neighbors >= 1, ">= 1"),
            ("n_components", self.n_components >= 1, ">= 1"),
            ("smoothing", self.smoothing >= 0, ">= 0"),
            ("cg_tol", self.cg_tol > 0, "> 0"),
            ("cg_max_iter", self.cg_max_iter >= 1, ">= 1"),
        ]
        for name, ok, expected in checks:
            if not ok:
                msg = f"{prefix}.{name} must be {expected}; found {getattr(self, name)!r}"
                raise InputError(msg)


@register("graph")
class GraphNetworkModel:
    """Laplacian smoothing over a gene graph, then factor analysis and loading-based modules."""

    name: ClassVar[str] = "graph"
    config_class: ClassVar[type] = GraphConfig

    def fit(self, features: FeatureSet, *, config: GraphConfig, seed: int = 0) -> BackendResult:
        """Modules of the graph-smoothed features (see the module docstring)."""
        config.validate()
        x = np.asarray(features.matrix, dtype=np.float32)
        if config.graph == "edges":
            adjacency = edge_table_graph(features, read_edge_table(Path(str(config.edges_path))))
        else:
            adjacency = knn_graph(x, n_neighbors=config.n_neighbors, n_components=config.n_components)
        smoothed, info = laplacian_smooth(
            x, adjacency, strength=config.smoothing, tol=config.cg_tol, max_iter=config.cg_max_iter
        )
        latent = LatentConfig(**{f.name: getattr(config, f.name) for f in fields(LatentConfig)})
        result = fit_latent(features, smoothed, config=latent, seed=seed, name=self.name, null_x=x)
        p = adjacency.shape[0]
        graph_info: dict[str, Any] = {
            "graph": config.graph,
            "graph_edges": int(adjacency.nnz // 2),
            "graph_density": float(adjacency.nnz / max(p * (p - 1), 1)),
            "smoothing_strength": float(config.smoothing),
            **info,
            "neighbour_correlation_before": _neighbour_correlation(x, adjacency),
            "neighbour_correlation_after": _neighbour_correlation(smoothed, adjacency),
        }
        result.diagnostics.update(graph_info)
        result.calibration.update(graph_info)
        return result


def read_edge_table(path: Path) -> pd.DataFrame:
    """A user gene graph: ``gene_a``, ``gene_b``, ``weight`` (CSV, TSV or parquet).

    Raises
    ------
    InputError
        Missing file, missing columns, or weights that are not finite and positive.
    """
    if not path.is_file():
        msg = f"graph edge table {path} does not exist; expected a file with gene_a, gene_b, weight"
        raise InputError(msg)
    if path.suffix == ".parquet":
        table = pd.read_parquet(path)
    else:
        table = pd.read_csv(path, sep="\t" if path.suffix in {".tsv", ".txt"} else ",")
    missing = [c for c in ("gene_a", "gene_b", "weight") if c not in table.columns]
    if missing:
        msg = f"graph edge table {path} lacks columns {missing}; found {list(table.columns)}"
        raise InputError(msg)
    weight = pd.to_numeric(table["weight"], errors="coerce").to_numpy(dtype=np.float64)
    if not (np.isfinite(weight) & (weight > 0)).all():
        shown = table["weight"].head(3).tolist()
        msg = f"graph edge table {path}: weights must be finite and > 0; found {shown}..."
        raise InputError(msg)
    return pd.DataFrame(
        {"gene_a": table["gene_a"].astype(str), "gene_b": table["gene_b"].astype(str), "weight": weight}
    )


def edge_table_graph(features: FeatureSet, table: pd.DataFrame) -> sparse.csr_matrix:
    """Feature adjacency from a gene edge table: same-channel features of both genes are joined.

    Raises
    ------
    InputError
        When no edge joins two genes of the feature set.
    """
    feature_of = pd.DataFrame(
        {
            "gene": features.gene_ids.astype(str),
            "kind": features.feature_type.astype(str),
            "idx": np.arange(features.n_features),
        }
    )
    a = table.merge(feature_of, left_on="gene_a", right_on="gene").rename(columns={"idx": "ia"})
    ab = a.merge(feature_of, left_on=["gene_b", "kind"], right_on=["gene", "kind"]).rename(
        columns={"idx": "ib"}
    )
    ab = ab[ab["ia"] != ab["ib"]]
    if ab.empty:
        msg = "graph edge table joins no two genes of the data; check that its gene ids match the bundle's"
        raise InputError(msg)
    p = features.n_features
    m = sparse.coo_matrix(
        (ab["weight"].to_numpy(), (ab["ia"].to_numpy(), ab["ib"].to_numpy())), shape=(p, p)
    ).tocsr()
    return m.maximum(m.T).tocsr()


def knn_graph(x: np.ndarray, *, n_neighbors: int, n_components: int, block: int = 512) -> sparse.csr_matrix:
    """Symmetric kNN graph of the columns of ``x`` (n_samples, n_features), weights = cosine > 0.

    Features are embedded as ``V_r S_r`` from the top-r singular triplets of ``x`` (through the
    n x n Gram matrix), unit-normalised, and their nearest neighbours found blockwise.
    """
    n, p = x.shape
    gram = np.asarray(x, dtype=np.float64) @ np.asarray(x, dtype=np.float64).T
    evals, evecs = np.linalg.eigh(gram)
    r = int(min(n_components, n - 1, p - 1))
    top = np.argsort(evals)[::-1][:r]
    emb = np.asarray(x, dtype=np.float64).T @ evecs[:, top]  # (p, r) = V S
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    k = int(min(n_neighbors, p - 1))
    rows, cols, vals = [], [], []
    for start in range(0, p, block):
        sim = emb[start : start + block] @ emb.T
        idx = np.arange(start, min(start + block, p))
        sim[idx - start, idx] = -np.inf
        nb = np.argpartition(-sim, k, axis=1)[:, :k]
        w = np.take_along_axis(sim, nb, axis=1)
        rows.append(np.repeat(idx, k))
        cols.append(nb.ravel())
        vals.append(np.maximum(w.ravel(), 0.0))
    m = sparse.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(p, p)
    ).tocsr()
    m.eliminate_zeros()
    return m.maximum(m.T).tocsr()


def laplacian_smooth(
    x: np.ndarray, adjacency: sparse.csr_matrix, *, strength: float, tol: float, max_iter: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """``Y = X (I + strength L)^-1`` with L the normalised Laplacian; rows of X are samples.

    Solved by conjugate gradients on all samples at once (the operator is symmetric positive
    definite). Returns ``(Y standardised, diagnostics)``.
    """
    x64 = np.asarray(x, dtype=np.float64)
    if strength == 0 or adjacency.nnz == 0:
        return x64.astype(np.float32), {"relative_change": 0.0, "cg_iterations": 0, "cg_converged": True}
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    inv_sqrt = np.where(degree > 0, 1.0 / np.sqrt(np.maximum(degree, 1e-300)), 0.0)
    norm_adj = sparse.diags(inv_sqrt) @ adjacency @ sparse.diags(inv_sqrt)
    has_edge = (degree > 0).astype(np.float64)

    def apply(v: np.ndarray) -> np.ndarray:  # (I + s L) v, v of shape (p, n)
        return v + strength * (has_edge[:, None] * v - norm_adj @ v)

    b = x64.T
    y = b.copy()
    r = b - apply(y)
    d = r.copy()
    rs = (r * r).sum(axis=0)
    b_norm = np.sqrt((b * b).sum(axis=0))
    n_iter, converged = 0, False
    for it in range(1, max_iter + 1):
        n_iter = it
        ad = apply(d)
        alpha = rs / np.maximum((d * ad).sum(axis=0), 1e-300)
        y += d * alpha
        r -= ad * alpha
        rs_new = (r * r).sum(axis=0)
        if np.all(np.sqrt(rs_new) <= tol * np.maximum(b_norm, 1e-300)):
            converged = True
            break
        d = r + d * (rs_new / np.maximum(rs, 1e-300))
        rs = rs_new
    smoothed = y.T
    change = float(np.linalg.norm(smoothed - x64)) / max(float(np.linalg.norm(x64)), 1e-300)
    centred = smoothed - smoothed.mean(axis=0)
    scale = centred.std(axis=0)
    out = (centred / np.where(scale > 0, scale, 1.0)).astype(np.float32)
    return out, {"relative_change": change, "cg_iterations": n_iter, "cg_converged": converged}


def _neighbour_correlation(
    x: np.ndarray, adjacency: sparse.csr_matrix, max_pairs: int = 20000
) -> float | None:
    coo = sparse.triu(adjacency, k=1).tocoo()
    if coo.nnz == 0:
        return None
    step = max(1, coo.nnz // max_pairs)
    i, j = coo.row[::step], coo.col[::step]
    z = np.asarray(x, dtype=np.float64)
    z = (z - z.mean(axis=0)) / np.maximum(z.std(axis=0), 1e-12)
    return float(np.mean((z[:, i] * z[:, j]).mean(axis=0)))
