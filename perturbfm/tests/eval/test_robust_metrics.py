"""Metrics a no-effect model cannot game, baseline-relative scores, the data ceiling, flags."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr

from perturbfm.data.dataset import PerturbDataset
from perturbfm.eval import evaluate_predictions, metric_registry
from perturbfm.eval.robust import baseline_relative, centroid_pearson, disagreements
from perturbfm.eval.testing import make_eval_case


def _weak_effects_few_controls(seed: int = 0) -> tuple[PerturbDataset, np.ndarray, np.ndarray]:
    """The devel context_ood failure in small: weak effects, 4 noisy test controls, and
    predictions built on matched controls drawn from a separate control pool."""
    rng = np.random.default_rng(seed)
    n_genes, n_perts, n_cells, n_test_ctrl, n_pool = 300, 9, 60, 4, 80
    base = rng.gamma(2.0, 1.0, n_genes)
    test_ctrl = base + rng.normal(0, 1.0, (n_test_ctrl, n_genes))
    pool = base + rng.normal(0, 1.0, (n_pool, n_genes))
    xp, xc, rows = [test_ctrl, pool], [pool[:n_test_ctrl], test_ctrl[[1, 2, 3, 0] * (n_pool // 4)]], []
    rows += [("ctx", "control", True, [])] * (n_test_ctrl + n_pool)
    for p in range(n_perts):
        effect = rng.normal(0, 0.05, n_genes)
        xp.append(base + effect + rng.normal(0, 1.0, (n_cells, n_genes)))
        xc.append(pool[rng.integers(0, n_pool, n_cells)])
        rows += [("ctx", f"P{p}", False, [f"g{p}"])] * n_cells
    obs = pd.DataFrame(rows, columns=["context_id", "pert_id", "is_control", "pert_genes"])
    obs["batch_id"] = "b0"
    ds = PerturbDataset(
        X_control=np.vstack(xc), X_pert=np.vstack(xp), obs=obs, var=[f"g{i}" for i in range(n_genes)]
    )
    is_ctrl = obs["is_control"].to_numpy()
    return ds, np.flatnonzero(~is_ctrl), np.arange(n_test_ctrl)


def test_no_effect_model_scores_high_on_shared_control_but_not_on_centroid():
    ds, test_idx, control_idx = _weak_effects_few_controls()
    out = evaluate_predictions(
        ds, test_idx=test_idx, control_idx=control_idx, mean=np.zeros((test_idx.size, ds.n_genes)), var=None
    )
    sc = out["scperturbench"]["global"]
    # The published convention is fooled by the shared noise of 4 test controls ...
    assert sc["pcc_delta_all"] > 0.5
    assert out["perturbench"]["global"]["pearson_delta_celleval"] > 0.5
    # ... the perturbed-centroid version is not, and the report is warned.
    assert abs(sc["pcc_delta_centroid_all"]) < 0.15
    assert any("pcc_delta_centroid" in w for w in out["warnings"])
    # each side against its own control: the no-effect prediction side is flat -> undefined
    assert out["perturbench"]["global"]["pearson_delta_own_control"] is None
    assert out["uncertainty"]["status"] == "absent"


def test_centroid_pearson_against_scipy():
    rng = np.random.default_rng(1)
    true = rng.normal(size=(6, 40))
    pred = true + rng.normal(0, 0.5, true.shape)
    ctx = np.array([0, 0, 0, 1, 1, 2])
    got = centroid_pearson(pred, true, ctx)
    for g in range(5):
        cent = true[ctx == ctx[g]].mean(axis=0)
        assert got[g] == pytest.approx(pearsonr(pred[g] - cent, true[g] - cent).statistic, rel=1e-12)
    assert np.isnan(got[5])  # a context with one group has no centroid comparison


def test_baseline_relative_matches_celleval_formula_unclipped():
    assert baseline_relative(0.6, 0.2, "higher") == pytest.approx((0.6 - 0.2) / 0.8)
    assert baseline_relative(0.1, 0.2, "higher") == pytest.approx(-0.125)
    assert baseline_relative(0.5, 2.0, "lower") == pytest.approx(0.75)
    assert baseline_relative(None, 2.0, "lower") is None
    assert baseline_relative(0.5, 1.0, "higher") is None


def test_disagreement_warning_needs_real_gap():
    m = {"scperturbench": {"global": {"pcc_delta": 0.78, "pcc_delta_centroid": 0.02}}}
    assert len(disagreements(m)) == 1
    m["scperturbench"]["global"]["pcc_delta"] = 0.05
    assert disagreements(m) == []


def test_data_ceiling_rmse_matches_closed_form():
    # Truth = group mean + N(0, s^2) per cell: the two half means differ by N(0, 4 s^2 / n),
    # so the split-half RMSE is about 2 s / sqrt(n), and a perfect prediction scored against
    # the full-depth truth has RMSE s / sqrt(n) (the reported ceiling).
    c = make_eval_case(n_genes=400, n_perts=3, n_per_group=40, seed=5)
    out = evaluate_predictions(
        c.ds, test_idx=c.test_idx, control_idx=c.control_idx, mean=c.true_delta, var=None
    )
    ceiling = out["ceiling"]
    # make_eval_case clips at 0, which shrinks the noise a little: allow 15 %
    assert ceiling["rmse"]["half_depth"] == pytest.approx(2 * 0.5 / np.sqrt(40), rel=0.15)
    assert ceiling["rmse"]["mean"] == pytest.approx(0.5 / np.sqrt(40), rel=0.15)
    r = ceiling["pcc_delta_all"]["half_depth"]
    assert ceiling["pcc_delta_all"]["mean"] == pytest.approx(2 * r / (1 + r))
    assert ceiling["rmse"]["lo"] <= ceiling["rmse"]["mean"] <= ceiling["rmse"]["hi"]
    assert 0.5 < ceiling["pcc_delta_centroid"]["mean"] <= 1.0


def test_degenerate_numbers_are_flagged_not_reported():
    c = make_eval_case(n_genes=30, n_perts=4, seed=2)
    x = np.asarray(c.ds.X_pert).copy()
    x[:, 5] = 0.0  # a gene that is zero in every cell: zero variance on both sides
    ds = PerturbDataset(X_control=np.asarray(c.ds.X_control), X_pert=x, obs=c.ds.obs, var=c.ds.var)
    mean = x[c.test_idx] - np.asarray(ds.X_control)[c.test_idx]
    mean[:, 0] -= 50.0  # predictions below zero expression
    out = evaluate_predictions(
        ds, test_idx=c.test_idx, control_idx=c.control_idx, mean=mean, var=np.full_like(mean, 0.2)
    )
    flags = out["flags"]
    assert flags["kl_zero_variance_groups"] == 8  # every group's top-100 DEGs include gene 5
    assert out["scperturbench"]["global"]["kl_gauss_sym_log2"] is None
    neg = flags["negative_predicted_expression"]
    assert neg["n"] == c.test_idx.size  # exactly column 0 of every test cell
    assert neg["fraction"] == pytest.approx(1 / 30)
    # one constant variance: OOD AUROC would be 0.5 by construction
    assert out["uncertainty"]["status"] == "degenerate"


def test_every_emitted_key_is_registered():
    c = make_eval_case()
    out = evaluate_predictions(
        c.ds,
        test_idx=c.test_idx,
        control_idx=c.control_idx,
        mean=c.true_delta,
        var=np.ones_like(c.true_delta),
    )
    reg = metric_registry()
    for panel in ("scperturbench", "perturbench"):
        scopes = [out[panel]["global"], *out[panel]["per_perturbation"].values()]
        scopes += list(out[panel]["per_context"].values())
        for values in scopes:
            assert values
            for key in values:
                assert reg[key]["panel"] == panel
    for key in ("coverage", "nll", "aurc", "ood_auroc"):
        assert reg[key]["panel"] == "uncertainty"
    assert {"delta_spread_ratio", "mean_pairwise_cosine_pred", "deg_jaccard_pred"} <= set(
        out["diagnostics"]["global"]
    )
    for spec in reg.values():
        assert spec["compute"].startswith("perturbfm.eval.")
        assert spec["direction"] in ("higher", "lower")
        assert spec["compares"]
