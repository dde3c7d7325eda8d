"""Factor programs: calibrated factor count, membership test, directions of correlated programs."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from isograph.network.programs import decompose_programs, varimax


def _two_programs(n=24, p_each=60, p_noise=600, seed=0, shared=0.6):
    # two correlated programs (like IFNg and Salmonella in a 2 x 2 design) plus pure noise
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = shared * a + np.sqrt(1 - shared**2) * rng.normal(size=n)
    load_a = rng.uniform(0.75, 0.95, p_each) * rng.choice([-1, 1], p_each)
    load_b = rng.uniform(0.75, 0.95, p_each) * rng.choice([-1, 1], p_each)
    x = np.hstack(
        [
            a[:, None] * load_a + rng.normal(size=(n, p_each)) * np.sqrt(1 - load_a**2),
            b[:, None] * load_b + rng.normal(size=(n, p_each)) * np.sqrt(1 - load_b**2),
            rng.normal(size=(n, p_noise)),
        ]
    )
    truth = np.r_[np.zeros(p_each), np.ones(p_each), -np.ones(p_noise)].astype(int)
    return x, truth


def test_correlated_programs_come_apart_and_noise_stays_unassigned():
    x, truth = _two_programs()
    found = decompose_programs(x, seed=0)
    assert found.n_factors == 2
    planted = truth >= 0
    placed = planted & (found.labels >= 0)
    # correlated (r = 0.6) programs are not merged: the placed members split as planted
    assert adjusted_rand_score(truth[placed], found.labels[placed]) > 0.9
    # "unassigned" is true: few noise features are explained (BH at 5%) ...
    assert (found.labels[~planted] >= 0).sum() <= 0.05 * placed.sum() + 3
    # ... and most members with loadings >= 0.75 are
    assert placed.mean() / planted.mean() > 0.75


def test_pure_noise_has_no_factor_at_small_n():
    hits = 0
    for seed in range(5):
        x = np.random.default_rng(100 + seed).normal(size=(24, 800))
        hits += decompose_programs(x, seed=seed).n_factors
    assert hits <= 1  # the 95% quantile: about one null factor in 20 fits


def test_residualised_null_is_not_anti_conservative():
    # features residualised on 6 donors have rank 18, not 23: the permutation null must live
    # in that space, or every "factor" of the reduced rank looks significant
    rng = np.random.default_rng(7)
    donors = np.repeat(np.arange(6), 4)
    design = np.column_stack([np.ones(24), (donors[:, None] == np.arange(1, 6)).astype(float)])
    x = rng.normal(size=(24, 1000))
    x -= design @ np.linalg.lstsq(design, x, rcond=None)[0]
    assert decompose_programs(x, seed=0).n_factors == 0


def test_varimax_is_orthogonal_and_a_local_optimum_of_its_criterion():
    # the raw varimax criterion (R stats::varimax, normalize = FALSE) cannot be improved by a
    # small Givens rotation, and the rotation is orthogonal
    rng = np.random.default_rng(1)
    loadings = rng.normal(size=(40, 3))
    rotation = varimax(loadings)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-10)

    def criterion(lam):
        return float(((lam**4).sum(axis=0) - (lam**2).sum(axis=0) ** 2 / len(lam)).sum())

    best = criterion(loadings @ rotation)
    assert best >= criterion(loadings) - 1e-12
    for angle in np.linspace(-0.2, 0.2, 9):
        c, s = np.cos(angle), np.sin(angle)
        for i, j in ((0, 1), (0, 2), (1, 2)):
            g = np.eye(3)
            g[i, i] = g[j, j] = c
            g[i, j], g[j, i] = -s, s
            assert criterion(loadings @ rotation @ g) <= best + 1e-9


@pytest.mark.parametrize("n_null", [10, 30])
def test_same_seed_same_programs(n_null):
    x, _ = _two_programs(seed=3)
    a = decompose_programs(x, seed=5, n_null=n_null)
    b = decompose_programs(x, seed=5, n_null=n_null)
    np.testing.assert_array_equal(a.labels, b.labels)
