"""Vectorised statistics of explain-module: correlations with missing values, Welch contrasts."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats


def masked_pearson(x: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pearson r of every column of ``x`` with ``e`` over the rows where the column is finite.

    Parameters
    ----------
    x
        Shape (n_samples, n_features); NaN marks a missing value.
    e
        Shape (n_samples,), finite.

    Returns
    -------
    r, pvalue, n
        Each shape (n_features,). ``pvalue`` is two-sided (t with n - 2 df); NaN where fewer
        than 3 values or a constant column.
    """
    mask = np.isfinite(x)
    xz = np.where(mask, x, 0.0)
    m = mask.astype(np.float64)
    n = m.sum(axis=0)
    sx = xz.sum(axis=0)
    sxx = (xz * xz).sum(axis=0)
    se = m.T @ e
    see = m.T @ (e * e)
    sxe = xz.T @ e
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = n * sxe - sx * se
        var = (n * sxx - sx * sx) * (n * see - se * se)
        r = np.where((n >= 3) & (var > 0), cov / np.sqrt(np.where(var > 0, var, 1.0)), np.nan)
        r = np.clip(r, -1.0, 1.0)
        df = n - 2
        t = r * np.sqrt(df / np.maximum(1.0 - r * r, 1e-300))
        p = 2.0 * stats.t.sf(np.abs(t), np.maximum(df, 1))
    p = np.where(np.isfinite(r), p, np.nan)
    return r, p, n.astype(np.int64)


def fisher_ci(r: np.ndarray, n: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Confidence interval of a Pearson r by Fisher's z transform (NaN where n <= 3)."""
    z = np.arctanh(np.clip(r, -0.999999, 0.999999))
    half = stats.norm.ppf(0.5 + level / 2) / np.sqrt(np.where(n > 3, n - 3, np.nan))
    return np.tanh(z - half), np.tanh(z + half)


def welch(x_high: np.ndarray, x_low: np.ndarray) -> dict[str, np.ndarray]:
    """Welch's two-sample t test per column, ignoring NaN (shape (n_high, p), (n_low, p)).

    Returns ``mean_high``, ``mean_low``, ``delta``, ``se``, ``tstat``, ``pvalue``, ``n_high``,
    ``n_low``, each shape (p,).
    """
    n1 = np.isfinite(x_high).sum(axis=0).astype(np.float64)
    n0 = np.isfinite(x_low).sum(axis=0).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN means
        m1 = np.nanmean(x_high, axis=0)
        m0 = np.nanmean(x_low, axis=0)
        v1 = np.nansum((x_high - m1) ** 2, axis=0) / (n1 - 1)
        v0 = np.nansum((x_low - m0) ** 2, axis=0) / (n0 - 1)
        a, b = v1 / n1, v0 / n0
        se = np.sqrt(a + b)
        t = (m1 - m0) / se
        df = (a + b) ** 2 / (a * a / (n1 - 1) + b * b / (n0 - 1))
        p = 2.0 * stats.t.sf(np.abs(t), df)
    ok = (n1 >= 2) & (n0 >= 2) & (se > 0)
    return {
        "mean_high": m1,
        "mean_low": m0,
        "delta": m1 - m0,
        "se": np.where(ok, se, np.nan),
        "tstat": np.where(ok, t, np.nan),
        "pvalue": np.where(ok, p, np.nan),
        "n_high": n1.astype(np.int64),
        "n_low": n0.astype(np.int64),
    }
