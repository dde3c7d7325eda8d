"""Mean baselines: zero delta, the global mean delta, and means per perturbation (and context)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from perturbfm.data.dataset import PerturbDataset
from perturbfm.models.base import PerturbationModel, pert_context_keys, pert_keys, register_model


def lookup_rows(table: pd.Index, values: np.ndarray, keys: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Rows of ``values`` for each key in ``keys``; ``fallback`` rows where a key is not in ``table``.

    Parameters
    ----------
    table
        Keys of ``values``' rows, length n_table.
    values
        Shape (n_table, n_genes).
    keys
        Query keys, length n.
    fallback
        Shape (n, n_genes) or (n_genes,).

    Returns
    -------
    numpy.ndarray
        Shape (n, n_genes), float64.
    """
    pos = table.get_indexer(pd.Index(keys))
    found = pos >= 0
    out = np.broadcast_to(np.asarray(fallback, dtype=np.float64), (len(keys), values.shape[1])).copy()
    out[found] = values[pos[found]]
    return out


@register_model("control_only")
class ControlOnly(PerturbationModel):
    """Predicts no change: delta 0 for every cell (the perturbed cell equals its control)."""

    def _fit(self, ds: PerturbDataset, pert_idx: np.ndarray, seed: int) -> None:
        self.fitted_ = True

    def _predict_mean(self, ds: PerturbDataset, idx: np.ndarray) -> np.ndarray:
        return np.zeros((len(idx), ds.n_genes))


@register_model("global_mean")
class GlobalMean(PerturbationModel):
    """The mean training delta over all perturbed cells, for every cell."""

    def _fit(self, ds: PerturbDataset, pert_idx: np.ndarray, seed: int) -> None:
        mean, _, _ = ds.group_moments(pert_idx, np.zeros(len(pert_idx), dtype=np.int64), 1, "delta")
        self.global_mean_ = mean[0]

    def _predict_mean(self, ds: PerturbDataset, idx: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.global_mean_, (len(idx), ds.n_genes)).copy()


@register_model("per_perturbation_mean")
class PerPerturbationMean(PerturbationModel):
    """Mean training delta of each ``pert_id`` pooled over training contexts.

    A perturbation unseen in training gets the global mean delta.
    """

    def _fit(self, ds: PerturbDataset, pert_idx: np.ndarray, seed: int) -> None:
        self._fit_pert_means(ds, pert_idx)

    def _fit_pert_means(self, ds: PerturbDataset, pert_idx: np.ndarray) -> None:
        """Set ``global_mean_``, ``perts_`` and ``pert_means_`` (row blocks of the training deltas)."""
        self.perts_, self.pert_means_, counts = ds.group_means_by(pert_idx, pert_keys(ds, pert_idx), "delta")
        self.global_mean_ = (counts @ self.pert_means_) / max(int(counts.sum()), 1)

    def _predict_mean(self, ds: PerturbDataset, idx: np.ndarray) -> np.ndarray:
        return lookup_rows(self.perts_, self.pert_means_, pert_keys(ds, idx), self.global_mean_)


@register_model("per_perturbation_context_mean")
class PerPerturbationContextMean(PerPerturbationMean):
    """Mean training delta of each (``pert_id``, ``context_id``).

    Falls back to the perturbation's mean over training contexts, then to the global mean.
    """

    def _fit(self, ds: PerturbDataset, pert_idx: np.ndarray, seed: int) -> None:
        self._fit_pert_means(ds, pert_idx)
        keys = pert_context_keys(ds, pert_idx)
        self.pert_contexts_, self.pert_context_means_, _ = ds.group_means_by(pert_idx, keys, "delta")

    def _predict_mean(self, ds: PerturbDataset, idx: np.ndarray) -> np.ndarray:
        return lookup_rows(
            self.pert_contexts_,
            self.pert_context_means_,
            pert_context_keys(ds, idx),
            super()._predict_mean(ds, idx),
        )
