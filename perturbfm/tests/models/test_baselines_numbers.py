"""Each baseline's numbers against a second computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA

from perturbfm.models import get_model
from perturbfm.models.fixtures import make_planted


@pytest.fixture
def planted():
    return make_planted()


def _frame(ds, idx):
    return pd.DataFrame(np.asarray(ds.delta[idx], dtype=np.float64), index=ds.obs.index[idx])


def _train_test(ds, test_pert="g0+g1", test_ctx="c1"):
    obs = ds.obs
    test = (obs["pert_id"] == test_pert) & (obs["context_id"] == test_ctx)
    return np.flatnonzero(~test), np.flatnonzero(test)


def test_global_mean_and_control_only(planted):
    train, test = _train_test(planted)
    pert = train[~planted.is_control[train]]
    mean, _ = get_model("global_mean").fit(planted, train).predict(planted, test)
    np.testing.assert_allclose(
        mean, np.tile(_frame(planted, pert).mean().to_numpy(), (len(test), 1)), rtol=1e-5, atol=1e-6
    )
    mean0, var0 = get_model("control_only").fit(planted, train).predict(planted, test)
    assert not mean0.any()
    # control_only's residual variance is the mean squared training delta of context c1
    c1 = pert[planted.obs["context_id"].to_numpy()[pert] == "c1"]
    expected = (_frame(planted, c1) ** 2).mean().to_numpy()
    np.testing.assert_allclose(var0[0], expected, rtol=1e-5)


def test_per_perturbation_mean_vs_groupby(planted):
    obs = planted.obs
    train = np.flatnonzero(obs["pert_id"] != "g2+g3")  # g2+g3 unseen anywhere
    test = np.arange(planted.n_obs)
    model = get_model("per_perturbation_mean").fit(planted, train)
    mean, var = model.predict(planted, test)
    pert = train[~planted.is_control[train]]
    ref = _frame(planted, pert).groupby(obs["pert_id"].to_numpy()[pert]).mean()
    glob = _frame(planted, pert).mean().to_numpy()
    expected = np.stack([ref.loc[p].to_numpy() if p in ref.index else glob for p in obs["pert_id"]])
    np.testing.assert_allclose(mean, expected, rtol=1e-5, atol=1e-6)
    # residual variance per context: mean squared residual of training perturbed cells
    fitted = ref.loc[obs["pert_id"].to_numpy()[pert]].to_numpy()
    resid2 = pd.DataFrame((_frame(planted, pert).to_numpy() - fitted) ** 2)
    by_ctx = resid2.groupby(obs["context_id"].to_numpy()[pert]).mean()
    np.testing.assert_allclose(var, by_ctx.loc[obs["context_id"]].to_numpy(), rtol=1e-5)


def test_per_perturbation_context_mean_vs_groupby(planted):
    train, test = _train_test(planted)
    obs = planted.obs
    test = np.concatenate([test, np.flatnonzero(obs["pert_id"] == "g0")])
    mean, _ = get_model("per_perturbation_context_mean").fit(planted, train).predict(planted, test)
    pert = train[~planted.is_control[train]]
    f = _frame(planted, pert)
    by_pc = f.groupby([obs["pert_id"].to_numpy()[pert], obs["context_id"].to_numpy()[pert]]).mean()
    by_p = f.groupby(obs["pert_id"].to_numpy()[pert]).mean()
    expected = [
        by_pc.loc[(p, c)].to_numpy() if (p, c) in by_pc.index else by_p.loc[p].to_numpy()
        for p, c in zip(obs["pert_id"].to_numpy()[test], obs["context_id"].to_numpy()[test], strict=True)
    ]
    np.testing.assert_allclose(mean, np.stack(expected), rtol=1e-5, atol=1e-6)
    # held-out (g0+g1, c1) falls back to g0+g1 pooled over c0 only
    np.testing.assert_allclose(mean[0], by_pc.loc[("g0+g1", "c0")].to_numpy(), rtol=1e-5, atol=1e-6)


def test_ridge_vs_closed_form(planted):
    train, test = _train_test(planted)
    alpha = 2.5
    pert = train[~planted.is_control[train]]
    x = np.asarray(planted.X_control[pert], dtype=np.float64)
    y = np.asarray(planted.delta[pert], dtype=np.float64)
    xm, ym = x.mean(0), y.mean(0)
    w = np.linalg.solve((x - xm).T @ (x - xm) + alpha * np.eye(x.shape[1]), (x - xm).T @ (y - ym))
    expected = (np.asarray(planted.X_control[test], dtype=np.float64) - xm) @ w + ym
    mean, _ = get_model("ridge", alpha=alpha).fit(planted, train).predict(planted, test)
    np.testing.assert_allclose(mean, expected, rtol=1e-4, atol=1e-5)


def test_latent_shift_vs_svd(planted):
    obs = planted.obs
    test = np.flatnonzero(obs["pert_id"] == "g2+g3")  # unseen everywhere
    train = np.setdiff1d(np.arange(planted.n_obs), test)
    k = 3
    x = np.asarray(planted.X_control[train], dtype=np.float64)
    _, _, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
    v = vt[:k]
    pert = train[~planted.is_control[train]]
    sel = pert[obs["pert_id"].to_numpy()[pert] == "g0"]
    expected_g0 = (np.asarray(planted.delta[sel], dtype=np.float64).mean(0) @ v.T) @ v
    glob = (np.asarray(planted.delta[pert], dtype=np.float64).mean(0) @ v.T) @ v
    q = np.array([sel[0], test[0]])  # a seen single, then an unseen combination
    mean, _ = get_model("latent_shift", n_components=k).fit(planted, train).predict(planted, q)
    np.testing.assert_allclose(mean[0], expected_g0, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(mean[1], glob, rtol=1e-4, atol=1e-5)


def test_additive_recovers_exact_combinations():
    ds = make_planted(additive_exact=True, noise=0.2)
    obs = ds.obs
    combo = obs["pert_id"].str.contains("+", regex=False).to_numpy()
    train, test = np.flatnonzero(~combo), np.flatnonzero(combo)
    mean, var = get_model("additive").fit(ds, train).predict(ds, test)
    np.testing.assert_allclose(mean, ds.delta[test], atol=1e-5)
    assert (var > 0).all()


def test_additive_context_and_fallbacks(planted):
    obs = planted.obs
    # g3 is never seen as a single; (g0, c1) is not either, so g0 pools over c0.
    drop = obs["pert_id"].isin(["g3"]) | ((obs["pert_id"] == "g0") & (obs["context_id"] == "c1"))
    combo = obs["pert_id"].str.contains("+", regex=False)
    train = np.flatnonzero(~drop & ~(combo & (obs["context_id"] == "c1")))
    q = np.flatnonzero(combo & (obs["context_id"] == "c1"))
    mean, _ = get_model("additive").fit(planted, train).predict(planted, q)
    d = _frame(planted, np.arange(planted.n_obs))
    key = obs["pert_id"] + "|" + obs["context_id"]
    g = d.groupby(key.to_numpy()).mean()
    expect_01 = g.loc["g0|c0"].to_numpy() + g.loc["g1|c1"].to_numpy()
    expect_23 = (
        d.iloc[np.flatnonzero((obs["pert_id"] == "g2+g3") & (obs["context_id"] == "c0"))].mean().to_numpy()
    )
    got = pd.DataFrame(mean).groupby(obs["pert_id"].to_numpy()[q]).mean()
    np.testing.assert_allclose(got.loc["g0+g1"].to_numpy(), expect_01, rtol=1e-5, atol=1e-5)
    # g2+g3 has an unseen single: its own pert_id mean from training (context c0)
    np.testing.assert_allclose(got.loc["g2+g3"].to_numpy(), expect_23, rtol=1e-5, atol=1e-5)


def test_linear_model_vs_direct_formula():
    ds = make_planted(
        n_genes=15, contexts=("c0",), singles=("g0", "g1", "g2", "g3", "g4"), combos=(("g0", "g1"),)
    )
    obs = ds.obs
    test = np.flatnonzero(obs["pert_id"] == "g0+g1")
    train = np.setdiff1d(np.arange(ds.n_obs), test)
    k, lam = 3, 0.1
    pert = train[~ds.is_control[train]]
    names = obs["pert_id"].to_numpy()[pert]
    y = _frame(ds, pert).groupby(names).mean().T.to_numpy()  # genes x perts, sorted perts
    expr = pd.DataFrame(np.asarray(ds.X_pert[pert], dtype=np.float64)).groupby(names).mean().T.to_numpy()
    gmat = PCA(n_components=k).fit_transform(expr)  # scores of the genes
    perts = sorted(set(names))
    gene_row = {g: i for i, g in enumerate(ds.var)}
    p = np.stack([gmat[gene_row[name]] for name in perts])
    b = y.mean(axis=1, keepdims=True)
    inv = np.linalg.inv
    w = inv(gmat.T @ gmat + lam * np.eye(k)) @ gmat.T @ (y - b) @ p @ inv(p.T @ p + lam * np.eye(k))
    p_combo = gmat[gene_row["g0"]] + gmat[gene_row["g1"]]
    expected = gmat @ w @ p_combo + b[:, 0]
    model = get_model("linear", n_components=k, ridge=lam).fit(ds, train)
    mean, _ = model.predict(ds, test)
    np.testing.assert_allclose(mean[0], expected, rtol=1e-4, atol=1e-5)
    # a perturbation of a gene that is not measured falls back to the row means
    ds2 = make_planted(
        n_genes=15, contexts=("c0",), singles=("g0", "g1", "g2", "g3", "zz"), combos=(("g0", "zz"),)
    )
    t2 = np.flatnonzero(ds2.obs["pert_id"] == "g0+zz")
    m2 = get_model("linear", n_components=k, perturbation_embedding="gene")
    m2.fit(ds2, np.setdiff1d(np.arange(ds2.n_obs), t2))
    out, _ = m2.predict(ds2, t2)
    assert m2.embedding_ == "gene"
    np.testing.assert_allclose(out[0], m2.row_means_, rtol=1e-6)


def test_linear_model_training_embedding_for_unmeasured_genes():
    # No perturbed gene is measured (as on devel.h5ad): P comes from the PCA of the training
    # single-gene deltas, and an unseen pair gets the sum of its singles' embeddings.
    singles = ("a0", "a1", "a2", "a3", "a4", "a5")
    ds = make_planted(n_genes=15, contexts=("c0",), singles=singles, combos=(("a0", "a1"), ("a2", "a3")))
    obs = ds.obs
    test = np.flatnonzero(obs["pert_id"] == "a0+a1")
    train = np.setdiff1d(np.arange(ds.n_obs), test)
    k, lam = 3, 0.1
    pert = train[~ds.is_control[train]]
    names = obs["pert_id"].to_numpy()[pert]
    y = _frame(ds, pert).groupby(names).mean().T  # genes x perts (sorted: a0..a5, a2+a3)
    expr = pd.DataFrame(np.asarray(ds.X_pert[pert], dtype=np.float64)).groupby(names).mean().T.to_numpy()
    gmat = PCA(n_components=k).fit_transform(expr)
    ys = y[list(singles)].T.to_numpy()  # singles x genes
    u, s, _ = np.linalg.svd(ys - ys.mean(axis=0), full_matrices=False)
    emb = dict(zip(singles, u[:, :k] * s[:k], strict=True))
    p = np.stack([emb[c] if c in emb else emb["a2"] + emb["a3"] for c in y.columns])
    yv = y.to_numpy()
    b = yv.mean(axis=1, keepdims=True)
    inv = np.linalg.inv
    w = inv(gmat.T @ gmat + lam * np.eye(k)) @ gmat.T @ (yv - b) @ p @ inv(p.T @ p + lam * np.eye(k))
    expected = gmat @ w @ (emb["a0"] + emb["a1"]) + b[:, 0]
    model = get_model("linear", n_components=k, ridge=lam).fit(ds, train)
    assert model.embedding_ == "training"
    assert model.n_embedded_perts_ == 7
    mean, _ = model.predict(ds, test)
    np.testing.assert_allclose(mean[0], expected, rtol=1e-4, atol=1e-5)
    # a pair with a single never seen in training still falls back to the row means
    ds2 = make_planted(n_genes=15, contexts=("c0",), singles=singles, combos=(("a0", "a1"),))
    t2 = np.flatnonzero(ds2.obs["pert_id"].isin(["a0+a1", "a5"]))
    m2 = get_model("linear", n_components=k).fit(ds2, np.setdiff1d(np.arange(ds2.n_obs), t2))
    out, _ = m2.predict(ds2, t2)
    np.testing.assert_allclose(
        out[ds2.obs["pert_id"].to_numpy()[t2] == "a5"],
        m2.row_means_[None].repeat(int((ds2.obs["pert_id"].to_numpy()[t2] == "a5").sum()), axis=0),
        rtol=1e-5,
    )
