"""null_v1 and smalln_v1 fixtures, the null report, power warnings, depth robustness."""

import numpy as np
import pandas as pd
import pytest

from isograph.benchmark import run_benchmark
from isograph.features import build_features
from isograph.features.build import log_library_size
from isograph.fit.stats import power_warnings
from isograph.fixtures import fixture_spec, make_fixture, suite_fixtures
from isograph.nulls import null_report


def test_null_suite_has_the_asked_for_fixtures():
    names = suite_fixtures("null_v1")
    for size in ("2k", "12k"):
        for kind in ("lib4x", "lib10x", "covariates", "n24"):
            assert f"null_{kind}_{size}" in names
    bundle = make_fixture("null_v1", "null_lib10x_2k", seed=0)
    assert len(bundle.truth["truth_modules"]) == 0
    library = bundle.samples["library_factor"].to_numpy()
    assert library.max() / library.min() == pytest.approx(10.0, rel=1e-3)
    assert fixture_spec("null_v1", "null_n24_12k").n_genes == 12000


def test_factorial_fixture_follows_the_macrophage_design():
    bundle = make_fixture("smalln_v1", "factorial_n24", seed=0)
    s = bundle.samples
    assert len(s) == 24 and s["donor"].nunique() == 6
    assert pd.crosstab(s["donor"], s["condition"]).eq(1).all().all()
    assert bundle.provenance["covariates"] == "donor"
    assert 3 <= bundle.truth["truth_modules"]["module_id"].nunique() <= 5


def test_null_report_counts_by_hand():
    modules = pd.DataFrame({"gene_id": list("abcdef"), "module_id": ["M000"] * 3 + ["unassigned"] * 3})
    traits = pd.DataFrame(
        {"kind": ["trait"] * 4 + ["covariate_before"], "pvalue": [0.01, 0.2, 0.5, 0.04, 0.001]}
    )
    report = null_report(modules, traits, {"n_switch_features": 15000, "n_abundance_features": 5000})
    assert report["n_spurious_modules"] == 1 and report["n_spurious_genes"] == 3
    assert report["spurious_modules_per_10k_features"] == pytest.approx(0.5)
    assert report["trait_tests"] == 4 and report["trait_rejection_rate"] == pytest.approx(0.5)
    assert np.isnan(report["covariate_after_rejection_rate"])


def test_depth_scaled_pseudocount_removes_the_depth_signal():
    # a pure negative-binomial null with a 10x range of library sizes: with a fixed pseudo-count
    # the switch features of low-count genes follow depth; scaled with depth they do not
    bundle = make_fixture("null_v1", "null_lib10x_2k", seed=0)
    depth = log_library_size(bundle)

    def depth_r(scaled):
        f = build_features(bundle, depth_scaled_pseudocount=scaled, regress_covariates=False)
        x = f.matrix[:, f.feature_type == "switch"].astype(float)
        d = (depth - depth.mean()) / depth.std()
        return np.abs((x * d[:, None]).mean(axis=0))

    fixed, scaled = depth_r(False), depth_r(True)
    # under the null |r| with depth is ~ |N(0, 1/n)|, so |r| > 0.25 is a 1e-4 event at n = 240;
    # with a fixed pseudo-count one low-count feature in ten gets there (measured: 10.4%)
    assert np.mean(fixed > 0.25) > 0.05
    assert np.mean(scaled > 0.25) < 0.01
    assert np.quantile(scaled, 0.99) < 0.5 * np.quantile(fixed, 0.99)


def test_power_warning_at_n24_and_none_at_n240():
    small = build_features(make_fixture("null_v1", "null_n24_2k", seed=0))
    big = build_features(make_fixture("core_v1", "standard", seed=0))
    assigned = np.full(small.n_features, "unassigned")
    warns = power_warnings(small, assigned)
    assert any("switch channel" in w and "|r| >=" in w for w in warns)
    assert any("no feature is in any module" in w for w in warns)
    assert not [w for w in power_warnings(big, np.full(big.n_features, "M000")) if "|r| >=" in w]


@pytest.mark.slow
def test_null_benchmark_reports_calibration(tmp_path):
    out = run_benchmark(suite="null_v1", fixtures=["null_n24_2k"], root=tmp_path, show_progress=False, seed=0)
    entry = out["benchmark"]["fixtures"]["null_n24_2k"]
    calib = entry["null_calibration"]
    assert calib["spurious_modules_per_10k_features"] <= 1.0 or calib["n_spurious_modules"] <= 1
    assert calib["n_features"] > 500


@pytest.mark.parametrize(
    ("fixture", "traits", "options"),
    [
        ("null_lib10x_2k", ["Dx", "severity", "age", "batch", "sex"], {}),
        ("null_n24_2k", ["Dx", "severity", "age", "batch", "sex"], {}),
        # Depth itself: only with library size regressed does a 10x depth range leave random
        # gene sets' eigengenes uncorrelated with it (without: 30 % of them at p < 0.05).
        ("null_lib10x_2k", ["library_factor"] * 5, {"regress_library_size": True}),
        # ... which is the default (the old default, depth-scaled pseudo-count alone, rejects
        # 18 of 60 on the 10x null and 4 of 60 on the 4x one; see the last test)
        ("null_lib10x_2k", ["library_factor"] * 5, {}),
        ("null_lib4x_2k", ["library_factor"] * 5, {}),
    ],
)
def test_trait_table_holds_its_nominal_rate_on_a_null(fixture, traits, options):
    # No feature is tied to any trait in null_v1, so eigengenes of arbitrary gene sets, built
    # and tested exactly as a fit does, must reject at p < 0.05 about 5 % of the time. 60
    # random 15-gene modules x 5 traits = 300 tests; a binomial 99.9 % interval around 0.05
    # is about [0.02, 0.09] (an anti-conservative test, e.g. wrong degrees of freedom or depth
    # leaking into the eigengenes, lands far above it).
    from scipy.stats import binom

    from isograph.fit.stats import module_eigengenes, trait_associations

    bundle = make_fixture("null_v1", fixture, seed=0)
    features = build_features(bundle, **options)
    genes = pd.unique(features.gene_ids)
    rng = np.random.default_rng(7)
    n_modules, size = 60, 15
    chosen = rng.permutation(len(genes))[: n_modules * size].reshape(n_modules, size)
    module_of = {genes[g]: f"M{m:03d}" for m in range(n_modules) for g in chosen[m]}
    feature_module = np.array([module_of.get(g, "unassigned") for g in features.gene_ids])
    ids = [f"M{m:03d}" for m in range(n_modules)]
    eigengenes = module_eigengenes(features, feature_module, ids)
    if len(set(traits)) == 1:  # one trait, 60 tests (without the regression 18 of them reject)
        traits = traits[:1]
    table = trait_associations(eigengenes.reset_index(drop=True), bundle.samples, traits)
    n_tests = len(table)
    assert n_tests == n_modules * len(traits)
    n_reject = int((table["pvalue"] < 0.05).sum())
    low, high = binom.ppf([0.0005, 0.9995], n_tests, 0.05)
    assert low <= n_reject <= high, (n_reject, n_tests)


def test_depth_leaks_into_eigengenes_without_the_library_size_regression():
    # The counterpart of the default-settings rows above, so that they can fail: with the
    # depth-scaled pseudo-count alone (the default before library size was regressed), random
    # gene sets' eigengenes on the 10x-range null correlate with depth far above 5 %.
    from isograph.fit.stats import module_eigengenes, trait_associations

    bundle = make_fixture("null_v1", "null_lib10x_2k", seed=0)
    features = build_features(bundle, regress_library_size=False)
    genes = pd.unique(features.gene_ids)
    chosen = np.random.default_rng(7).permutation(len(genes))[:900].reshape(60, 15)
    module_of = {genes[g]: f"M{m:03d}" for m in range(60) for g in chosen[m]}
    feature_module = np.array([module_of.get(g, "unassigned") for g in features.gene_ids])
    eigengenes = module_eigengenes(features, feature_module, [f"M{m:03d}" for m in range(60)])
    table = trait_associations(eigengenes.reset_index(drop=True), bundle.samples, ["library_factor"])
    assert int((table["pvalue"] < 0.05).sum()) > 9  # above the 99.9 % binomial band (measured 18)
