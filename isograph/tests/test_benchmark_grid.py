"""Fixtures x backends x seeds on Dask: same reports as the serial run, calibration per backend."""

from __future__ import annotations

import json

import pytest

import isograph.benchmark as bench_mod
from omicsrun import InputError

_SCORES = ("recovery", "relevance", "f_rr", "ari", "nmi", "unassigned_fraction", "n_modules")


def _grid(root, cluster):
    return bench_mod.run_benchmark_grid(
        suite="core_v1",
        backends=["baseline", "latent"],
        seeds=[0],
        fixtures=["nonlinear"],
        root=root,
        overrides={"latent.n_factors": "10"},
        show_progress=False,
        cluster=cluster,
        n_workers=2,
    )


@pytest.mark.slow
def test_local_cluster_matches_serial_and_writes_calibration(tmp_path):
    serial = _grid(tmp_path / "serial", "serial")
    local = _grid(tmp_path / "local", "local")
    assert [r["benchmark"]["stage"] for r in serial] == ["core_v1-baseline", "core_v1-latent"]
    for a, b in zip(serial, local, strict=True):
        sa = a["benchmark"]["fixtures"]["nonlinear"]["scores"]
        sb = b["benchmark"]["fixtures"]["nonlinear"]["scores"]
        assert {k: sa[k] for k in _SCORES} == {k: sb[k] for k in _SCORES}
        assert (
            a["benchmark"]["fixtures"]["nonlinear"]["dataset_hash"]
            == (b["benchmark"]["fixtures"]["nonlinear"]["dataset_hash"])
        )
    latent = json.loads(local[1]["paths"]["calibration"].read_text())
    record = latent["fixtures"]["nonlinear"]
    assert latent["backend"] == "latent" and record["n_factors"] == 10
    assert record["n_factors_chosen_by"] == "fixed"
    for key in ("reconstruction_rmse", "mean_noise_variance", "em_iterations", "converged"):
        assert key in record
    # only the backend's own overrides reach it
    assert local[0]["benchmark"]["overrides"] == {}
    assert local[1]["benchmark"]["overrides"] == {"latent.n_factors": "10"}


def _fake_run_fit(bundle_path, out_dir, *, backend, seed, overrides, overwrite):
    from isograph.bundle import read_bundle
    from isograph.fixtures import naive_modules

    out_dir.mkdir(parents=True, exist_ok=overwrite)
    naive_modules(read_bundle(bundle_path)).to_parquet(out_dir / "modules.parquet", index=False)
    (out_dir / "backend").mkdir()
    (out_dir / "backend" / "calibration.json").write_text(json.dumps({"seed_seen": seed}))
    return {"wall_seconds": 0.1, "cpu_seconds": 0.1, "peak_rss_bytes": 2**20, "rss_before_fit_bytes": 2**19}


def test_seeds_get_their_own_stage_dataset_and_calibration(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_mod, "_run_fit", _fake_run_fit)
    results = bench_mod.run_benchmark_grid(
        suite="core_v1",
        backends=["baseline"],
        seeds=[1, 2],
        fixtures=["nonlinear"],
        root=tmp_path,
        show_progress=False,
    )
    assert [r["benchmark"]["stage"] for r in results] == ["core_v1-baseline-seed1", "core_v1-baseline-seed2"]
    hashes = {r["benchmark"]["fixtures"]["nonlinear"]["dataset_hash"] for r in results}
    assert len(hashes) == 2  # one generated dataset per seed
    for result, seed in zip(results, (1, 2), strict=True):
        record = json.loads(result["paths"]["calibration"].read_text())
        assert record["fixtures"]["nonlinear"] == {"seed_seen": seed}


def test_grid_refuses_bad_input_before_work(tmp_path):
    with pytest.raises(InputError, match="cluster must be"):
        bench_mod.run_benchmark_grid(suite="core_v1", backends=["baseline"], root=tmp_path, cluster="nope")
    with pytest.raises(InputError, match="--stage names one run"):
        bench_mod.run_benchmark_grid(
            suite="core_v1", backends=["baseline", "latent"], stage="x", root=tmp_path
        )
    with pytest.raises(InputError, match=r"unknown override key 'graph\.n_factors'"):
        bench_mod.run_benchmark_grid(
            suite="core_v1", backends=["baseline"], overrides={"graph.n_factors": "3"}, root=tmp_path
        )
    assert not (tmp_path / "benchmarks").exists()
