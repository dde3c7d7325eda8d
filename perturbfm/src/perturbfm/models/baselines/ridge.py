"""Ridge regression of the delta on the matched control expression (scikit-learn ``Ridge``)."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import Ridge as _SkRidge

from perturbfm.data.dataset import PerturbDataset
from perturbfm.models.base import PerturbationModel, register_model


@register_model("ridge")
class RidgeDelta(PerturbationModel):
    """``delta ~ X_control @ coef_.T + intercept_`` fitted on training perturbed cells.

    It ignores which perturbation a cell received: it measures how much of the response is
    predictable from the cell's baseline state alone.

    Parameters
    ----------
    alpha
        L2 penalty (scikit-learn's ``alpha``; the objective is ``||y - Xw||^2 + alpha ||w||^2``).
    """

    def __init__(self, *, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def _fit(self, ds: PerturbDataset, pert_idx: np.ndarray, seed: int) -> None:
        x = np.asarray(ds.rows(pert_idx, "control"), dtype=np.float64)
        y = np.asarray(ds.rows(pert_idx, "delta"), dtype=np.float64)
        reg = _SkRidge(alpha=float(self.alpha), fit_intercept=True, solver="auto").fit(x, y)
        self.coef_ = reg.coef_  # (n_genes_out, n_genes_in)
        self.intercept_ = reg.intercept_

    def _predict_mean(self, ds: PerturbDataset, idx: np.ndarray) -> np.ndarray:
        x = np.asarray(ds.rows(idx, "control"), dtype=np.float64)
        return x @ self.coef_.T + self.intercept_
