"""The benchmark runner: layout, reuse, refusal, and report numbers recomputed from disk."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

import isograph.benchmark as bench_mod
from isograph.bundle import read_bundle
from isograph.fixtures import naive_modules
from isograph.scoring import score_fit
from omicsrun import InputError


def _fake_run_fit(bundle_path, out_dir, *, backend, seed, overrides, overwrite):
    """Stands in for the child-process fit: writes the naive modules as the 'fit'."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=overwrite)
    modules = naive_modules(read_bundle(bundle_path))
    modules.to_parquet(out_dir / "modules.parquet", index=False)
    return {
        "wall_seconds": 0.1,
        "cpu_seconds": 0.1,
        "write_seconds": 0.0,
        "peak_rss_bytes": 2**20,
        "rss_before_fit_bytes": 2**19,
    }


def test_runner_layout_scores_and_refusal(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_mod, "_run_fit", _fake_run_fit)
    out = bench_mod.run_benchmark(
        suite="core_v1", fixtures=["nonlinear"], root=tmp_path, seed=3, show_progress=False
    )
    report_path = tmp_path / "artifacts" / "reports" / "core_v1-baseline-benchmark.json"
    runtime_path = tmp_path / "artifacts" / "reports" / "core_v1-baseline-runtime-memory.json"
    assert out["paths"]["benchmark"] == report_path
    report = json.loads(report_path.read_text())
    runtime = json.loads(runtime_path.read_text())
    entry = report["fixtures"]["nonlinear"]
    data = tmp_path / "benchmarks" / "datasets" / "core_v1" / "nonlinear"
    bundle = read_bundle(data)
    assert bundle.provenance["seed"] == "3"
    fit_dir = tmp_path / "artifacts" / "benchmarks" / "core_v1-baseline" / "nonlinear"
    expected = score_fit(bundle, pd.read_parquet(fit_dir / "modules.parquet"), seed=3)
    for name in ("recovery", "relevance", "f_rr", "ari", "nmi", "unassigned_fraction", "n_modules"):
        assert entry["scores"][name] == pytest.approx(expected[name])
        assert entry["naive_reference"][name] == pytest.approx(
            expected[name]
        )  # the fake fit is the naive one
    assert entry["shape"]["n_genes"] == 1200 and entry["shape"]["n_samples"] == 120
    assert runtime["fixtures"]["nonlinear"]["peak_rss_bytes"] == 2**20
    assert (fit_dir / "run.log").read_text().count("\n") >= 3
    assert (fit_dir / "snapshot-core_v1-baseline-nonlinear-baseline-v0.1.0-seed3.json").is_file()
    table = bench_mod.summary_table(report, runtime).set_index("fixture")
    assert table.loc["nonlinear", "f_rr"] == pytest.approx(expected["f_rr"])
    assert table.loc["nonlinear", "naive_f_rr"] == pytest.approx(expected["f_rr"])
    assert table.loc["nonlinear", "peak_rss_mib"] == pytest.approx(1.0)  # 2**20 bytes

    with pytest.raises(InputError, match="already has results"):
        bench_mod.run_benchmark(
            suite="core_v1", fixtures=["nonlinear"], root=tmp_path, seed=3, show_progress=False
        )
    # overwrite reuses the matching dataset (same files, same hash)
    before = (data / "transcript_counts.npz").stat().st_mtime_ns
    again = bench_mod.run_benchmark(
        suite="core_v1", fixtures=["nonlinear"], root=tmp_path, seed=3, overwrite=True, show_progress=False
    )
    assert (data / "transcript_counts.npz").stat().st_mtime_ns == before
    assert again["benchmark"]["fixtures"]["nonlinear"]["dataset_hash"] == entry["dataset_hash"]
    # an unreadable manifest regenerates the dataset rather than failing
    (data / "manifest.json").write_text("not json")
    path, reused = bench_mod.ensure_dataset(tmp_path, "core_v1", "nonlinear", seed=3)
    assert not reused and bench_mod.bundle_hash(path) == entry["dataset_hash"]
    # another seed regenerates the dataset in place
    path, reused = bench_mod.ensure_dataset(tmp_path, "core_v1", "nonlinear", seed=4)
    assert not reused and read_bundle(path).provenance["seed"] == "4"


def test_bad_arguments_leave_nothing(tmp_path):
    with pytest.raises(InputError, match="no fixture 'nope'"):
        bench_mod.run_benchmark(suite="core_v1", fixtures=["nope"], root=tmp_path, show_progress=False)
    with pytest.raises(InputError, match="unknown fixture suite"):
        bench_mod.run_benchmark(suite="core_v9", root=tmp_path, show_progress=False)
    with pytest.raises(InputError, match="unknown backend"):
        bench_mod.run_benchmark(suite="core_v1", backend="nope", root=tmp_path, show_progress=False)
    with pytest.raises(InputError, match="stage name"):
        bench_mod.run_benchmark(suite="core_v1", stage="../x", root=tmp_path, show_progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("isograph.fit") is None, reason="isograph.fit not available")
def test_end_to_end_with_the_real_fit(tmp_path):
    out = bench_mod.run_benchmark(
        suite="multiplex_v1", fixtures=["multiplex_standard"], root=tmp_path, show_progress=False
    )
    entry = out["benchmark"]["fixtures"]["multiplex_standard"]
    fit_dir = tmp_path / "artifacts" / "benchmarks" / "multiplex_v1-baseline" / "multiplex_standard"
    bundle = read_bundle(tmp_path / entry["dataset"])
    roles_path = fit_dir / "module_gene_roles.parquet"
    roles = pd.read_parquet(roles_path) if roles_path.is_file() else None
    expected = score_fit(bundle, pd.read_parquet(fit_dir / "modules.parquet"), roles)
    for name in ("recovery", "relevance", "f_rr", "ari", "nmi", "unassigned_fraction", "n_modules"):
        assert entry["scores"][name] == pytest.approx(expected[name])
    assert entry["scores"]["role_recall"] == pytest.approx(expected["role_recall"], nan_ok=True)
    timing = out["runtime"]["fixtures"]["multiplex_standard"]
    assert timing["wall_seconds"] > 0 and timing["cpu_seconds"] > 0
    assert timing["peak_rss_bytes"] >= timing["rss_before_fit_bytes"] > 50 * 2**20
