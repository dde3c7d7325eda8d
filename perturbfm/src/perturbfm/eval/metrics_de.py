"""cell-eval's differential-expression metrics, computed the way cell-eval 0.8.2 computes them.

DE per group and per side (the group's true cells vs the test controls; its predicted cells
vs the same controls, as in the pair ``perturbfm export`` writes), as pdex does for
cell-eval on log1p data: two-sided Mann-Whitney U per gene (normal approximation with tie
and continuity correction = ``scipy.stats.mannwhitneyu(method="asymptotic")``),
Benjamini-Hochberg FDR over the genes of the group, log2 fold change of the pseudobulks
``log2(expm1(mean(x)) / expm1(mean(ctrl)))`` (0/0 = 0). Significant = FDR < 0.05.

- ``overlap_at_N``: the true significant genes ranked by |log2FC|, the predicted ones the same
  way; |top-k(true) & top-k(pred)| / k with k = number of true significant genes (0 when
  there are none: cell-eval's convention, flagged by us); ``overlap_at_50`` / ``_100`` cap k.
- ``de_direction_match``: fraction of the true significant genes whose predicted log2FC has
  the same sign.
- ``de_spearman_lfc_sig``: Spearman correlation of true and predicted log2FC over the true
  significant genes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import false_discovery_control, mannwhitneyu, spearmanr

FDR_THRESHOLD = 0.05
OVERLAP_KS: tuple[tuple[str, int | None], ...] = (
    ("overlap_at_N", None),
    ("overlap_at_50", 50),
    ("overlap_at_100", 100),
)


def de_side(cells: np.ndarray, ctrl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log2 fold change and BH FDR per gene of ``cells`` (n, g) against ``ctrl`` (m, g).

    Genes constant across both (no test possible) get p = 1.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        p = mannwhitneyu(cells, ctrl, axis=0, method="asymptotic", use_continuity=True).pvalue
        lfc = np.log2(np.expm1(cells.mean(axis=0)) / np.expm1(ctrl.mean(axis=0)))
    p = np.where(np.isfinite(p), p, 1.0)
    lfc[np.isnan(lfc)] = 0.0
    return lfc, false_discovery_control(p)


def _top(lfc: np.ndarray, fdr: np.ndarray) -> np.ndarray:
    sig = np.flatnonzero(fdr < FDR_THRESHOLD)
    return sig[np.argsort(-np.abs(lfc[sig]), kind="stable")]


def de_group_metrics(
    real_lfc: np.ndarray, real_fdr: np.ndarray, pred_lfc: np.ndarray, pred_fdr: np.ndarray
) -> dict[str, float]:
    """cell-eval DE metrics of one group from the two sides' log2FC and FDR, each (n_genes,)."""
    real_top, pred_top = _top(real_lfc, real_fdr), _top(pred_lfc, pred_fdr)
    out: dict[str, float] = {}
    for name, k in OVERLAP_KS:
        k_eff = min(real_top.size if k is None else k, real_top.size)
        out[name] = 0.0 if k_eff == 0 else np.intersect1d(real_top[:k_eff], pred_top[:k_eff]).size / k_eff
    if real_top.size:
        out["de_direction_match"] = float(np.mean(np.sign(real_lfc[real_top]) == np.sign(pred_lfc[real_top])))
    else:
        out["de_direction_match"] = float("nan")
    if real_top.size >= 2:
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = spearmanr(real_lfc[real_top], pred_lfc[real_top]).statistic
        out["de_spearman_lfc_sig"] = float(rho)
    else:
        out["de_spearman_lfc_sig"] = float("nan")
    out["n_true_significant"] = float(real_top.size)
    return out


DE_METRICS = (*[n for n, _ in OVERLAP_KS], "de_direction_match", "de_spearman_lfc_sig")


def de_panel(
    n_groups: int,
    group_cells: Callable[[int], tuple[np.ndarray, np.ndarray, np.ndarray]],
    flags: dict[str, object] | None = None,
) -> dict[str, np.ndarray]:
    """cell-eval DE metrics of every group.

    Parameters
    ----------
    n_groups
        Number of groups.
    group_cells
        ``group_cells(g)`` returns (predicted cells, true cells, reference control cells) of
        group ``g`` on the metric genes, all cells (no subsampling, as cell-eval).
    flags
        Filled with ``de_no_true_significant_groups``: groups whose truth has no significant
        gene (their overlaps are 0 by cell-eval's convention, not a model failure).
    """
    out = {name: np.full(n_groups, np.nan) for name in DE_METRICS}
    n_none = 0
    for g in range(n_groups):
        pred, true, ctrl = group_cells(g)
        real_lfc, real_fdr = de_side(true, ctrl)
        pred_lfc, pred_fdr = de_side(pred, ctrl)
        values = de_group_metrics(real_lfc, real_fdr, pred_lfc, pred_fdr)
        n_none += values.pop("n_true_significant") == 0
        for name, v in values.items():
            out[name][g] = v
    if flags is not None:
        flags["de_no_true_significant_groups"] = int(n_none)
    return out
