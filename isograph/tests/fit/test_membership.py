"""membership.parquet: kME and p for every feature x module, checked against scipy."""

import numpy as np
import pytest
from scipy import stats

from isograph.features import build_features
from isograph.fit import fit_bundle
from isograph.fixtures import make_fixture


@pytest.fixture(scope="module")
def fitted():
    bundle = make_fixture("core_v1", "standard", seed=0)
    return bundle, fit_bundle(bundle, regress_covariates=False)


def test_every_feature_in_every_module(fitted):
    _, result = fitted
    table = result.membership
    modules = list(result.eigengenes.columns)
    assert len(table) == len(result.feature_scores) * len(modules)
    counts = table.groupby("feature_id")["module_id"].nunique()
    assert (counts == len(modules)).all()
    # unassigned genes get a kME in every module too, and belong to none
    unassigned = result.modules.loc[result.modules.module_id == "unassigned", "gene_id"]
    rows = table[table.gene_id.isin(unassigned)]
    assert len(rows) > 0 and not rows.is_member.any() and rows.kme.notna().all()
    # each assigned feature is a member of exactly its own module
    members = table[table.is_member]
    own = result.modules.set_index("gene_id")["module_id"]
    assert (members.module_id.to_numpy() == own.reindex(members.gene_id).to_numpy()).all()


def test_kme_and_pvalue_match_scipy_pearsonr(fitted):
    bundle, result = fitted
    features = build_features(bundle, regress_covariates=False)
    table = result.membership.set_index(["feature_id", "module_id"])
    rng = np.random.default_rng(1)
    for j in rng.choice(features.n_features, size=20, replace=False):
        for module in result.eigengenes.columns[:3]:
            r, p = stats.pearsonr(
                features.matrix[:, j].astype(np.float64), result.eigengenes[module].to_numpy()
            )
            row = table.loc[(features.feature_ids[j], module)]
            assert row.kme == pytest.approx(r, abs=1e-6)
            assert row.pvalue == pytest.approx(p, rel=1e-4, abs=1e-300)
    # own-module kME equals feature_scores.kme (two code paths, one quantity)
    own = result.membership[result.membership.is_member].set_index("feature_id")["kme"]
    scores = result.feature_scores.set_index("feature_id")["kme"].dropna()
    np.testing.assert_allclose(own.reindex(scores.index), scores, atol=1e-6)
