"""Markdown tables for the README from the side-by-side benchmark reports.

    python benchmarks/isograph_tables.py artifacts/reports/bench-core_v1-all-backends.json [...]
        [--stage-reports DIR]

Prints, per suite, one row per fixture with every backend's F_rr (and modules found / true),
the suite mean per backend, and each backend's median fit wall and peak RSS. With
``--stage-reports`` (the ``artifacts/reports`` folder of the benchmark's ``--root``), multiplex
fixtures also get per-role recall. Null fixtures (no planted module) show the number of
modules found, which are all spurious. A later report's row replaces an earlier one's for
the same suite, fixture, backend and seed (one backend re-measured after a change).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from statistics import mean, median
from typing import Any

ORDER = ("baseline", "latent", "graph", "wgcna", "vae")
ROLES = ("switch_only", "abundance_only", "coupled", "discordant")


def _rows(paths: list[Path]) -> list[dict[str, Any]]:
    # A later report replaces an earlier one's row of the same suite, fixture, backend and seed
    # (e.g. one backend re-measured after a change), keeping the first one's place.
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for path in paths:
        for r in json.loads(path.read_text())["rows"]:
            if r["method"] != "naive":
                rows[(r["suite"], r["fixture"], r["method"], r["seed"])] = r
    return list(rows.values())


def suite_tables(rows: list[dict[str, Any]]) -> str:
    """One markdown table per suite: F_rr (modules found/true) per fixture x backend."""
    out: list[str] = []
    by_suite: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_suite[row["suite"]].append(row)
    for suite, items in by_suite.items():
        methods = [m for m in ORDER if any(r["method"] == m for r in items)]
        fixtures = list(dict.fromkeys(r["fixture"] for r in items))
        cell = {(r["fixture"], r["method"]): r for r in items}
        null = all(r["modules"].endswith("/0") for r in items)
        head = "modules found (all spurious)" if null else "F_rr (modules found/true)"
        out.append(f"**{suite}** ({head}):\n")
        out.append("| fixture | genes x samples | " + " | ".join(methods) + " |")
        out.append("|---|---|" + "---|" * len(methods))
        for fixture in fixtures:
            shape = next(r["genes_x_samples"] for r in items if r["fixture"] == fixture)
            cells = []
            for m in methods:
                r = cell.get((fixture, m))
                if r is None:
                    cells.append("-")
                elif null:
                    cells.append(r["modules"].split("/")[0])
                else:
                    cells.append(f"{r['f_rr']:.3f} ({r['modules']})")
            out.append(f"| {fixture} | {shape} | " + " | ".join(cells) + " |")
        if not null:
            means = [mean(cell[(f, m)]["f_rr"] for f in fixtures if (f, m) in cell) for m in methods]
            best = max(means)
            shown = [f"**{v:.3f}**" if v == best else f"{v:.3f}" for v in means]
            out.append("| mean F_rr | | " + " | ".join(shown) + " |")
        walls = [median(cell[(f, m)]["wall_s"] for f in fixtures if (f, m) in cell) for m in methods]
        rss = [median(cell[(f, m)]["rss_mib"] for f in fixtures if (f, m) in cell) for m in methods]
        out.append("| median fit wall s | | " + " | ".join(f"{w:.1f}" for w in walls) + " |")
        out.append("| median peak RSS MiB | | " + " | ".join(f"{v:.0f}" for v in rss) + " |")
        out.append("")
    return "\n".join(out)


def role_table(stage_reports: Path, suite: str) -> str:
    """Per-role recall of every backend's multiplex fixtures (from the stage reports)."""
    out = ["| fixture | backend | " + " | ".join(ROLES) + " |", "|---|---|" + "---|" * len(ROLES)]
    for method in ORDER:
        path = stage_reports / f"{suite}-{method}-benchmark.json"
        if not path.is_file():
            continue
        for fixture, entry in json.loads(path.read_text())["fixtures"].items():
            recall = entry["scores"].get("role_recall") or {}
            if recall:
                cells = [f"{recall[r]:.2f}" if recall.get(r) is not None else "-" for r in ROLES]
                out.append(f"| {fixture} | {method} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("reports", nargs="+", type=Path, help="bench-*.json from isograph_bench.py")
    parser.add_argument("--stage-reports", type=Path, default=None, help="<root>/artifacts/reports")
    args = parser.parse_args(argv)
    rows = _rows(args.reports)
    print(suite_tables(rows))
    if args.stage_reports is not None:
        for suite in sorted({r["suite"] for r in rows if r["suite"].startswith(("multiplex", "xxlarge"))}):
            print(f"Role recall, {suite}:\n")
            print(role_table(args.stage_reports, suite))
            print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
