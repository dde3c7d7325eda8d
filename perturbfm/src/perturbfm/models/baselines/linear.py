"""The linear model of Ahlmann-Eltze, Huber & Anders (Nat Methods 2025).

``Y ~ G W P' + b``: ``Y`` (genes x perturbations) holds the training pseudobulk deltas,
``b`` its row means, ``G`` (genes x K) the top-K principal-component scores of the genes
in the training pseudobulk *expression* matrix (genes x perturbations, each perturbation
column centred, as R's ``prcomp`` on that matrix), and ``P`` (perturbations x K) the rows of
``G`` for each perturbation's genes (summed for combinations). With ridge penalty lambda,

``W = (G'G + lambda I)^-1 G' (Y - b) P (P'P + lambda I)^-1``

and a perturbation with embedding ``p`` is predicted as ``G W p + b``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from perturbfm.data.dataset import PerturbDataset
from perturbfm.models.base import PerturbationModel, group_means, pert_keys, register_model


def linear_model_coefficients(y: np.ndarray, g: np.ndarray, p: np.ndarray, ridge: float) -> np.ndarray:
    """``W = (G'G + ridge I)^-1 G' Y P (P'P + ridge I)^-1``.

    Parameters
    ----------
    y
        Centred targets, shape (n_genes, n_perts).
    g
        Gene embeddings, shape (n_genes, K).
    p
        Perturbation embeddings, shape (n_perts, K).
    ridge
        Penalty lambda.

    Returns
    -------
    numpy.ndarray
        W, shape (K, K).
    """
    k = g.shape[1]
    left = np.linalg.solve(g.T @ g + ridge * np.eye(k), g.T @ y @ p)
    return np.linalg.solve((p.T @ p + ridge * np.eye(k)).T, left.T).T


@register_model("linear")
class LinearModel(PerturbationModel):
    """Ahlmann-Eltze et al.'s linear model on gene PCA embeddings.

    A perturbation any of whose genes is not a measured gene (not in ``var``), and control
    rows, get ``b``: the mean training pseudobulk delta over perturbations.

    Parameters
    ----------
    n_components
        K, the number of principal components (capped at the number of training
        perturbations and genes).
    ridge
        The penalty lambda.
    """

    def __init__(self, *, n_components: int = 10, ridge: float = 0.1) -> None:
        self.n_components = n_components
        self.ridge = ridge

    def _embed(self, ds: PerturbDataset, gene_lists: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Summed gene embeddings per list, shape (n, K), and a mask of embeddable lists."""
        gene_pos = pd.Index(ds.var)
        long = pd.DataFrame({"row": np.arange(len(gene_lists)), "gene": gene_lists}).explode("gene")
        long = long[long["gene"].notna()]
        pos = gene_pos.get_indexer(long["gene"].to_numpy(dtype=object))
        rows = long["row"].to_numpy(dtype=np.int64)
        ok = np.ones(len(gene_lists), dtype=bool)
        ok[rows[pos < 0]] = False
        n_genes_per_row = np.bincount(rows, minlength=len(gene_lists))
        ok &= n_genes_per_row > 0
        keep = pos >= 0
        ind = sp.csr_matrix(
            (np.ones(keep.sum()), (rows[keep], np.arange(keep.sum()))),
            shape=(len(gene_lists), int(keep.sum())),
        )
        emb = np.asarray(ind @ self.gene_embedding_[pos[keep]])
        return emb, ok

    def _fit(self, ds: PerturbDataset, pert_idx: np.ndarray, seed: int) -> None:
        keys = pert_keys(ds, pert_idx)
        perts, y_means, _ = group_means(np.asarray(ds.delta[pert_idx], dtype=np.float64), keys)
        _, x_means, _ = group_means(np.asarray(ds.X_pert[pert_idx], dtype=np.float64), keys)
        y = y_means.T  # genes x perturbations
        expr = x_means.T
        self.row_means_ = y.mean(axis=1)
        centred = expr - expr.mean(axis=0, keepdims=True)
        u, s, _ = np.linalg.svd(centred, full_matrices=False)
        k = int(min(self.n_components, len(s)))
        self.gene_embedding_ = u[:, :k] * s[:k]
        first = pd.Series(pert_idx).groupby(keys, sort=True).first()
        genes = ds.obs["pert_genes"].to_numpy()[first.loc[perts].to_numpy()]
        p, ok = self._embed(ds, genes)
        self.n_embedded_perts_ = int(ok.sum())
        if ok.any():
            self.W_ = linear_model_coefficients(
                y[:, ok] - self.row_means_[:, None], self.gene_embedding_, p[ok], float(self.ridge)
            )
        else:
            self.W_ = np.zeros((k, k))

    def _predict_mean(self, ds: PerturbDataset, idx: np.ndarray) -> np.ndarray:
        p, ok = self._embed(ds, ds.obs["pert_genes"].to_numpy()[idx])
        out = np.broadcast_to(self.row_means_, (len(idx), ds.n_genes)).copy()
        out[ok] += p[ok] @ self.W_.T @ self.gene_embedding_.T
        return out
