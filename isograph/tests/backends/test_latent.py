"""The latent backend: factor analysis checked against scikit-learn, CV choice of k, planted modules."""

import numpy as np
import pytest
from sklearn.decomposition import FactorAnalysis
from sklearn.decomposition._factor_analysis import _ortho_rotation

from isograph.backends import get_backend
from isograph.backends.factor import choose_n_factors, fit_factor_model, varimax
from isograph.backends.latent import LatentConfig
from isograph.features import build_features
from isograph.fixtures import make_fixture
from isograph.scoring import score_fit


def _planted(n=150, p=240, k=4, seed=0):
    rng = np.random.default_rng(seed)
    w = np.zeros((p, k))
    for j in range(k):
        w[j * 40 : (j + 1) * 40, j] = rng.uniform(0.6, 1.2, 40) * rng.choice([-1, 1], 40)
    x = rng.normal(size=(n, k)) @ w.T + rng.normal(size=(n, p)) * np.sqrt(rng.uniform(0.5, 1.5, p))
    return x - x.mean(axis=0), w


def test_em_reaches_sklearn_maximum_likelihood_and_loglik_matches():
    x, _ = _planted()
    ours = fit_factor_model(x, 4, max_iter=2000, tol=1e-10, block_size=64)
    ref = FactorAnalysis(4, tol=1e-10, max_iter=5000).fit(x)
    assert ours.loglik == pytest.approx(ref.score(x), rel=1e-6)
    np.testing.assert_allclose(ours.noise_variance, ref.noise_variance_, rtol=1e-3, atol=1e-4)
    # Woodbury log-likelihood equals scikit-learn's dense p x p one for the same parameters
    ref.components_, ref.noise_variance_, ref.mean_ = (
        ours.loadings.T,
        ours.noise_variance,
        np.zeros(x.shape[1]),
    )
    np.testing.assert_allclose(ours.loglik_per_sample(x, block_size=50), ref.score_samples(x), rtol=1e-9)
    # posterior means: (I + W' Psi^-1 W)^-1 W' Psi^-1 x, as sklearn's transform
    np.testing.assert_allclose(ours.scores(x, block_size=37), ref.transform(x), atol=1e-8)


def test_blocks_do_not_change_the_fit():
    x, _ = _planted(p=200)
    a = fit_factor_model(x, 3, block_size=16)
    b = fit_factor_model(x.astype(np.float32), 3, block_size=4096)
    np.testing.assert_allclose(a.loadings, b.loadings, atol=1e-4)


def test_varimax_matches_sklearn_rotation():
    _, w = _planted()
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    mixed = w @ q
    ours, rotation = varimax(mixed)
    ref = _ortho_rotation(mixed, method="varimax", tol=1e-8, max_iter=500).T  # (p, k) in, (k, p) out
    # same solution up to column order and sign
    corr = np.abs(np.corrcoef(ours.T, ref.T)[:4, 4:])
    assert (corr.max(axis=1) > 0.999).all()
    np.testing.assert_allclose(mixed @ rotation, ours)
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(4), atol=1e-10)


def test_cross_validation_finds_the_planted_number_of_factors():
    x, _ = _planted(n=200, k=4, seed=1)
    best, scores = choose_n_factors(
        x, (1, 2, 3, 4, 6, 8), n_folds=3, seed=0, max_iter=300, tol=1e-7, block_size=4096, rule="max"
    )
    assert best == 4
    assert set(scores) == {1, 2, 3, 4, 6, 8}
    chosen, _ = choose_n_factors(
        x, (1, 2, 3, 4, 6, 8), n_folds=3, seed=0, max_iter=300, tol=1e-7, block_size=4096
    )
    assert chosen >= 4


@pytest.mark.slow
def test_recovers_planted_modules_on_core_v1_and_loadings_beat_clustering():
    bundle = make_fixture("core_v1", "standard", seed=0)
    features = build_features(bundle)
    backend = get_backend("latent")
    by_loadings = backend.fit(features, config=LatentConfig(n_factors=12, assignment="loadings"), seed=0)
    by_clusters = backend.fit(features, config=LatentConfig(n_factors=12, assignment="cluster"), seed=0)
    f_loadings = score_fit(bundle, by_loadings.modules, seed=0)["f_rr"]
    f_clusters = score_fit(bundle, by_clusters.modules, seed=0)["f_rr"]
    assert f_loadings >= 0.8
    assert f_loadings > f_clusters  # the measurement behind the default
    cal = by_loadings.calibration
    assert cal["n_factors"] == 12 and cal["converged"] and 0 < cal["mean_noise_variance"] < 1
    # soft membership is highest in the gene's own module
    soft = by_loadings.soft_membership
    placed = by_loadings.modules[by_loadings.modules.module_id != "unassigned"].set_index("gene_id")[
        "module_id"
    ]
    assert (soft.loc[placed.index].idxmax(axis=1) == placed).mean() > 0.95


def test_parallel_analysis_finds_the_planted_number_of_factors():
    x, w = _planted(n=150, p=240, k=4, seed=2)
    from isograph.backends.latent import _parallel_analysis_k

    k, info = _parallel_analysis_k(x, LatentConfig(), seed=0)
    assert k == 4
    # the permutation membership test places the planted features and few others
    planted = (w != 0).any(axis=1)
    explained = info["explained"]
    assert explained[planted].mean() > 0.9 and explained[~planted].mean() < 0.1


@pytest.mark.parametrize("fixture", ["factorial_n24", "factorial_n40"])
def test_default_latent_recovers_small_n_programs(fixture):
    # Cross-validated k chose 4 factors and the robust-z cut placed nothing at 24 samples
    # (F_rr 0.00 / 0.19); parallel analysis + the permutation membership test: 0.60 / 0.54.
    bundle = make_fixture("smalln_v1", fixture, seed=0)
    result = get_backend("latent").fit(build_features(bundle), config=LatentConfig(), seed=0)
    assert result.calibration["n_factors_chosen_by"].startswith("parallel analysis")
    assert score_fit(bundle, result.modules, seed=0)["f_rr"] >= 0.5


def test_implied_edges_match_a_dense_computation_and_keep_the_strongest_partners():
    import pandas as pd

    from isograph.backends.latent import _implied_edges

    rng = np.random.default_rng(5)
    p = 60
    rotated = rng.normal(size=(p, 2))
    total = (rotated**2).sum(axis=1) + rng.uniform(0.2, 1.0, p)
    group = np.arange(p) // 2  # two features per gene
    module = np.where(np.arange(p) < 40, 0, -1)
    genes = pd.Index([f"g{i}" for i in range(p // 2)])
    is_ab = np.arange(p) % 2 == 1
    scaled = rotated / np.sqrt(total)[:, None]
    r = scaled @ scaled.T
    # dense reference: every within-module pair of different genes, no abundance-abundance
    ok = (module[:, None] == 0) & (module[None, :] == 0) & (group[:, None] != group[None, :])
    ok &= ~(is_ab[:, None] & is_ab[None, :]) & (np.abs(r) >= 0.3)
    expected = {}
    for a, b in zip(*np.nonzero(ok), strict=True):
        key = (min(group[a], group[b]), max(group[a], group[b]))
        if key not in expected or abs(r[a, b]) > abs(expected[key]):
            expected[key] = r[a, b]
    full = _implied_edges(
        rotated, total, module, group, genes, is_ab, min_r=0.3, allow_aa=False, max_partners=1000, block=7
    )
    got = {(int(a[1:]), int(b[1:])): w for a, b, w in full.itertuples(index=False)}
    assert got.keys() == expected.keys()
    np.testing.assert_allclose([got[k] for k in expected], list(expected.values()))
    capped = _implied_edges(
        rotated, total, module, group, genes, is_ab, min_r=0.3, allow_aa=False, max_partners=3, block=7
    )
    assert 0 < len(capped) <= 40 * 3 and set(zip(capped.gene_a, capped.gene_b)) <= set(
        zip(full.gene_a, full.gene_b)
    )
