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
import pandas as pd

FDR_THRESHOLD = 0.05
# Complex128 sort keys of one context's control cells held at once (gene chunks above this).
MAX_KEY_VALUES = 1 << 24
OVERLAP_KS: tuple[tuple[str, int | None], ...] = (
    ("overlap_at_N", None),
    ("overlap_at_50", 50),
    ("overlap_at_100", 100),
)


def de_side(cells: np.ndarray, ctrl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log2 fold change and BH FDR per gene of ``cells`` (n, g) against ``ctrl`` (m, g).

    Genes constant across both (no test possible) get p = 1. One scipy call per side (it
    ranks the pooled cells again for every group); :class:`SortedControls` gives the same
    numbers with the controls sorted once.
    """
    from scipy.stats import false_discovery_control, mannwhitneyu

    with np.errstate(invalid="ignore", divide="ignore"):
        p = mannwhitneyu(cells, ctrl, axis=0, method="asymptotic", use_continuity=True).pvalue
        lfc = np.log2(np.expm1(cells.mean(axis=0)) / np.expm1(ctrl.mean(axis=0)))
    p = np.where(np.isfinite(p), p, 1.0)
    lfc[np.isnan(lfc)] = 0.0
    return lfc, false_discovery_control(p)


def _run_lengths(gene: np.ndarray, value: np.ndarray) -> np.ndarray:
    """For entries sorted by (gene, value), how many entries share each one's (gene, value)."""
    new = np.ones(value.size, dtype=bool)
    new[1:] = (value[1:] != value[:-1]) | (gene[1:] != gene[:-1])
    run = np.cumsum(new) - 1
    return np.bincount(run)[run]


def _keys(gene: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Sort keys ``gene + 1j * value``: numpy orders complex numbers by real, then imaginary
    part, so one ``searchsorted`` call places every (gene, value) among the same gene's values."""
    keys = np.empty(value.size, dtype=np.complex128)
    keys.real = gene
    keys.imag = value
    return keys


class SortedControls:
    """Control cells of one context, sorted once per gene, to test many groups against.

    ``pvalues(cells)`` equals ``scipy.stats.mannwhitneyu(cells, ctrl, axis=0,
    method="asymptotic", use_continuity=True).pvalue`` (two-sided; p = 1 where every value
    is tied): with the controls sorted, ``U`` of the group is the sum over its cells of the
    controls below plus half the controls equal, and the tie term of the pooled sample is
    the controls' own plus, per group cell with ``a`` equal group values and ``b`` equal
    control values, ``a^2 - 1 + 3 b (a + b)`` (summing to the change of ``sum t^3 - t``).
    Zeros (most entries of single-cell data) are counted per gene, not searched: only
    non-zero values enter the sorted keys and the searches.
    """

    def __init__(self, ctrl: np.ndarray) -> None:
        ctrl = np.asarray(ctrl, dtype=np.float64)
        self.n_ctrl, self.n_genes = ctrl.shape
        self.mean = ctrl.mean(axis=0)
        sorted_t = np.sort(ctrl, axis=0).T  # (genes, cells), each row sorted
        nz = sorted_t != 0
        self.n_zero = (~nz).sum(axis=1).astype(np.float64)
        gene = np.broadcast_to(np.arange(self.n_genes, dtype=np.float64)[:, None], sorted_t.shape)[nz]
        value = sorted_t[nz]
        self.keys = _keys(gene, value)
        n_nz = nz.sum(axis=1)
        self.start = np.concatenate([[0], np.cumsum(n_nz)[:-1]]).astype(np.int64)
        # controls below zero per gene (the place of 0 among the non-zero values)
        self.n_neg = (
            np.searchsorted(
                self.keys, _keys(np.arange(self.n_genes, dtype=np.float64), np.zeros(self.n_genes))
            )
            - self.start
        ).astype(np.float64)
        t = _run_lengths(gene, value).astype(np.float64)
        self.tie = np.bincount(gene.astype(np.int64), weights=t * t - 1.0, minlength=self.n_genes)
        self.tie += self.n_zero**3 - self.n_zero

    def pvalues(self, cells: np.ndarray) -> np.ndarray:
        """Two-sided Mann-Whitney p-value per gene of ``cells`` (n, n_genes) vs the controls."""
        from scipy.special import ndtr

        n, m, g = cells.shape[0], self.n_ctrl, self.n_genes
        value = np.sort(np.asarray(cells, dtype=np.float64), axis=0).T.ravel()  # gene-major
        gene_i = np.repeat(np.arange(g), n)
        below = self.n_neg[gene_i]
        equal = self.n_zero[gene_i]
        nz = np.flatnonzero(value != 0)
        if nz.size:
            gi, v = gene_i[nz], value[nz]
            q = _keys(gi.astype(np.float64), v)
            left = np.searchsorted(self.keys, q, "left")
            right = np.searchsorted(self.keys, q, "right")
            below[nz] = left - self.start[gi] + self.n_zero[gi] * (v > 0)
            equal[nz] = right - left
        u1 = (below + 0.5 * equal).reshape(g, n).sum(axis=1)
        a = _run_lengths(gene_i, value).astype(np.float64)
        tie = self.tie + (a * a - 1.0 + 3.0 * equal * (a + equal)).reshape(g, n).sum(axis=1)
        total = n + m
        u = np.maximum(u1, n * m - u1)
        with np.errstate(invalid="ignore", divide="ignore"):
            s = np.sqrt(n * m / 12.0 * ((total + 1) - tie / (total * (total - 1))))
            z = (u - n * m / 2.0 - 0.5) / s
        p = np.clip(2.0 * ndtr(-z), 0.0, 1.0)
        return np.where(np.isfinite(p), p, 1.0)

    def side(self, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw p-values and log2 fold change per gene (as :func:`de_side` before its FDR)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            lfc = np.log2(np.expm1(np.asarray(cells, dtype=np.float64).mean(axis=0)) / np.expm1(self.mean))
        lfc[np.isnan(lfc)] = 0.0
        return self.pvalues(cells), lfc


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
        # Spearman as the Pearson r of average ranks: log2FC is +-inf where one side's mean is
        # 0, and older scipy (1.11: spearmanr and rankdata) returns nan for any inf where newer
        # ones rank it; pandas' average ranks order +-inf in every supported version.
        ranks = np.vstack([pd.Series(v[real_top]).rank().to_numpy() for v in (real_lfc, pred_lfc)])
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = np.asarray(np.corrcoef(ranks))[0, 1]
        out["de_spearman_lfc_sig"] = float(rho)
    else:
        out["de_spearman_lfc_sig"] = float("nan")
    out["n_true_significant"] = float(real_top.size)
    return out


DE_METRICS = (*[n for n, _ in OVERLAP_KS], "de_direction_match", "de_spearman_lfc_sig")


def de_panel(
    context_code: np.ndarray,
    n_genes: int,
    group_cells: Callable[[int, np.ndarray], tuple[np.ndarray, np.ndarray]],
    ctrl_cells: Callable[[int, np.ndarray], np.ndarray],
    flags: dict[str, object] | None = None,
) -> dict[str, np.ndarray]:
    """cell-eval DE metrics of every group.

    Parameters
    ----------
    context_code
        Context of each group, (n_groups,); the groups of a context share its controls.
    n_genes
        Number of metric genes.
    group_cells
        ``group_cells(g, cols)`` returns (predicted cells, true cells) of group ``g`` on gene
        columns ``cols`` of the metric genes, all cells (no subsampling, as cell-eval).
    ctrl_cells
        ``ctrl_cells(c, cols)`` returns the reference control cells of context ``c`` on the
        same columns.
    flags
        Filled with ``de_no_true_significant_groups``: groups whose truth has no significant
        gene (their overlaps are 0 by cell-eval's convention, not a model failure).

    The controls of a context are sorted once (:class:`SortedControls`), in gene chunks of
    at most :data:`MAX_KEY_VALUES` values, and every group is tested against them.
    """
    from scipy.stats import false_discovery_control

    n_groups = context_code.size
    p_true = np.empty((n_groups, n_genes))
    p_pred = np.empty((n_groups, n_genes))
    lfc_true = np.empty((n_groups, n_genes))
    lfc_pred = np.empty((n_groups, n_genes))
    for c in np.unique(context_code):
        members = np.flatnonzero(context_code == c)
        n_ctrl = ctrl_cells(int(c), np.arange(min(n_genes, 1))).shape[0]
        width = max(1, MAX_KEY_VALUES // max(n_ctrl, 1))
        for start in range(0, n_genes, width):
            cols = np.arange(start, min(start + width, n_genes))
            ref = SortedControls(ctrl_cells(int(c), cols))
            for g in members:
                pred, true = group_cells(int(g), cols)
                p_true[g, cols], lfc_true[g, cols] = ref.side(true)
                p_pred[g, cols], lfc_pred[g, cols] = ref.side(pred)
    fdr_true = false_discovery_control(p_true, axis=1)
    fdr_pred = false_discovery_control(p_pred, axis=1)
    out = {name: np.full(n_groups, np.nan) for name in DE_METRICS}
    n_none = 0
    for gi in range(n_groups):
        values = de_group_metrics(lfc_true[gi], fdr_true[gi], lfc_pred[gi], fdr_pred[gi])
        n_none += values.pop("n_true_significant") == 0
        for name, v in values.items():
            out[name][gi] = v
    if flags is not None:
        flags["de_no_true_significant_groups"] = int(n_none)
    return out
