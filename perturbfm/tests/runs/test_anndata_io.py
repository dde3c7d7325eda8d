"""AnnData in and out: export pairs that cell-eval reads as they are, .h5ad and var-less predictions in."""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pytest
from cell_eval import MetricsEvaluator
from cell_eval.metrics import _anndata as ce_metrics

from omicsrun import InputError
from perturbfm.runs import eval_predictions, load_predictions, train_baseline
from perturbfm.runs.anndata_io import export_run
from perturbfm.runs.testing import stored_synthetic_split


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("aio")
    split = stored_synthetic_split(
        root,
        {"name": "context_ood", "holdout_contexts": ["C0"]},
        n_obs=400,
        n_genes=30,
        n_contexts=2,
        n_perts=6,
        seed=3,
        nonnegative=True,
    )
    run_dir = train_baseline(
        data_dir=root / "data",
        split_hash=split.frozen_hash,
        baseline="per_perturbation_mean",
        runs_root=root / "runs",
        seed=0,
        split_dir=root / "splits",
    )
    export_dir = export_run(run_dir, root / "export", split_dir=root / "splits")
    return {"root": root, "split": split, "run_dir": run_dir, "export": export_dir}


def test_celleval_reads_the_export_and_agrees(run, tmp_path):
    info = json.loads((run["export"] / "export.json").read_text())
    (pair,) = info["pairs"]
    real = ad.read_h5ad(run["export"] / pair["real"])
    pred = ad.read_h5ad(run["export"] / pair["pred"])
    assert (pred.X >= 0).all()
    genes = run["split"].metric_genes
    if genes is not None:
        real, pred = real[:, genes].copy(), pred[:, genes].copy()
    # cell-eval's own entry point validates the pair (log-normalised, non-negative, same genes
    # and perturbations); its anndata metrics then run on the pair it built.
    evaluator = MetricsEvaluator(
        adata_pred=pred,
        adata_real=real,
        control_pert="non-targeting",
        pert_col="target_gene",
        outdir=str(tmp_path / "ce"),
        num_threads=1,
        skip_de=True,
    )
    ref_pd = ce_metrics.pearson_delta(evaluator.anndata_pair)
    metrics = json.loads((run["run_dir"] / "metrics.json").read_text())
    ours = metrics["perturbench"]["per_perturbation"]
    assert set(ref_pd) == set(ours)
    # the fixture's predictions stay non-negative, so export clipped nothing and the numbers
    # are the same input on both sides
    assert pair["n_negative_clipped"] == 0
    assert metrics["flags"]["negative_predicted_expression"]["n"] == 0
    for p, value in ref_pd.items():
        assert ours[p]["pearson_delta_celleval"] == pytest.approx(value, abs=1e-6)


def test_h5ad_predictions_round_trip(run, tmp_path):
    info = json.loads((run["export"] / "export.json").read_text())
    pred_path = run["export"] / info["pairs"][0]["pred"]
    out = eval_predictions(
        data_dir=run["root"] / "data",
        split_hash=run["split"].frozen_hash,
        preds_path=pred_path,
        out_dir=tmp_path / "ev",
        split_dir=run["root"] / "splits",
    )
    got = json.loads((out / "metrics.json").read_text())
    ref = json.loads((run["run_dir"] / "metrics.json").read_text())
    config = json.loads((out / "config.json").read_text())["config"]
    assert config["predictions_source"]["groups_by_mode"]["group_mean"] == 0  # one file cell per test cell
    assert got["uncertainty"]["status"] == "absent"  # the export carries no variance
    if info["pairs"][0]["n_negative_clipped"] == 0:
        for k in ("pcc_delta_centroid", "mse", "pcc_delta"):
            assert got["scperturbench"]["global"][k] == pytest.approx(
                ref["scperturbench"]["global"][k], abs=1e-5
            )


def test_npz_without_var_marks_uncertainty_absent(run, tmp_path):
    preds = load_predictions(run["run_dir"] / "predictions.npz")
    np.savez(tmp_path / "p.npz", mean=preds["mean"], idx=preds["idx"])
    out = eval_predictions(
        data_dir=run["root"] / "data",
        split_hash=run["split"].frozen_hash,
        preds_path=tmp_path / "p.npz",
        out_dir=tmp_path / "ev",
        split_dir=run["root"] / "splits",
    )
    m = json.loads((out / "metrics.json").read_text())
    assert m["uncertainty"] == {"status": "absent", "reason": "the predictions carry no variance"}
    ref = json.loads((run["run_dir"] / "metrics.json").read_text())
    assert m["perturbench"]["global"]["rmse"] == pytest.approx(ref["perturbench"]["global"]["rmse"], rel=1e-6)
    assert "coverage" not in (out / "report.html").read_text().split("Uncertainty panel")[-1][:400]


def test_h5ad_missing_group_is_one_clear_error(run, tmp_path):
    info = json.loads((run["export"] / "export.json").read_text())
    pred = ad.read_h5ad(run["export"] / info["pairs"][0]["pred"])
    first = str(pred.obs["target_gene"].iloc[0])
    pred[pred.obs["target_gene"] != first].copy().write_h5ad(tmp_path / "bad.h5ad")
    with pytest.raises(InputError, match="no predicted cells for 1 test group"):
        eval_predictions(
            data_dir=run["root"] / "data",
            split_hash=run["split"].frozen_hash,
            preds_path=tmp_path / "bad.h5ad",
            out_dir=tmp_path / "ev",
            split_dir=run["root"] / "splits",
        )
    assert not (tmp_path / "ev").exists()


def test_export_into_its_own_run_is_refused_and_the_run_survives(run):
    run_dir = run["run_dir"]
    before = sorted(p.name for p in run_dir.iterdir())
    for target in (run_dir, run_dir / "export"):
        with pytest.raises(InputError, match="input"):
            export_run(run_dir, target, split_dir=run["root"] / "splits", overwrite=True)
    assert sorted(p.name for p in run_dir.iterdir()) == before
