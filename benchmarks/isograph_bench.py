"""Print every IsoGraph backend side by side on fixture suites: F_rr, ARI, wall, peak RSS.

    python benchmarks/isograph_bench.py --suite core_v1 [--suite scale_v1 ...]
        [--backend baseline --backend latent --backend graph --backend wgcna] [--fixture NAME ...]
        [--seed 0] [--cluster serial|local|slurm|tcp://...] [--root DIR] [--out FILE.json]

Every backend runs through :func:`isograph.benchmark.run_benchmark_grid` (fixture generation,
one fit per fixture x backend x seed in a fresh child interpreter: wall and CPU seconds of the
fit, the child's peak RSS), fanned out on Dask by ``--cluster``. WGCNA is the ``wgcna``
backend (R's ``blockwiseModules`` through :mod:`isograph.rbridge`), so it sees the same
features and is scored the same way; its row also shows R's own time (``r_s``: pickSoftThreshold
+ blockwiseModules inside R) and the Rscript process time, so the adapter's overhead is
``wall - rscript_s``. The naive reference (correlation + average linkage cut at the true module
count + 1) is shown for scale.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from isograph.benchmark import run_benchmark_grid
from omicsrun.atomic import write_json
from omicsrun.manifest import utc_now

DEFAULT_BACKENDS = ("baseline", "latent", "graph", "wgcna")


def rows_of(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per suite x fixture x backend (+ one naive row per fixture)."""
    rows: list[dict[str, Any]] = []
    naive_done: set[tuple[str, str]] = set()
    for result in results:
        bench, runtime, calibration = result["benchmark"], result["runtime"], result["calibration"]
        for fixture, entry in bench["fixtures"].items():
            timing = runtime["fixtures"][fixture]
            record = calibration["fixtures"].get(fixture, {})
            scores, shape = entry["scores"], entry["shape"]
            rows.append(
                {
                    "suite": bench["suite"],
                    "fixture": fixture,
                    "genes_x_samples": f"{shape['n_genes']}x{shape['n_samples']}",
                    "method": bench["backend"],
                    "seed": bench["seed"],
                    "f_rr": scores["f_rr"],
                    "ari": scores["ari"],
                    "modules": f"{scores['n_modules']}/{scores['n_true_modules']}",
                    "unassigned": scores["unassigned_fraction"],
                    "wall_s": timing["wall_seconds"],
                    "rss_mib": timing["peak_rss_mib"],
                    "r_s": record.get("r_seconds"),
                    "rscript_s": record.get("rscript_seconds"),
                }
            )
            key = (bench["suite"], fixture)
            if key not in naive_done:
                naive_done.add(key)
                naive = entry["naive_reference"]
                rows.append(
                    {
                        **rows[-1],
                        "method": "naive",
                        "f_rr": naive["f_rr"],
                        "ari": naive["ari"],
                        "modules": f"{naive['n_modules']}/{naive['n_true_modules']}",
                        "unassigned": naive["unassigned_fraction"],
                        "wall_s": naive.get("wall_seconds"),
                        "rss_mib": None,
                        "r_s": None,
                        "rscript_s": None,
                    }
                )
    order = {name: i for i, name in enumerate([*DEFAULT_BACKENDS, "naive"])}
    rows.sort(key=lambda r: (r["suite"], r["fixture"], r["seed"], order.get(r["method"], 99), r["method"]))
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table, one row per fixture x method."""
    head = ["suite", "fixture", "genes x samples", "method", "F_rr", "ARI", "modules/true", "unassigned"]
    head += ["wall s", "peak RSS MiB", "R s", "Rscript s"]

    def cell(value: Any, digits: int) -> str:
        if value is None or (isinstance(value, float) and not np.isfinite(value)):
            return "-"
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["suite"], r["fixture"], r["genes_x_samples"], r["method"], cell(r["f_rr"], 3)]
        cells += [cell(r["ari"], 3), r["modules"], cell(r["unassigned"], 2), cell(r["wall_s"], 1)]
        cells += [cell(r["rss_mib"], 0), cell(r["r_s"], 1), cell(r["rscript_s"], 1)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """Run every suite through every backend under ``root``; return the JSON report."""
    results: list[dict[str, Any]] = []
    for suite in args.suite:
        print(f"[{suite}] {', '.join(args.backend)} on {args.cluster} ...", file=sys.stderr, flush=True)
        results += run_benchmark_grid(
            suite=suite,
            backends=args.backend,
            seeds=args.seed,
            fixtures=args.fixture,
            root=root,
            overwrite=True,
            cluster=args.cluster,
            n_workers=args.workers,
            show_progress=not args.no_progress,
        )
    rows = rows_of(results)
    return {
        "format": "isograph-bench-backends",
        "created_utc": utc_now(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
        "suites": args.suite,
        "backends": args.backend,
        "seeds": args.seed,
        "rows": rows,
        "calibration": {r["benchmark"]["stage"]: r["calibration"] for r in results},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", action="append", required=True, help="fixture suite (repeatable)")
    parser.add_argument("--fixture", action="append", default=None, help="fixture(s) of the suite")
    parser.add_argument("--backend", action="append", default=None, help="backend(s); default all four")
    parser.add_argument("--seed", action="append", type=int, default=None, help="seed(s); default 0")
    parser.add_argument("--cluster", default="serial", help="serial, local, slurm or tcp://host:port")
    parser.add_argument("--workers", type=int, default=None, help="Dask workers / SLURM jobs")
    parser.add_argument("--root", type=Path, default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON report here")
    parser.add_argument("--no-progress", action="store_true", help="no progress display")
    args = parser.parse_args(argv)
    args.backend = args.backend or list(DEFAULT_BACKENDS)
    args.seed = args.seed or [0]
    if args.root is None:
        with tempfile.TemporaryDirectory(prefix="isobench-") as tmp:
            report = run(args, Path(tmp))
    else:
        report = run(args, args.root)
    print(format_table(report["rows"]))
    if args.out is not None:
        write_json(args.out, report)
        print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
