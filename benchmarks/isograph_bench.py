"""Print IsoGraph's benchmark figures for a fixture suite, next to the naive reference and WGCNA.

    python benchmarks/isograph_bench.py --suite core_v1 [--fixture NAME ...] [--backend baseline]
        [--peer wgcna] [--seed 0] [--root DIR] [--out FILE.json]

IsoGraph runs through :func:`isograph.benchmark.run_benchmark` (fixture generation, one fit per
fixture in a fresh child process: wall, CPU seconds, the child's peak RSS). With ``--peer wgcna``
R's ``blockwiseModules`` (``benchmarks/wgcna_peer.R``; defaults of ../shared/design/ANCHORS.md:
power 6, unsigned network and TOM, minModuleSize 20, mergeCutHeight 0.15, deepSplit 2,
maxBlockSize 5000, 2 threads) runs on the same feature matrix IsoGraph's fit sees
(``build_features(bundle)``, samples x features), timed by ``/usr/bin/time`` (wall, CPU, peak RSS
of the Rscript process, library loading included). WGCNA's grey module (label 0) becomes
``unassigned`` and both fits are scored by :func:`isograph.scoring.score_fit` against the same
universe and truth. The naive reference (correlation + average linkage cut at the true module
count + 1; computed in this process, so no RSS of its own) is shown for scale.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from isograph.backends.base import UNASSIGNED
from isograph.benchmark import run_benchmark
from isograph.bundle import read_bundle
from isograph.features import build_features
from isograph.scoring import score_fit
from omicsrun.atomic import write_json
from omicsrun.manifest import utc_now

R_SCRIPT = Path(__file__).with_name("wgcna_peer.R")
WGCNA_SETTINGS = {
    "power": 6,
    "networkType": "unsigned",
    "TOMType": "unsigned",
    "minModuleSize": 20,
    "mergeCutHeight": 0.15,
    "deepSplit": 2,
    "maxBlockSize": 5000,
    "numericLabels": True,
    "randomSeed": "WGCNA default (54321)",
    "nThreads": 2,
}
COLUMNS = ("recovery", "relevance", "f_rr", "ari", "nmi", "unassigned_fraction")


def run_wgcna(features: Any, *, threads: int = 2, timeout: float = 3600.0) -> dict[str, Any]:
    """Run ``wgcna_peer.R`` on ``features.matrix`` (n_samples, n_features); labels per feature."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        raise RuntimeError("--peer wgcna needs Rscript on PATH (R with the WGCNA package); none found")
    n_samples, n_features = features.matrix.shape
    timer = shutil.which("time", path="/usr/bin")
    with tempfile.TemporaryDirectory(prefix="isobench-wgcna-") as tmp:
        folder = Path(tmp)
        # (features, samples) row-major bytes are (samples, features) column-major, as R reads them.
        np.ascontiguousarray(features.matrix.T, dtype="<f4").tofile(folder / "x.f32")
        command = [rscript, "--vanilla", str(R_SCRIPT), str(folder / "x.f32"), str(n_samples)]
        command += [str(n_features), str(threads), str(folder / "labels.txt"), str(folder / "seconds.txt")]
        if timer is not None:
            command = [timer, "-f", "%e %U %S %M", "-o", str(folder / "time.txt"), *command]
        start = time.perf_counter()
        try:
            subprocess.run(command, check=True, capture_output=True, text=True, timeout=timeout)
        except subprocess.CalledProcessError as err:
            msg = f"WGCNA (Rscript) failed with exit code {err.returncode}:\n{err.stderr}"
            raise RuntimeError(msg) from err
        except subprocess.TimeoutExpired as err:
            raise RuntimeError(f"WGCNA (Rscript) ran past {timeout:.0f} s:\n{err.stderr}") from err
        wall = time.perf_counter() - start
        labels = np.loadtxt(folder / "labels.txt", dtype=np.int64, ndmin=1)
        r_seconds = float((folder / "seconds.txt").read_text())
        measured: dict[str, Any] = {"wall_seconds": wall, "cpu_seconds": None, "peak_rss_mib": None}
        if timer is not None:
            elapsed, user, system, max_kib = (folder / "time.txt").read_text().split()[-4:]
            measured = {
                "wall_seconds": float(elapsed),
                "cpu_seconds": float(user) + float(system),
                "peak_rss_mib": int(max_kib) / 1024,
            }
    if labels.shape != (n_features,):
        raise RuntimeError(f"WGCNA returned {labels.size} labels for {n_features} features")
    return {**measured, "blockwise_seconds": r_seconds, "labels": labels}


def wgcna_modules(gene_ids: np.ndarray, feature_genes: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """Gene table from feature labels: 0 (grey) -> unassigned; a gene takes its first assigned feature."""
    table = pd.DataFrame({"gene_id": feature_genes.astype(str), "label": labels})
    assigned = table[table["label"] != 0].drop_duplicates("gene_id")
    names = np.char.add("W", assigned["label"].to_numpy().astype(str))
    module_of = pd.Series(names, index=assigned["gene_id"].to_numpy())
    genes = pd.Index(gene_ids.astype(str))
    module_id = module_of.reindex(genes).fillna(UNASSIGNED).to_numpy()
    return pd.DataFrame({"gene_id": genes, "module_id": module_id})


def _row(fixture: str, method: str, scores: dict[str, Any], timing: dict[str, Any]) -> dict[str, Any]:
    return {
        "fixture": fixture,
        "method": method,
        **{c: scores[c] for c in COLUMNS},
        "modules": f"{scores['n_modules']}/{scores['n_true_modules']}",
        "wall_s": timing.get("wall_seconds"),
        "rss_mib": timing.get("peak_rss_mib"),
    }


def format_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table: fixture | method | scores | n_modules/true | wall s | peak RSS MiB."""
    head = ["fixture", "method", "recovery", "relevance", "F_rr", "ARI", "NMI", "unassigned"]
    head += ["n_modules/true", "wall s", "peak RSS MiB"]

    def cell(value: Any, digits: int) -> str:
        if value is None or (isinstance(value, float) and not np.isfinite(value)):
            return "-"
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["fixture"], r["method"], *(cell(r[c], 3) for c in COLUMNS), r["modules"]]
        cells += [cell(r["wall_s"], 1), cell(r["rss_mib"], 0)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """Run the suite (and the peer) under ``root``; return the JSON report."""
    result = run_benchmark(
        suite=args.suite,
        backend=args.backend,
        fixtures=args.fixture,
        stage=f"bench-{args.suite}-{args.backend}",
        seed=args.seed,
        root=root,
        overwrite=True,
    )
    bench, runtime = result["benchmark"], result["runtime"]
    report: dict[str, Any] = {
        "format": "isograph-bench-vs-peer",
        "created_utc": utc_now(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "suite": args.suite,
        "backend": args.backend,
        "peer": args.peer,
        "seed": args.seed,
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
        "isograph_measured": runtime["measured"],
        "naive_reference": bench["naive_reference"],
        "fixtures": {},
        "rows": [],
    }
    if args.peer == "wgcna":
        report["wgcna_settings"] = WGCNA_SETTINGS
        report["wgcna_measured"] = (
            "Rscript process under /usr/bin/time: wall, user+sys CPU, max RSS (library loading included); "
            "blockwise_seconds = blockwiseModules alone; input = build_features(bundle).matrix"
        )
    for fixture, entry in bench["fixtures"].items():
        timing = runtime["fixtures"][fixture]
        out = {"shape": entry["shape"], "isograph": {"scores": entry["scores"], "runtime": timing}}
        out["naive_reference"] = entry["naive_reference"]
        rows = [_row(fixture, f"isograph:{args.backend}", entry["scores"], timing)]
        if args.peer == "wgcna":
            print(f"[{fixture}] running WGCNA ...", file=sys.stderr, flush=True)
            bundle = read_bundle(root / entry["dataset"])
            features = build_features(bundle)
            peer = run_wgcna(features, threads=WGCNA_SETTINGS["nThreads"], timeout=args.peer_timeout)
            modules = wgcna_modules(bundle.gene_ids.to_numpy(), features.gene_ids, peer.pop("labels"))
            scores = score_fit(bundle, modules, seed=args.seed)
            peer["n_features"] = features.n_features
            out["wgcna"] = {"scores": scores, "runtime": peer}
            rows.append(_row(fixture, "wgcna", scores, peer))
        rows.append(_row(fixture, "naive", entry["naive_reference"], entry["naive_reference"]))
        report["fixtures"][fixture] = out
        report["rows"].extend(rows)
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", required=True, help="fixture suite, e.g. core_v1 or scale_v1")
    parser.add_argument("--fixture", action="append", default=None, help="fixture(s) of the suite")
    parser.add_argument("--backend", default="baseline", help="IsoGraph backend")
    parser.add_argument("--peer", choices=["wgcna"], default=None, help="peer tool to run as well")
    parser.add_argument("--seed", type=int, default=0, help="fixture, fit and permutation seed")
    parser.add_argument("--root", type=Path, default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON report here")
    parser.add_argument("--peer-timeout", type=float, default=3600.0, help="seconds per WGCNA run")
    args = parser.parse_args(argv)
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
