"""Latent shift: each perturbation is a mean shift in the PCA space of control expression."""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA

from perturbfm.data.dataset import PerturbDataset
from perturbfm.models.base import PerturbationModel, group_means, pert_keys, register_model
from perturbfm.models.baselines.means import lookup_rows


@register_model("latent_shift")
class LatentShift(PerturbationModel):
    """PCA on training control expression; per-perturbation mean latent shift, decoded.

    With ``V`` the PCA components (n_components x n_genes), a cell's latent shift is
    ``z(X_pert) - z(X_control) = delta @ V.T`` (the centring cancels); the shift of a
    perturbation is its training mean, and the predicted delta is ``shift @ V``. A
    perturbation unseen in training gets the mean shift of all training perturbed cells.

    Parameters
    ----------
    n_components
        Number of principal components (capped at the number of training rows and genes).
    """

    def __init__(self, *, n_components: int = 10) -> None:
        self.n_components = n_components

    def _fit(self, ds: PerturbDataset, pert_idx: np.ndarray, seed: int) -> None:
        x_ctrl = np.asarray(ds.rows(self.train_idx_, "control"), dtype=np.float64)
        k = int(min(self.n_components, x_ctrl.shape[0], x_ctrl.shape[1]))
        self.pca_ = PCA(n_components=k, svd_solver="full", random_state=seed).fit(x_ctrl)
        components = self.pca_.components_
        shift = np.asarray(ds.rows(pert_idx, "delta"), dtype=np.float64) @ components.T
        self.global_shift_ = shift.mean(axis=0)
        self.perts_, self.pert_shifts_, _ = group_means(shift, pert_keys(ds, pert_idx))

    def _predict_mean(self, ds: PerturbDataset, idx: np.ndarray) -> np.ndarray:
        shift = lookup_rows(self.perts_, self.pert_shifts_, pert_keys(ds, idx), self.global_shift_)
        return shift @ self.pca_.components_
