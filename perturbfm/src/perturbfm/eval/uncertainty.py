"""Uncertainty panel: interval coverage, Gaussian NLL, risk-coverage, OOD AUROC (delta space)."""

from __future__ import annotations

from functools import cache

import numpy as np

COVERAGE_LEVELS = (0.5, 0.8, 0.9, 0.95)
VAR_FLOOR = 1e-8
N_RISK_POINTS = 20

# scipy.stats, scipy.integrate and sklearn are imported where used: together they take about a
# second to import, which a metric selection without uncertainty should not pay.


@cache
def _z2() -> tuple[float, ...]:
    from scipy.stats import norm

    return tuple(float(norm.ppf(0.5 + level / 2)) ** 2 for level in COVERAGE_LEVELS)


_LOG_2PI = float(np.log(2 * np.pi))


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
    dtype = work_dtype(residual, var)
    r = np.array(residual, dtype=dtype)  # a copy: squared in place below
    return CellStatistics(r.shape[1], dtype).block(r, np.asarray(var, dtype=dtype))


def work_dtype(*arrays: np.ndarray) -> type[np.floating]:
    """float32 when every input is float32 (predictions as runs store them), else float64."""
    return np.float32 if all(np.asarray(a).dtype == np.float32 for a in arrays) else np.float64


class CellStatistics:
    """:func:`cell_statistics` for row blocks, with work buffers reused between blocks.

    Element-wise work is done in place in ``dtype`` (one pass per quantity, no temporary per
    operation: at 100k cells x 5k genes the former version spent most of its time allocating
    temporaries and taking float64 logarithms of float32 predictions); float32 predictions
    are worked on in float32, every per-cell sum is accumulated in float64.
    An entry is covered at level ``l`` when ``|r| <= z_l sd``, tested as ``r^2 / var <= z_l^2``
    (``r = 0`` counts as covered when ``var = 0``); the NLL uses ``max(var, VAR_FLOOR)``.
    """

    def __init__(self, n_genes: int, dtype: type[np.floating] = np.float32) -> None:
        self.n_genes = n_genes
        self.dtype = dtype
        self._buf: tuple[np.ndarray, np.ndarray] | None = None

    def _buffers(self, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
        if self._buf is None or self._buf[0].shape[0] < n_rows:
            self._buf = (
                np.empty((n_rows, self.n_genes), dtype=self.dtype),
                np.empty((n_rows, self.n_genes), dtype=bool),
            )
        q, hit = self._buf
        return q[:n_rows], hit[:n_rows]

    def block(self, residual: np.ndarray, var: np.ndarray) -> dict[str, np.ndarray]:
        """Statistics of one block, (n, n_genes) each in ``dtype``; ``residual`` is
        overwritten (``var`` is only read)."""
        r2 = np.square(residual, out=residual)
        q, hit = self._buffers(r2.shape[0])
        out: dict[str, np.ndarray] = {}
        with np.errstate(divide="ignore", invalid="ignore"):
            np.divide(r2, var, out=q)
        v_min = float(var.min()) if var.size else 1.0
        if v_min <= 0.0:  # 0/0: a zero residual with zero variance is covered
            np.logical_and(var <= 0.0, r2 == 0.0, out=hit)
            q[hit] = 0.0
        for level, z2 in zip(COVERAGE_LEVELS, _z2(), strict=True):
            np.less_equal(q, z2, out=hit)
            out[f"covered_{level}"] = np.count_nonzero(hit, axis=1).astype(np.float64)
        out["sq"] = r2.sum(axis=1, dtype=np.float64)
        out["var"] = var.sum(axis=1, dtype=np.float64)
        if v_min < VAR_FLOOR:
            floored = np.maximum(var, self.dtype(VAR_FLOOR), out=q)
            q_sum = np.divide(r2, floored, out=r2).sum(axis=1, dtype=np.float64)
            log_sum = np.log(floored, out=floored).sum(axis=1, dtype=np.float64)
        else:
            q_sum = q.sum(axis=1, dtype=np.float64)
            log_sum = np.log(var, out=q).sum(axis=1, dtype=np.float64)
        out["nll"] = 0.5 * (self.n_genes * _LOG_2PI + log_sum + q_sum)
        return out


def subset_summaries(
    stats: dict[str, np.ndarray], code: np.ndarray, n_subsets: int, n_genes: int
) -> list[dict]:
    """:func:`summarise` plus ``aurc`` of each subset of cells, all subsets at once.

    ``code`` (n_cells,) gives the subset of each cell in ``0..n_subsets-1``. The risk-coverage
    curve of a subset orders its cells by predicted total variance, ties in cell order (a
    stable sort by (subset, variance)), as :func:`risk_coverage` does for one subset.
    """
    from scipy.integrate import trapezoid

    n = np.bincount(code, minlength=n_subsets).astype(np.float64)
    sums = {k: np.bincount(code, weights=v, minlength=n_subsets) for k, v in stats.items()}
    entries = n * n_genes
    order = np.lexsort((stats["var"], code))
    cum = np.concatenate([[0.0], np.cumsum(stats["sq"][order])])
    start = np.concatenate([[0], np.cumsum(n)[:-1]]).astype(np.int64)
    cov = np.arange(1, N_RISK_POINTS + 1) / N_RISK_POINTS
    keep = np.maximum(np.ceil(cov[None, :] * n[:, None]).astype(np.int64), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        risk = (cum[start[:, None] + keep] - cum[start[:, None]]) / (keep * n_genes)
    out: list[dict] = []
    for i in range(n_subsets):
        if n[i] == 0:
            out.append({})
            continue
        out.append(
            {
                "coverage": {
                    str(level): float(sums[f"covered_{level}"][i] / entries[i]) for level in COVERAGE_LEVELS
                },
                "nll": float(sums["nll"][i] / entries[i]),
                "mse": float(sums["sq"][i] / entries[i]),
                "mean_var": float(sums["var"][i] / entries[i]),
                "aurc": float(trapezoid(risk[i], cov)),
            }
        )
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
    from scipy.integrate import trapezoid

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
    from sklearn.metrics import roc_auc_score

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
