"""The VAE on multiplex data: chained decoded components are split into their programs."""

import numpy as np
import pytest

from isograph.backends.vae.modules import split_components_by_programs


def _programs(n_programs: int, *, n=100, size=30, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, n_programs))
    blocks = [z[:, [j]] * rng.uniform(0.7, 1.2, size) for j in range(n_programs)]
    x = np.hstack(blocks) + rng.normal(size=(n, n_programs * size))
    return x, np.repeat(np.arange(n_programs), size)


def test_a_chained_component_of_two_programs_is_split_along_them():
    x, truth = _programs(2)
    comp = np.zeros(x.shape[1], dtype=np.int64)  # one chained component
    new, strength, n_split = split_components_by_programs(
        x, comp, np.ones(x.shape[1]), min_size=10, n_null=20, fdr=0.05, seed=0
    )
    assert n_split == 1
    placed = new >= 0
    assert placed.mean() > 0.75
    # one new label per planted program (up to naming)
    pairs = {(int(t), int(c)) for t, c in zip(truth[placed], new[placed], strict=True)}
    assert len(pairs) == 2 and len({c for _, c in pairs}) == 2
    assert (strength[placed] > 0).all() and (strength[placed] <= 1).all()


def test_a_component_of_one_program_is_kept_whole():
    x, _ = _programs(1)
    comp = np.zeros(x.shape[1], dtype=np.int64)
    new, _, n_split = split_components_by_programs(
        x, comp, np.ones(x.shape[1]), min_size=10, n_null=20, fdr=0.05, seed=0
    )
    assert n_split == 0
    np.testing.assert_array_equal(new, comp)


@pytest.mark.slow
def test_vae_separates_the_programs_of_multiplex_hard():
    # Before the split (component_split=leiden, and before library-size regression) the decoded
    # network chained the 13 planted programs into 1 module: F_rr 0.05.
    from isograph.fit import fit_bundle
    from isograph.fixtures import make_fixture
    from isograph.scoring import score_fit

    bundle = make_fixture("multiplex_v1", "multiplex_hard", seed=0)
    result = fit_bundle(bundle, backend="vae", seed=0, overrides={"vae.progress": "false"})
    assert result.diagnostics["component_split"] == "programs"
    scores = score_fit(bundle, result.modules, result.roles, seed=0)
    assert scores["n_modules"] >= 10
    assert scores["f_rr"] >= 0.45
