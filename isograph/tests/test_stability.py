"""Stability selection: subsampling, co-membership scores, consensus, the CLI option."""

import json

import numpy as np
import pandas as pd
import pytest

from isograph.backends.base import UNASSIGNED
from isograph.cli import main
from isograph.fixtures import make_fixture
from isograph.stability import co_membership, stability_selection, subsample_indices
from omicsrun import InputError


def test_subsamples_are_stratified_without_replacement():
    strata = np.repeat(["naive", "A", "B", "AB"], 6)
    draws = subsample_indices(24, n_resamples=5, fraction=0.8, seed=1, strata=strata)
    for index in draws:
        assert len(np.unique(index)) == len(index) == 20  # round(0.8 * 6) = 5 per condition
        assert pd.Series(strata[index]).value_counts().eq(5).all()
    again = subsample_indices(24, n_resamples=5, fraction=0.8, seed=1, strata=strata)
    assert all(np.array_equal(a, b) for a, b in zip(draws, again, strict=True))
    with pytest.raises(InputError, match="fraction"):
        subsample_indices(24, n_resamples=2, fraction=1.0, seed=0)


def test_co_membership_matches_a_pairwise_count():
    rng = np.random.default_rng(0)
    full = rng.choice(["M000", "M001", "M002", UNASSIGNED], 80)
    res = rng.choice(["M000", "M001", UNASSIGNED], 80)
    got = co_membership(full, res)
    for g in range(80):
        if full[g] == UNASSIGNED:
            assert np.isnan(got[g])
            continue
        mates = [h for h in range(80) if h != g and full[h] == full[g]]
        expected = 0.0 if res[g] == UNASSIGNED else np.mean([res[h] == res[g] for h in mates])
        assert got[g] == pytest.approx(expected)


def test_planted_modules_are_stable_and_noise_modules_are_not(tmp_path):
    bundle = make_fixture("smalln_v1", "factorial_n40", seed=0)
    from isograph.fit import fit_bundle

    full = fit_bundle(bundle, seed=0)
    result = stability_selection(
        bundle, full.modules, n_resamples=4, fraction=0.8, strata_key="condition", fit_kwargs={"seed": 0}
    )
    truth = bundle.truth["truth_modules"].set_index("gene_id")["module_id"]
    genes = result.genes.set_index("gene_id")
    planted = genes.index.isin(truth.index) & (genes["module_id"] != UNASSIGNED).to_numpy()
    # genes of planted programs keep most of their mates across subsamples
    assert genes.loc[planted, "stability"].median() > 0.5
    assert result.summary["n_resamples"] == 4 and result.summary["strata"] == "condition"
    assert set(result.modules["module_id"]) == set(full.modules["module_id"]) - {UNASSIGNED}
    consensus = genes["consensus_module_id"] != UNASSIGNED
    assert (genes.loc[consensus, "stability"] >= 0.5).all()


def test_fit_stability_option_writes_json(tmp_path, capsys):
    from isograph.bundle import write_bundle

    bundle = make_fixture("smalln_v1", "factorial_n24", seed=0)
    write_bundle(bundle, tmp_path / "b")
    out = tmp_path / "fit"
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "fit",
                "--bundle",
                str(tmp_path / "b"),
                "--out",
                str(out),
                "--stability",
                "2",
                "--cluster",
                "serial",
            ]
        )
    assert exc.value.code == 0
    assert "stability" in capsys.readouterr().out
    summary = json.loads((out / "stability.json").read_text())
    assert summary["format"] == "isograph-stability" and summary["strata"] == "Dx"
    table = pd.read_parquet(out / "stability.parquet")
    assert list(table.columns) == ["gene_id", "module_id", "stability", "consensus_module_id"]
    assert len(table) == bundle.n_genes


@pytest.mark.slow
def test_benchmark_stability_option_writes_a_report(tmp_path):
    from isograph.benchmark import run_benchmark

    out = run_benchmark(
        suite="smalln_v1", fixtures=["factorial_n24"], root=tmp_path, show_progress=False, stability=2
    )
    path = out["paths"]["benchmark"].with_name("smalln_v1-baseline-stability.json")
    report = json.loads(path.read_text())["fixtures"]["factorial_n24"]
    assert report["n_resamples"] == 2 and report["strata"] == "Dx"
    # planted genes hold together better than the genes a fit placed that belong to no planted module
    other = report["mean_stability_other_genes"]
    assert other is None or report["mean_stability_planted_genes"] >= other


def test_fit_rejects_a_bad_stability_fraction_before_fitting(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--bundle", str(tmp_path / "missing"), "--out", str(tmp_path / "o"), "--stability", "2",
              "--stability-fraction", "1.5"])  # fmt: skip
    assert exc.value.code == 2
    assert "--stability-fraction in (0, 1)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_fit_rejects_an_unknown_cluster_before_fitting(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--bundle", str(tmp_path / "missing"), "--out", str(tmp_path / "o"), "--stability", "2",
              "--cluster", "bogus"])  # fmt: skip
    assert exc.value.code == 2
    assert "cluster must be" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
