"""scPerturBench panel: MSE, PCC-delta, E-distance, Wasserstein, KL, common-DEGs.

Array functions here take already-validated numpy arrays; conventions are recorded in
:mod:`perturbfm.eval.registry`. Group means and variances come in precomputed (see
:mod:`perturbfm.eval._groups`); only the distribution metrics look at single cells, one
group at a time on a subsample of at most ``MAX_CELLS`` cells drawn with seed 42.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.spatial.distance import cdist

N_DEGS = 100
MAX_CELLS = 2000
SUBSAMPLE_SEED = 42
KL_EPS = 1e-8


def welch_t(
    mean_a: np.ndarray,
    var_a: np.ndarray,
    n_a: np.ndarray | float,
    mean_b: np.ndarray,
    var_b: np.ndarray,
    n_b: np.ndarray | float,
) -> np.ndarray:
    """Welch t statistic of a vs b from moments (sample variances, ddof=1).

    Shapes broadcast, e.g. (n_groups, n_genes) against (n_genes,). Entries with zero
    variance on both sides get t = 0 (no evidence of a difference).
    """
    se = np.sqrt(var_a / n_a + var_b / n_b)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (mean_a - mean_b) / se
    return np.where(se > 0, t, 0.0)


def top_k_by_abs(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` largest ``|scores|`` per row, shape (n_rows, k).

    Ties are broken by gene order (stable sort), so the result is deterministic.
    """
    k = min(k, scores.shape[1])
    return np.argsort(-np.abs(scores), axis=1, kind="stable")[:, :k]


def rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r between matching rows of ``a`` and ``b`` (n_rows, n_features); NaN if flat."""
    ac = a - a.mean(axis=1, keepdims=True)
    bc = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((ac * ac).sum(axis=1) * (bc * bc).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (ac * bc).sum(axis=1) / den
    return np.where(den > 0, r, np.nan)


def edistance_scperturb(x: np.ndarray, y: np.ndarray) -> float:
    """Energy distance in scperturb's convention (squared Euclidean, within-group n(n-1)).

    Closed form of scperturb ``edist(dist='sqeuclidean', sample_correct=True)``: the mean
    squared distance between groups is ``|mx - my|^2 + tr Sx + tr Sy`` (population
    covariances) and the within-group term is ``2 tr S`` (sample covariance), so no
    pairwise matrix is built. ``x`` (n, g), ``y`` (m, g); NaN when n or m < 2.
    """
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        return float("nan")
    mx, my = x.mean(axis=0), y.mean(axis=0)
    tx_pop = float(((x - mx) ** 2).sum()) / n
    ty_pop = float(((y - my) ** 2).sum()) / m
    between = float(((mx - my) ** 2).sum()) + tx_pop + ty_pop
    sigma_x = 2.0 * tx_pop * n / (n - 1)
    sigma_y = 2.0 * ty_pop * m / (m - 1)
    return 2.0 * between - sigma_x - sigma_y


def edistance_celleval(x: np.ndarray, y: np.ndarray) -> float:
    """Energy distance in cell-eval's convention (Euclidean, V-statistic incl. diagonal)."""
    return float(
        2.0 * cdist(x, y).mean() - cdist(x, x).mean() - cdist(y, y).mean(),
    )


def wasserstein_1d_mean(x: np.ndarray, y: np.ndarray) -> float:
    """Mean over genes of the 1-D Wasserstein-1 distance between columns of x and y.

    Same as averaging ``scipy.stats.wasserstein_distance(x[:, j], y[:, j])``; computed from
    the two empirical quantile functions on the merged grid of cumulative weights.
    """
    n, m = x.shape[0], y.shape[0]
    xs, ys = np.sort(x, axis=0), np.sort(y, axis=0)
    if n == m:
        return float(np.abs(xs - ys).mean())
    # Quantile functions are step functions; integrate |Qx - Qy| over the merged breaks.
    breaks = np.union1d(np.arange(1, n + 1) / n, np.arange(1, m + 1) / m)
    widths = np.diff(np.concatenate([[0.0], breaks]))
    mid = breaks - widths / 2
    ix = np.minimum((mid * n).astype(np.int64), n - 1)
    iy = np.minimum((mid * m).astype(np.int64), m - 1)
    return float((np.abs(xs[ix] - ys[iy]) * widths[:, None]).sum(axis=0).mean())


def sym_kl_gauss(x: np.ndarray, y: np.ndarray) -> float:
    """Mean over genes of the symmetric KL divergence of per-gene Gaussian fits.

    Population standard deviations plus ``1e-8``, as pertpy's ``sym_kldiv`` which
    scPerturBench uses (it then reports ``log2(1 + value)``).
    """
    mx, sx = x.mean(axis=0), x.std(axis=0) + KL_EPS
    my, sy = y.mean(axis=0), y.std(axis=0) + KL_EPS
    d2 = (mx - my) ** 2
    kl_xy = np.log(sy / sx) + (sx**2 + d2) / (2 * sy**2) - 0.5
    kl_yx = np.log(sx / sy) + (sy**2 + d2) / (2 * sx**2) - 0.5
    return float((kl_xy + kl_yx).mean())


def perturbed_centroid(true_mean: np.ndarray, context_code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Systema's perturbed centroid of each group's context, and which groups are alone in theirs.

    The centroid of a context is the unweighted mean of the true group means of its groups,
    (n_groups, n_genes); the mask (n_groups,) marks contexts with a single group, where a
    centroid comparison is undefined.
    """
    centroid = np.empty_like(true_mean)
    single = np.zeros(true_mean.shape[0], dtype=bool)
    for c in np.unique(context_code):
        sel = context_code == c
        centroid[sel] = true_mean[sel].mean(axis=0)
        single[sel] = sel.sum() < 2
    return centroid, single


def subsample_positions(n_cells: int, *, max_cells: int = MAX_CELLS) -> np.ndarray:
    """Positions of at most ``max_cells`` of ``n_cells``, sorted; seed 42 per group."""
    if n_cells <= max_cells:
        return np.arange(n_cells)
    rng = np.random.default_rng(SUBSAMPLE_SEED)
    return np.sort(rng.choice(n_cells, size=max_cells, replace=False))


def scperturbench_group_metrics(
    *,
    true_mean: np.ndarray,
    pred_mean: np.ndarray,
    true_var: np.ndarray,
    pred_var: np.ndarray,
    ctrl_mean: np.ndarray,
    ctrl_var: np.ndarray,
    ctrl_n: np.ndarray,
    n_cells: np.ndarray,
    group_cells: Callable[[int, np.ndarray], tuple[np.ndarray, np.ndarray]] | None,
    context_code: np.ndarray | None = None,
    n_degs: int = N_DEGS,
    flags: dict[str, object] | None = None,
    only: set[str] | None = None,
) -> dict[str, np.ndarray]:
    """All scPerturBench metrics per group (or ``only`` these).

    Parameters
    ----------
    true_mean, pred_mean, true_var, pred_var
        Group moments of true and predicted expression, shape (n_groups, n_genes).
    ctrl_mean, ctrl_var
        Mean and sample variance of each group's reference control cells, (n_groups, n_genes).
    ctrl_n
        Number of those control cells, (n_groups,).
    n_cells
        Cells per group, (n_groups,).
    group_cells
        ``group_cells(g, genes)`` returns (pred, true) cell matrices of group ``g`` on gene
        columns ``genes``, subsampled to at most 2,000 cells (seed 42). None skips the
        distribution metrics (E-distance, Wasserstein, KL: NaN), e.g. to score baselines.
    context_code
        Context of each group, (n_groups,), for the perturbed centroid of
        ``pcc_delta_centroid`` (one context when None).
    n_degs
        Number of DEGs (100 in scPerturBench).
    flags
        Filled with ``kl_zero_variance_groups``: groups whose KL is withheld (NaN) because a
        DEG has zero variance in the predicted or true cells (the 1e-8 floor then makes the
        divergence huge and meaningless).

    only
        Metric names to compute (the others are left out of the result); the DEG ranking
        (Welch t of both sides, sorted per group) is skipped when no requested metric reads it.

    Returns
    -------
    dict
        Metric name -> array (n_groups,).
    """
    ctx = np.zeros(true_mean.shape[0], dtype=np.int64) if context_code is None else context_code
    if only is not None and only <= set(_ALL_GENE_METRICS):
        # No DEG-restricted or distribution metric asked for: no Welch t, no ranking.
        return {name: _ALL_GENE_METRICS[name](pred_mean, true_mean, ctrl_mean, ctx) for name in only}
    n = n_cells[:, None].astype(np.float64)
    cn = ctrl_n[:, None].astype(np.float64)
    t_true = welch_t(true_mean, true_var, n, ctrl_mean, ctrl_var, cn)
    t_pred = welch_t(pred_mean, pred_var, n, ctrl_mean, ctrl_var, cn)
    deg_true = top_k_by_abs(t_true, n_degs)
    deg_pred = top_k_by_abs(t_pred, n_degs)
    k = deg_true.shape[1]

    def take(a: np.ndarray) -> np.ndarray:
        return np.take_along_axis(a, deg_true, axis=1)

    d_true, d_pred, c_deg = take(true_mean), take(pred_mean), take(ctrl_mean)
    mse = ((d_pred - d_true) ** 2).mean(axis=1)
    pcc = rowwise_pearson(d_pred - c_deg, d_true - c_deg)
    pcc_all = _pcc_delta_all(pred_mean, true_mean, ctrl_mean, ctx)
    centroid, single = perturbed_centroid(true_mean, ctx)
    pcc_centroid = _centroid_pcc(d_pred, d_true, take(centroid), single)
    pcc_centroid_all = _centroid_pcc(pred_mean, true_mean, centroid, single)
    mse_all = _mse_all(pred_mean, true_mean, ctrl_mean, ctx)
    mae_all = _mae_all(pred_mean, true_mean, ctrl_mean, ctx)
    hit = np.zeros_like(t_true, dtype=bool)
    np.put_along_axis(hit, deg_true, values=True, axis=1)
    common = np.take_along_axis(hit, deg_pred, axis=1).sum(axis=1) / k

    n_groups = true_mean.shape[0]
    edist = np.full(n_groups, np.nan)
    edist_ce = np.full(n_groups, np.nan)
    wass = np.full(n_groups, np.nan)
    kl = np.full(n_groups, np.nan)
    n_kl_degenerate = 0
    for g in range(n_groups):
        if group_cells is None:
            break
        pred_cells, true_cells = group_cells(g, deg_true[g])
        edist[g] = edistance_scperturb(pred_cells, true_cells)
        edist_ce[g] = edistance_celleval(pred_cells, true_cells)
        wass[g] = wasserstein_1d_mean(pred_cells, true_cells)
        if (pred_cells.std(axis=0) > 0).all() and (true_cells.std(axis=0) > 0).all():
            kl[g] = np.log2(1.0 + sym_kl_gauss(pred_cells, true_cells))
        else:
            n_kl_degenerate += 1
    if flags is not None:
        flags["kl_zero_variance_groups"] = n_kl_degenerate
    out = {
        "mse": mse,
        "mse_all": mse_all,
        "mae_all": mae_all,
        "pcc_delta": pcc,
        "pearson_distance_delta": 1.0 - pcc,
        "pcc_delta_all": pcc_all,
        "pcc_delta_centroid": pcc_centroid,
        "pcc_delta_centroid_all": pcc_centroid_all,
        "edistance": edist,
        "edistance_celleval": edist_ce,
        "wasserstein_1d": wass,
        "kl_gauss_sym_log2": kl,
        "common_degs": common.astype(np.float64),
    }
    return out if only is None else {name: out[name] for name in only}


# The metrics over every gene, which need no DEG ranking: (pred, true, ctrl, context) -> (n_groups,).
def _mse_all(pred: np.ndarray, true: np.ndarray, ctrl: np.ndarray, ctx: np.ndarray) -> np.ndarray:
    return ((pred - true) ** 2).mean(axis=1)


def _mae_all(pred: np.ndarray, true: np.ndarray, ctrl: np.ndarray, ctx: np.ndarray) -> np.ndarray:
    return np.abs(pred - true).mean(axis=1)


def _pcc_delta_all(pred: np.ndarray, true: np.ndarray, ctrl: np.ndarray, ctx: np.ndarray) -> np.ndarray:
    return rowwise_pearson(pred - ctrl, true - ctrl)


def _pcc_delta_centroid_all(
    pred: np.ndarray, true: np.ndarray, ctrl: np.ndarray, ctx: np.ndarray
) -> np.ndarray:
    return _centroid_pcc(pred, true, *perturbed_centroid(true, ctx))


def _centroid_pcc(pred: np.ndarray, true: np.ndarray, centroid: np.ndarray, single: np.ndarray) -> np.ndarray:
    r = rowwise_pearson(pred - centroid, true - centroid)
    r[single] = np.nan
    return r


_ALL_GENE_METRICS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "mse_all": _mse_all,
    "mae_all": _mae_all,
    "pcc_delta_all": _pcc_delta_all,
    "pcc_delta_centroid_all": _pcc_delta_centroid_all,
}
