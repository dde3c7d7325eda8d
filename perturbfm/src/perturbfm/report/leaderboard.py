"""``leaderboard.html``: every run of each split side by side, linked to its report.

The model of each split is picked on the validation metric (``val_rmse_delta``) only; test
metrics are shown for reading and never used to choose. Metric definitions are not repeated:
each header links to the definitions table of the runs' reports.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omicsrun import InputError
from omicsrun.atomic import write_text
from omicsrun.commit import commit_file
from perturbfm.report.html import _CSS, _direction, _table

SELECTION = ("validation", "val_rmse_delta")
COLUMNS = (
    ("scperturbench", "pcc_delta_centroid"),
    ("perturbench", "pds_l1"),
    ("perturbench", "rmse"),
    ("scperturbench", "mse"),
    ("perturbench", "rank_rmse"),
    ("scperturbench", "pcc_delta"),
)


def _runs_folder(runs_dir: str | os.PathLike[str]) -> Path:
    root = Path(runs_dir)
    if not root.is_dir():
        msg = f"--runs {root} is not a folder; expected a folder of run folders"
        raise InputError(msg)
    return root


def collect_runs(runs_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Summaries of the run folders directly under ``runs_dir`` (those with metrics.json)."""
    root = _runs_folder(runs_dir)
    out = []
    for run in sorted(p for p in root.iterdir() if (p / "metrics.json").is_file()):
        metrics = json.loads((run / "metrics.json").read_text())
        config = json.loads((run / "config.json").read_text()) if (run / "config.json").is_file() else {}
        cfg = config.get("config", {})
        model = cfg.get("model", {}).get("name") or cfg.get("kind", "external predictions")
        rel = {r["metric"]: r for r in (metrics.get("baseline_relative") or {}).get("rows", [])}
        out.append(
            {
                "run": run.name,
                "path": run.resolve(),
                "model": str(model),
                "split_hash": str(config.get("split_hash", cfg.get("split_hash", "?"))),
                "split_spec": cfg.get("split_spec", {}),
                "validation": (metrics.get("validation") or {}).get(SELECTION[1]),
                "values": {
                    name: metrics.get(panel, {}).get("global", {}).get(name) for panel, name in COLUMNS
                },
                "vs_mean": rel.get("pcc_delta_centroid", {}).get("vs_global_mean"),
                "warnings": len(metrics.get("warnings", [])),
                "registry": metrics.get("registry", {}),
            }
        )
    if not out:
        msg = f"no run folders (with metrics.json) under {root}"
        raise InputError(msg)
    return out


def render_leaderboard(runs: list[dict[str, Any]], *, base: Path) -> str:
    """HTML text of the leaderboard; links are relative to ``base`` (the page's folder)."""
    registry: Mapping[str, Any] = next((r["registry"] for r in runs if r["registry"]), {})
    by_split: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by_split.setdefault(r["split_hash"], []).append(r)
    parts = [
        "<h1>PerturbFM leaderboard</h1>",
        "<p class='note'>One table per split. &#9733; marks the run selected on the validation metric "
        f"<code>{SELECTION[1]}</code> (lower is better; validation cells of training groups); test "
        "columns are for reading only and never used to select. Sorted by the validation metric. "
        "Definitions: see the 'Metric definitions' table at the end of any run report.</p>",
    ]
    for split_hash, items in by_split.items():
        items = sorted(items, key=lambda r: (r["validation"] is None, r["validation"] or 0.0, r["model"]))
        chosen = items[0]["run"] if items[0]["validation"] is not None else None
        spec = json.dumps(items[0]["split_spec"], sort_keys=True)
        parts.append(f"<h2>split {html.escape(split_hash[:12])}</h2>")
        parts.append(f"<p class='note'>{html.escape(spec)}</p>")
        rows = []
        for r in items:
            rel = os.path.relpath(r["path"] / "report.html", base)
            link = f"<a href='{html.escape(rel)}' title='{html.escape(r['run'])}'>report</a>"
            star = "\u2605 " if r["run"] == chosen else ""
            rows.append(
                [
                    star + r["model"],
                    r["validation"],
                    *[r["values"][name] for _, name in COLUMNS],
                    r["vs_mean"],
                    r["warnings"],
                    link,
                ]
            )
        head = [
            "model",
            f"{SELECTION[1]} \u2193 (selection)",
            *[f"{name} {_direction(registry, name)}" for _, name in COLUMNS],
            "pcc_delta_centroid vs global_mean",
            "warnings",
            "report",
        ]
        parts.append(_table(rows, head, raw_cols={len(head) - 1}))
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>PerturbFM leaderboard</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )


def write_leaderboard(
    runs_dir: str | os.PathLike[str], out: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Collect the runs under ``runs_dir`` and write ``out`` (HTML).

    An existing ``out`` is refused unless ``overwrite`` and is replaced only by a complete
    new page; a second writer of the same file is refused (:func:`omicsrun.commit.commit_file`).
    """
    out = Path(out)
    if out.is_dir():
        msg = f"--out {out} is a folder; expected an .html file path"
        raise InputError(msg)
    root = _runs_folder(runs_dir)  # the input is named first, before the output is claimed
    # The page may sit beside the runs (``runs/leaderboard.html``), never inside one of them.
    run_dirs = [p for p in root.iterdir() if p.is_dir()]
    with commit_file(out, overwrite=overwrite, what="leaderboard", inputs=run_dirs) as tmp:
        runs = collect_runs(runs_dir)
        write_text(tmp, render_leaderboard(runs, base=out.parent.resolve()))
    return out
