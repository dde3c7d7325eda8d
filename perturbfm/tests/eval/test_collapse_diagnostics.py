"""Collapse diagnostics against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from perturbfm.eval.diagnostics import collapse_diagnostics, mean_pairwise_jaccard


def test_collapsed_prediction_is_flagged():
    rng = np.random.default_rng(0)
    true = rng.normal(size=(6, 80))
    pred = np.tile(true.mean(axis=0), (6, 1))
    d = collapse_diagnostics(pred, true)
    assert d["delta_spread_ratio"] == pytest.approx(0.0, abs=1e-12)
    assert d["mean_pairwise_cosine_pred"] == pytest.approx(1.0)
    assert d["deg_jaccard_pred"] == pytest.approx(1.0)
    assert d["deg_jaccard_true"] < 0.5


def test_brute_force_values():
    rng = np.random.default_rng(1)
    pred, true = rng.normal(size=(4, 10)), rng.normal(size=(4, 10))
    d = collapse_diagnostics(pred, true)
    assert d["delta_spread_ratio"] == pytest.approx(pred.std(0).sum() / true.std(0).sum())
    cos = [
        pred[i] @ pred[j] / np.linalg.norm(pred[i]) / np.linalg.norm(pred[j])
        for i, j in itertools.permutations(range(4), 2)
    ]
    assert d["mean_pairwise_cosine_pred"] == pytest.approx(np.mean(cos))
    tops = [set(np.argsort(-np.abs(r))[:3]) for r in true]
    jac = [len(a & b) / len(a | b) for a, b in itertools.permutations(tops, 2)]
    assert mean_pairwise_jaccard(true, k=3) == pytest.approx(np.mean(jac))
