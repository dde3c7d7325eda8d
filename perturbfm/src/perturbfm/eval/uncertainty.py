"""Uncertainty panel: interval coverage, Gaussian NLL, risk-coverage, OOD AUROC (delta space)."""

from __future__ import annotations

import numpy as np
from scipy.integrate import trapezoid
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

COVERAGE_LEVELS = (0.5, 0.8, 0.9, 0.95)
VAR_FLOOR = 1e-8
N_RISK_POINTS = 20


def cell_statistics(residual: np.ndarray, var: np.ndarray) -> dict[str, np.ndarray]:
    """Per-cell sums the panel is built from.

    Parameters
    ----------
    residual
        True minus predicted delta, (n_cells, n_genes).
    var
        Predicted variance, (n_cells, n_genes), non-negative.

    Returns
    -------
    dict
        ``covered_<level>`` (count of covered entries), ``nll`` (sum), ``sq`` (sum of
        squared residuals), ``var`` (sum of variances), each (n_cells,).
    """
    sd = np.sqrt(var)
    absr = np.abs(residual)
    out = {}
    for level in COVERAGE_LEVELS:
        z = norm.ppf(0.5 + level / 2)
        out[f"covered_{level}"] = (absr <= z * sd).sum(axis=1).astype(np.float64)
    v = np.maximum(var, VAR_FLOOR)
    out["nll"] = (0.5 * np.log(2 * np.pi * v) + residual**2 / (2 * v)).sum(axis=1)
    out["sq"] = (residual**2).sum(axis=1)
    out["var"] = var.sum(axis=1)
    return out


def risk_coverage(
    sq_sum: np.ndarray, var_sum: np.ndarray, n_genes: int, *, n_points: int = N_RISK_POINTS
) -> dict[str, list[float] | float]:
    """Risk-coverage curve: keep the cells with the lowest predicted total variance.

    Coverage points are ``k/n_points`` for k = 1..n_points; at each, the retained cells
    are the first ``ceil(coverage * n_cells)`` by predicted total variance (ties in cell
    order) and risk is their mean squared delta error per entry. ``aurc`` is the
    trapezoidal area over the points.
    """
    n = sq_sum.size
    order = np.argsort(var_sum, kind="stable")
    cum = np.cumsum(sq_sum[order])
    cov = np.arange(1, n_points + 1) / n_points
    keep = np.maximum(np.ceil(cov * n).astype(np.int64), 1)
    risk = cum[keep - 1] / (keep * n_genes)
    return {
        "coverage": cov.tolist(),
        "risk": risk.tolist(),
        "aurc": float(trapezoid(risk, cov)),  # scipy: np.trapezoid needs NumPy 2
    }


def ood_auroc(score: np.ndarray, labels: np.ndarray | None) -> float | None:
    """ROC AUC of ``score`` for ``labels`` (1 = OOD); None without two classes."""
    if labels is None:
        return None
    labels = np.asarray(labels, dtype=bool)
    if labels.all() or not labels.any():
        return None
    return float(roc_auc_score(labels, score))


def summarise(stats: dict[str, np.ndarray], n_genes: int) -> dict[str, object]:
    """Coverage and NLL of a set of cells from :func:`cell_statistics` rows."""
    n_entries = stats["sq"].size * n_genes
    return {
        "coverage": {
            str(level): float(stats[f"covered_{level}"].sum() / n_entries) for level in COVERAGE_LEVELS
        },
        "nll": float(stats["nll"].sum() / n_entries),
        "mse": float(stats["sq"].sum() / n_entries),
        "mean_var": float(stats["var"].sum() / n_entries),
    }
