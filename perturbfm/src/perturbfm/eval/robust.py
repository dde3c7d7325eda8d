"""Metrics a no-effect model cannot game, baseline-relative scores, disagreement warnings,
the split-half data ceiling and degenerate-number flags.

Why: the scPerturBench PCC-delta subtracts the same mean of a few test controls from the
prediction and from the truth, so the noise of that mean is shared by both sides and a
model that predicts no effect correlates with the truth (devel context_ood, U87MG held out:
``control_only`` 0.785). Systema (Nat Biotech 2025) compares both sides with the perturbed
centroid instead; its noise is averaged over every perturbed group of the context.

Everything here works on group summaries (means per (perturbation, context) group), so it
can be fed blockwise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from perturbfm.eval.metrics_scperturbench import perturbed_centroid, rowwise_pearson

# Pairs of metrics that are two conventions of one quantity; the report warns when they
# disagree in sign or by more than DISAGREE_MARGIN.
METRIC_VERSIONS: tuple[tuple[tuple[str, str], tuple[str, str]], ...] = (
    (("scperturbench", "pcc_delta"), ("scperturbench", "pcc_delta_centroid")),
    (("perturbench", "pearson_delta_celleval"), ("scperturbench", "pcc_delta_centroid")),
    (("perturbench", "pearson_delta_own_control"), ("scperturbench", "pcc_delta_centroid")),
    (("scperturbench", "pcc_delta_all"), ("scperturbench", "pcc_delta_centroid_all")),
)
DISAGREE_MARGIN = 0.3
# opposite signs count only when both values are clearly away from zero
SIGN_FLOOR = 0.1
N_CEILING_REPEATS = 10
CEILING_SEED = 7


def centroid_pearson(pred_mean: np.ndarray, true_mean: np.ndarray, context_code: np.ndarray) -> np.ndarray:
    """Systema PCC-delta: Pearson r of (prediction - centroid) and (truth - centroid) per group.

    Parameters
    ----------
    pred_mean, true_mean
        Group means of predicted and true expression, (n_groups, n_genes).
    context_code
        Context of each group, (n_groups,). The centroid of a context is the unweighted
        mean of the true group means of its groups (the perturbed centroid).

    Returns
    -------
    numpy.ndarray
        (n_groups,); NaN where a side is flat or the context has a single group.
    """
    centroid, single = perturbed_centroid(true_mean, context_code)
    r = rowwise_pearson(pred_mean - centroid, true_mean - centroid)
    r[single] = np.nan
    return r


def baseline_relative(value: float | None, base: float | None, direction: str) -> float | None:
    """cell-eval's baseline-normalised score, not clipped at 0 (worse than baseline < 0).

    ``direction == "higher"`` (metrics whose best value is 1): ``(value - base) / (1 - base)``;
    ``"lower"`` (best value 0): ``1 - value / base``. 1 = perfect, 0 = as good as the
    baseline. None when either number is missing or the baseline is already perfect.
    """
    if value is None or base is None or not np.isfinite(value) or not np.isfinite(base):
        return None
    if direction == "higher":
        return None if base >= 1.0 else float((value - base) / (1.0 - base))
    return None if base <= 0.0 else float(1.0 - value / base)


def disagreements(metrics: Mapping[str, Any]) -> list[str]:
    """Warnings for pairs of metric versions (:data:`METRIC_VERSIONS`) that disagree.

    Disagreement = opposite signs with both beyond :data:`SIGN_FLOOR` in size, or more than
    :data:`DISAGREE_MARGIN` apart (global values).
    """
    out = []
    for (pa, a), (pb, b) in METRIC_VERSIONS:
        va = metrics.get(pa, {}).get("global", {}).get(a)
        vb = metrics.get(pb, {}).get("global", {}).get(b)
        if va is None or vb is None:
            continue
        opposite = np.sign(va) != np.sign(vb) and min(abs(va), abs(vb)) > SIGN_FLOOR
        if opposite or abs(va - vb) > DISAGREE_MARGIN:
            out.append(
                f"{a} = {va:.3f} and {b} = {vb:.3f} disagree (sign or > {DISAGREE_MARGIN} apart): "
                f"{a} shares its control reference with the truth side, read {b}"
                if a in ("pcc_delta", "pearson_delta_celleval", "pcc_delta_all")
                else f"{a} = {va:.3f} and {b} = {vb:.3f} disagree (sign or > {DISAGREE_MARGIN} apart)"
            )
    return out


def split_half_ceiling(
    code: np.ndarray,
    n_groups: int,
    fetch: Callable[[int, int], np.ndarray],
    context_code: np.ndarray,
    ctrl_mean: np.ndarray,
    *,
    deg_cols: np.ndarray | None = None,
    n_repeats: int = N_CEILING_REPEATS,
    seed: int = CEILING_SEED,
    block: int = 8192,
) -> dict[str, dict[str, float | None]]:
    """Data ceiling: score one random half of the true cells of each group against the other.

    Each repeat splits every group's true cells at random into two halves; the mean of one
    half plays the prediction, the other the truth. All repeats are reduced in one pass over
    the cells (a sparse (2 * n_repeats * n_groups) x cells indicator per block).

    Parameters
    ----------
    code
        Group of each true cell, (n_cells,), in the order ``fetch`` returns rows.
    n_groups
        Number of groups.
    fetch
        ``fetch(start, stop)`` returns true expression of cells ``start:stop`` on the metric
        genes, (stop - start, n_genes), float64, dense or scipy sparse.
    context_code
        Context of each group, (n_groups,).
    ctrl_mean
        Reference control mean of each group's context, (n_groups, n_genes).
    deg_cols
        Optional (n_groups, k) gene columns of each group's top DEGs (of the full truth), for
        ``pcc_delta_centroid`` (the DEG-restricted version).

    Returns
    -------
    dict
        For ``pcc_delta_centroid_all``, ``pcc_delta_all``, ``rmse`` (and ``pcc_delta_centroid``
        with ``deg_cols``): the cell-weighted global value between halves, averaged over the
        repeats (``half_depth``), and carried to full depth (``mean``; 5th/95th percentiles of
        the repeats ``lo``/``hi``): correlations by Spearman-Brown ``2r / (1 + r)`` (as cell-eval's
        ceiling), RMSE halved (the half-vs-half difference has twice the noise standard
        deviation of a perfect prediction against the full-depth truth).
    """
    n_cells = code.size
    rng = np.random.default_rng(seed)
    counts = np.bincount(code, minlength=n_groups)
    rows, cols = [], []
    for r in range(n_repeats):
        # rank of each cell inside its group under a random key -> first half / second half
        key = rng.random(n_cells)
        order = np.lexsort((key, code))
        rank = np.empty(n_cells, dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank[order] = np.arange(n_cells) - starts[code[order]]
        half = (rank >= counts[code] // 2).astype(np.int64)
        rows.append((r * n_groups + code) * 2 + half)
        cols.append(np.arange(n_cells))
    ind = sp.csr_matrix(
        (np.ones(n_repeats * n_cells), (np.concatenate(rows), np.concatenate(cols))),
        shape=(2 * n_repeats * n_groups, n_cells),
    )
    sums = None
    for start in range(0, n_cells, block):
        stop = min(start + block, n_cells)
        part = ind[:, start:stop] @ fetch(start, stop)
        part = part.toarray() if sp.issparse(part) else np.asarray(part, dtype=np.float64)
        if sums is None:
            sums = part
        else:
            sums += part
    n_half = np.asarray(ind.sum(axis=1)).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (sums / n_half[:, None]).reshape(n_repeats, n_groups, 2, -1)
    ok = (counts >= 2).astype(np.float64)
    w = counts * ok
    stats: dict[str, list[float]] = {"pcc_delta_centroid_all": [], "pcc_delta_all": [], "rmse": []}
    if deg_cols is not None:
        stats["pcc_delta_centroid"] = []
    for r in range(n_repeats):
        a, b = means[r, :, 0], means[r, :, 1]
        values = {
            "pcc_delta_centroid_all": centroid_pearson(a, b, context_code),
            "pcc_delta_all": rowwise_pearson(a - ctrl_mean, b - ctrl_mean),
            "rmse": np.sqrt(((a - b) ** 2).mean(axis=1)),
        }
        if deg_cols is not None:
            centroid, single = perturbed_centroid(b, context_code)

            def take(x: np.ndarray) -> np.ndarray:
                return np.take_along_axis(x, deg_cols, axis=1)

            v = rowwise_pearson(take(a - centroid), take(b - centroid))
            v[single] = np.nan
            values["pcc_delta_centroid"] = v
        for k, v in values.items():
            good = np.isfinite(v) & (w > 0)
            stats[k].append(float(np.average(v[good], weights=w[good])) if good.any() else np.nan)
    out: dict[str, dict[str, float | None]] = {}
    for k, vals in stats.items():
        arr = np.asarray(vals)
        arr = arr[np.isfinite(arr)]
        if not arr.size:
            out[k] = {"mean": None, "lo": None, "hi": None, "half_depth": None}
            continue
        # Back to full depth: a perfect prediction still differs from the observed truth by
        # the truth's own noise, sigma/sqrt(n) per gene, half of the half-vs-half RMSE
        # (2 sigma/sqrt(n)); correlations by Spearman-Brown 2r/(1+r), as cell-eval does.
        full = (lambda x: x / 2.0) if k == "rmse" else (lambda x: 2.0 * x / (1.0 + x))
        out[k] = {
            "mean": float(full(arr.mean())),
            "lo": float(full(np.quantile(arr, 0.05))),
            "hi": float(full(np.quantile(arr, 0.95))),
            "half_depth": float(arr.mean()),
        }
    return out


def validation_scores(
    pred_delta: np.ndarray, true_delta: np.ndarray, group_code: np.ndarray
) -> dict[str, float | int | None]:
    """Validation score used for model selection: ``val_rmse_delta``.

    Parameters
    ----------
    pred_delta, true_delta
        Predicted and true deltas of the validation cells on the metric genes, (n_cells, n_genes).
    group_code
        (pert_id, context) group of each cell, (n_cells,).
    """
    if group_code.size == 0:
        return {"val_rmse_delta": None, "n_cells": 0, "n_groups": 0}
    codes, inv, counts = np.unique(group_code, return_inverse=True, return_counts=True)
    ind = sp.csr_matrix((np.ones(inv.size), (inv, np.arange(inv.size))), shape=(codes.size, inv.size))
    diff = (ind @ (pred_delta - true_delta)) / counts[:, None]
    rmse = np.sqrt((diff**2).mean(axis=1))
    return {
        "val_rmse_delta": float(np.average(rmse, weights=counts)),
        "n_cells": int(inv.size),
        "n_groups": int(codes.size),
    }
