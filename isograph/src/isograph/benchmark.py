"""Run a fixture suite through a backend, score it against the planted truth, and report.

Layout under ``root``::

    benchmarks/datasets/<suite>/<fixture>/            generated bundles (reused when they match)
    artifacts/benchmarks/<stage>/<fixture>/           fit outputs + run.log + snapshot record
    artifacts/reports/<stage>-benchmark.json          scores + naive reference + fixture shape
    artifacts/reports/<stage>-runtime-memory.json     wall, CPU seconds, peak RSS per fixture
    artifacts/reports/<stage>-calibration.json        the backend's calibration record per fixture

Fixtures x backends x seeds fan out with :func:`omicsrun.parallel.run_tasks` (``cluster``:
serial, a local Dask cluster, a scheduler address or SLURM); every task carries its own seed
and writes only its own folders, so the reports are the same whatever ran them.

Each fit runs in a fresh child process (a new Python interpreter), so its peak resident set size is its own
and not the parent's: the child reads the bundle, fits, writes, and reports its high-water
resident set size. On Linux that is ``VmHWM`` from ``/proc/self/status``, not ``ru_maxrss``:
the kernel carries the forking parent's RSS over ``exec`` into ``ru_maxrss``, so a parent that
has just generated a large fixture would otherwise be charged to the fit.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
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
from omicsrun.atomic import output_dir, write_json, write_text
from omicsrun.errors import check_seed
from omicsrun.manifest import package_versions, utc_now
from omicsrun.parallel import check_cluster, run_tasks
from omicsrun.readers import read_json_object

_HASH_FILE = ".content.sha256"  # hidden: not part of the bundle hash it records
_logger = logging.getLogger("isograph")

REPORT_FORMAT = "isograph-benchmark"
REPORT_FORMAT_VERSION = 1
_STAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _version() -> str:
    from isograph import __version__

    return __version__


def dataset_dir(root: Path, suite: str, fixture: str, *, tag: str = "") -> Path:
    """Where the benchmark keeps the generated bundle of one fixture (``tag``: e.g. ``-seed3``)."""
    return Path(root) / "benchmarks" / "datasets" / suite / f"{fixture}{tag}"


def ensure_dataset(root: Path, suite: str, fixture: str, *, seed: int, tag: str = "") -> tuple[Path, bool]:
    """Generate a fixture bundle under ``root`` unless a matching one is there.

    A bundle matches when its provenance records the same suite, fixture, seed, generator
    version and spec hash. Returns the folder and whether it was reused.
    """
    path = dataset_dir(root, suite, fixture, tag=tag)
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
            if cached_bundle_intact(path):
                return path, True
            _logger.warning("cached fixture %s failed its content-hash check; generating it again", path)
    with output_dir(path, overwrite=True, what="fixture bundle") as build:
        write_bundle(make_fixture(suite, fixture, seed=seed), build, overwrite=True)
        write_text(build / _HASH_FILE, bundle_hash(build) + "\n")
    return path, False


def cached_bundle_intact(path: Path) -> bool:
    """Whether a cached fixture bundle still has the content hash recorded when it was made."""
    recorded = path / _HASH_FILE
    if not recorded.is_file():
        return False
    return recorded.read_text().strip() == bundle_hash(path)


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
    # A new interpreter (not multiprocessing): it works inside daemonic Dask workers too, and
    # its peak RSS is its own. An InputError in the child comes back as one.
    payload = json.dumps(
        {
            "bundle_path": str(bundle_path),
            "out_dir": str(out_dir),
            "backend": backend,
            "seed": seed,
            "overrides": dict(overrides),
            "overwrite": overwrite,
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "isograph.benchmark", payload], capture_output=True, text=True, check=False
    )
    lines = done.stdout.strip().splitlines()
    answer = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    if done.returncode == 2 and "input_error" in answer:
        raise InputError(answer["input_error"])
    if done.returncode != 0 or "wall_seconds" not in answer:
        tail = "\n".join(done.stderr.strip().splitlines()[-20:])
        msg = f"benchmark fit of {bundle_path} with {backend} failed (exit {done.returncode}):\n{tail}"
        raise RuntimeError(msg)
    return answer


def _child_main(payload: str) -> int:
    args = json.loads(payload)
    try:
        timing = _fit_in_child(
            args["bundle_path"],
            args["out_dir"],
            args["backend"],
            int(args["seed"]),
            dict(args["overrides"]),
            overwrite=bool(args["overwrite"]),
        )
    except InputError as err:
        print(json.dumps({"input_error": str(err)}))
        return 2
    print(json.dumps(timing))
    return 0


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
    cluster: str = "serial",
    n_workers: int | None = None,
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
    cluster, n_workers
        Where the fixtures run (:func:`omicsrun.parallel.run_tasks`).
    stability
        When positive, refit each fixture on this many subsamples
        (:func:`isograph.stability.fixture_stability`) and write ``<stage>-stability.json``.

    Returns
    -------
    dict
        ``{"benchmark": ..., "runtime": ..., "calibration": ..., "paths": {...}}``.

    Raises
    ------
    InputError
        Unknown suite, fixture or backend; a bad stage name; an existing stage without overwrite.
    """
    return run_benchmark_grid(
        suite=suite,
        backends=[backend],
        seeds=[seed],
        fixtures=fixtures,
        stage=stage,
        root=root,
        overwrite=overwrite,
        overrides=overrides,
        show_progress=show_progress,
        cluster=cluster,
        n_workers=n_workers,
        stability=stability,
    )[0]


@dataclass(frozen=True)
class _Stage:
    stage: str
    backend: str
    seed: int
    overrides: dict[str, str]


@dataclass(frozen=True)
class _Task:
    root: str
    suite: str
    fixture: str
    stage: str
    backend: str
    seed: int
    overrides: dict[str, str]
    overwrite: bool
    data_tag: str
    out_dir: str  # where the fit is written: inside the stage's build folder
    final_dir: str  # where it will be once the stage is committed
    stability: int = 0  # subsamples for fixture_stability; 0: none


def run_benchmark_grid(
    *,
    suite: str,
    backends: Sequence[str],
    seeds: Sequence[int] = (0,),
    fixtures: Sequence[str] | None = None,
    stage: str | None = None,
    root: str | os.PathLike[str] = Path(),
    overwrite: bool = False,
    overrides: dict[str, str] | None = None,
    show_progress: bool = True,
    cluster: str = "serial",
    n_workers: int | None = None,
    stability: int = 0,
) -> list[dict[str, Any]]:
    """Fixtures x backends x seeds, fanned out with :func:`omicsrun.parallel.run_tasks`.

    Each (backend, seed) is one stage: ``stage`` (one backend and seed only) or
    ``<suite>-<backend>`` (``-seed<k>`` appended when several seeds run), with its own
    benchmark, runtime-memory and calibration reports. ``overrides`` keys name their backend
    (``latent.n_factors=8``) or ``features.``; each backend receives its own and the feature ones.
    Datasets are generated first, one per fixture and seed; the fits then run where ``cluster``
    says, each in a fresh child process. Results do not depend on ``cluster``.

    Returns
    -------
    list of dict
        One :func:`run_benchmark` result per stage, backends outer, seeds inner.
    """
    root = Path(root)
    names = suite_fixtures(suite)
    chosen = list(fixtures) if fixtures else names
    unknown = [f for f in chosen if f not in names]
    if unknown:
        msg = f"suite {suite!r} has no fixture {unknown[0]!r}; expected one of {names}"
        raise InputError(msg)
    cluster = check_cluster(cluster)
    backends = list(dict.fromkeys(backends))
    seeds = [check_seed(s) for s in dict.fromkeys(seeds)]
    if not backends or not seeds:
        msg = "benchmark needs at least one backend and one seed"
        raise InputError(msg)
    if stage is not None and len(backends) * len(seeds) > 1:
        msg = "--stage names one run; leave it out when several backends or seeds run"
        raise InputError(msg)
    overrides = {str(k): str(v) for k, v in (overrides or {}).items()}
    stages: list[_Stage] = []
    for backend in backends:
        own = {k: v for k, v in overrides.items() if k.startswith(("features.", f"{backend}."))}
        foreign = [k for k in overrides if k not in own and k.split(".")[0] not in backends]
        if foreign or len(backends) == 1:
            own = overrides  # let resolve_configs name the bad key
        # Unknown backend or override key fails here, before any fixture is generated.
        resolve_configs(backend, own)
        for seed in seeds:
            name = stage or (f"{suite}-{backend}" + (f"-seed{seed}" if len(seeds) > 1 else ""))
            stages.append(_Stage(name, backend, seed, own))
    checked = {st.stage: _check_stage(root, st.stage, overwrite=overwrite) for st in stages}
    # one dataset per fixture and seed (several seeds: one folder each)
    tags = {seed: (f"-seed{seed}" if len(seeds) > 1 else "") for seed in seeds}
    # Each stage is built aside and replaces an earlier one only when all its fits are done.
    with ExitStack() as stack:
        builds = {
            st.stage: stack.enter_context(
                output_dir(checked[st.stage][0], overwrite=overwrite, what="benchmark stage")
            )
            for st in stages
        }
        tasks = [
            _Task(
                str(root),
                suite,
                fixture,
                st.stage,
                st.backend,
                st.seed,
                st.overrides,
                overwrite,
                tags[st.seed],
                str(builds[st.stage] / fixture),
                str(checked[st.stage][0] / fixture),
                stability,
            )
            for st in stages
            for fixture in chosen
        ]
        outcomes = _run_grid(tasks, chosen, seeds, tags, root, suite, cluster, n_workers, show_progress)
    results = []
    for st in stages:
        per_fixture = {t.fixture: o for t, o in zip(tasks, outcomes, strict=True) if t.stage == st.stage}
        results.append(_write_stage_reports(root, suite, st, chosen, per_fixture, checked[st.stage]))
    return results


def _run_grid(
    tasks: list[_Task],
    chosen: list[str],
    seeds: list[int],
    tags: dict[int, str],
    root: Path,
    suite: str,
    cluster: str,
    n_workers: int | None,
    show_progress: bool,  # noqa: FBT001 - private helper
) -> list[dict[str, Any]]:
    with _progress(show_progress) as progress:
        prep = progress.add_task(f"{suite}: preparing data", total=len(chosen) * len(seeds))
        for seed in seeds:
            for fixture in chosen:
                ensure_dataset(root, suite, fixture, seed=seed, tag=tags[seed])
                progress.advance(prep)
        task_bar = progress.add_task(f"{suite}: {len(tasks)} fits ({cluster})", total=len(tasks))

        def advance(done: int, total: int) -> None:
            progress.update(task_bar, completed=done, total=total)

        return run_tasks(_bench_task, tasks, cluster=cluster, n_workers=n_workers, progress=advance)


def _bench_task(task: _Task) -> dict[str, Any]:
    """One fixture x backend x seed: fit in a child process, score, write the fixture's files."""
    root = Path(task.root)
    version = _version()
    log: list[str] = [
        f"{utc_now()} stage={task.stage} suite={task.suite} fixture={task.fixture} "
        f"backend={task.backend} seed={task.seed}"
    ]
    data_path = dataset_dir(root, task.suite, task.fixture, tag=task.data_tag)
    bundle = read_bundle(data_path)
    log.append(f"{utc_now()} dataset {data_path}")
    start = time.perf_counter()
    naive = score_fit(bundle, naive_modules(bundle), seed=task.seed)
    naive["wall_seconds"] = time.perf_counter() - start
    out_dir = Path(task.out_dir)
    timing = _run_fit(
        data_path,
        out_dir,
        backend=task.backend,
        seed=task.seed,
        overrides=task.overrides,
        overwrite=task.overwrite,
    )
    log.append(
        f"{utc_now()} fit done: wall {timing['wall_seconds']:.2f} s, "
        f"cpu {timing['cpu_seconds']:.2f} s, peak RSS {timing['peak_rss_bytes'] / 2**20:.0f} MiB"
    )
    backend_log = out_dir / "run.log"
    if backend_log.is_file():  # the backend's own messages (R's, for wgcna)
        log.extend(backend_log.read_text().splitlines())
    calibration_path = out_dir / "backend" / "calibration.json"
    calibration = json.loads(calibration_path.read_text()) if calibration_path.is_file() else {}
    modules, roles = _read_fit(out_dir)
    scores = score_fit(bundle, modules, roles, seed=task.seed)
    stability = None
    if task.stability > 0:
        from isograph.stability import fixture_stability

        stability = fixture_stability(
            bundle,
            modules,
            n_resamples=task.stability,
            backend=task.backend,
            seed=task.seed,
            overrides=task.overrides,
        )
    entry: dict[str, Any] = {
        "shape": _shape(bundle),
        "description": bundle.description,
        "dataset": os.fspath(data_path.relative_to(root)),
        "dataset_hash": bundle_hash(data_path),
        "artifacts": os.fspath(Path(task.final_dir).relative_to(root)),
        "scores": scores,
        "naive_reference": naive,
    }
    if _shape(bundle)["n_true_modules"] == 0:  # a null fixture: everything found is spurious
        entry["null_calibration"] = _null_calibration(out_dir, modules)
    fixture_runtime = {
        **timing,
        "peak_rss_mib": timing["peak_rss_bytes"] / 2**20,
        "n_genes": bundle.n_genes,
        "n_samples": bundle.n_samples,
    }
    log.append(
        f"{utc_now()} scores: recovery {scores['recovery']:.3f} relevance {scores['relevance']:.3f} "
        f"f_rr {scores['f_rr']:.3f} ari {scores['ari']:.3f} (naive f_rr {naive['f_rr']:.3f})"
    )
    snapshot = f"snapshot-{task.stage}-{task.fixture}-{task.backend}-v{version}-seed{task.seed}.json"
    write_json(
        out_dir / snapshot,
        {
            "stage": task.stage,
            "fixture": task.fixture,
            "backend": task.backend,
            "isograph_version": version,
            "seed": task.seed,
            **entry,
            "runtime": fixture_runtime,
        },
    )
    write_text(out_dir / "run.log", "\n".join(log) + "\n")
    return {"entry": entry, "runtime": fixture_runtime, "calibration": calibration, "stability": stability}


def _write_stage_reports(
    root: Path,
    suite: str,
    st: _Stage,
    chosen: list[str],
    per_fixture: dict[str, dict[str, Any]],
    paths: tuple[Path, Path, Path],
) -> dict[str, Any]:
    stage_dir, bench_json, runtime_json = paths
    calibration_json = bench_json.with_name(f"{st.stage}-calibration.json")
    bench: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "format_version": REPORT_FORMAT_VERSION,
        "stage": st.stage,
        "suite": suite,
        "backend": st.backend,
        "seed": st.seed,
        "overrides": st.overrides,
        "isograph_version": _version(),
        "generator_version": GENERATOR_VERSION,
        "created_utc": utc_now(),
        "scores_defined_in": "isograph.scoring (Saelens, Cannoodt & Saeys 2018; ANCHORS.md)",
        "naive_reference": "CLR switch coordinate, covariates regressed out, |Pearson r|, "
        "average linkage cut at n_true_modules + 1",
        "fixtures": {f: per_fixture[f]["entry"] for f in chosen},
    }
    runtime: dict[str, Any] = {
        "format": "isograph-runtime-memory",
        "format_version": 1,
        "stage": st.stage,
        "suite": suite,
        "backend": st.backend,
        "seed": st.seed,
        "measured": "each fit in a fresh child interpreter: wall and CPU (user+sys, all threads) "
        "seconds of fit_bundle; peak_rss_bytes = the child's own high-water RSS (VmHWM: imports, "
        "bundle read, fit, write)",
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
        "versions": package_versions(("isograph",)),
        "fixtures": {f: per_fixture[f]["runtime"] for f in chosen},
    }
    calibration: dict[str, Any] = {
        "format": "isograph-calibration",
        "format_version": 1,
        "stage": st.stage,
        "suite": suite,
        "backend": st.backend,
        "seed": st.seed,
        "fixtures": {f: per_fixture[f]["calibration"] for f in chosen},
    }
    write_json(bench_json, bench)
    write_json(runtime_json, runtime)
    write_json(calibration_json, calibration)
    stabilities = {f: per_fixture[f]["stability"] for f in chosen if per_fixture[f].get("stability")}
    if stabilities:
        write_json(
            bench_json.with_name(f"{st.stage}-stability.json"),
            {
                "stage": st.stage,
                "suite": suite,
                "backend": st.backend,
                "seed": st.seed,
                "fixtures": stabilities,
            },
        )
    return {
        "benchmark": bench,
        "runtime": runtime,
        "calibration": calibration,
        "paths": {
            "benchmark": bench_json,
            "runtime": runtime_json,
            "calibration": calibration_json,
            "artifacts": stage_dir,
        },
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


if __name__ == "__main__":  # the child process of _run_fit
    raise SystemExit(_child_main(sys.argv[1]))
