"""The end-to-end demo: synthetic data and the real development set, frozen splits, every
baseline with full metric panels and a report per run, and a baseline x split summary table.

``run_demo(out_dir)`` writes::

    out_dir/
      synthetic/            dataset artifact (make_synthetic)
      devel/                dataset artifact imported from perturbench_devel/devel.h5ad
      splits/               the split store (one JSON per split, named by its hash)
      runs/<run_id>/        one run folder per (split, baseline): metrics, calibration, report.html
      summary.md            the table (markdown)
      summary.json          the table plus the split hashes and the run folder of each row
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from omicsrun import InputError
from omicsrun.atomic import check_output_dir, write_json, write_text
from omicsrun.testing import shared_data_dir

DEVEL_RELPATH = "perturbench_devel/devel.h5ad"
SUMMARY_COLUMNS = (
    ("pcc_delta", "scperturbench", "pcc_delta", "higher"),
    ("rmse", "perturbench", "rmse", "lower"),
    ("rank_rmse", "perturbench", "rank_rmse", "lower"),
    ("edistance", "scperturbench", "edistance", "lower"),
    ("coverage@0.9", "uncertainty", "0.9", "closer to 0.9"),
)
_MARKER = "summary.json"


def _demo_splits(devel_path: Path | None) -> list[dict[str, Any]]:
    splits: list[dict[str, Any]] = [
        {
            "dataset": "synthetic",
            "label": "synthetic combo",
            "spec": {"name": "combo", "holdout_fraction": 0.5},
        },
    ]
    if devel_path is not None:
        splits += [
            {
                "dataset": "devel",
                "label": "devel combo (Norman K562)",
                "spec": {"name": "combo", "context": "k562"},
            },
            {
                "dataset": "devel",
                "label": "devel context_ood (U87MG held out)",
                "spec": {"name": "context_ood", "holdout_contexts": ["U87MG"]},
            },
        ]
    return splits


def _prepare_out(out_dir: Path, *, overwrite: bool) -> None:
    if out_dir.is_dir() and any(out_dir.iterdir()) and overwrite:
        if not (out_dir / _MARKER).is_file():
            msg = (
                f"--overwrite refuses to clear {out_dir}: it does not look like a demo folder (no {_MARKER})"
            )
            raise InputError(msg)
        shutil.rmtree(out_dir)
    check_output_dir(out_dir, overwrite=False, what="demo")
    out_dir.mkdir(parents=True, exist_ok=True)


def _combo_subset_score(metrics: dict[str, Any], labels: dict[str, Any], n_seen: int) -> float | None:
    """Cell-weighted-free mean PCC-delta over held-out combinations with ``n_seen`` singles seen."""
    per = metrics["scperturbench"]["per_perturbation"]
    vals = [
        per[p]["pcc_delta"]
        for p, k in labels.items()
        if k == n_seen and p in per and per[p]["pcc_delta"] is not None
    ]
    return float(np.mean(vals)) if vals else None


def summary_markdown(rows: list[dict[str, Any]]) -> str:
    """The baseline x split table as GitHub markdown."""
    cols = [c[0] for c in SUMMARY_COLUMNS] + ["pcc_delta (combos, both singles seen)"]
    lines = ["| split | baseline | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 2)]
    for r in rows:
        vals = [r.get(c) for c in cols]
        cells = ["" if v is None else f"{v:.3f}" for v in vals]
        lines.append(f"| {r['split']} | {r['baseline']} | " + " | ".join(cells) + " |")
    directions = ", ".join(f"{c[0]}: {c[3]}" for c in SUMMARY_COLUMNS)
    return "\n".join(lines) + f"\n\nBetter is {directions}.\n"


def run_demo(
    out_dir: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    baselines: list[str] | None = None,
    include_devel: bool | None = None,
    synthetic_params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the demo into ``out_dir`` and return the summary.

    Parameters
    ----------
    out_dir
        New folder (an earlier demo folder is replaced only with ``overwrite``).
    overwrite
        Replace an earlier demo in ``out_dir``.
    baselines
        Models to run (default: every registered model).
    include_devel
        Use ``../shared/data/perturbench_devel/devel.h5ad`` (default: when it exists).
    synthetic_params
        Keyword arguments for :func:`perturbfm.data.synthetic.make_synthetic`.

    Returns
    -------
    dict
        ``rows`` (one per split x baseline), ``markdown``, ``splits`` (label -> hash),
        ``seconds`` and ``paths``.
    """
    from perturbfm.data.artifact import dataset_hash, save_dataset
    from perturbfm.data.synthetic import make_synthetic
    from perturbfm.models import available_models
    from perturbfm.runs import train_baseline
    from perturbfm.splits import SplitStore, create_split

    start = time.perf_counter()
    out = Path(out_dir)
    names = baselines or available_models()
    devel_path = shared_data_dir() / DEVEL_RELPATH
    if include_devel is None:
        include_devel = devel_path.is_file()
    if include_devel and not devel_path.is_file():
        msg = f"development set {devel_path} not found; set SHARED_DATA_DIR or pass include_devel=False"
        raise InputError(msg)
    _prepare_out(out, overwrite=overwrite)

    datasets: dict[str, Any] = {}
    ds = make_synthetic(
        **{
            "n_obs": 1500,
            "n_genes": 100,
            "n_contexts": 3,
            "n_perts": 16,
            "seed": 0,
            **(synthetic_params or {}),
        }
    )
    save_dataset(ds, out / "synthetic")
    datasets["synthetic"] = ds
    if include_devel:
        from perturbfm.data.h5ad import import_h5ad

        dev = import_h5ad(
            devel_path, pert_key="perturbation", context_key="cell_type", control_label="control"
        )
        save_dataset(dev, out / "devel")
        datasets["devel"] = dev

    store = SplitStore(root=out / "splits")
    rows: list[dict[str, Any]] = []
    split_hashes: dict[str, str] = {}
    for item in _demo_splits(devel_path if include_devel else None):
        data_dir = out / item["dataset"]
        split = create_split(
            datasets[item["dataset"]], item["spec"], seed=0, data_hash=dataset_hash(data_dir)
        )
        store.save(split)
        split_hashes[item["label"]] = split.frozen_hash
        for name in names:
            run_dir = train_baseline(
                data_dir=data_dir,
                split_hash=split.frozen_hash,
                baseline=name,
                runs_root=out / "runs",
                seed=0,
                split_dir=out / "splits",
            )
            metrics = json.loads((run_dir / "metrics.json").read_text())
            row: dict[str, Any] = {"split": item["label"], "split_hash": split.frozen_hash, "baseline": name}
            for col, panel, key, _ in SUMMARY_COLUMNS:
                block = metrics[panel]["coverage"] if panel == "uncertainty" else metrics[panel]["global"]
                row[col] = block.get(key)
            if split.spec["name"] == "combo":
                row["pcc_delta (combos, both singles seen)"] = _combo_subset_score(metrics, split.labels, 2)
            row["run_dir"] = str(run_dir.relative_to(out))
            rows.append(row)

    markdown = summary_markdown(rows)
    seconds = time.perf_counter() - start
    paths = {"markdown": str(out / "summary.md"), "json": str(out / "summary.json")}
    write_text(out / "summary.md", f"# PerturbFM demo: baseline x split\n\n{markdown}")
    summary = {"rows": rows, "splits": split_hashes, "seconds": seconds, "markdown": markdown, "paths": paths}
    write_json(out / "summary.json", summary)
    return summary
