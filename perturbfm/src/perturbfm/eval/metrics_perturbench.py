"""PerturBench panel (RMSE, cosine logFC, rank metrics) plus cell-eval's PDS and pearson_delta.

Everything here works on group means, shape (n_groups, n_genes); rank metrics and PDS
compare the groups of one context with each other.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

from perturbfm.eval.metrics_scperturbench import rowwise_pearson

LOGFC_PSEUDOCOUNT = 0.1


def log_fold_change(mean: np.ndarray, ctrl_mean: np.ndarray) -> np.ndarray:
    """PerturBench logFC = log2(mean + 0.1) - log2(ctrl + 0.1); negatives clipped at 0.

    Log-normalised expression is non-negative; predicted means can dip below zero, and
    clipping keeps the logarithm defined.
    """
    p = np.maximum(mean, 0.0) + LOGFC_PSEUDOCOUNT
    c = np.maximum(ctrl_mean, 0.0) + LOGFC_PSEUDOCOUNT
    return np.log2(p) - np.log2(c)


def rmse_matrix(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """M[q, p] = RMSE(pred_q, true_p), shape (n_pred, n_true)."""
    return np.sqrt(cdist(pred, true, metric="sqeuclidean") / pred.shape[1])


def cosine_matrix(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """M[q, p] = cosine(pred_q, true_p); 0 where a vector is all zeros."""
    pn = np.linalg.norm(pred, axis=1, keepdims=True)
    tn = np.linalg.norm(true, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = (pred / pn) @ (true / tn).T
    return np.nan_to_num(m, nan=0.0)


def rank_metric(
    m: np.ndarray, *, higher_is_better: bool, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """PerturBench rank and rank_transpose from a square matrix M[q, p] = metric(pred_q, ref_p).

    For each reference p, rank = position of q = p in column p sorted best first, ties
    broken uniformly at random, divided by N - 1 (0 perfect, 0.5 random). The transpose
    does the same on M' (row p of M: prediction p against every reference).

    Returns
    -------
    rank, rank_transpose
        Arrays (N,); NaN when N < 2.
    """
    n = m.shape[0]
    if n < 2:
        return np.full(n, np.nan), np.full(n, np.nan)
    sign = -1.0 if higher_is_better else 1.0
    s = sign * m  # lower is better now
    diag = np.diag(s)

    def positions(better: np.ndarray, tied: np.ndarray) -> np.ndarray:
        # Uniform position of the true item inside its block of ties.
        return better + np.floor(rng.random(n) * (tied + 1))

    better_col = (s < diag[None, :]).sum(axis=0)
    tied_col = (s == diag[None, :]).sum(axis=0) - 1
    better_row = (s < diag[:, None]).sum(axis=1)
    tied_row = (s == diag[:, None]).sum(axis=1) - 1
    rank = positions(better_col, tied_col) / (n - 1)
    rank_t = positions(better_row, tied_row) / (n - 1)
    return rank, rank_t


def discrimination_score_l1(
    pred_effect: np.ndarray, true_effect: np.ndarray, exclude: list[np.ndarray]
) -> np.ndarray:
    """cell-eval PDS: 1 - rank/N of the true perturbation among all by L1 distance.

    Parameters
    ----------
    pred_effect, true_effect
        Effects (mean minus own control) of the N groups of one context, (N, n_genes).
    exclude
        Per group, gene columns left out of its distances (its target genes).
    """
    d = cdist(true_effect, pred_effect, metric="cityblock")  # d[q, p] = L1(true_q, pred_p)
    for p, cols in enumerate(exclude):
        if cols.size:
            d[:, p] -= np.abs(true_effect[:, cols] - pred_effect[p, cols]).sum(axis=1)
    n = d.shape[0]
    # cell-eval sorts with argsort; strict "closer than the true one" count matches it
    # whenever distances are distinct.
    rank = (d < np.diag(d)[None, :]).sum(axis=0)
    return 1.0 - rank / n


def perturbench_group_metrics(
    *,
    true_mean: np.ndarray,
    pred_mean: np.ndarray,
    pred_ctrl_mean: np.ndarray,
    ctrl_mean: np.ndarray,
    context_code: np.ndarray,
    exclude: list[np.ndarray],
    seed: int,
    only: set[str] | None = None,
) -> dict[str, np.ndarray]:
    """All PerturBench-panel metrics per group (or those in ``only``; the others NaN).

    Parameters
    ----------
    true_mean, pred_mean
        Group means of true and predicted expression, (n_groups, n_genes).
    pred_ctrl_mean
        Group mean of the matched controls the predictions were built from, (n_groups, n_genes).
    ctrl_mean
        Reference control mean of each group's context (test-split controls), (n_groups, n_genes).
    context_code
        Context of each group, (n_groups,); rank metrics and PDS compare within a context.
    exclude
        Per group, gene columns PDS leaves out (perturbed genes).
    seed
        Seed of the random tie-breaking in the rank metrics.
    only
        Metric names to compute; the (n_groups x n_groups) rank and PDS matrices are skipped
        when none of theirs is asked for (their values then stay NaN).
    """
    n_genes = true_mean.shape[1]
    rmse = np.sqrt(((pred_mean - true_mean) ** 2).sum(axis=1) / n_genes)
    lfc_true = log_fold_change(true_mean, ctrl_mean)
    lfc_pred = log_fold_change(pred_mean, ctrl_mean)
    num = (lfc_pred * lfc_true).sum(axis=1)
    den = np.linalg.norm(lfc_pred, axis=1) * np.linalg.norm(lfc_true, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(den > 0, num / den, 0.0)
    true_effect = true_mean - ctrl_mean
    # cell-eval: each file's perturbed pseudobulk minus the control pseudobulk of the same
    # file; ``perturbfm export`` writes the test controls into both files, so both sides
    # subtract ``ctrl_mean`` (shared control noise: read pcc_delta_centroid beside it).
    pred_effect = pred_mean - ctrl_mean
    # the model's own effect: its predicted delta, against the controls it started from
    own_effect = pred_mean - pred_ctrl_mean
    out = {
        "rmse": rmse,
        "cosine_logfc": cos,
        "rank_rmse": np.full(rmse.size, np.nan),
        "rank_rmse_transpose": np.full(rmse.size, np.nan),
        "rank_cosine_logfc": np.full(rmse.size, np.nan),
        "rank_cosine_logfc_transpose": np.full(rmse.size, np.nan),
        "pearson_delta_celleval": rowwise_pearson(pred_effect, true_effect),
        "pearson_delta_own_control": rowwise_pearson(own_effect, true_effect),
        "pds_l1": np.full(rmse.size, np.nan),
    }
    ranks = only is None or any(k.startswith("rank_") for k in only)
    pds = only is None or "pds_l1" in only
    rng = np.random.default_rng(seed)
    for c in np.unique(context_code):
        g = np.flatnonzero(context_code == c)
        if ranks:
            r, rt = rank_metric(rmse_matrix(pred_mean[g], true_mean[g]), higher_is_better=False, rng=rng)
            out["rank_rmse"][g], out["rank_rmse_transpose"][g] = r, rt
            r, rt = rank_metric(cosine_matrix(lfc_pred[g], lfc_true[g]), higher_is_better=True, rng=rng)
            out["rank_cosine_logfc"][g], out["rank_cosine_logfc_transpose"][g] = r, rt
        if pds:
            out["pds_l1"][g] = discrimination_score_l1(
                pred_effect[g], true_effect[g], [exclude[i] for i in g]
            )
    return out
