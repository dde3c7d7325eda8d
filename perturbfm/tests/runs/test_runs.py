"""Run folders: contents, provenance, determinism, never overwritten, bad input refused."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from omicsrun import InputError
from perturbfm.data.artifact import dataset_hash, load_dataset, save_dataset
from perturbfm.data.synthetic import make_synthetic
from perturbfm.eval import evaluate_predictions
from perturbfm.models import get_model
from perturbfm.runs import eval_predictions, load_predictions, make_run_id, train_baseline, unique_run_dir
from perturbfm.runs.testing import stored_synthetic_split

RUN_FILES = {
    "config.json",
    "split_hash.txt",
    "predictions.npz",
    "metrics.json",
    "per_perturbation.parquet",
    "per_perturbation.csv",
    "per_context.parquet",
    "per_context.csv",
    "calibration.json",
    "report.html",
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    split = stored_synthetic_split(
        root,
        {"name": "context_ood", "holdout_contexts": ["C0"]},
        n_obs=300,
        n_genes=30,
        n_contexts=2,
        n_perts=6,
        seed=1,
    )
    run_dir = train_baseline(
        data_dir=root / "data",
        split_hash=split.frozen_hash[:12],
        baseline="ridge",
        params={"alpha": 3.0},
        runs_root=root / "runs",
        seed=4,
        split_dir=root / "splits",
    )
    return {"root": root, "split": split, "run_dir": run_dir}


def test_run_folder_contents(setup):
    run_dir, split = setup["run_dir"], setup["split"]
    assert {p.name for p in run_dir.iterdir()} == RUN_FILES
    assert re.fullmatch(rf"\d{{8}}-\d{{6}}_{split.frozen_hash[:7]}_ridge_[0-9a-f]{{7}}", run_dir.name)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["split_hash"] == split.frozen_hash
    assert config["data_hash"] == dataset_hash(setup["root"] / "data")
    assert config["config"]["model"] == {"name": "ridge", "params": {"alpha": 3.0}}
    assert config["config_hash"][:7] == run_dir.name.rsplit("_", 1)[1]
    assert config["seed"] == 4 and config["versions"]["numpy"] == np.__version__
    assert (run_dir / "split_hash.txt").read_text().strip() == split.frozen_hash


def test_predictions_match_a_direct_fit(setup):
    ds = load_dataset(setup["root"] / "data")
    split = setup["split"]
    preds = load_predictions(setup["run_dir"] / "predictions.npz")
    test = split.test_idx[~ds.is_control[split.test_idx]]
    np.testing.assert_array_equal(preds["idx"], test)
    mean, var = get_model("ridge", alpha=3.0).fit(ds, split.train_idx, seed=4).predict(ds, test)
    np.testing.assert_allclose(preds["mean"], mean, rtol=1e-6)
    np.testing.assert_allclose(preds["var"], var, rtol=1e-6)
    metrics = json.loads((setup["run_dir"] / "metrics.json").read_text())
    control = split.test_idx[ds.is_control[split.test_idx]]
    direct = evaluate_predictions(
        ds, test_idx=test, control_idx=control, mean=mean, var=var, metric_genes=split.metric_genes, seed=4
    )
    assert metrics["scperturbench"]["global"]["pcc_delta"] == pytest.approx(
        direct["scperturbench"]["global"]["pcc_delta"]
    )
    assert metrics["perturbench"]["global"]["rmse"] == pytest.approx(direct["perturbench"]["global"]["rmse"])
    calibration = json.loads((setup["run_dir"] / "calibration.json").read_text())
    assert calibration == metrics["uncertainty"]


def test_ood_auroc_separates_validation_from_test(setup):
    # context_ood: the test context has no validation cells, so every validation cell is the
    # in-distribution side; the score is the per-cell mean predicted variance (metric genes).
    ds = load_dataset(setup["root"] / "data")
    split = setup["split"]
    preds = load_predictions(setup["run_dir"] / "predictions.npz")
    val = split.val_idx[~ds.is_control[split.val_idx]]
    np.testing.assert_array_equal(preds["val_idx"], val)
    model = get_model("ridge", alpha=3.0).fit(ds, split.train_idx, seed=4)
    _, val_var = model.predict(ds, val)
    np.testing.assert_allclose(preds["val_var"], val_var, rtol=1e-6)
    genes = split.metric_genes
    score = np.concatenate([val_var[:, genes].mean(axis=1), preds["var"][:, genes].mean(axis=1)])
    labels = np.r_[np.zeros(val.size), np.ones(preds["idx"].size)]
    metrics = json.loads((setup["run_dir"] / "metrics.json").read_text())
    unc = metrics["uncertainty"]
    ref = roc_auc_score(labels, score)
    if np.ptp(score) > 0:
        assert unc["ood_auroc"] == pytest.approx(ref)
    else:
        # ridge's variance is one constant: exactly 0.5 by construction, withheld and flagged
        assert ref == 0.5
        assert unc["ood_auroc"] is None
        assert unc["status"] == "degenerate"
        assert unc["ood_auroc_withheld"] == pytest.approx(0.5)
    assert unc["ood_auroc_labels"].startswith("validation cells")


def test_per_label_aggregates_match_weighted_group_means(setup):
    ds = load_dataset(setup["root"] / "data")
    split = setup["split"]
    preds = load_predictions(setup["run_dir"] / "predictions.npz")
    test = preds["idx"]
    control = split.test_idx[ds.is_control[split.test_idx]]
    perts = np.unique(ds.obs["pert_id"].to_numpy()[test])
    labels = {p: i % 2 for i, p in enumerate(perts)}
    out = evaluate_predictions(
        ds, test_idx=test, control_idx=control, mean=preds["mean"], var=preds["var"], pert_labels=labels
    )
    per_pert = out["scperturbench"]["per_perturbation"]  # one context: one group per perturbation
    n_cells = ds.obs["pert_id"].iloc[test].value_counts()
    for lab in (0, 1):
        members = [p for p in perts if labels[p] == lab]
        expected = np.average([per_pert[p]["pcc_delta"] for p in members], weights=n_cells[members])
        got = out["scperturbench"]["per_label"][str(lab)]
        assert got["pcc_delta"] == pytest.approx(expected)
        assert got["n_cells"] == int(n_cells[members].sum()) and got["n_groups"] == len(members)
    assert (
        "per_label"
        not in evaluate_predictions(
            ds, test_idx=test, control_idx=control, mean=preds["mean"], var=preds["var"]
        )["perturbench"]
    )


def test_report_is_self_contained(setup):
    text = (setup["run_dir"] / "report.html").read_text()
    # per-perturbation bars, baseline comparison, calibration, risk-coverage, delta scatter
    assert text.count("data:image/png;base64,") == 5
    assert not re.search(r"""(src|href)=["']https?:""", text)
    assert setup["split"].frozen_hash[:12] in text and "coverage@0.9" in text


def test_eval_predictions_reproduces_run(setup, tmp_path):
    out = eval_predictions(
        data_dir=setup["root"] / "data",
        split_hash=setup["split"].frozen_hash,
        preds_path=setup["run_dir"] / "predictions.npz",
        out_dir=tmp_path / "ev",
        seed=4,
        split_dir=setup["root"] / "splits",
    )
    assert {p.name for p in out.iterdir()} == RUN_FILES
    a = json.loads((out / "metrics.json").read_text())
    b = json.loads((setup["run_dir"] / "metrics.json").read_text())
    assert a["scperturbench"] == b["scperturbench"] and a["uncertainty"] == b["uncertainty"]
    with pytest.raises(InputError, match="already holds results"):
        eval_predictions(
            data_dir=setup["root"] / "data",
            split_hash=setup["split"].frozen_hash,
            preds_path=setup["run_dir"] / "predictions.npz",
            out_dir=out,
            split_dir=setup["root"] / "splits",
        )


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda p: p.update(mean=p["mean"][:, :-1]), "shape"),
        (lambda p: p.update(idx=p["idx"][::-1].copy()), "does not match"),
        (lambda p: p["mean"].__setitem__((0, 0), np.nan), "NaN"),
        (lambda p: p["var"].__setitem__((1, 2), -0.5), "negative"),
        (lambda p: p.pop("idx"), "no array 'idx'"),
    ],
)
def test_bad_predictions_refused_before_writing(setup, tmp_path, mutate, match):
    preds = {k: v.copy() for k, v in load_predictions(setup["run_dir"] / "predictions.npz").items()}
    mutate(preds)
    np.savez(tmp_path / "bad.npz", **preds)
    with pytest.raises(InputError, match=match):
        eval_predictions(
            data_dir=setup["root"] / "data",
            split_hash=setup["split"].frozen_hash,
            preds_path=tmp_path / "bad.npz",
            out_dir=tmp_path / "ev",
            split_dir=setup["root"] / "splits",
        )
    assert not (tmp_path / "ev").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.npz"]


def test_bad_run_inputs_leave_no_run(setup, tmp_path):
    root = setup["root"]
    kwargs = {"data_dir": root / "data", "runs_root": tmp_path / "runs", "split_dir": root / "splits"}
    with pytest.raises(InputError, match="unknown model 'nope'"):
        train_baseline(split_hash=setup["split"].frozen_hash, baseline="nope", **kwargs)
    with pytest.raises(InputError, match="split"):
        train_baseline(split_hash="deadbeef", baseline="global_mean", **kwargs)
    other = make_synthetic(n_obs=200, n_genes=30, n_contexts=2, n_perts=5, seed=9)
    save_dataset(other, tmp_path / "other")
    with pytest.raises(InputError, match="made for dataset"):
        train_baseline(
            **{**kwargs, "data_dir": tmp_path / "other"},
            split_hash=setup["split"].frozen_hash,
            baseline="global_mean",
        )
    assert not (tmp_path / "runs").exists()


def test_run_ids_and_collisions(tmp_path):
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    run_id = make_run_id(
        split_hash="abcdef0123", model_name="per_perturbation_mean", config_hash="9876543210", now=when
    )
    assert run_id == "20250102-030405_abcdef0_per_perturbation_mean_9876543"
    first = unique_run_dir(tmp_path, run_id)
    first.mkdir()
    second = unique_run_dir(tmp_path, run_id)
    assert second.name == f"{run_id}-2"
