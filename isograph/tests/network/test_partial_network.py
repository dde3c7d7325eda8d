import numpy as np
import pytest
from sklearn.covariance import LedoitWolf
from sklearn.covariance import ledoit_wolf_shrinkage as sk_shrinkage

from isograph.network import (
    ShrunkPartialCorrelation,
    connected_modules,
    empirical_null_scale,
    ledoit_wolf_shrinkage,
    threshold_edges,
)
from isograph.network.components import relabel_by_size
from isograph.network.threshold import bonferroni_z, count_pairs
from omicsrun import InputError


def _data(n=40, p=120, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, p))
    x[:, :20] += rng.standard_normal((n, 1))  # one planted group
    return x - x.mean(axis=0)


@pytest.mark.parametrize(("n", "p"), [(40, 120), (200, 30)])
def test_ledoit_wolf_intensity_matches_sklearn(n, p):
    x = _data(n, p)
    ours = ledoit_wolf_shrinkage(x)
    assert ours == pytest.approx(sk_shrinkage(x, assume_centered=True), rel=1e-10)
    assert ours == pytest.approx(LedoitWolf(assume_centered=True).fit(x).shrinkage_, rel=1e-10)


@pytest.mark.parametrize("shrinkage", [None, 0.3, 0.99])
def test_partial_correlations_match_dense_inverse(shrinkage):
    x = _data()
    n, p = x.shape
    pc = ShrunkPartialCorrelation(x, shrinkage=shrinkage)
    lam = pc.shrinkage_
    s = x.T @ x / n
    sigma = (1 - lam) * s + lam * np.trace(s) / p * np.eye(p)
    prec = np.linalg.inv(sigma)
    d = np.sqrt(np.diag(prec))
    expected = -prec / np.outer(d, d)
    np.fill_diagonal(expected, 1.0)
    np.testing.assert_allclose(pc.dense(), expected, atol=2e-6)
    rows = np.array([3, 50, 7])
    np.testing.assert_allclose(pc.rows(rows), expected[rows], atol=2e-6)
    blocks = np.vstack([b for _, b in pc.blocks(block_size=17)])
    np.testing.assert_allclose(blocks, expected, atol=2e-6)
    if shrinkage is None:
        assert lam == pytest.approx(LedoitWolf(assume_centered=True).fit(x).shrinkage_)


def test_bad_shrinkage_is_an_input_error():
    with pytest.raises(InputError, match="shrinkage must be in"):
        ShrunkPartialCorrelation(_data(), shrinkage=1.5)


def test_threshold_edges_match_dense_thresholding():
    x = _data(p=90)
    p = x.shape[1]
    pc = ShrunkPartialCorrelation(x, shrinkage=0.9)
    dense = pc.dense()
    node_class = np.r_[np.zeros(60, dtype=int), np.ones(30, dtype=int)]
    group = np.r_[np.arange(60), np.arange(30)]  # abundance feature k shares gene k with switch k
    cutoff = np.array([[0.02, 0.03], [0.03, np.inf]])
    edges = threshold_edges(pc, cutoff, node_class, group=group, block_size=13)
    ii, jj = np.triu_indices(p, 1)
    keep = (np.abs(dense[ii, jj]) >= cutoff[node_class[ii], node_class[jj]]) & (group[ii] != group[jj])
    got = set(zip(edges.i.tolist(), edges.j.tolist()))
    assert got == set(zip(ii[keep].tolist(), jj[keep].tolist()))
    assert not np.any((node_class[edges.i] == 1) & (node_class[edges.j] == 1))
    np.testing.assert_allclose(edges.weight, dense[edges.i, edges.j], atol=1e-6)
    np.testing.assert_array_equal(edges.degree(), np.bincount(np.r_[edges.i, edges.j], minlength=p))


def test_count_pairs_and_null_scale_match_brute_force():
    rng = np.random.default_rng(1)
    node_class = rng.integers(0, 2, 50)
    group = rng.integers(0, 30, 50)
    pairs = count_pairs(node_class, 2, group)
    ii, jj = np.triu_indices(50, 1)
    ok = group[ii] != group[jj]
    for a in range(2):
        for b in range(2):
            sel = ok & (
                ((node_class[ii] == a) & (node_class[jj] == b))
                | ((node_class[ii] == b) & (node_class[jj] == a))
            )
            assert pairs[a, b] == sel.sum()
    x = rng.standard_normal((30, 50))
    pc = ShrunkPartialCorrelation(x, shrinkage=0.5)
    scale = empirical_null_scale(pc, node_class, n_classes=2, group=group, n_rows=1000)
    dense = pc.dense()
    off = (group[:, None] != group[None, :]) & (node_class[:, None] == 0) & (node_class[None, :] == 0)
    assert scale[0, 0] == pytest.approx(1.482602218505602 * np.median(np.abs(dense[off])))
    assert bonferroni_z(0.05, 1) == pytest.approx(1.959964, abs=1e-5)


def test_connected_modules_order_and_min_size():
    # components {0,1,2}, {3,4,5,6}, {7,8}, {9}
    i = np.array([0, 1, 3, 4, 5, 7])
    j = np.array([1, 2, 4, 5, 6, 8])
    labels, sizes = connected_modules(10, i, j, min_size=3)
    np.testing.assert_array_equal(labels, [1, 1, 1, 0, 0, 0, 0, -1, -1, -1])
    np.testing.assert_array_equal(sizes, [4, 3])
    # equal sizes: the component holding the smaller node id comes first
    labels, _ = relabel_by_size(np.array([5, 5, 2, 2, -1]))
    np.testing.assert_array_equal(labels, [0, 0, 1, 1, -1])


def test_planted_groups_are_recovered_as_components():
    rng = np.random.default_rng(7)
    n, p = 150, 600
    x = rng.standard_normal((n, p))
    truth = np.full(p, -1)
    for k in range(4):
        idx = np.arange(k * 30, (k + 1) * 30)
        x[:, idx] += np.outer(rng.standard_normal(n), rng.uniform(0.6, 1.0, 30) * rng.choice([-1, 1], 30))
        truth[idx] = k
    x = (x - x.mean(0)) / x.std(0)
    pc = ShrunkPartialCorrelation(x, shrinkage=0.99)
    cls = np.zeros(p, dtype=int)
    scale = empirical_null_scale(pc, cls, n_classes=1)
    cut = scale * bonferroni_z(10.0, count_pairs(cls, 1)[0, 0])
    edges = threshold_edges(pc, cut, cls)
    labels, sizes = connected_modules(p, edges.i, edges.j, min_size=10)
    assert len(sizes) == 4
    # each found module is pure and holds most of its planted group
    for k in range(4):
        found = labels[truth == k]
        assert (found >= 0).mean() > 0.8
        assert len(np.unique(found[found >= 0])) == 1
    assert (labels[truth == -1] >= 0).mean() < 0.02
