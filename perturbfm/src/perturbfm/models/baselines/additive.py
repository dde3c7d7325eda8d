"""The additive baseline for combinations (Ahlmann-Eltze et al. 2025): delta_A+B = delta_A + delta_B."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from perturbfm.data.dataset import PerturbDataset
from perturbfm.models.base import register_model
from perturbfm.models.baselines.means import PerPerturbationMean, lookup_rows

_SEP = "\x1f"


@register_model("additive")
class Additive(PerPerturbationMean):
    """Sum of the mean deltas of a perturbation's single-gene perturbations seen in training.

    For a row with ``pert_genes = [A, B, ...]`` in context ``c``, each gene contributes the
    training mean delta of the single perturbation of that gene in ``c`` when it was seen
    there, else its mean over all training contexts. A single perturbation therefore gets
    its own mean. When any of the genes was never seen as a single in training, the row
    falls back to the mean of its own ``pert_id`` in training if there is one, else to the
    global mean delta. Control rows (no genes) get 0.
    """

    def _fit(self, ds: PerturbDataset, pert_idx: np.ndarray, seed: int) -> None:
        self._fit_pert_means(ds, pert_idx)
        genes = ds.obs["pert_genes"].to_numpy()[pert_idx]
        single = np.fromiter((len(g) == 1 for g in genes), dtype=bool, count=len(genes))
        single_gene = np.array([g[0] for g in genes[single]], dtype=object)
        ctx = ds.obs["context_id"].to_numpy()[pert_idx][single].astype(object)
        if single.any():
            rows = pert_idx[single]
            self.genes_, self.gene_means_, _ = ds.group_means_by(rows, single_gene, "delta")
            self.gene_contexts_, self.gene_context_means_, _ = ds.group_means_by(
                rows, single_gene + _SEP + ctx, "delta"
            )
        else:
            empty = np.zeros((0, ds.n_genes))
            self.genes_, self.gene_means_ = pd.Index([]), empty
            self.gene_contexts_, self.gene_context_means_ = pd.Index([]), empty

    def _predict_mean(self, ds: PerturbDataset, idx: np.ndarray) -> np.ndarray:
        n_genes = ds.n_genes
        fallback = super()._predict_mean(ds, idx)
        long = pd.DataFrame(
            {
                "row": np.arange(len(idx)),
                "gene": ds.obs["pert_genes"].to_numpy()[idx],
                "ctx": ds.obs["context_id"].to_numpy()[idx],
            }
        ).explode("gene")
        long = long[long["gene"].notna()]
        if long.empty:
            return np.zeros((len(idx), n_genes))
        gene = long["gene"].to_numpy(dtype=object)
        nan_row = np.full(n_genes, np.nan)
        per_gene = lookup_rows(self.genes_, self.gene_means_, gene, nan_row)
        terms = lookup_rows(
            self.gene_contexts_,
            self.gene_context_means_,
            gene + _SEP + long["ctx"].to_numpy(dtype=object),
            per_gene,
        )
        rows = long["row"].to_numpy(dtype=np.int64)
        missing = np.isnan(terms[:, 0])
        terms[missing] = 0.0
        ind = sp.csr_matrix((np.ones(len(rows)), (rows, np.arange(len(rows)))), shape=(len(idx), len(rows)))
        out = np.asarray(ind @ terms)
        bad_rows = np.unique(rows[missing])
        out[bad_rows] = fallback[bad_rows]
        return out
