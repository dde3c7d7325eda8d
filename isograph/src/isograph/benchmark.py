"""Run a fixture suite through a backend, score it against the planted truth, and report.

Layout under ``root``::

    benchmarks/datasets/<suite>/<fixture>/            generated bundles (reused when they match)
    artifacts/benchmarks/<stage>/<fixture>/           fit outputs + run.log + snapshot record
    artifacts/reports/<stage>-benchmark.json          scores + naive reference + fixture shape
    artifacts/reports/<stage>-runtime-memory.json     wall, CPU seconds, peak RSS per fixture

Each fit runs in a fresh child process (``spawn``), so its peak resident set size is its own
and not the parent's: the child reads the bundle, fits, writes, and reports its high-water
resident set size. On Linux that is ``VmHWM`` from ``/proc/self/status``, not ``ru_maxrss``:
the kernel carries the forking parent's RSS over ``exec`` into ``ru_maxrss``, so a parent that
has just generated a large fixture would otherwise be charged to the fit.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import re
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

from isograph.bundle import Bundle, read_bundle, write_bundle
from isograph.bundle.io import bundle_hash
from isograph.fit import resolve_configs
from isograph.fixtures import GENERATOR_VERSION, fixture_spec, make_fixture, naive_modules, suite_fixtures
from isograph.fixtures.generate import spec_hash
from isograph.scoring import score_fit
from omicsrun import InputError
from omicsrun.atomic import write_json, write_text
from omicsrun.errors import check_seed
from omicsrun.manifest import package_versions, utc_now
from omicsrun.readers import read_json_object

REPORT_FORMAT = "isograph-benchmark"
REPORT_FORMAT_VERSION = 1
_STAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _version() -> str:
    from isograph import __version__

    return __version__


def dataset_dir(root: Path, suite: str, fixture: str) -> Path:
    """Where the benchmark keeps the generated bundle of one fixture."""
    return Path(root) / "benchmarks" / "datasets" / suite / fixture


def ensure_dataset(root: Path, suite: str, fixture: str, *, seed: int) -> tuple[Path, bool]:
    """Generate a fixture bundle under ``root`` unless a matching one is there.

    A bundle matches when its provenance records the same suite, fixture, seed, generator
    version and spec hash. Returns the folder and whether it was reused.
    """
    path = dataset_dir(root, suite, fixture)
    try:
        provenance = read_json_object(path / "manifest.json", what="bundle manifest").get("provenance")
    except InputError:  # missing or unreadable: generate afresh
        provenance = None
    if isinstance(provenance, dict):
        wanted = {
            "suite": suite,
            "fixture": fixture,
            "seed": str(seed),
            "generator_version": str(GENERATOR_VERSION),
            "spec_hash": spec_hash(fixture_spec(suite, fixture)),
        }
        if all(provenance.get(k) == v for k, v in wanted.items()):
            return path, True
    write_bundle(make_fixture(suite, fixture, seed=seed), path, overwrite=True)
    return path, False


def peak_rss_bytes() -> int:
    """High-water resident set size of this process since its ``exec``, in bytes.

    ``VmHWM`` from ``/proc/self/status`` where it exists (Linux); otherwise ``ru_maxrss``
    (which on Linux would also include the forking parent's RSS at ``exec`` time).
    """
    import resource

    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # reported in kB
    scale = 1 if platform.system() == "Darwin" else 1024  # macOS reports bytes, Linux KiB
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale)


def _fit_in_child(
    bundle_path: str, out_dir: str, backend: str, seed: int, overrides: dict[str, str], *, overwrite: bool
) -> dict[str, Any]:
    """Child-process body: read, fit, write; report this process's own time and memory."""
    import resource

    from isograph.fit import fit_bundle, write_fit

    bundle = read_bundle(bundle_path)
    rss_before = peak_rss_bytes()
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    result = fit_bundle(bundle, backend=backend, seed=seed, overrides=overrides)
    wall = time.perf_counter() - start
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    write_start = time.perf_counter()
    write_fit(result, out_dir, overwrite=overwrite)
    write_seconds = time.perf_counter() - write_start
    return {
        "wall_seconds": wall,
        "cpu_seconds": (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime),
        "write_seconds": write_seconds,
        "peak_rss_bytes": peak_rss_bytes(),
        "rss_before_fit_bytes": int(rss_before),
    }


def _run_fit(
    bundle_path: Path, out_dir: Path, *, backend: str, seed: int, overrides: dict[str, str], overwrite: bool
) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        future = pool.submit(
            _fit_in_child, str(bundle_path), str(out_dir), backend, seed, dict(overrides), overwrite=overwrite
        )
        return future.result()


def _read_fit(out_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    modules = pd.read_parquet(out_dir / "modules.parquet")
    roles_path = out_dir / "module_gene_roles.parquet"
    roles = pd.read_parquet(roles_path) if roles_path.is_file() else None
    return modules, roles


def _null_calibration(out_dir: Path, modules: pd.DataFrame) -> dict[str, Any]:
    from isograph.nulls import null_report

    config = json.loads((out_dir / "fit_config.json").read_text())
    return null_report(modules, pd.read_parquet(out_dir / "traits.parquet"), config.get("diagnostics", {}))


def _shape(bundle: Bundle) -> dict[str, Any]:
    n_tx = bundle.transcripts_per_gene()
    truth = bundle.truth.get("truth_modules")
    return {
        "n_genes": bundle.n_genes,
        "n_transcripts": bundle.n_transcripts,
        "n_samples": bundle.n_samples,
        "n_multi_isoform_genes": int((n_tx >= 2).sum()),
        "genes_per_sample": round(bundle.n_genes / bundle.n_samples, 2),
        "n_true_modules": int(truth["module_id"].nunique()) if truth is not None else 0,
        "n_module_genes": len(truth) if truth is not None else 0,
        "multiplex": bundle.is_multiplex,
    }


def _check_stage(root: Path, stage: str, *, overwrite: bool) -> tuple[Path, Path, Path]:
    if not _STAGE_NAME.match(stage):
        msg = f"stage name must be letters, digits, '.', '_' or '-'; found {stage!r}"
        raise InputError(msg)
    reports = root / "artifacts" / "reports"
    stage_dir = root / "artifacts" / "benchmarks" / stage
    bench_json = reports / f"{stage}-benchmark.json"
    runtime_json = reports / f"{stage}-runtime-memory.json"
    existing = [p for p in (bench_json, runtime_json) if p.exists()]
    if stage_dir.is_dir() and any(stage_dir.iterdir()):
        existing.append(stage_dir)
    if existing and not overwrite:
        msg = (
            f"benchmark stage {stage!r} already has results ({existing[0]}); "
            "choose another --stage or pass --overwrite"
        )
        raise InputError(msg)
    return stage_dir, bench_json, runtime_json


def _progress(enabled: bool):  # noqa: FBT001 - private helper
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )


def run_benchmark(
    *,
    suite: str,
    backend: str = "baseline",
    fixtures: Sequence[str] | None = None,
    stage: str | None = None,
    seed: int = 0,
    root: str | os.PathLike[str] = Path(),
    overwrite: bool = False,
    overrides: dict[str, str] | None = None,
    show_progress: bool = True,
    stability: int = 0,
) -> dict[str, Any]:
    """Generate (or reuse), fit and score every fixture of a suite; write the reports.

    Parameters
    ----------
    suite
        A suite name from :data:`isograph.fixtures.SUITES`.
    backend
        A registered backend name.
    fixtures
        Subset of the suite's fixtures (default all), in the order given.
    stage
        Name of this run; default ``f"{suite}-{backend}"``.
    seed
        Seed of fixture generation, of the fit and of the permuted-truth scores.
    root
        Folder under which ``benchmarks/`` and ``artifacts/`` live.
    overwrite
        Replace an earlier run of the same stage (refused otherwise).
    overrides
        Dotted ``key=value`` overrides passed to ``fit_bundle``.
    show_progress
        Draw a progress display on stderr.
    stability
        When positive, refit each fixture on this many subsamples
        (:func:`isograph.stability.fixture_stability`) and write ``<stage>-stability.json``.

    Returns
    -------
    dict
        ``{"benchmark": <benchmark report>, "runtime": <runtime report>, "paths": {...}}``.

    Raises
    ------
    InputError
        Unknown suite, fixture or backend; a bad stage name; an existing stage without overwrite.
    """
    root = Path(root)
    names = suite_fixtures(suite)
    chosen = list(fixtures) if fixtures else names
    unknown = [f for f in chosen if f not in names]
    if unknown:
        msg = f"suite {suite!r} has no fixture {unknown[0]!r}; expected one of {names}"
        raise InputError(msg)
    seed = check_seed(seed)
    overrides = {str(k): str(v) for k, v in (overrides or {}).items()}
    # Unknown backend or override key fails here, before any fixture is generated.
    resolve_configs(backend, overrides)
    stage = stage or f"{suite}-{backend}"
    stage_dir, bench_json, runtime_json = _check_stage(root, stage, overwrite=overwrite)
    if overwrite and stage_dir.exists():
        shutil.rmtree(stage_dir)

    version = _version()
    bench: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "format_version": REPORT_FORMAT_VERSION,
        "stage": stage,
        "suite": suite,
        "backend": backend,
        "seed": seed,
        "overrides": overrides,
        "isograph_version": version,
        "generator_version": GENERATOR_VERSION,
        "created_utc": utc_now(),
        "scores_defined_in": "isograph.scoring (Saelens, Cannoodt & Saeys 2018; ANCHORS.md)",
        "naive_reference": "CLR switch coordinate, covariates regressed out, |Pearson r|, "
        "average linkage cut at n_true_modules + 1",
        "fixtures": {},
    }
    runtime: dict[str, Any] = {
        "format": "isograph-runtime-memory",
        "format_version": 1,
        "stage": stage,
        "suite": suite,
        "backend": backend,
        "seed": seed,
        "measured": "each fit in a fresh spawned child process: wall and CPU (user+sys, all threads) "
        "seconds of fit_bundle; peak_rss_bytes = the child's own high-water RSS (VmHWM: imports, "
        "bundle read, fit, write)",
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
        "versions": package_versions(("isograph",)),
        "fixtures": {},
    }
    stability_report: dict[str, Any] = {}
    with _progress(show_progress) as progress:
        task = progress.add_task(f"{stage}", total=len(chosen))
        for fixture in chosen:
            log: list[str] = [
                f"{utc_now()} stage={stage} suite={suite} fixture={fixture} backend={backend} seed={seed}"
            ]
            progress.update(task, description=f"{fixture}: preparing data")
            data_path, reused = ensure_dataset(root, suite, fixture, seed=seed)
            bundle = read_bundle(data_path)
            log.append(f"{utc_now()} dataset {data_path} ({'reused' if reused else 'generated'})")
            progress.update(task, description=f"{fixture}: naive reference")
            start = time.perf_counter()
            naive = score_fit(bundle, naive_modules(bundle), seed=seed)
            naive["wall_seconds"] = time.perf_counter() - start
            progress.update(task, description=f"{fixture}: fitting ({backend})")
            out_dir = stage_dir / fixture
            timing = _run_fit(
                data_path, out_dir, backend=backend, seed=seed, overrides=overrides, overwrite=overwrite
            )
            log.append(
                f"{utc_now()} fit done: wall {timing['wall_seconds']:.2f} s, "
                f"cpu {timing['cpu_seconds']:.2f} s, peak RSS {timing['peak_rss_bytes'] / 2**20:.0f} MiB"
            )
            progress.update(task, description=f"{fixture}: scoring")
            modules, roles = _read_fit(out_dir)
            scores = score_fit(bundle, modules, roles, seed=seed)
            shape = _shape(bundle)
            entry: dict[str, Any] = {
                "shape": shape,
                "description": bundle.description,
                "dataset": os.fspath(data_path.relative_to(root)),
                "dataset_hash": bundle_hash(data_path),
                "artifacts": os.fspath(out_dir.relative_to(root)),
                "scores": scores,
                "naive_reference": naive,
            }
            if stability > 0:
                from isograph.stability import fixture_stability

                progress.update(task, description=f"{fixture}: stability ({stability} subsamples)")
                stability_report[fixture] = fixture_stability(
                    bundle, modules, n_resamples=stability, backend=backend, seed=seed, overrides=overrides
                )
            if shape["n_true_modules"] == 0:  # a null fixture: everything found is spurious
                entry["null_calibration"] = _null_calibration(out_dir, modules)
            bench["fixtures"][fixture] = entry
            runtime["fixtures"][fixture] = {
                **timing,
                "peak_rss_mib": timing["peak_rss_bytes"] / 2**20,
                "n_genes": bundle.n_genes,
                "n_samples": bundle.n_samples,
            }
            log.append(
                f"{utc_now()} scores: recovery {scores['recovery']:.3f} relevance {scores['relevance']:.3f} "
                f"f_rr {scores['f_rr']:.3f} ari {scores['ari']:.3f} (naive f_rr {naive['f_rr']:.3f})"
            )
            snapshot = f"snapshot-{stage}-{fixture}-{backend}-v{version}-seed{seed}.json"
            write_json(
                out_dir / snapshot,
                {
                    "stage": stage,
                    "fixture": fixture,
                    "backend": backend,
                    "isograph_version": version,
                    "seed": seed,
                    **entry,
                    "runtime": runtime["fixtures"][fixture],
                },
            )
            write_text(out_dir / "run.log", "\n".join(log) + "\n")
            progress.advance(task)
        progress.update(task, description=f"{stage}: done")
    write_json(bench_json, bench)
    write_json(runtime_json, runtime)
    if stability > 0:
        write_json(
            bench_json.with_name(f"{stage}-stability.json"),
            {"stage": stage, "suite": suite, "backend": backend, "seed": seed, "fixtures": stability_report},
        )
    return {
        "benchmark": bench,
        "runtime": runtime,
        "paths": {"benchmark": bench_json, "runtime": runtime_json, "artifacts": stage_dir},
    }


def summary_table(report: dict[str, Any], runtime: dict[str, Any] | None = None) -> pd.DataFrame:
    """One row per fixture: size, main scores, naive F_rr, and (when given) wall and peak RSS."""
    rows = []
    for fixture, entry in report["fixtures"].items():
        scores, shape = entry["scores"], entry["shape"]
        row = {
            "fixture": fixture,
            "genes": shape["n_genes"],
            "samples": shape["n_samples"],
            "recovery": scores["recovery"],
            "relevance": scores["relevance"],
            "f_rr": scores["f_rr"],
            "ari": scores["ari"],
            "n_modules": scores["n_modules"],
            "n_true": scores["n_true_modules"],
            "naive_f_rr": entry["naive_reference"]["f_rr"],
        }
        if "null_calibration" in entry:
            row["spurious_per_10k"] = entry["null_calibration"]["spurious_modules_per_10k_features"]
            row["trait_p05_rate"] = entry["null_calibration"]["trait_rejection_rate"]
        if runtime is not None and fixture in runtime["fixtures"]:
            row["wall_s"] = runtime["fixtures"][fixture]["wall_seconds"]
            row["peak_rss_mib"] = runtime["fixtures"][fixture]["peak_rss_mib"]
        rows.append(row)
    return pd.DataFrame(rows)
