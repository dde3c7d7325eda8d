"""PerturBench metrics and cell-eval's PDS against hand-worked and brute-force values."""

from __future__ import annotations

import numpy as np
import pytest

from perturbfm.eval import evaluate_predictions
from perturbfm.eval.metrics_perturbench import (
    cosine_matrix,
    discrimination_score_l1,
    log_fold_change,
    rank_metric,
    rmse_matrix,
)
from perturbfm.eval.testing import make_eval_case


def test_rank_hand_worked_3x3():
    # M[q, p] = metric(pred_q, ref_p), lower is better.
    m = np.array([[0.10, 0.50, 0.30], [0.25, 0.20, 0.90], [0.40, 0.60, 0.35]])
    rank, rank_t = rank_metric(m, higher_is_better=False, rng=np.random.default_rng(0))
    # column 2: 0.30 (q=0) beats the diagonal 0.35 -> position 1 of 2.
    np.testing.assert_allclose(rank, [0.0, 0.0, 0.5])
    # rows: row 2 = [0.40, 0.60, 0.35] -> diagonal best; row 0, 1 best too.
    np.testing.assert_allclose(rank_t, [0.0, 0.0, 0.0])
    # The same matrix as a similarity (higher better) reverses every position.
    rank_h, rank_th = rank_metric(-m, higher_is_better=True, rng=np.random.default_rng(0))
    np.testing.assert_allclose(rank_h, rank)
    np.testing.assert_allclose(rank_th, rank_t)


def test_rank_brute_force_random_matrix():
    rng = np.random.default_rng(1)
    m = rng.random((7, 7))
    rank, rank_t = rank_metric(m, higher_is_better=True, rng=rng)
    ref = [np.flatnonzero(np.argsort(-m[:, p]) == p)[0] / 6 for p in range(7)]
    ref_t = [np.flatnonzero(np.argsort(-m[p, :]) == p)[0] / 6 for p in range(7)]
    np.testing.assert_allclose(rank, ref)
    np.testing.assert_allclose(rank_t, ref_t)


def test_rank_ties_are_random_and_average_one_half():
    rank, _ = rank_metric(np.zeros((101, 101)), higher_is_better=False, rng=np.random.default_rng(2))
    assert rank.mean() == pytest.approx(0.5, abs=0.08)
    assert np.isnan(rank_metric(np.zeros((1, 1)), higher_is_better=False, rng=np.random.default_rng(0))[0][0])


def test_matrices_closed_form():
    a = np.array([[1.0, 0.0], [0.0, 2.0]])
    b = np.array([[1.0, 1.0]])
    np.testing.assert_allclose(rmse_matrix(a, b)[:, 0], [np.sqrt(0.5), np.sqrt(1.0)])
    np.testing.assert_allclose(cosine_matrix(a, b)[:, 0], [1 / np.sqrt(2), 1 / np.sqrt(2)])


def test_log_fold_change_definition():
    got = log_fold_change(np.array([1.0, -0.5]), np.array([0.3, 0.0]))
    np.testing.assert_allclose(got, [np.log2(1.1) - np.log2(0.4), np.log2(0.1) - np.log2(0.1)])


def test_pds_brute_force_with_exclusion():
    rng = np.random.default_rng(3)
    true, pred = rng.normal(size=(5, 8)), rng.normal(size=(5, 8))
    exclude = [np.array([p]) for p in range(5)]
    got = discrimination_score_l1(pred, true, exclude)
    ref = []
    for p in range(5):
        keep = np.arange(8) != p
        d = np.abs(true[:, keep] - pred[p, keep]).sum(axis=1)
        ref.append(1 - np.flatnonzero(np.argsort(d) == p)[0] / 5)
    np.testing.assert_allclose(got, ref)


def test_panel_rmse_cosine_against_numpy():
    c = make_eval_case(seed=4)
    rng = np.random.default_rng(5)
    mean = c.true_delta + rng.normal(0, 0.3, c.true_delta.shape)
    out = evaluate_predictions(
        c.ds, test_idx=c.test_idx, control_idx=c.control_idx, mean=mean, var=np.ones_like(mean)
    )
    obs = c.ds.obs
    sel = ((obs["pert_id"] == "G2") & (obs["context_id"] == "ctx1")).to_numpy()[c.test_idx]
    ctrl_rows = c.control_idx[(obs["context_id"].to_numpy()[c.control_idx] == "ctx1")]
    true = c.ds.X_pert[c.test_idx][sel].mean(0)
    pred = (c.ds.X_control[c.test_idx][sel] + mean[sel]).mean(0)
    ctrl = c.ds.X_pert[ctrl_rows].mean(0)
    # G2 exists in two contexts: per-perturbation value is the cell-weighted mean; read
    # the context-level numbers through a one-context evaluation instead.
    one = evaluate_predictions(
        c.ds,
        test_idx=c.test_idx[sel],
        control_idx=ctrl_rows,
        mean=mean[sel],
        var=np.ones_like(mean[sel]),
    )
    g = one["perturbench"]["global"]
    assert g["rmse"] == pytest.approx(np.sqrt(((pred - true) ** 2).mean()), rel=1e-9)
    lp = np.log2(np.maximum(pred, 0) + 0.1) - np.log2(ctrl + 0.1)
    lt = np.log2(true + 0.1) - np.log2(ctrl + 0.1)
    assert g["cosine_logfc"] == pytest.approx(lp @ lt / np.linalg.norm(lp) / np.linalg.norm(lt))
    assert g["rank_rmse"] is None  # one group in the context: rank undefined
    assert out["perturbench"]["global"]["rank_rmse"] < 0.2  # informative prediction
