"""``perturbfm ablate``: named configurations x seeds into one summary table.

A configs file is a JSON list; each entry is a name from the seed's ablation list
(:data:`ABLATIONS`, e.g. ``"v2.single_graph_gated"``, ``"baseline.additive"``) or an object
``{"name": ..., "params": {...}, "graphs": [...], "ensemble": K, "conformal": bool}`` that
starts from a named entry (or gives ``"model"`` for a custom one) and overrides it.

Every (config, seed) is one run folder (:func:`~perturbfm.runs.training.train_model` or
:func:`~perturbfm.runs.core.train_baseline`), fanned out with
:func:`omicsrun.parallel.run_tasks`; the summary (``summary.csv``: one row per run;
``summary.json``: mean and standard deviation per config) is written atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from omicsrun import InputError
from omicsrun.atomic import dumps_json, output_dir, write_text
from omicsrun.parallel import run_tasks

PathLike = str | os.PathLike[str]
# name -> (model, params, graph use, ensemble K, conformal); graph use: "none" | "first" | "all"
ABLATIONS: dict[str, tuple[str, dict[str, Any], str, int, bool]] = {
    "v0.full": ("perturbfm-v0", {}, "none", 1, True),
    "v0.no_context": ("perturbfm-v0", {"use_context": False}, "none", 1, True),
    "v0.no_basal": ("perturbfm-v0", {"use_basal": False}, "none", 1, True),
    "v0.no_perturbation": ("perturbfm-v0", {"use_perturbation": False}, "none", 1, True),
    "v1.no_graph": ("perturbfm-v1", {"use_graph": False}, "none", 1, True),
    "v1.graph_no_gating": ("perturbfm-v1", {"gating": "none"}, "first", 1, True),
    "v1.graph_with_gating": ("perturbfm-v1", {"gating": "node"}, "first", 1, True),
    "v2.no_graph": ("perturbfm-v2", {"use_graph": False}, "none", 1, True),
    "v2.single_graph_fixed": ("perturbfm-v2", {"gating": "none"}, "first", 1, True),
    "v2.single_graph_gated": ("perturbfm-v2", {"gating": "node"}, "first", 1, True),
    "v2.multi_graph_gated": ("perturbfm-v2", {"gating": "node"}, "all", 1, True),
    "v2.operator_global": ("perturbfm-v2", {"contextual_operator": False}, "first", 1, True),
    "v2.operator_contextual": ("perturbfm-v2", {"contextual_operator": True}, "first", 1, True),
    "v3.full": ("perturbfm-v3", {}, "first", 1, True),
    "uncertainty.single": ("perturbfm-v2", {}, "first", 1, False),
    "uncertainty.ensemble": ("perturbfm-v2", {}, "first", 5, False),
    "uncertainty.ensemble_conformal": ("perturbfm-v2", {}, "first", 5, True),
}
METRICS = ("pcc_delta", "mse")


@dataclass(frozen=True)
class AblationConfig:
    """One resolved entry of a configs file."""

    name: str
    model: str
    params: dict[str, Any] = field(default_factory=dict)
    graphs: tuple[str, ...] = ()
    ensemble: int = 1
    conformal: bool = True


def resolve_configs(entries: Any, graphs: list[str]) -> list[AblationConfig]:
    """Entries of a configs file -> configs; ``graphs`` are the run's graph names, in order."""
    if not isinstance(entries, list) or not entries:
        msg = f"a configs file must hold a non-empty JSON list; found {type(entries).__name__}"
        raise InputError(msg)
    out = []
    for i, entry in enumerate(entries):
        spec = {"name": entry} if isinstance(entry, str) else entry
        if not isinstance(spec, dict) or "name" not in spec:
            msg = f"configs[{i}] must be a name or an object with 'name'; found {entry!r}"
            raise InputError(msg)
        name = str(spec["name"])
        unknown = sorted(set(spec) - {"name", "model", "params", "graphs", "ensemble", "conformal"})
        if unknown:
            msg = f"configs[{i}] has unknown key {unknown[0]!r}"
            raise InputError(msg)
        if name.startswith("baseline."):
            out.append(
                AblationConfig(name=name, model=name.removeprefix("baseline."), params=spec.get("params", {}))
            )
            continue
        if name in ABLATIONS:
            model, params, use, k, conformal = ABLATIONS[name]
        elif "model" in spec:
            model, params, use, k, conformal = spec["model"], {}, "first", 1, True
        else:
            msg = f"configs[{i}]: unknown ablation {name!r}; known: {sorted(ABLATIONS)} or baseline.<name>"
            raise InputError(msg)
        chosen = {"none": [], "first": graphs[:1], "all": graphs}[use]
        if use == "all" and len(graphs) < 2:
            msg = f"{name} needs at least two graphs (--graph A --graph B); found {graphs}"
            raise InputError(msg)
        out.append(
            AblationConfig(
                name=name,
                model=str(spec.get("model", model)),
                params={**params, **spec.get("params", {})},
                graphs=tuple(spec.get("graphs", chosen)),
                ensemble=int(spec.get("ensemble", k)),
                conformal=bool(spec.get("conformal", conformal)),
            )
        )
    return out


@dataclass(frozen=True)
class _Task:
    config: AblationConfig
    seed: int
    data_dir: str
    split_hash: str
    split_dir: str | None
    runs_root: str


def _run_one(task: _Task) -> dict[str, Any]:
    from perturbfm.runs.core import train_baseline
    from perturbfm.runs.training import train_model

    cfg = task.config
    if cfg.name.startswith("baseline."):
        run = train_baseline(
            data_dir=task.data_dir,
            split_hash=task.split_hash,
            baseline=cfg.model,
            params=cfg.params,
            runs_root=task.runs_root,
            seed=task.seed,
            split_dir=task.split_dir,
        )
    else:
        run = train_model(
            data_dir=task.data_dir,
            split_hash=task.split_hash,
            model=cfg.model,
            params=cfg.params,
            graphs=cfg.graphs,
            n_members=cfg.ensemble,
            conformal=cfg.conformal,
            runs_root=task.runs_root,
            seed=task.seed,
            split_dir=task.split_dir,
        )
    metrics = json.loads((Path(run) / "metrics.json").read_text())
    unc = metrics["uncertainty"]
    row: dict[str, Any] = {"config": cfg.name, "seed": task.seed, "run_dir": str(run)}
    row.update({m: metrics["scperturbench"]["global"].get(m) for m in METRICS})
    row["coverage_0.9"] = unc["coverage"]["0.9"]
    row["nll"] = unc["nll"]
    if "conformal" in unc:
        row["conformal_coverage_0.9"] = unc["conformal"]["levels"]["0.9"]["coverage"]
    return row


def run_ablation(
    *,
    data_dir: PathLike,
    split_hash: str,
    configs_path: PathLike,
    out_dir: PathLike,
    graphs: list[str] | None = None,
    seeds: int = 1,
    runs_root: PathLike = "runs",
    split_dir: PathLike | None = None,
    cluster: str = "serial",
    n_workers: int | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Run every config for seeds 0..seeds-1; write ``out_dir/summary.csv`` and ``summary.json``."""
    # The summary folder is locked and assembled aside from the start (omicsrun.commit): a
    # refused --out fails before any run, and a failed ablation leaves no partial summary.
    with output_dir(
        out_dir, overwrite=overwrite, what="ablation summary", inputs=[data_dir, configs_path]
    ) as tmp:
        path = Path(configs_path)
        if not path.is_file():
            msg = f"configs file {path} does not exist"
            raise InputError(msg)
        try:
            entries = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            msg = f"configs file {path} is not valid JSON ({err})"
            raise InputError(msg) from None
        configs = resolve_configs(entries, list(graphs or []))
        if not isinstance(seeds, int) or seeds < 1:
            msg = f"seeds must be a positive integer; found {seeds!r}"
            raise InputError(msg)
        tasks = [
            _Task(
                config=c,
                seed=s,
                data_dir=str(data_dir),
                split_hash=split_hash,
                split_dir=None if split_dir is None else str(split_dir),
                runs_root=str(runs_root),
            )
            for c in configs
            for s in range(seeds)
        ]
        rows = run_tasks(_run_one, tasks, cluster=cluster, n_workers=n_workers, progress=progress)
        table = pd.DataFrame(rows)
        numeric = [c for c in table.columns if c not in ("config", "seed", "run_dir")]
        grouped = table.groupby("config", sort=False)[numeric]
        # pandas skips missing values (a baseline has no conformal panel) without warnings
        summary = {
            str(name): {
                m: {
                    "mean": None if g[m].isna().all() else float(g[m].mean()),
                    "sd": float(g[m].std(ddof=1)) if g[m].notna().sum() > 1 else None,
                }
                for m in numeric
            }
            for name, g in grouped
        }
        write_text(tmp / "summary.csv", table.to_csv(index=False))
        write_text(
            tmp / "summary.json",
            dumps_json(
                {"data_dir": str(data_dir), "split_hash": split_hash, "seeds": seeds, "configs": summary}
            ),
        )
    return table
