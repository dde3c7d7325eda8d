import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from isograph.bundle import write_bundle
from isograph.cli import main
from isograph.explain import ExplainConfig, explain_module
from isograph.explain.core import read_fit_tables
from isograph.explain.inputs import features_from_bundle, transcript_usage
from isograph.explain.stats import masked_pearson, welch
from isograph.fit import fit_bundle, write_fit
from isograph.fixtures import make_fixture
from omicsrun import InputError


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain")
    bundle = make_fixture("core_v1", "standard", seed=0)
    write_bundle(bundle, root / "bundle")
    write_fit(fit_bundle(bundle, seed=0), root / "fit")
    return bundle, root


def test_masked_pearson_and_welch_match_scipy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 6))
    e = x[:, 0] * 0.8 + rng.normal(size=30)
    x[rng.random(x.shape) < 0.2] = np.nan
    r, p, n = masked_pearson(x, e)
    for j in range(x.shape[1]):
        ok = np.isfinite(x[:, j])
        ref = stats.pearsonr(x[ok, j], e[ok])
        assert r[j] == pytest.approx(ref.statistic, abs=1e-10)
        assert p[j] == pytest.approx(ref.pvalue, rel=1e-7)
        assert n[j] == ok.sum()
    high, low = x[:10], x[-10:]
    out = welch(high, low)
    for j in range(x.shape[1]):
        ref = stats.ttest_ind(high[:, j], low[:, j], equal_var=False, nan_policy="omit")
        assert out["tstat"][j] == pytest.approx(ref.statistic, rel=1e-9)
        assert out["pvalue"][j] == pytest.approx(ref.pvalue, rel=1e-7)


def test_transcript_usage_sums_to_one_per_gene(fitted):
    bundle, _ = fitted
    usage = transcript_usage(bundle)
    genes = bundle.transcripts.set_index("transcript_id").loc[usage.columns, "gene_id"]
    totals = usage.T.groupby(genes.to_numpy()).sum()
    np.testing.assert_allclose(totals.to_numpy(), 1.0, rtol=1e-12)


def test_explain_finds_planted_drivers_and_switches(fitted, tmp_path):
    bundle, root = fitted
    fit = read_fit_tables(root / "fit")
    table, meta, _ = features_from_bundle(bundle, fit["manifest"])
    results = explain_module(root / "fit", table, meta, output_dir=tmp_path / "out")
    truth = bundle.truth["truth_modules"].set_index("gene_id")["module_id"].astype(str)
    for module_id, result in results.items():
        drivers = result.gene_driver_table
        assert np.all(np.diff(drivers["r"].abs().to_numpy()) <= 1e-12)  # sorted by |r|
        top = drivers[drivers["in_module"]].head(20)
        # The strongest drivers of a fitted module belong to one planted module.
        planted = top["gene_id"].map(truth)
        assert (planted == planted.mode()[0]).mean() >= 0.9
        pol = result.transcript_polarity_table
        tx = pol[pol["feature_type"] == "transcript_usage"]
        expected = tx.groupby("gene_id")["r"].agg(lambda v: v.max() - v.min())
        got = pol.drop_duplicates("gene_id").set_index("gene_id")["switch_strength"]
        np.testing.assert_allclose(got.reindex(expected.index), expected, rtol=1e-12)
        # The up transcript of each switch pair is the one with the largest r in its gene.
        pair = result.switch_pairs.iloc[0]
        gene_tx = tx[tx["gene_id"] == pair["gene_id"]]
        assert pair["transcript_up"] == gene_tx.loc[gene_tx["r"].idxmax(), "feature_id"]
        hl = result.high_vs_low_table.set_index("feature_id")
        n_cut = int(np.floor(bundle.n_samples * 0.25))
        order = result.eigengene.sort_values(kind="stable").index
        feature = hl.index[0]
        ref = stats.ttest_ind(
            table.loc[order[-n_cut:], feature], table.loc[order[:n_cut], feature], equal_var=False
        )
        assert hl.loc[feature, "tstat"] == pytest.approx(ref.statistic, rel=1e-9)
    manifest = json.loads((tmp_path / "out" / "module_explanation_manifest.json").read_text())
    assert manifest["module_ids"] == list(results)
    first = next(iter(results))
    assert (tmp_path / "out" / first / "gene_driver_table.parquet").is_file()


def test_explain_rejects_unknown_module_and_leaves_no_output(fitted, tmp_path):
    bundle, root = fitted
    fit = read_fit_tables(root / "fit")
    table, meta, _ = features_from_bundle(bundle, fit["manifest"])
    with pytest.raises(InputError, match="unknown module id 'M999'"):
        explain_module(root / "fit", table, meta, module_ids=["M999"], output_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputError, match="high_low_percentile"):
        ExplainConfig(high_low_percentile=80)


def test_cli_short_form_with_plots(fitted, tmp_path, capsys):
    _, root = fitted
    out = tmp_path / "ex"
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "explain-module",
                "--fit",
                str(root / "fit"),
                "--bundle",
                str(root / "bundle"),
                "--module-ids",
                "M000",
                "--plot",
                "--output-format",
                "both",
                "--no-enrichment",
                "--out",
                str(out),
            ]
        )
    assert exc.value.code in (0, None)
    assert "M000: top drivers" in capsys.readouterr().out
    for stem in ("top_drivers", "usage_gradient", "driver_heatmap"):
        assert (out / "M000" / f"{stem}.png").stat().st_size > 10_000
        assert (out / "M000" / f"{stem}.pdf").is_file()
    # Bad input: one line, exit 2, no partial folder.
    with pytest.raises(SystemExit) as exc:
        main(["explain-module", "--fit", str(root / "fit"), "--out", str(tmp_path / "bad")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--bundle" in err
    assert not (tmp_path / "bad").exists()


def test_fit_tables_carry_gene_names_and_summary(fitted):
    from types import SimpleNamespace

    from isograph.fit.summary import fit_summary

    bundle, root = fitted
    names = bundle.genes.set_index("gene_id")["gene_name"]
    modules = pd.read_parquet(root / "fit" / "modules.parquet")
    assert (modules["gene_name"] == modules["gene_id"].map(names)).all()
    scores = pd.read_parquet(root / "fit" / "feature_scores.parquet")
    assert (scores["gene_name"] == scores["gene_id"].map(names)).all()
    edges = pd.read_parquet(root / "fit" / "edges.parquet")
    assert (edges["gene_b_name"] == edges["gene_b"].map(names)).all()
    traits = pd.read_parquet(root / "fit" / "traits.parquet")
    lines = fit_summary(SimpleNamespace(modules=modules, traits=traits))
    sizes = modules.loc[modules["module_id"] != "unassigned", "module_id"].value_counts()
    assert lines[0].startswith(f"modules: {len(sizes)} ({sizes.index[0]} {sizes.iloc[0]},")
    best = traits.sort_values("pvalue").iloc[0]
    assert f"{best['module_id']}~{best['trait']}" in lines[1]


def test_attributions_through_a_vae_handle_are_written(fitted, tmp_path, capsys):
    pytest.importorskip("captum")  # the optional isograph[torch-explain] extra
    from isograph.explain.attribution import decoder_jacobian

    bundle, root = fitted
    fit = read_fit_tables(root / "fit")
    table, meta, gene_level = features_from_bundle(bundle, fit["manifest"])
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(
        "tinyvae", __file__.replace("test_explain_module", "test_attribution")
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["tinyvae"] = module
    spec.loader.exec_module(module)
    handle = module.TinyVae(n_features=8)
    handle.feature_ids = list(gene_level.columns[:8])
    config = ExplainConfig(vae_attribution=True, integrated_gradients=True, ig_n_steps=20, vae_step=1e-3)
    results = explain_module(
        root / "fit",
        table,
        meta,
        module_ids=["M000"],
        config=config,
        vae=handle,
        gene_level_matrix=gene_level,
        output_dir=tmp_path / "out",
    )
    drivers = pd.read_parquet(tmp_path / "out" / "M000" / "vae_drivers.parquet")
    ig = pd.read_parquet(tmp_path / "out" / "M000" / "ig_attributions.parquet")
    assert list(ig.columns[:4]) == ["feature_id", "gene_id", "gene_name", "ig_score"]
    assert set(ig["feature_id"]) == set(handle.feature_ids)
    assert set(drivers["gene_id"]) <= set(results["M000"].gene_driver_table.query("in_module")["gene_id"])
    assert drivers["decoded_delta"].abs().max() <= np.abs(decoder_jacobian(handle, np.zeros(2), 1)).max() * 10
    # A baseline fit has no VAE: one line, exit 2, nothing written.
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "explain-module",
                "--fit",
                str(root / "fit"),
                "--bundle",
                str(root / "bundle"),
                "--vae-attribution",
                "--out",
                str(tmp_path / "vae"),
            ]
        )
    assert exc.value.code == 2
    assert "VAE" in capsys.readouterr().err
    assert not (tmp_path / "vae").exists()


def test_annotation_table_is_merged_into_driver_tables(fitted):
    bundle, root = fitted
    fit = read_fit_tables(root / "fit")
    table, meta, _ = features_from_bundle(bundle, fit["manifest"])
    first = explain_module(root / "fit", table, meta, module_ids=["M000"])["M000"]
    gene = first.switch_pairs["gene_id"].iloc[0]
    annotation = pd.DataFrame({"gene_id": [gene], "labels": ["exon_gain;cds_change"], "found": [True]})
    result = explain_module(root / "fit", table, meta, module_ids=["M000"], annotation_table=annotation)[
        "M000"
    ]
    drivers = result.gene_driver_table.set_index("gene_id")
    assert drivers.loc[gene, "labels"] == "exon_gain;cds_change"
    assert drivers["labels"].notna().sum() == 1
    assert result.switch_pairs.set_index("gene_id").loc[gene, "labels"] == "exon_gain;cds_change"
    with pytest.raises(InputError, match="annotation table has no column 'gene_id'"):
        explain_module(root / "fit", table, meta, annotation_table=annotation.drop(columns="gene_id"))


def test_enrichment_dots_draw_non_significant_terms_hollow():
    """A term at q >= 0.05 is an outline only; a significant one is filled by its -log10 q."""
    from isograph.explain.plots import enrichment_dots

    table = pd.DataFrame(
        {
            "module_id": ["M000", "M000", "M001"],
            "term_name": ["response to interferon-gamma", "ribosome", "noise term"],
            "source": ["GO:BP", "KEGG", "GO:BP"],
            "pvalue": [1e-6, 1e-3, 0.2],
            "qvalue": [1e-4, 0.01, 0.4],
            "n_overlap": [12, 5, 3],
        }
    )
    ax = enrichment_dots(table).axes[0]
    filled, hollow = ax.collections[:2]
    assert len(filled.get_offsets()) == 2 and len(hollow.get_offsets()) == 1
    assert hollow.get_facecolor().size == 0 or float(hollow.get_facecolor()[0, 3]) == 0.0
    np.testing.assert_allclose(sorted(filled.get_array()), [2.0, 4.0])  # -log10 q of the two significant
    assert "hollow" in ax.get_title()
