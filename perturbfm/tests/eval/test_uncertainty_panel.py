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


def _previous_panel(resid: np.ndarray, var: np.ndarray, pert: np.ndarray) -> dict:
    """The panel as the evaluator computed it before the blockwise in-place version: dense
    float64, ``|r| <= z sd`` per level, NLL of N(0, max(var, floor)), one mask per perturbation."""
    resid, var = resid.astype(np.float64), var.astype(np.float64)
    g = resid.shape[1]
    covered = {lvl: np.abs(resid) <= norm.ppf(0.5 + lvl / 2) * np.sqrt(var) for lvl in unc.COVERAGE_LEVELS}
    v = np.maximum(var, unc.VAR_FLOOR)
    nll = 0.5 * np.log(2 * np.pi * v) + resid**2 / (2 * v)

    def summary(mask: np.ndarray) -> dict:
        n = mask.sum() * g
        sq, vs = (resid[mask] ** 2).sum(axis=1), var[mask].sum(axis=1)
        return {
            "coverage": {str(lvl): c[mask].sum() / n for lvl, c in covered.items()},
            "nll": nll[mask].sum() / n,
            "mse": sq.sum() / n,
            "mean_var": vs.sum() / n,
            "aurc": unc.risk_coverage(sq, vs, g)["aurc"],
        }

    return {p: summary(pert == p) for p in np.unique(pert)} | {"all": summary(np.ones(pert.size, bool))}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_blockwise_panel_equals_previous_dense_computation(dtype):
    c = make_eval_case(n_genes=40, n_perts=5, seed=9)
    rng = np.random.default_rng(10)
    mean = (c.true_delta + rng.normal(0, 0.8, c.true_delta.shape)).astype(dtype)
    var = rng.uniform(0.2, 2.0, mean.shape).astype(dtype)
    var[0, :5] = 0.0  # zero variance (coverage only where the residual is 0; NLL floored)
    if dtype == np.float64:  # two exact hits among them (float32 cannot hold a float64 truth exactly)
        mean[0, :2] = c.true_delta[0, :2]
    out = evaluate_predictions(c.ds, test_idx=c.test_idx, control_idx=c.control_idx, mean=mean, var=var)
    u = out["uncertainty"]
    pert = c.ds.obs["pert_id"].to_numpy()[c.test_idx]
    ref = _previous_panel(c.true_delta - mean.astype(np.float64), var, pert)
    tol = 1e-12 if dtype == np.float64 else 2e-6
    for name, got in [("all", u), *u["per_perturbation"].items()]:
        want = ref[name]
        for key in ("nll", "mse", "mean_var"):
            assert got[key] == pytest.approx(want[key], rel=tol, abs=tol), (name, key)
        for level, value in want["coverage"].items():
            assert got["coverage"][level] == pytest.approx(value, abs=1e-12), (name, level)
        aurc = got["risk_coverage"]["aurc"] if name == "all" else got["aurc"]
        assert aurc == pytest.approx(want["aurc"], rel=tol), name
    # negative predicted expression: the dense count
    pred = c.ds.X_control[c.test_idx].astype(np.float64) + mean.astype(np.float64)
    assert out["flags"]["negative_predicted_expression"]["n"] == int((pred < 0).sum())
