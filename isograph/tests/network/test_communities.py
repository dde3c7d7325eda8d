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
