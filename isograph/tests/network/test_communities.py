import numpy as np
from sklearn.metrics import adjusted_rand_score

from isograph.network.communities import split_large_components
from isograph.network.components import connected_modules


def _planted(n_blocks=4, size=30, p_in=0.5, n_bridges=3, seed=0):
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(n_blocks), size)
    n = len(truth)
    iu, ju = np.triu_indices(n, 1)
    same = truth[iu] == truth[ju]
    keep = same & (rng.random(len(iu)) < p_in)
    i, j = iu[keep], ju[keep]
    # a few bridges chain the blocks into one connected component
    bi = rng.integers(0, size, n_bridges * (n_blocks - 1)) + np.repeat(
        np.arange(n_blocks - 1) * size, n_bridges
    )
    bj = bi + size
    return truth, np.concatenate([i, bi]), np.concatenate([j, bj])


def test_giant_component_is_split_into_planted_blocks():
    truth, i, j = _planted()
    labels, sizes = connected_modules(len(truth), i, j)
    assert len(sizes) == 1  # chained: one component
    w = np.ones(len(i))
    split, kept, n_split = split_large_components(labels, i, j, w, max_fraction=0.5, seed=0)
    assert n_split == 1
    assert adjusted_rand_score(truth, split) == 1.0
    assert sorted(kept.tolist()) == [30, 30, 30, 30]


def test_small_components_are_left_alone_and_seed_is_reproducible():
    truth, i, j = _planted()
    labels, _ = connected_modules(len(truth), i, j)
    same, _, n_split = split_large_components(labels, i, j, np.ones(len(i)), max_fraction=1.0)
    assert n_split == 0
    np.testing.assert_array_equal(same, labels)
    a = split_large_components(labels, i, j, np.ones(len(i)), max_fraction=0.2, seed=3)[0]
    b = split_large_components(labels, i, j, np.ones(len(i)), max_fraction=0.2, seed=3)[0]
    np.testing.assert_array_equal(a, b)


def test_merge_close_modules_matches_eigengene_correlation():
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    from isograph.network.eigengenes import eigengene_matrix, merge_close_modules, standardize

    rng = np.random.default_rng(0)
    n = 60
    programs = rng.standard_normal((n, 3))
    # modules 0 and 1 follow program 0 (one program cut in two); 2 follows program 1; 3 program 2
    source = np.repeat([0, 0, 1, 2], 15)
    labels = np.repeat([0, 1, 2, 3], 15)
    x = programs[:, source] * 2.0 + rng.standard_normal((n, 60))
    z = standardize(x)
    eig = eigengene_matrix(z, labels, np.arange(4))
    # second computation: first PC by sklearn-free numpy eigh of the module covariance
    block = z[:, labels == 2]
    _, v = np.linalg.eigh(block.T @ block)
    pc = block @ v[:, -1]
    assert abs(np.corrcoef(pc, eig[:, 2])[0, 1]) > 0.999
    r = np.corrcoef(eig.T)
    expected = fcluster(linkage(squareform(1 - r, checks=False), "average"), t=0.15, criterion="distance")
    merged, n_merged = merge_close_modules(z, labels, cut_height=0.15)
    assert n_merged == 4 - len(set(expected)) == 1
    assert adjusted_rand_score(expected[labels], merged) == 1.0
    same, none = merge_close_modules(z, labels, cut_height=0.0)
    assert none == 0 and adjusted_rand_score(labels, same) == 1.0
