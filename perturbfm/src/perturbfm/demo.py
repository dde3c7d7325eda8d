"""The end-to-end demo: synthetic data and the real development set, frozen splits, every
baseline with full metric panels and a report per run, and a baseline x split summary table.

``run_demo(out_dir)`` writes::

    out_dir/
      synthetic/            dataset artifact (make_synthetic)
      devel/                dataset artifact imported from perturbench_devel/devel.h5ad
      splits/               the split store (one JSON per split, named by its hash)
      runs/<run_id>/        one run folder per (split, baseline): metrics, calibration, report.html,
                            plus one small PerturbFM v2 run (synthetic combo split, planted graph,
                            2-member ensemble + conformal layer)
      summary.md            the table (markdown)
      leaderboard.html      every run of each split side by side, linked to its report
      summary.json          the table plus the split hashes and the run folder of each row
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from omicsrun import InputError
from omicsrun.atomic import output_dir, write_json, write_text
from omicsrun.paths import shared_data_dir

DEVEL_RELPATH = "perturbench_devel/devel.h5ad"
SUMMARY_COLUMNS = (
    ("pcc_delta_centroid", "scperturbench", "pcc_delta_centroid", "higher"),
    ("pds_l1", "perturbench", "pds_l1", "higher"),
    ("pcc_delta", "scperturbench", "pcc_delta", "higher (shared-control convention, gameable)"),
    ("rmse", "perturbench", "rmse", "lower"),
    ("rank_rmse", "perturbench", "rank_rmse", "lower"),
    ("edistance", "scperturbench", "edistance", "lower"),
    ("coverage@0.9", "uncertainty", "0.9", "closer to 0.9"),
    ("ood_auroc", "uncertainty", "ood_auroc", "higher (0.5 = no separation)"),
)
LABEL_COLUMNS = tuple((f"pcc_delta (combos, {k} singles seen)", str(k)) for k in (2, 1, 0))
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


def _check_overwrite(out_dir: Path, *, overwrite: bool) -> None:
    # --overwrite replaces only a folder that holds a finished demo (the old one is kept
    # until the new one is complete: see omicsrun.commit).
    if out_dir.is_dir() and any(out_dir.iterdir()) and overwrite and not (out_dir / _MARKER).is_file():
        msg = f"--overwrite refuses to replace {out_dir}: it does not look like a demo folder (no {_MARKER})"
        raise InputError(msg)


def summary_markdown(rows: list[dict[str, Any]]) -> str:
    """The baseline x split table as GitHub markdown (label columns only when some row has them)."""
    cols = [c[0] for c in SUMMARY_COLUMNS] + [
        c for c, _ in LABEL_COLUMNS if any(r.get(c) is not None for r in rows)
    ]
    lines = ["| split | baseline | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 2)]
    for r in rows:
        vals = [r.get(c) for c in cols]
        cells = ["" if v is None else f"{v:.3f}" for v in vals]
        lines.append(f"| {r['split']} | {r['baseline']} | " + " | ".join(cells) + " |")
    directions = ", ".join(f"{c[0]}: {c[3]}" for c in SUMMARY_COLUMNS)
    notes = (
        f"\n\nBetter is {directions}, pcc_delta by label: higher. Label columns are the "
        "cell-weighted PCC-delta over held-out combinations of a combo split with 2, 1 or 0 of "
        "their singles seen in training (metrics.json per_label). ood_auroc separates validation "
        "cells (in-distribution) from test cells by predicted variance.\n"
    )
    return "\n".join(lines) + notes


def _model_row(out: Path, label: str, split_hash: str) -> dict[str, Any]:
    """One small PerturbFM v2 run (planted graph, 2-member ensemble + conformal) as a summary row."""
    from perturbfm.runs import train_model

    run_dir = train_model(
        data_dir=out / "synthetic",
        split_hash=split_hash,
        model="perturbfm-v2",
        params={"epochs": 15, "hidden_dim": 32, "latent_dim": 16},
        graphs=["synthetic"],
        n_members=2,
        runs_root=out / "runs",
        split_dir=out / "splits",
    )
    return _summary_row(out, run_dir, label, split_hash, "perturbfm-v2 (K=2)")


def _summary_row(out: Path, run_dir: Path, label: str, split_hash: str, name: str) -> dict[str, Any]:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    row: dict[str, Any] = {"split": label, "split_hash": split_hash, "baseline": name}
    for col, panel, key, _ in SUMMARY_COLUMNS:
        if panel == "uncertainty":
            unc = metrics["uncertainty"]
            row[col] = unc.get("coverage", {}).get(key, unc.get(key))
        else:
            row[col] = metrics[panel]["global"].get(key)
    per_label = metrics["scperturbench"].get("per_label", {})
    for col, lab in LABEL_COLUMNS:
        row[col] = per_label.get(lab, {}).get("pcc_delta")
    row["run_dir"] = str(run_dir.relative_to(out))
    return row


def run_demo(
    out_dir: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    baselines: list[str] | None = None,
    include_devel: bool | None = None,
    synthetic_params: dict[str, Any] | None = None,
    model_run: bool = True,
    progress: Callable[[str], None] | None = None,
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
    model_run
        Add the small PerturbFM v2 run on the synthetic split.
    progress
        Called with a one-line message before each step (the CLI prints it to stderr).

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
    say = progress or (lambda _msg: None)
    names = baselines or [m for m in available_models() if not m.startswith("perturbfm-")]
    devel_path = shared_data_dir() / DEVEL_RELPATH
    if include_devel is None:
        include_devel = devel_path.is_file()
    if include_devel and not devel_path.is_file():
        msg = f"development set {devel_path} not found; set SHARED_DATA_DIR or pass include_devel=False"
        raise InputError(msg)
    _check_overwrite(out, overwrite=overwrite)
    with output_dir(out, overwrite=overwrite, what="demo") as build:
        datasets: dict[str, Any] = {}
        say("making the synthetic dataset")
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
        from perturbfm.data.synthetic import synthetic_graph

        meta = ds.metadata["synthetic"]
        graph = synthetic_graph(
            n_genes=ds.n_genes,
            seed=meta["seed"],
            mean_degree=meta["mean_degree"],
            n_programs=meta["n_programs"],
        )
        save_dataset(ds, build / "synthetic", graphs={"synthetic": graph})
        datasets["synthetic"] = ds
        if include_devel:
            from perturbfm.data.h5ad import import_h5ad

            say(f"importing {devel_path}")
            dev = import_h5ad(
                devel_path, pert_key="perturbation", context_key="cell_type", control_label="control"
            )
            save_dataset(dev, build / "devel")
            datasets["devel"] = dev

        store = SplitStore(root=build / "splits")
        rows: list[dict[str, Any]] = []
        split_hashes: dict[str, str] = {}
        items = _demo_splits(devel_path if include_devel else None)
        n_steps, step = len(items) * len(names), 0
        for item in items:
            data_dir = build / item["dataset"]
            split = create_split(
                datasets[item["dataset"]], item["spec"], seed=0, data_hash=dataset_hash(data_dir)
            )
            store.save(split)
            split_hashes[item["label"]] = split.frozen_hash
            for name in names:
                step += 1
                elapsed = time.perf_counter() - start
                say(f"[{step}/{n_steps}] {item['label']}: {name} ({elapsed:.0f} s elapsed)")
                run_dir = train_baseline(
                    data_dir=data_dir,
                    split_hash=split.frozen_hash,
                    baseline=name,
                    runs_root=build / "runs",
                    seed=0,
                    split_dir=build / "splits",
                )
                rows.append(_summary_row(build, run_dir, item["label"], split.frozen_hash, name))
            if model_run and item["dataset"] == "synthetic":
                ds_item = datasets[item["dataset"]]
                ood_val = np.asarray(split.ood_val_idx, dtype=np.int64)
                if ood_val[~ds_item.is_control[ood_val]].size == 0:
                    # a very small synthetic set can leave no held-out units for early stopping
                    say(f"{item['label']}: perturbfm-v2 skipped (the split has no OOD-validation cells)")
                else:
                    say(f"{item['label']}: perturbfm-v2 (2-member ensemble, conformal)")
                    rows.append(_model_row(build, item["label"], split.frozen_hash))

        from perturbfm.report.leaderboard import write_leaderboard

        markdown = summary_markdown(rows)
        write_leaderboard(build / "runs", build / "leaderboard.html")
        seconds = time.perf_counter() - start
        paths = {
            "markdown": str(out / "summary.md"),
            "json": str(out / "summary.json"),
            "leaderboard": str(out / "leaderboard.html"),
        }
        write_text(build / "summary.md", f"# PerturbFM demo: baseline x split\n\n{markdown}")
        summary = {
            "rows": rows,
            "splits": split_hashes,
            "seconds": seconds,
            "markdown": markdown,
            "paths": paths,
        }
        write_json(build / "summary.json", summary)
    return summary
