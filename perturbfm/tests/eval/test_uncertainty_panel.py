"""Uncertainty panel against Monte Carlo, closed forms and sklearn."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import trapezoid
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from perturbfm.eval import evaluate_predictions
from perturbfm.eval import uncertainty as unc
from perturbfm.eval.testing import make_eval_case


def test_coverage_of_calibrated_gaussian_is_nominal():
    rng = np.random.default_rng(0)
    sd = rng.uniform(0.5, 2.0, (400, 50))
    resid = rng.normal(size=sd.shape) * sd
    s = unc.summarise(unc.cell_statistics(resid, sd**2), 50)
    for level, got in s["coverage"].items():
        # 20,000 entries: binomial sd of a proportion <= 0.0036
        assert got == pytest.approx(float(level), abs=0.015)
    # E[NLL] for calibrated predictions = 0.5 log(2 pi) + E[log sd] + 0.5
    expected = 0.5 * np.log(2 * np.pi) + np.log(sd).mean() + 0.5
    assert s["nll"] == pytest.approx(expected, abs=0.02)


def test_nll_exact_against_scipy():
    resid = np.array([[0.5, -1.0], [2.0, 0.0]])
    var = np.array([[1.0, 4.0], [0.25, 2.0]])
    s = unc.summarise(unc.cell_statistics(resid, var), 2)
    assert s["nll"] == pytest.approx(-norm.logpdf(resid, scale=np.sqrt(var)).mean(), rel=1e-12)
    # coverage at 0.5: |r| <= 0.6745 sd -> (0,0) 0.5<=0.67 yes, (0,1) 1<=1.35 yes,
    # (1,0) 2<=0.34 no, (1,1) 0<=0.95 yes
    assert s["coverage"]["0.5"] == 0.75


def test_risk_coverage_hand_case():
    sq = np.array([4.0, 1.0, 9.0, 0.0])  # squared-error sums, 1 gene
    var = np.array([3.0, 1.0, 4.0, 2.0])  # order by variance: cells 1, 3, 0, 2
    rc = unc.risk_coverage(sq, var, 1, n_points=4)
    np.testing.assert_allclose(rc["coverage"], [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(rc["risk"], [1.0, 0.5, 5 / 3, 14 / 4])
    assert rc["aurc"] == pytest.approx(trapezoid(rc["risk"], rc["coverage"]))  # np.trapezoid: NumPy 2 only


def test_ood_auroc_matches_sklearn_and_needs_two_classes():
    c = make_eval_case(seed=2)
    rng = np.random.default_rng(3)
    n = c.test_idx.size
    labels = rng.random(n) < 0.3
    var = rng.uniform(0.5, 1.5, (n, 30)) + labels[:, None] * rng.uniform(0, 1, (n, 1))
    out = evaluate_predictions(
        c.ds,
        test_idx=c.test_idx,
        control_idx=c.control_idx,
        mean=c.true_delta,
        var=var,
        ood_labels=labels,
    )
    u = out["uncertainty"]
    assert u["ood_auroc"] == pytest.approx(roc_auc_score(labels, var.mean(axis=1)))
    assert u["ood_auroc"] > 0.6
    assert set(u["coverage"]) == {"0.5", "0.8", "0.9", "0.95"}
    assert len(u["risk_coverage"]["risk"]) == 20
    assert set(u["per_context"]) == {"ctx0", "ctx1"}
    assert unc.ood_auroc(np.ones(3), np.zeros(3)) is None
    assert unc.ood_auroc(np.ones(3), None) is None


def test_panel_coverage_counts_entries_of_test_cells():
    c = make_eval_case(seed=4)
    rng = np.random.default_rng(5)
    mean = c.true_delta + rng.normal(0, 1.0, c.true_delta.shape)
    out = evaluate_predictions(
        c.ds, test_idx=c.test_idx, control_idx=c.control_idx, mean=mean, var=np.ones_like(mean)
    )
    resid = c.true_delta - mean
    ref = (np.abs(resid) <= norm.ppf(0.95)).mean()
    assert out["uncertainty"]["coverage"]["0.9"] == pytest.approx(ref)
