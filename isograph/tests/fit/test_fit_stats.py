import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from isograph.bundle import Bundle
from isograph.features import FeatureSet, build_features
from isograph.fit import (
    benjamini_hochberg,
    fit_bundle,
    gene_roles,
    module_eigengenes,
    parse_overrides,
    trait_associations,
    write_fit,
)
from isograph.fixtures import make_fixture
from omicsrun import InputError


def test_trait_tests_match_scipy():
    rng = np.random.default_rng(0)
    n = 40
    eig = pd.DataFrame(rng.standard_normal((n, 3)), columns=["M000", "M001", "M002"])
    samples = pd.DataFrame(
        {
            "sample_id": [f"s{i}" for i in range(n)],
            "age": rng.normal(50, 9, n),
            "Dx": rng.choice(["case", "ctrl"], n),
            "condition": rng.choice(["a", "b", "c", "d"], n),
        }
    )
    samples.loc[3, "age"] = np.nan
    table = trait_associations(eig, samples, ["age", "Dx", "condition"])
    assert list(table.columns) == ["module_id", "trait", "kind", "test", "statistic", "pvalue", "qvalue", "n"]
    for module in eig.columns:
        row = table[(table.module_id == module) & (table.trait == "age")].iloc[0]
        ok = samples["age"].notna()
        r, p = stats.pearsonr(samples.loc[ok, "age"], eig.loc[ok, module])
        assert (row.test, row.n) == ("pearson", 39)
        assert row.statistic == pytest.approx(r) and row.pvalue == pytest.approx(p)
        row = table[(table.module_id == module) & (table.trait == "Dx")].iloc[0]
        t, p = stats.ttest_ind(
            eig.loc[samples.Dx == "ctrl", module], eig.loc[samples.Dx == "case", module], equal_var=False
        )
        assert row.test == "welch_t" and row.statistic == pytest.approx(t) and row.pvalue == pytest.approx(p)
        row = table[(table.module_id == module) & (table.trait == "condition")].iloc[0]
        f, p = stats.f_oneway(*[eig.loc[samples.condition == c, module] for c in "abcd"])
        assert row.test == "anova_f" and row.statistic == pytest.approx(f) and row.pvalue == pytest.approx(p)
    np.testing.assert_allclose(table["qvalue"], stats.false_discovery_control(table["pvalue"]))


def test_regressed_covariates_are_corrected_apart_from_traits():
    rng = np.random.default_rng(1)
    n = 30
    eig = pd.DataFrame(rng.standard_normal((n, 2)), columns=["M000", "M001"])
    samples = pd.DataFrame(
        {
            "sample_id": [f"s{i}" for i in range(n)],
            "age": rng.normal(50, 9, n),
            "Dx": rng.choice(["a", "b"], n),
        }
    )
    table = trait_associations(eig, samples, ["age", "Dx"], regressed=["age"])
    assert set(table.loc[table.trait == "age", "kind"]) == {"covariate"}
    assert set(table.loc[table.trait == "Dx", "kind"]) == {"trait"}
    for kind, rows in table.groupby("kind"):
        np.testing.assert_allclose(rows["qvalue"], stats.false_discovery_control(rows["pvalue"]))


def test_benjamini_hochberg_by_hand_and_nan():
    p = np.array([0.01, 0.04, 0.03, np.nan, 0.5])
    # sorted 0.01, 0.03, 0.04, 0.5 with m = 4: 0.04, 0.06, 0.0533.., 0.5 -> monotone 0.04, 0.0533, 0.0533, 0.5
    np.testing.assert_allclose(benjamini_hochberg(p), [0.04, 0.16 / 3, 0.16 / 3, np.nan, 0.5])


def test_constant_or_absent_trait_is_an_input_error():
    samples = pd.DataFrame({"sample_id": list("abcd"), "tissue": ["brain"] * 4})
    eig = pd.DataFrame({"M000": [1.0, -1.0, 0.5, -0.5]})
    with pytest.raises(InputError, match="trait column 'tissue' is constant"):
        trait_associations(eig, samples, ["tissue"])
    with pytest.raises(InputError, match="trait column 'Dx' is not in the sample table"):
        trait_associations(eig, samples, ["Dx"])


def _features(matrix, kinds, genes):
    n = matrix.shape[0]
    return FeatureSet(
        matrix=matrix.astype(np.float32),
        feature_ids=np.array([f"{g}:{k}" for g, k in zip(genes, kinds)], dtype=object),
        feature_type=np.array(kinds, dtype=object),
        gene_ids=np.array(genes, dtype=object),
        sample_ids=np.array([f"s{i}" for i in range(n)], dtype=object),
    )


def test_eigengene_is_first_pc_aligned_with_mean_and_roles_follow_rules():
    rng = np.random.default_rng(1)
    n = 300
    f = rng.standard_normal(n)
    noise = 0.3 * rng.standard_normal((n, 6))
    # genes: a coupled (+,+), b discordant (+,-), c switch only, d abundance only
    cols = np.column_stack([f, f, -f, f, rng.standard_normal(n), rng.standard_normal(n)]) + noise
    cols[:, 4] = rng.standard_normal(n)  # c's abundance: noise
    cols[:, 5] = f + noise[:, 5]  # d's abundance follows the program
    cols = np.column_stack([cols, rng.standard_normal(n)])  # d's switch: noise
    kinds = ["switch", "abundance", "abundance", "switch", "abundance", "abundance", "switch"]
    genes = ["a", "a", "b", "b", "c", "d", "d"]
    cols[:, 2] = -f + noise[:, 2]
    cols[:, 4] = rng.standard_normal(n)
    cols = (cols - cols.mean(0)) / cols.std(0)
    # gene c needs a switch feature that follows the program
    cols = np.column_stack([cols, f + 0.3 * rng.standard_normal(n)])
    kinds.append("switch")
    genes.append("c")
    cols = (cols - cols.mean(0)) / cols.std(0)
    fs = _features(cols, kinds, genes)
    module = np.array(["M000"] * len(genes))
    eig = module_eigengenes(fs, module, ["M000"])
    u, s, _ = np.linalg.svd(cols, full_matrices=False)
    pc = u[:, 0] * s[0]
    pc = pc if pc @ cols.mean(axis=1) > 0 else -pc
    assert np.corrcoef(eig["M000"], pc)[0, 1] == pytest.approx(1.0)
    assert np.corrcoef(eig["M000"], cols.mean(axis=1))[0, 1] > 0
    modules = pd.DataFrame({"gene_id": ["a", "b", "c", "d"], "module_id": "M000"})
    roles = gene_roles(fs, modules, eig).set_index("gene_id")
    assert roles.loc["a", "module_role"] == "coupled"
    assert roles.loc["b", "module_role"] == "discordant"
    assert roles.loc["c", "module_role"] == "switch_only"
    assert roles.loc["d", "module_role"] == "abundance_only"
    expected = np.corrcoef(cols[:, 0], eig["M000"])[0, 1]
    assert roles.loc["a", "switch_r"] == pytest.approx(expected, abs=1e-5)
    assert roles.loc["a", "switch_abundance_r"] == pytest.approx(
        np.corrcoef(cols[:, 0], cols[:, 1])[0, 1], abs=1e-5
    )


def test_parse_overrides():
    assert parse_overrides(["baseline.min_module_size=5", "a.b= x "]) == {
        "baseline.min_module_size": "5",
        "a.b": "x",
    }
    with pytest.raises(InputError, match=r"malformed override 'baseline\.min_module_size'"):
        parse_overrides(["baseline.min_module_size"])


@pytest.fixture(scope="module")
def multiplex_fit():
    bundle = make_fixture("multiplex_v1", "multiplex_standard", seed=0)
    return bundle, fit_bundle(bundle, overrides={"baseline.min_module_size": "8"})


def test_fit_bundle_multiplex_outputs(multiplex_fit, tmp_path):
    bundle, result = multiplex_fit
    assert list(result.modules["gene_id"]) == list(bundle.gene_ids)  # every gene, table order
    assert result.config["baseline"]["min_module_size"] == 8
    assert result.roles is not None and set(result.roles["module_role"]) <= {
        "coupled",
        "abundance_only",
        "switch_only",
        "discordant",
        "inactive",
    }
    assert set(result.feature_scores["feature_type"]) == {"switch", "abundance"}
    assert set(result.traits["trait"]) == {*bundle.trait_columns(), "log_library_size"}
    # regressed covariates are tested on the unadjusted eigengenes only (after adjustment
    # they are orthogonal by construction); library size is regressed by default
    kinds = result.traits.groupby("trait")["kind"].agg(set)
    assert kinds["batch"] == {"covariate_before"}
    assert kinds["log_library_size"] == {"covariate_before"}
    assert result.config["features"]["covariates"][-1] == "log_library_size"
    assert kinds["Dx"] == {"trait"}
    # library size not regressed: tested on both
    unregressed = fit_bundle(
        bundle, overrides={"baseline.min_module_size": "8", "features.regress_library_size": "false"}
    )
    kinds = unregressed.traits.groupby("trait")["kind"].agg(set)
    assert kinds["log_library_size"] == {"covariate_before", "covariate_after"}
    assert "log_library_size" not in unregressed.config["features"]["covariates"]
    # kME is the correlation with the own eigengene
    row = result.feature_scores.dropna(subset=["kme"]).iloc[0]
    assert abs(row.kme) <= 1
    out = write_fit(result, tmp_path / "fit")
    names = {p.name for p in out.iterdir()}
    assert {
        "modules.parquet",
        "edges.parquet",
        "traits.parquet",
        "feature_scores.parquet",
        "module_gene_roles.parquet",
        "fit_config.json",
    } <= names
    config = json.loads((out / "fit_config.json").read_text())
    assert config["seed"] == 0 and config["format"] == "isograph-fit"
    assert config["data_hash"] == result.bundle_hash and config["isograph_version"]
    assert config["config"]["backend"] == "baseline"
    pd.testing.assert_frame_equal(pd.read_parquet(out / "modules.parquet"), result.modules)
    with pytest.raises(InputError, match="already holds results"):
        write_fit(result, out)
    write_fit(result, out, overwrite=True)


def test_feature_scores_match_direct_correlations_and_edge_counts(multiplex_fit):
    bundle, result = multiplex_fit
    scores = result.feature_scores
    features = build_features(bundle)
    eig = result.eigengenes
    # kME and the best other |r| by np.corrcoef, one feature at a time (a sample of them).
    for row in scores.dropna(subset=["kme"]).sample(20, random_state=0).itertuples():
        x = features.matrix[:, features.feature_ids == row.feature_id][:, 0].astype(np.float64)
        r = {m: np.corrcoef(x, eig[m])[0, 1] for m in eig.columns}
        assert row.kme == pytest.approx(r[row.module_id], abs=1e-6)
        assert row.max_abs_r_other == pytest.approx(
            max(abs(v) for m, v in r.items() if m != row.module_id), abs=1e-6
        )
    # Degree and connectivity of a gene by brute force over the edge list.
    for gene in scores["gene_id"].drop_duplicates().sample(20, random_state=0):
        touching = result.edges[(result.edges.gene_a == gene) | (result.edges.gene_b == gene)]
        rows = scores[scores.gene_id == gene]
        assert (rows["degree"] == len(touching)).all()
        np.testing.assert_allclose(rows["connectivity"], np.abs(touching["weight"]).sum())


def test_fit_bundle_bad_input():
    bundle = make_fixture("core_v1", "standard", seed=0)
    with pytest.raises(InputError, match="seed must be a non-negative integer; found -1"):
        fit_bundle(bundle, seed=-1)
    with pytest.raises(InputError, match="unknown backend 'nope'"):
        fit_bundle(bundle, backend="nope")
    with pytest.raises(
        InputError, match=r"unknown override key 'baseline.nope'; valid keys are \[.*baseline.min_module_size"
    ):
        fit_bundle(bundle, overrides={"baseline.nope": "1"})
    with pytest.raises(InputError, match=r"unknown override key 'vae\.x'"):
        fit_bundle(bundle, overrides={"vae.x": "1"})
    with pytest.raises(InputError, match="expected int, found 'many'"):
        fit_bundle(bundle, overrides={"baseline.min_module_size": "many"})
    samples = bundle.samples.assign(tissue="brain")
    constant = Bundle(
        samples=samples,
        genes=bundle.genes,
        transcripts=bundle.transcripts,
        transcript_counts=bundle.transcript_counts,
    )
    with pytest.raises(InputError, match="trait column 'tissue' is constant"):
        fit_bundle(constant)


def test_switch_only_fit_has_no_roles():
    bundle = make_fixture("core_v1", "standard", seed=0)
    result = fit_bundle(bundle, traits=["Dx"] if "Dx" in bundle.samples else None)
    assert result.roles is None
    assert set(result.feature_scores["feature_type"]) == {"switch"}
    assert result.eigengenes.shape == (bundle.n_samples, result.modules["module_id"].nunique() - 1)


def test_covariate_checks_can_fail():
    # a module that is a batch effect: its raw eigengene follows batch, and when batch is not
    # regressed the adjusted eigengene does too; a module independent of batch shows neither
    from isograph.fit.stats import covariate_checks

    rng = np.random.default_rng(3)
    n = 60
    batch = np.repeat(["b1", "b2", "b3"], n // 3)
    effect = np.select([batch == "b1", batch == "b2"], [-1.0, 0.2], 0.8)
    samples = pd.DataFrame(
        {"sample_id": [f"s{i}" for i in range(n)], "batch": batch, "age": rng.normal(50, 10, n)}
    )
    raw = pd.DataFrame({"M000": effect + 0.3 * rng.normal(size=n), "M001": rng.normal(size=n)})
    table = covariate_checks(raw, raw, samples, regressed=["age"], unregressed=["batch"])
    before = table[table.kind == "covariate_before"].set_index(["module_id", "trait"])
    after = table[table.kind == "covariate_after"].set_index(["module_id", "trait"])
    assert before.loc[("M000", "batch"), "pvalue"] < 1e-10
    assert after.loc[("M000", "batch"), "pvalue"] < 1e-10
    assert before.loc[("M001", "batch"), "pvalue"] > 1e-3
    # the same F as scipy's one-way ANOVA
    f_ref = stats.f_oneway(*(raw["M000"][batch == b] for b in ("b1", "b2", "b3"))).statistic
    assert before.loc[("M000", "batch"), "statistic"] == pytest.approx(f_ref)
    assert ("M000", "age") not in after.index  # regressed: no after-test by construction


def test_default_covariates_fall_back_when_none_are_named():
    from isograph.features import default_covariates

    bundle = make_fixture("core_v1", "standard", seed=0)
    bundle.provenance["covariates"] = ""  # what `isograph import` without --covariate records
    assert default_covariates(bundle) == ["batch", "sex", "age"]
    bundle.provenance["covariates"] = "batch"
    assert default_covariates(bundle) == ["batch"]
