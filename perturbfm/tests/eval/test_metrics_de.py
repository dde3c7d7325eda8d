"""The sorted-control Mann-Whitney of the DE panel against scipy and the previous per-group route."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from perturbfm.eval.metrics_de import SortedControls, de_group_metrics, de_panel, de_side


def _sparse_like(rng: np.random.Generator, n: int, g: int, shift: float = 0.0) -> np.ndarray:
    # log1p of small counts: many exact zeros and repeated values (heavy ties), as real data
    counts = rng.poisson(rng.gamma(0.5, 1.0, g) + shift, (n, g))
    return np.log1p(counts).astype(np.float64)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sorted_controls_pvalues_equal_scipy_mannwhitneyu(seed):
    rng = np.random.default_rng(seed)
    ctrl = _sparse_like(rng, 70, 60)
    ctrl[:, 0] = 0.0  # every value tied: p = 1
    ref = SortedControls(ctrl)
    for cells in (
        _sparse_like(rng, 9, 60, shift=0.3),
        _sparse_like(rng, 1, 60),
        rng.normal(0.5, 1.0, (25, 60)),  # continuous predictions, negatives included
    ):
        if cells.shape[0] > 1:
            cells[:, 0] = 0.0
        want = mannwhitneyu(cells, ctrl, axis=0, method="asymptotic", use_continuity=True).pvalue
        want = np.where(np.isfinite(want), want, 1.0)
        np.testing.assert_allclose(ref.pvalues(cells), want, rtol=1e-10, atol=1e-14)


def _normalised(rng: np.random.Generator, n: int, g: int, shift: float = 0.0) -> np.ndarray:
    # per-cell size factors, as log-normalised data: exact zeros tie, group means do not
    counts = rng.poisson(rng.gamma(0.5, 1.0, g) + shift, (n, g))
    return np.log1p(counts * rng.uniform(0.8, 1.25, (n, 1)))


def test_de_panel_equals_previous_per_group_route():
    rng = np.random.default_rng(5)
    n_genes, contexts = 50, np.array([0, 0, 1, 1, 1])
    ctrl = {c: _normalised(rng, 40 + 10 * c, n_genes) for c in (0, 1)}
    cells = {
        g: (
            # every group shifted (g + 1), so each has significant genes whatever numpy's
            # random streams (the floor environment's numpy draws other values)
            _normalised(rng, 20 + g, n_genes, shift=0.4 * (g + 1)),
            _normalised(rng, 20 + g, n_genes, shift=0.3 * (g + 1)),
        )
        for g in range(contexts.size)
    }
    # a gene chunk smaller than the genes exercises the chunked path
    import perturbfm.eval.metrics_de as mde

    old_max = mde.MAX_KEY_VALUES
    mde.MAX_KEY_VALUES = 40 * 17
    try:
        got = de_panel(
            contexts,
            n_genes,
            lambda g, cols: (cells[g][0][:, cols], cells[g][1][:, cols]),
            lambda c, cols: ctrl[c][:, cols],
        )
    finally:
        mde.MAX_KEY_VALUES = old_max
    assert np.isfinite(got["de_spearman_lfc_sig"]).all()  # every group has significant genes
    for g, c in enumerate(contexts):
        pred, true = cells[g]
        real_lfc, real_fdr = de_side(true, ctrl[c])
        pred_lfc, pred_fdr = de_side(pred, ctrl[c])
        want = de_group_metrics(real_lfc, real_fdr, pred_lfc, pred_fdr)
        for name, value in want.items():
            if name == "n_true_significant":
                continue
            if np.isnan(value):
                assert np.isnan(got[name][g])
            else:
                assert got[name][g] == pytest.approx(value, abs=1e-12), (g, name)


def test_spearman_ranks_infinite_log_fold_changes():
    """+-inf log2FC (a side's mean is 0) is ranked, not turned into nan (scipy 1.11 did)."""
    from scipy.stats import spearmanr

    real = np.array([np.inf, 3.0, -np.inf, 1.5, -2.0, 0.5])
    pred = np.array([2.0, np.inf, -1.0, 1.0, -np.inf, 0.2])
    fdr = np.full(real.size, 1e-4)
    got = de_group_metrics(real, fdr, pred, fdr)["de_spearman_lfc_sig"]
    # the same order with finite stand-ins for the infinities
    finite = [np.nan_to_num(v, posinf=1e6, neginf=-1e6) for v in (real, pred)]
    want = spearmanr(*finite)
    assert got == pytest.approx(want.statistic, abs=1e-12)
