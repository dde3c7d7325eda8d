"""The linear model of Ahlmann-Eltze, Huber & Anders (Nat Methods 2025).

``Y ~ G W P' + b``: ``Y`` (genes x perturbations) holds the training pseudobulk deltas
(one column per training ``pert_id``, pooled over contexts), ``b`` its row means, ``G``
(genes x K) the top-K principal-component scores of the genes in the training pseudobulk
*expression* matrix (genes x perturbations, each perturbation column centred, as R's
``prcomp`` on that matrix), and ``P`` (perturbations x K') the perturbation embeddings.
With ridge penalty lambda,

``W = (G'G + lambda I)^-1 G' (Y - b) P (P'P + lambda I)^-1``

and a perturbation with embedding ``p`` is predicted as ``G W p + b``.

Perturbation embedding (``perturbation_embedding``)
---------------------------------------------------
``"gene"`` (the paper's formula for unseen singles): a gene's embedding is its row of ``G``;
  this needs the perturbed genes to be measured genes (in ``var``).
``"training"`` (the paper's fallback when the perturbed genes have no expression row, e.g.
  CRISPR targets outside the HVGs): a gene's embedding is the perturbation's own PCA
  embedding of the training pseudobulk deltas of the single-gene perturbations: with
  ``Y_s'`` (n_singles x genes) centred per gene (column), ``Y_s' = U S V'``, the single of
  gene ``a`` has embedding ``(U S)[a, :K]``. Only genes seen as singles in training have one.
``"auto"`` (default): ``"gene"`` when every gene of every training perturbation is measured,
  else ``"training"`` (the resolved choice is ``embedding_``).

In every mode a combination's embedding is the sum of its genes' embeddings (the paper's
additive rule), so an unseen pair of seen singles is predicted. A perturbation any of whose
genes has no embedding, and control rows, get ``b``: the mean training pseudobulk delta over
perturbations. Training perturbations without an embedding do not enter ``W``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from omicsrun import InputError
from perturbfm.data.dataset import PerturbDataset
from perturbfm.models.base import PerturbationModel, pert_keys, register_model

EmbeddingMode = Literal["auto", "gene", "training"]
_MODES = ("auto", "gene", "training")


def linear_model_coefficients(y: np.ndarray, g: np.ndarray, p: np.ndarray, ridge: float) -> np.ndarray:
    """``W = (G'G + ridge I)^-1 G' Y P (P'P + ridge I)^-1``.

    Parameters
    ----------
    y
        Centred targets, shape (n_genes, n_perts).
    g
        Gene embeddings, shape (n_genes, K).
    p
        Perturbation embeddings, shape (n_perts, K').
    ridge
        Penalty lambda.

    Returns
    -------
    numpy.ndarray
        W, shape (K, K').
    """
    left = np.linalg.solve(g.T @ g + ridge * np.eye(g.shape[1]), g.T @ y @ p)
    return np.linalg.solve((p.T @ p + ridge * np.eye(p.shape[1])).T, left.T).T


def _pc_scores(matrix: np.ndarray, k: int) -> np.ndarray:
    """Top-``k`` principal-component scores of the rows of ``matrix`` (columns centred)."""
    centred = matrix - matrix.mean(axis=0, keepdims=True)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    k = int(min(k, len(s)))
    return u[:, :k] * s[:k]


def _summed_embedding(
    gene_lists: np.ndarray, index: pd.Index, table: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sum of ``table`` rows of each list's genes, shape (n, K), and a mask of lists whose
    genes all have a row (and that hold at least one gene)."""
    n = len(gene_lists)
    long = pd.DataFrame({"row": np.arange(n), "gene": gene_lists}).explode("gene")
    long = long[long["gene"].notna()]
    pos = index.get_indexer(pd.Index(long["gene"].to_numpy(dtype=object)))
    rows = long["row"].to_numpy(dtype=np.int64)
    ok = np.bincount(rows, minlength=n) > 0
    ok[rows[pos < 0]] = False
    keep = pos >= 0
    ind = sp.csr_matrix(
        (np.ones(int(keep.sum())), (rows[keep], np.arange(int(keep.sum())))), shape=(n, int(keep.sum()))
    )
    return np.asarray(ind @ table[pos[keep]]), ok


@register_model("linear")
class LinearModel(PerturbationModel):
    """Ahlmann-Eltze et al.'s linear model on PCA embeddings (see the module docstring).

    Parameters
    ----------
    n_components
        K, the number of principal components of each embedding (capped by the number of
        training perturbations and genes).
    ridge
        The penalty lambda.
    perturbation_embedding
        ``"gene"`` (rows of ``G`` for the perturbed genes), ``"training"`` (PCA embedding of
        the training single-gene deltas) or ``"auto"`` (``"gene"`` when every trained-on
        perturbed gene is measured, else ``"training"``).
    """

    def __init__(
        self, *, n_components: int = 10, ridge: float = 0.1, perturbation_embedding: EmbeddingMode = "auto"
    ) -> None:
        self.n_components = n_components
        self.ridge = ridge
        self.perturbation_embedding = perturbation_embedding

    def _fit(self, ds: PerturbDataset, pert_idx: np.ndarray, seed: int) -> None:
        if self.perturbation_embedding not in _MODES:
            msg = (
                f"perturbation_embedding must be one of {list(_MODES)}; found {self.perturbation_embedding!r}"
            )
            raise InputError(msg)
        keys = pert_keys(ds, pert_idx)
        perts, y_means, _ = ds.group_means_by(pert_idx, keys, "delta")  # row blocks
        _, x_means, _ = ds.group_means_by(pert_idx, keys, "pert")
        y = y_means.T  # genes x perturbations
        self.row_means_ = y.mean(axis=1)
        # prcomp on the genes x perturbations expression matrix: genes are the observations.
        self.gene_embedding_ = _pc_scores(x_means.T, int(self.n_components))
        first = pd.Series(pert_idx).groupby(keys, sort=True).first()
        genes = ds.obs["pert_genes"].to_numpy()[first.loc[perts].to_numpy()]
        mode = self.perturbation_embedding
        if mode == "auto":
            measured = pd.Index(ds.var)
            all_genes = pd.Series(genes).explode().dropna().to_numpy(dtype=object)
            mode = "gene" if measured.get_indexer(pd.Index(all_genes)).min(initial=0) >= 0 else "training"
        self.embedding_ = mode
        if mode == "gene":
            self.embedding_index_ = pd.Index(ds.var)
            self.embedding_table_ = self.gene_embedding_
        else:
            single = np.fromiter((len(g) == 1 for g in genes), dtype=bool, count=len(genes))
            self.embedding_index_ = pd.Index([g[0] for g in genes[single]], dtype=object)
            if single.any():
                self.embedding_table_ = _pc_scores(y_means[single], int(self.n_components))
            else:
                self.embedding_table_ = np.zeros((0, 1))
        p, ok = _summed_embedding(genes, self.embedding_index_, self.embedding_table_)
        self.n_embedded_perts_ = int(ok.sum())
        if ok.any():
            self.W_ = linear_model_coefficients(
                y[:, ok] - self.row_means_[:, None], self.gene_embedding_, p[ok], float(self.ridge)
            )
        else:
            self.W_ = np.zeros((self.gene_embedding_.shape[1], self.embedding_table_.shape[1]))

    def _predict_mean(self, ds: PerturbDataset, idx: np.ndarray) -> np.ndarray:
        p, ok = _summed_embedding(
            ds.obs["pert_genes"].to_numpy()[idx], self.embedding_index_, self.embedding_table_
        )
        out = np.broadcast_to(self.row_means_, (len(idx), ds.n_genes)).copy()
        out[ok] += p[ok] @ self.W_.T @ self.gene_embedding_.T
        return out
