"""scPerturBench metrics against scipy and closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr, ttest_ind, wasserstein_distance

from perturbfm.eval import evaluate_predictions
from perturbfm.eval.metrics_scperturbench import (
    edistance_scperturb,
    rowwise_pearson,
    subsample_positions,
    sym_kl_gauss,
    top_k_by_abs,
    wasserstein_1d_mean,
    welch_t,
)
from perturbfm.eval.testing import make_eval_case


def test_welch_t_matches_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, (15, 7)), rng.normal(0.5, 2, (9, 7))
    t = welch_t(a.mean(0), a.var(0, ddof=1), 15, b.mean(0), b.var(0, ddof=1), 9)
    np.testing.assert_allclose(t, ttest_ind(a, b, equal_var=False).statistic, rtol=1e-12)


def test_welch_t_zero_variance_is_zero():
    assert welch_t(np.array([1.0]), np.array([0.0]), 3, np.array([1.0]), np.array([0.0]), 3)[0] == 0


def test_rowwise_pearson_matches_scipy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(4, 20)), rng.normal(size=(4, 20))
    ref = [pearsonr(a[i], b[i])[0] for i in range(4)]
    np.testing.assert_allclose(rowwise_pearson(a, b), ref, rtol=1e-12)
    assert np.isnan(rowwise_pearson(np.ones((1, 5)), b[:1, :5])[0])


@pytest.mark.parametrize(("n", "m"), [(30, 30), (17, 40), (5, 3)])
def test_wasserstein_matches_scipy_per_gene(n, m):
    rng = np.random.default_rng(n + m)
    x, y = rng.normal(0, 1, (n, 6)), rng.exponential(1, (m, 6))
    ref = np.mean([wasserstein_distance(x[:, j], y[:, j]) for j in range(6)])
    assert wasserstein_1d_mean(x, y) == pytest.approx(ref, rel=1e-10)


def test_sym_kl_closed_form():
    # x: mean 1, std 1; y: mean 3, std 2 (population std).
    x = np.array([[0.0], [2.0]])
    y = np.array([[1.0], [5.0]])
    kl_xy = np.log(2.0) + (1 + 4) / (2 * 4) - 0.5
    kl_yx = np.log(0.5) + (4 + 4) / (2 * 1) - 0.5
    assert sym_kl_gauss(x, y) == pytest.approx(kl_xy + kl_yx, rel=1e-7)
    assert sym_kl_gauss(x, x) == pytest.approx(0.0, abs=1e-12)


def test_edistance_scperturb_brute_force():
    rng = np.random.default_rng(2)
    x, y = rng.normal(0, 1, (9, 4)), rng.normal(1, 1, (6, 4))

    def sq(a, b):
        return ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)

    ref = 2 * sq(x, y).mean() - sq(x, x).sum() / (9 * 8) - sq(y, y).sum() / (6 * 5)
    assert edistance_scperturb(x, y) == pytest.approx(ref, rel=1e-12)
    assert np.isnan(edistance_scperturb(x[:1], y))


def test_subsample_is_seed_42_without_replacement():
    pos = subsample_positions(50, max_cells=10)
    ref = np.sort(np.random.default_rng(42).choice(50, size=10, replace=False))
    np.testing.assert_array_equal(pos, ref)
    np.testing.assert_array_equal(subsample_positions(7, max_cells=10), np.arange(7))


def test_top_k_by_abs():
    s = np.array([[0.1, -5.0, 3.0, 0.0]])
    np.testing.assert_array_equal(top_k_by_abs(s, 2), [[1, 2]])


def test_panel_values_for_one_group_against_scipy():
    c = make_eval_case(n_genes=150, n_contexts=1, n_perts=3, n_per_group=20, n_ctrl=25, seed=5)
    rng = np.random.default_rng(6)
    mean = c.true_delta + rng.normal(0, 0.5, c.true_delta.shape)
    out = evaluate_predictions(
        c.ds, test_idx=c.test_idx, control_idx=c.control_idx, mean=mean, var=np.ones_like(mean)
    )
    obs = c.ds.obs.iloc[c.test_idx]
    sel = (obs["pert_id"] == "G1").to_numpy()
    true = c.ds.X_pert[c.test_idx][sel]
    pred = c.ds.X_control[c.test_idx][sel] + mean[sel]
    ctrl = c.ds.X_pert[c.control_idx]
    t_true = ttest_ind(true, ctrl, equal_var=False).statistic
    t_pred = ttest_ind(pred, ctrl, equal_var=False).statistic
    deg = np.argsort(-np.abs(np.nan_to_num(t_true)), kind="stable")[:100]
    deg_pred = np.argsort(-np.abs(np.nan_to_num(t_pred)), kind="stable")[:100]
    got = out["scperturbench"]["per_perturbation"]["G1"]
    cm = ctrl.mean(0)
    assert got["mse"] == pytest.approx(((pred.mean(0) - true.mean(0))[deg] ** 2).mean(), rel=1e-9)
    r = pearsonr((pred.mean(0) - cm)[deg], (true.mean(0) - cm)[deg])[0]
    assert got["pcc_delta"] == pytest.approx(r, rel=1e-9)
    assert got["pearson_distance_delta"] == pytest.approx(1 - r, rel=1e-9)
    assert got["common_degs"] == pytest.approx(len(set(deg) & set(deg_pred)) / 100)
    w = np.mean([wasserstein_distance(pred[:, j], true[:, j]) for j in deg])
    assert got["wasserstein_1d"] == pytest.approx(w, rel=1e-9)
    assert got["edistance"] == pytest.approx(edistance_scperturb(pred[:, deg], true[:, deg]))
    assert got["kl_gauss_sym_log2"] == pytest.approx(np.log2(1 + sym_kl_gauss(pred[:, deg], true[:, deg])))


def test_perfect_prediction_scores():
    c = make_eval_case(seed=9)
    # float64 difference (ds.delta is float32, whose rounding would show as tiny errors)
    exact = c.ds.X_pert[c.test_idx] - c.ds.X_control[c.test_idx]
    out = evaluate_predictions(
        c.ds,
        test_idx=c.test_idx,
        control_idx=c.control_idx,
        mean=exact,
        var=np.ones_like(exact),
    )
    g = out["scperturbench"]["global"]
    assert g["mse"] == pytest.approx(0, abs=1e-20)
    assert g["pcc_delta"] == pytest.approx(1.0)
    assert g["common_degs"] == 1.0
    assert g["wasserstein_1d"] == pytest.approx(0, abs=1e-12)
    assert g["kl_gauss_sym_log2"] == pytest.approx(0, abs=1e-9)
