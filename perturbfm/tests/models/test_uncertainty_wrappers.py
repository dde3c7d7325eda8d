"""Deep ensemble decomposition and split-conformal quantiles against direct computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from omicsrun import InputError
from perturbfm.models.fixtures import make_planted
from perturbfm.models.uncertainty import (
    DeepEnsemble,
    conformal_quantiles,
    conformal_report,
    conformal_variance,
    group_correction_applies,
    member_seeds,
)


def test_conformal_quantile_is_the_finite_sample_rank():
    rng = np.random.default_rng(0)
    residual = rng.normal(size=(40, 5))
    var = rng.uniform(0.5, 2.0, size=(40, 5))
    q = conformal_quantiles(residual, var, levels=(0.9,))[0.9]
    scores = np.sort((np.abs(residual) / np.sqrt(var)).ravel())
    n = scores.size
    assert q == scores[int(np.ceil((n + 1) * 0.9)) - 1]
    # exchangeable Gaussian data: calibrated on one half, the other half is covered ~90%
    big = rng.normal(size=(4000, 10))
    q2 = conformal_quantiles(big[:2000], np.ones((2000, 10)))
    report = conformal_report(q2, big[2000:], np.ones((2000, 10)))
    for level in (0.5, 0.8, 0.9, 0.95):
        assert report[str(level)]["coverage"] == pytest.approx(level, abs=0.01)
        assert q2[level] == pytest.approx(norm.ppf(0.5 + level / 2), abs=0.03)


def test_group_conformal_is_the_quantile_of_the_group_weighted_distribution():
    # group a: one cell scoring 1; group b: three cells scoring 2, 3, 4 (one gene, var 1).
    # Each group weighs 1/2: CDF 1 -> 0.5, 2 -> 0.667, 3 -> 0.833, 4 -> 1.
    residual, groups = np.array([[1.0], [2.0], [3.0], [4.0]]), np.array(["a", "b", "b", "b"])
    var = np.ones_like(residual)
    levels = (0.5, 0.6, 0.8, 0.9)
    # J = 2 cannot certify 0.9 (needs J >= 9): plug-in levels, for every level
    assert not group_correction_applies(2, levels)
    assert conformal_quantiles(residual, var, levels, groups=groups) == {
        0.5: 1.0,
        0.6: 2.0,
        0.8: 3.0,
        0.9: 4.0,
    }
    # 0.5 alone is certifiable with J = 2: level 0.5 * 3 / 2 = 0.75 -> 3
    assert conformal_quantiles(residual, var, (0.5,), groups=groups) == {0.5: 3.0}
    # the cell unit ignores the groups: ceil(5 * 0.5) = 3rd of 4 entries
    assert conformal_quantiles(residual, var, (0.5,)) == {0.5: 3.0}
    assert conformal_quantiles(residual, var, (0.6,)) == {0.6: 3.0}


def test_group_conformal_with_one_group_is_that_groups_quantile():
    # J = 1: nothing can be certified about a new group above level 1/2; the plug-in is the
    # single group's own empirical quantile (and level 0.5 alone is corrected to its maximum)
    residual = np.arange(1.0, 11.0)[:, None]
    groups = np.zeros(10, dtype=int)
    q = conformal_quantiles(residual, np.ones_like(residual), (0.5, 0.9), groups=groups)
    assert q == {0.5: 5.0, 0.9: 9.0}
    assert conformal_quantiles(residual, np.ones_like(residual), (0.5,), groups=groups) == {0.5: 10.0}
    assert [group_correction_applies(j, (0.9,)) for j in (1, 8, 9, 19)] == [False, False, True, True]
    assert [group_correction_applies(j, (0.95,)) for j in (18, 19)] == [False, True]
    with pytest.raises(InputError, match="one key per calibration cell"):
        conformal_quantiles(residual, np.ones_like(residual), groups=groups[:3])


def test_group_conformal_covers_new_groups_where_cell_level_does_not():
    # Planted truth: a group's scores are |N(0, s^2)| with s = 0.5 or 2 (equally likely), and
    # the calm groups hold 40x more cells. A new group's expected coverage at q is, in closed
    # form, mean over s of (2 Phi(q / s) - 1). Entry-level calibration is dominated by the
    # big calm groups and under-covers new groups; group-level calibration does not.
    rng = np.random.default_rng(0)
    scales = np.array([0.5, 2.0])

    def new_group_coverage(q):
        return float(np.mean(2 * norm.cdf(q / scales) - 1))

    by_unit = {"group": [], "cell": []}
    for _ in range(30):
        s = rng.choice(scales, size=40)  # J = 40 >= 19: finite-sample correction on
        n_cells = np.where(s == 0.5, 80, 2)
        sd = np.repeat(s, n_cells)
        residual = rng.normal(size=(sd.size, 3)) * sd[:, None]
        groups = np.repeat(np.arange(40), n_cells)
        var = np.ones_like(residual)
        by_unit["group"].append(new_group_coverage(conformal_quantiles(residual, var, groups=groups)[0.9]))
        by_unit["cell"].append(new_group_coverage(conformal_quantiles(residual, var)[0.9]))
    assert 0.9 <= np.mean(by_unit["group"]) <= 0.95  # at or a little above target, as guaranteed
    assert np.mean(by_unit["cell"]) < 0.75


def test_conformal_variance_matches_the_interval():
    var = np.full((3, 4), 2.0)
    quant = {0.9: 3.0}
    scaled = conformal_variance(var, quant)
    np.testing.assert_allclose(norm.ppf(0.95) * np.sqrt(scaled), 3.0 * np.sqrt(var))


def test_conformal_needs_calibration_cells():
    with pytest.raises(InputError, match="OOD-validation part is empty"):
        conformal_quantiles(np.zeros((0, 3)), np.ones((0, 3)))


def test_ensemble_is_the_law_of_total_variance():
    ds = make_planted()
    train = np.flatnonzero(ds.obs["context_id"] == "c0")
    test = np.flatnonzero(ds.obs["context_id"] == "c1")[:10]
    params = {"hidden_dim": 8, "latent_dim": 4, "epochs": 2}
    ens = DeepEnsemble(name="perturbfm-v0", params=params, n_members=3).fit(ds, train, seed=4)
    parts = ens.predict_components(ds, test)
    members = [m.predict(ds, test) for m in ens.members_]
    means = np.stack([m[0] for m in members]).astype(np.float64)
    np.testing.assert_allclose(parts["mean"], means.mean(0))
    np.testing.assert_allclose(parts["var_epistemic"], ((means - means.mean(0)) ** 2).mean(0))
    np.testing.assert_allclose(parts["var_aleatoric"], np.mean([m[1] for m in members], axis=0), rtol=1e-6)
    assert [m.seed_ for m in ens.members_] == member_seeds(4, 3)
    assert len(set(member_seeds(4, 3))) == 3


def test_epistemic_ood_auroc_per_cell_per_group_and_relative():
    from perturbfm.models.uncertainty import epistemic_ood_auroc

    # validation: group a (3 cells, epistemic 1.0), group b (1 cell, 4.0)
    # test: group c (1 cell, 2.0), group d (3 cells, 3.0); aleatoric 1 except group d (10)
    def comp(epi, alea):
        epi, alea = np.asarray(epi, float)[:, None], np.asarray(alea, float)[:, None]
        return {"var_epistemic": np.repeat(epi, 2, axis=1), "var_aleatoric": np.repeat(alea, 2, axis=1)}

    val = comp([1, 1, 1, 4], [1, 1, 1, 1])
    test = comp([2, 3, 3, 3], [1, 10, 10, 10])
    out = epistemic_ood_auroc(val, test, np.array(["a", "a", "a", "b"]), np.array(["c", "d", "d", "d"]))
    # per cell: pairs (test > val) + ties/2 over 16 pairs: each test cell beats the 3 a-cells, not b
    assert out["ood_auroc"] == pytest.approx(12 / 16)
    # per group: scores a=1, b=4 | c=2, d=3 -> c and d beat a only: 2 of 4 pairs
    assert out["ood_auroc_per_group"] == pytest.approx(2 / 4)
    # relative (epistemic / aleatoric): val 1,1,1,4 | test 2, 0.3, 0.3, 0.3 -> 2 beats three 1s
    assert out["ood_auroc_relative"] == pytest.approx(3 / 16)


def test_context_noise_ratio_recovers_a_planted_noise_ratio():
    import pandas as pd

    from perturbfm.data.dataset import PerturbDataset
    from perturbfm.models.uncertainty import context_noise_ratio

    rng = np.random.default_rng(0)
    n, g = 2000, 4
    context = np.repeat(["A", "B"], n)
    sd = np.where(context == "A", 1.0, 3.0)[:, None]  # B's controls are 3x noisier: ratio 9
    x = 5 + sd * rng.normal(size=(2 * n, g))
    obs = pd.DataFrame(
        {
            "pert_id": "control",
            "context_id": context,
            "batch_id": "b",
            "is_control": True,
            "pert_genes": [[] for _ in range(2 * n)],
        }
    )
    ds = PerturbDataset(
        X_control=x.astype(np.float32), X_pert=x.astype(np.float32), obs=obs, var=list("abcd")
    )
    a_rows = np.arange(n)
    ratio = context_noise_ratio(ds, np.array([0, n]), np.arange(2 * n), a_rows)
    np.testing.assert_allclose(ratio[0], 1.0)
    np.testing.assert_allclose(ratio[1], 9.0, rtol=0.1)
    # a context with fewer than two control cells keeps ratio 1
    assert (context_noise_ratio(ds, np.array([n]), a_rows, a_rows) == 1).all()
