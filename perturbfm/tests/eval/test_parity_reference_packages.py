"""Parity with the reference packages scperturb 0.1.0 and cell-eval 0.8.2 on the same data."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from cell_eval._types import PerturbationAnndataPair
from cell_eval.metrics import _anndata as ce
from scperturb import edist

from omicsrun import InputError
from perturbfm.eval import evaluate_predictions
from perturbfm.eval.metrics_scperturbench import edistance_celleval, edistance_scperturb
from perturbfm.eval.testing import make_eval_case as make_case


def test_edistance_matches_scperturb_edist():
    rng = np.random.default_rng(3)
    x = rng.normal(0.0, 1.0, (40, 6))
    y = rng.normal(0.4, 1.5, (25, 6))
    adata = ad.AnnData(
        X=np.vstack([x, y]),
        obs=pd.DataFrame({"g": ["x"] * 40 + ["y"] * 25}, index=[str(i) for i in range(65)]),
    )
    adata.obsm["emb"] = adata.X.copy()
    ref = edist(adata, obs_key="g", obsm_key="emb", dist="sqeuclidean", n_jobs=1, verbose=False)
    assert edistance_scperturb(x, y) == pytest.approx(ref.loc["x", "y"], rel=1e-10)


def test_edistance_celleval_convention_matches_its_formula():
    # cell-eval's _edistance is nested inside edistance(); re-state it with sklearn.
    from sklearn.metrics import pairwise_distances

    rng = np.random.default_rng(4)
    x, y = rng.normal(0, 1, (30, 5)), rng.normal(1, 1, (20, 5))
    ref = 2 * pairwise_distances(x, y).mean() - pairwise_distances(x).mean() - pairwise_distances(y).mean()
    assert edistance_celleval(x, y) == pytest.approx(ref, rel=1e-10)


def _celleval_pair(c, pred_expr: np.ndarray, *, pred_controls: str) -> PerturbationAnndataPair:
    """cell-eval's layout: real = true cells + test controls; pred = predicted cells + controls.

    ``pred_controls="test"``: the test controls (what ``perturbfm export`` writes);
    ``"pool"``: the prediction's own matched-control pool (each side its own control).
    """
    obs = c.ds.obs
    pert = obs["pert_id"].to_numpy()[c.test_idx]
    pool = np.flatnonzero(obs["is_control"].to_numpy() & ~np.isin(np.arange(len(obs)), c.control_idx))
    ctrl = c.control_idx if pred_controls == "test" else pool
    genes = pd.DataFrame(index=c.ds.var)

    def make(x: np.ndarray, labels: np.ndarray) -> ad.AnnData:
        o = pd.DataFrame({"target": labels}, index=[f"c{i}" for i in range(len(labels))])
        return ad.AnnData(X=x, obs=o, var=genes)

    real = make(
        np.vstack([c.ds.X_pert[c.test_idx], c.ds.X_pert[c.control_idx]]),
        np.concatenate([pert, ["control"] * c.control_idx.size]),
    )
    pred = make(
        np.vstack([pred_expr, c.ds.X_pert[ctrl]]),
        np.concatenate([pert, ["control"] * ctrl.size]),
    )
    return PerturbationAnndataPair(real=real, pred=pred, pert_col="target", control_pert="control")


def test_pearson_delta_pds_mse_match_celleval():
    c = make_case(n_contexts=1, n_perts=6, shared_controls=True, seed=7)
    rng = np.random.default_rng(8)
    mean = c.true_delta * 0.6 + rng.normal(0, 0.4, c.true_delta.shape)
    out = evaluate_predictions(
        c.ds,
        test_idx=c.test_idx,
        control_idx=c.control_idx,
        mean=mean,
        var=np.ones_like(mean),
    )
    pred_expr = c.ds.X_control[c.test_idx] + mean
    pair = _celleval_pair(c, pred_expr, pred_controls="test")
    ref_pd = ce.pearson_delta(pair)
    ref_mse = ce.mse(pair)
    ref_mae = ce.mae(pair)
    ref_pds = ce.discrimination_score(pair, metric="l1")
    own = ce.pearson_delta(_celleval_pair(c, pred_expr, pred_controls="pool"))
    ours_pb = out["perturbench"]["per_perturbation"]
    ours_sb = out["scperturbench"]["per_perturbation"]
    assert set(ref_pd) == set(ours_pb)
    for p in ref_pd:
        assert ours_pb[p]["pearson_delta_celleval"] == pytest.approx(ref_pd[p], abs=1e-6)
        assert ours_pb[p]["pearson_delta_own_control"] == pytest.approx(own[p], abs=1e-6)
        assert ours_sb[p]["mse_all"] == pytest.approx(ref_mse[p], rel=1e-9)
        assert ours_sb[p]["mae_all"] == pytest.approx(ref_mae[p], rel=1e-9)
        assert ours_pb[p]["pds_l1"] == pytest.approx(ref_pds[p], abs=1e-12)
    # The prediction is informative, so discrimination must be better than chance somewhere.
    assert max(ref_pds.values()) == 1.0


@pytest.mark.slow
def test_de_metrics_match_celleval_with_pdex(tmp_path):
    # cell-eval computes DE with pdex (numba: compiling takes ~30 s, hence slow)
    from cell_eval import MetricsEvaluator

    c = make_case(n_genes=40, n_contexts=1, n_perts=5, n_per_group=30, n_ctrl=30, seed=11)
    # halfway between control and truth keeps predicted expression >= 0 (cell-eval refuses < 0)
    mean = 0.5 * c.true_delta
    out = evaluate_predictions(c.ds, test_idx=c.test_idx, control_idx=c.control_idx, mean=mean, var=None)
    pair = _celleval_pair(c, c.ds.X_control[c.test_idx] + mean, pred_controls="test")
    pair.real.obs["target"] = pair.real.obs["target"].replace({"control": "non-targeting"})
    pair.pred.obs["target"] = pair.pred.obs["target"].replace({"control": "non-targeting"})
    evaluator = MetricsEvaluator(
        adata_pred=pair.pred,
        adata_real=pair.real,
        control_pert="non-targeting",
        pert_col="target",
        outdir=str(tmp_path / "ce"),
        num_threads=1,
    )
    results, _ = evaluator.compute(profile="de", write_csv=False)
    ref = {r["perturbation"]: r for r in results.to_dicts()}
    ours = out["celleval_de"]["per_perturbation"]
    assert set(ref) == set(ours)
    n_checked = 0
    for p, row in ref.items():
        for name in ("overlap_at_N", "overlap_at_50", "de_direction_match", "de_spearman_lfc_sig"):
            if row[name] is None or ours[p][name] is None:
                assert row[name] is None or np.isnan(row[name])
                assert ours[p][name] is None
                continue
            assert ours[p][name] == pytest.approx(row[name], abs=1e-6), (p, name)
            n_checked += 1
    assert n_checked >= 15


def test_metric_selection_equals_full_panels_and_celleval():
    # `perturbfm eval --metrics`: cell-eval's four metrics alone, from group means only
    c = make_case(n_contexts=1, n_perts=6, shared_controls=True, seed=7)
    rng = np.random.default_rng(8)
    mean = (c.true_delta * 0.6 + rng.normal(0, 0.4, c.true_delta.shape)).astype(np.float32)
    chosen = ["pearson_delta_celleval", "pds_l1", "mse_all", "mae_all"]
    kw = {"test_idx": c.test_idx, "control_idx": c.control_idx, "mean": mean, "var": None}
    sel = evaluate_predictions(c.ds, **kw, metrics=chosen)
    full = evaluate_predictions(c.ds, **kw)
    assert sel["metrics"] == chosen and sel["uncertainty"] is None and sel["celleval_de"] is None
    assert set(sel["perturbench"]["global"]) == {"pearson_delta_celleval", "pds_l1"}
    assert set(sel["scperturbench"]["global"]) == {"mse_all", "mae_all"}
    for panel in ("perturbench", "scperturbench"):
        for p, row in sel[panel]["per_perturbation"].items():
            for k, v in row.items():
                assert v == pytest.approx(full[panel]["per_perturbation"][p][k], rel=1e-12, abs=1e-15)
    pair = _celleval_pair(c, c.ds.X_control[c.test_idx] + mean.astype(np.float64), pred_controls="test")
    ref_mae = ce.mae(pair)
    for p, v in ref_mae.items():
        assert sel["scperturbench"]["per_perturbation"][p]["mae_all"] == pytest.approx(v, rel=1e-9)
    with pytest.raises(InputError, match="non-selectable"):
        evaluate_predictions(c.ds, **kw, metrics=["edistance"])
    with pytest.raises(InputError, match="names no metric"):
        evaluate_predictions(c.ds, **kw, metrics=[" ", ""])
