import numpy as np
import pandas as pd
import pytest

from omicsrun import InputError
from omicsrun.testing import require_shared
from perturbfm.data import PerturbDataset, import_h5ad, make_synthetic
from perturbfm.splits import SPEC_NAMES, create_split, loco_specs, spec_parameters

HASH = "d" * 64


@pytest.fixture(scope="module")
def ds():
    return make_synthetic(n_obs=1500, n_genes=60, n_contexts=3, n_perts=16, seed=4)


def _check_partition(ds, split):
    parts = [split.train_idx, split.val_idx, split.test_idx, split.unused_idx, split.ood_val_idx]
    allrows = np.concatenate(parts)
    assert np.unique(allrows).size == allrows.size  # no row in two parts
    assert np.array_equal(np.sort(allrows), np.arange(ds.n_obs))  # every row somewhere
    for p in parts:
        assert p.dtype == np.int64 and np.all(np.diff(p) > 0)
    ctrl = ds.is_control
    ctx = ds.obs["context_id"].to_numpy()
    test_ctx = set(ctx[split.test_idx[~ctrl[split.test_idx]]])
    for c in np.unique(ctx):
        n = int((ctrl & (ctx == c)).sum())
        n_tr = int(np.isin(np.flatnonzero(ctrl & (ctx == c)), split.train_idx).sum())
        n_va = int(np.isin(np.flatnonzero(ctrl & (ctx == c)), split.val_idx).sum())
        n_te = int(np.isin(np.flatnonzero(ctrl & (ctx == c)), split.test_idx).sum())
        assert n_tr == round(n * 0.5) and n_va == round(n * 0.25)
        assert n_te == (n - n_tr - n_va if c in test_ctx else 0)


@pytest.mark.parametrize(
    "spec",
    [
        {"name": "context_ood", "holdout_contexts": ["C1"]},
        {"name": "loco", "fold": 2},
        {"name": "perturbation_ood", "holdout_fraction": 0.25},
        {"name": "perturbation_ood", "perturbations": "singles"},
        {"name": "combo"},
        {"name": "combo", "context": "C0", "single_holdout_fraction": 0.3},
        {"name": "covariate_transfer"},
    ],
)
def test_every_spec_is_pure_and_partitions(ds, spec):
    a = create_split(ds, spec, seed=0, data_hash=HASH)
    b = create_split(ds, dict(spec), seed=0, data_hash=HASH)
    c = create_split(ds, spec, seed=1, data_hash=HASH)
    assert a.frozen_hash == b.frozen_hash
    assert a.frozen_hash != c.frozen_hash
    assert create_split(ds, spec, seed=0, data_hash="e" * 64).frozen_hash != a.frozen_hash
    np.testing.assert_array_equal(a.train_idx, b.train_idx)
    _check_partition(ds, a)
    # the resolved spec re-creates the same split
    assert create_split(ds, a.spec, seed=0, data_hash=HASH).frozen_hash == a.frozen_hash
    assert (~ds.is_control[a.test_idx]).any() and (~ds.is_control[a.train_idx]).any()


def test_context_ood_test_holds_only_heldout_contexts(ds):
    s = create_split(ds, {"name": "context_ood", "holdout_contexts": ["C0", "C2"]}, seed=0, data_hash=HASH)
    ctx = ds.obs["context_id"].to_numpy()
    assert set(ctx[s.test_idx]) == {"C0", "C2"}
    pert_rows = np.flatnonzero(~ds.is_control & np.isin(ctx, ["C0", "C2"]))
    np.testing.assert_array_equal(np.intersect1d(pert_rows, s.test_idx), pert_rows)
    assert not set(ctx[s.train_idx[~ds.is_control[s.train_idx]]]) & {"C0", "C2"}
    assert s.ood_axes == {"context": ["C0", "C2"]}
    # perturbed validation cells: ~val_fraction of each training group
    val_pert = s.val_idx[~ds.is_control[s.val_idx]]
    n_fit = int((~ds.is_control & (ctx == "C1")).sum())
    assert abs(val_pert.size - 0.1 * n_fit) <= ds.obs.loc[~ds.is_control, "pert_id"].nunique()


def test_loco_folds_cover_every_context(ds):
    splits = [create_split(ds, s, seed=0, data_hash=HASH) for s in loco_specs(ds)]
    assert [s.ood_axes["context"] for s in splits] == [["C0"], ["C1"], ["C2"]]
    assert len({s.frozen_hash for s in splits}) == 3


def test_combo_labels_recomputed_from_training(ds):
    s = create_split(ds, {"name": "combo", "single_holdout_fraction": 0.4}, seed=2, data_hash=HASH)
    obs = ds.obs
    genes_of = obs.groupby("pert_id")["pert_genes"].first()
    train_perts = set(obs["pert_id"].to_numpy()[s.train_idx])
    test_perts = set(obs["pert_id"].to_numpy()[s.test_idx]) - {"control"}
    assert set(s.labels) == set(s.ood_axes["combination"])
    assert set(s.labels) <= test_perts
    for combo, n_seen in s.labels.items():
        assert len(genes_of[combo]) >= 2
        assert n_seen == sum(g in train_perts for g in genes_of[combo])
    assert set(s.ood_axes["perturbation"]) <= test_perts
    assert not set(s.ood_axes["perturbation"]) & train_perts
    assert len(set(s.labels.values())) >= 2  # singles held out make the labels vary


def test_covariate_transfer_keeps_pert_elsewhere(ds):
    s = create_split(ds, {"name": "covariate_transfer", "holdout_fraction": 0.5}, seed=0, data_hash=HASH)
    obs = ds.obs
    pert, ctx = obs["pert_id"].to_numpy(), obs["context_id"].to_numpy()
    for p, (c,) in s.labels.items():
        held = np.flatnonzero((pert == p) & (ctx == c))
        np.testing.assert_array_equal(np.intersect1d(held, s.test_idx), held)
        assert ((pert[s.train_idx] == p) & (ctx[s.train_idx] != c)).any()
    test_groups = set(zip(pert[s.test_idx], ctx[s.test_idx], strict=True)) - {
        ("control", c) for c in ("C0", "C1", "C2")
    }
    assert test_groups == {(p, c[0]) for p, c in s.labels.items()}


def test_metric_genes_use_training_rows_only(ds):
    spec = {"name": "context_ood", "holdout_contexts": ["C1"], "n_hvg": 10}
    s = create_split(ds, spec, seed=0, data_hash=HASH)
    var = np.var(ds.X_pert[s.train_idx].astype(np.float64), axis=0)
    np.testing.assert_array_equal(s.metric_genes, np.sort(np.argsort(-var, kind="stable")[:10]))
    low_genes = np.argsort(var)[:5]

    def _altered(rows):
        x = ds.X_pert.copy()
        x[np.ix_(rows, low_genes)] += np.linspace(-50, 50, rows.size, dtype=np.float32)[:, None]
        return PerturbDataset(X_control=ds.X_control, X_pert=x, obs=ds.obs, var=ds.var)

    t = create_split(_altered(s.test_idx), spec, seed=0, data_hash=HASH)
    np.testing.assert_array_equal(t.metric_genes, s.metric_genes)
    assert t.frozen_hash == s.frozen_hash
    u = create_split(_altered(s.train_idx), spec, seed=0, data_hash=HASH)
    assert set(low_genes) <= set(u.metric_genes.tolist())
    assert u.frozen_hash != s.frozen_hash


def test_default_n_hvg(ds):
    s = create_split(ds, {"name": "combo"}, seed=0, data_hash=HASH)
    assert s.spec["n_hvg"] == 60 and s.metric_genes.size == 60


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"name": "iid"}, "unknown split spec 'iid'"),
        ("nonsense", "unknown split spec"),
        (
            {"name": "context_ood", "holdout_contexts": ["C9"]},
            r"'C9' is not in the dataset; contexts are \['C0'",
        ),
        ({"name": "context_ood"}, "at least one holdout context"),
        ({"name": "context_ood", "holdout_contexts": ["C0", "C1", "C2"]}, "every context"),
        ({"name": "loco", "fold": 3}, r"fold in \[0, 2\]"),
        (
            {"name": "loco", "fold": 1, "holdout_contexts": ["C0"]},
            r"loco derives holdout_contexts .*\['C1'\]",
        ),
        ({"name": "loco", "fold": 1, "n_folds": 5}, "loco derives n_folds"),
        ({"name": "combo", "holdout_fraction": 1.5}, r"holdout_fraction must be in \(0, 1\)"),
        ({"name": "combo", "fold": 1}, "takes no parameter 'fold'"),
        ({"name": "combo", "n_hvg": 0}, "n_hvg must be an integer"),
        ({"name": "perturbation_ood", "perturbations": "pairs"}, "'all' or 'singles'"),
    ],
)
def test_bad_specs(ds, spec, match):
    with pytest.raises(InputError, match=match):
        create_split(ds, spec, seed=0, data_hash=HASH)


def test_combo_without_combinations():
    ds = make_synthetic(n_obs=300, n_genes=30, n_contexts=2, n_perts=3, seed=0, combo_fraction=0.0)
    obs = ds.obs.copy()
    obs["pert_genes"] = [[] if c else [p.split("+")[0]] for p, c in zip(obs["pert_id"], obs["is_control"])]
    flat = PerturbDataset(X_control=ds.X_control, X_pert=ds.X_pert, obs=obs, var=ds.var)
    with pytest.raises(InputError, match="two or more genes"):
        create_split(flat, {"name": "combo"}, seed=0, data_hash=HASH)
    assert "combo" in SPEC_NAMES


@pytest.mark.shared_data
def test_devel_combo_and_context_ood():
    path = require_shared("perturbench_devel/devel.h5ad")
    ds = import_h5ad(path, pert_key="perturbation", context_key="cell_type", control_label="control")
    combo = create_split(ds, {"name": "combo", "context": "k562"}, seed=0, data_hash=HASH)
    _check_partition(ds, combo)
    ctx = ds.obs["context_id"].to_numpy()
    assert set(ctx[combo.test_idx]) == {"k562"}
    assert set(combo.labels.values()) == {0, 1, 2}
    assert len(combo.labels) == round(0.5 * 15)
    glioma = create_split(ds, {"name": "context_ood", "holdout_contexts": ["U87MG"]}, seed=0, data_hash=HASH)
    _check_partition(ds, glioma)
    assert set(ctx[glioma.test_idx]) == {"U87MG"}
    assert pd.Series(ctx[glioma.test_idx]).size == 865 - 75


def test_labels_against_brute_force(ds):
    obs = ds.obs
    pert, ctx = obs["pert_id"].to_numpy(), obs["context_id"].to_numpy()
    s = create_split(ds, {"name": "perturbation_ood"}, seed=3, data_hash=HASH)
    assert s.labels == {p: sum(pert[i] == p for i in s.test_idx) for p in s.ood_axes["perturbation"]}
    # combo within one context: singles seen in training (train or val rows) of that context
    s = create_split(
        ds, {"name": "combo", "context": "C1", "single_holdout_fraction": 0.3}, seed=1, data_hash=HASH
    )
    fit = np.concatenate([s.train_idx, s.val_idx])
    seen = {pert[i] for i in fit if ctx[i] == "C1" and len(obs["pert_genes"].iloc[i]) == 1}
    for combo, n_seen in s.labels.items():
        assert {ctx[i] for i in s.test_idx if pert[i] == combo} == {"C1"}
        assert n_seen == sum(g in seen for g in combo.split("+"))


def test_spec_parameters():
    assert spec_parameters("loco") == ["fold", "n_hvg", "ood_val_fraction", "val_fraction"]
    assert spec_parameters("combo") == [
        "context",
        "holdout_fraction",
        "n_hvg",
        "ood_val_fraction",
        "single_holdout_fraction",
        "val_fraction",
    ]
    with pytest.raises(InputError, match="unknown split spec 'iid'"):
        spec_parameters("iid")
