"""PerturbFM models v0-v3 against the baselines, through the real run layer (README figures).

Parts (``--part``, default all):
  synthetic  the seed's synthetic graph regime (combo and perturbation_ood splits, 3 data
             seeds): every baseline, v0, v2 with the true graph, v2 with a random
             graph + gating, v2.no_graph.
  devel      devel.h5ad, the tracked combo (Norman K562) and context_ood (U87MG) splits,
             3 model seeds: every baseline (deterministic, one run), v0, v1/v2/v3 on the
             GO-BP + KEGG graph, v2.no_graph.
  ensemble   v2 deep ensemble (K=5) + split conformal on both devel splits and the synthetic
             splits, --seeds seeds (model seed; synthetic data seed = model seed), seed by seed.
  speed      CPU and wall seconds per training epoch of v0-v3 on devel (5 fixed epochs).
Every number is read from the run folders' metrics.json (the evaluator's own panels);
results are appended to --out as JSON lines so a partial run still reports.

Usage: flock /tmp/heavy.lock .venv/bin/python benchmarks/perturbfm_models.py --out FILE
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from omicsrun.testing import REPO_ROOT
from perturbfm.data.artifact import dataset_hash, save_dataset
from perturbfm.data.graph import save_graph
from perturbfm.data.h5ad import import_h5ad
from perturbfm.data.synthetic import make_synthetic, synthetic_graph
from perturbfm.models import available_models
from perturbfm.runs import train_baseline, train_model
from perturbfm.splits import SplitStore, create_split

BASELINES = [m for m in available_models() if not m.startswith("perturbfm-")]
TRAIN = {"epochs": 40, "patience": 6}
DEVEL_SPLITS = {
    "combo": "0b8c47374bbb8b702e37b06947bc30b6ad1a1a2c34b4e15bfe1f123cf99bd71b",
    "context_ood": "20a5df4836f58af633e7ce92a862d6f2700d7456dee07c277055a09decd032a0",
}


def _summary(run_dir: Path) -> dict:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    glob = metrics["scperturbench"]["global"]
    unc = metrics["uncertainty"]
    out = {
        "pcc_delta": glob.get("pcc_delta"),
        "coverage_0.9": unc["coverage"]["0.9"],
        "nll": unc["nll"],
    }
    # The evaluator's headline metrics and their scores relative to its reference baselines.
    for row in metrics.get("baseline_relative", {}).get("rows", []):
        name = row["metric"] if row["metric"] != "rmse" else "rmse_perturbench"
        out[name] = row["value"]
        for base in ("control_only", "global_mean"):
            out[f"{name}_vs_{base}"] = row.get(f"vs_{base}")
    if "conformal" in unc:
        conf = unc["conformal"]
        out["conformal_coverage_0.9"] = conf["levels"]["0.9"]["coverage"]
        out["conformal_unit"] = conf.get("unit", "cell")
        out["conformal_n_groups"] = conf.get("n_calibration_groups")
        if "levels_unit_cell" in conf:
            out["conformal_coverage_0.9_unit_cell"] = conf["levels_unit_cell"]["0.9"]["coverage"]
        out["conformal_coverage_0.9_model_variance"] = conf["levels_model_variance_only"]["0.9"]["coverage"]
    if "epistemic" in unc:
        out["epistemic_ood_auroc"] = unc["epistemic"].get("ood_auroc")
        out["epistemic_ood_auroc_per_group"] = unc["epistemic"].get("ood_auroc_per_group")
        out["epistemic_ood_auroc_relative"] = unc["epistemic"].get("ood_auroc_relative")
    training = run_dir / "training.json"
    if training.is_file():
        members = json.loads(training.read_text())["members"]
        out["seconds_per_epoch"] = float(np.mean([m["seconds_per_epoch"] for m in members if m]))
        out["best_epoch"] = [m["best_epoch"] for m in members if m]
    diag = run_dir / "model_diagnostics.json"
    if diag.is_file():
        rel = json.loads(diag.read_text())["members"][0].get("graph_reliance")
        if rel:
            out["graph_relative_change"] = rel["relative_change"]
            out["mean_gate"] = rel["mean_gate"]
    return out


def _emit(out: Path, record: dict) -> None:
    with out.open("a") as handle:
        handle.write(json.dumps(record) + "\n")
    print(json.dumps(record), flush=True)


def _baselines(
    out: Path, regime: str, data: Path, split: str, runs: Path, split_dir: Path, seed: int
) -> None:
    for name in BASELINES:
        run = train_baseline(
            data_dir=data, split_hash=split, baseline=name, runs_root=runs, split_dir=split_dir
        )
        _emit(out, {"regime": regime, "seed": seed, "model": name, **_summary(run)})


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


ONLY: list[str] = []  # --models: labels to run (all when empty)


def _model(out, regime, label, data, split, runs, split_dir, seed, model, params, graphs=(), k=1) -> None:
    if ONLY and label not in ONLY:
        return
    tic, cpu = time.perf_counter(), _cpu_seconds()
    run = train_model(
        data_dir=data,
        split_hash=split,
        model=model,
        params={**TRAIN, **params},
        graphs=graphs,
        n_members=k,
        runs_root=runs,
        seed=seed,
        split_dir=split_dir,
    )
    rec = {"regime": regime, "seed": seed, "model": label, **_summary(run)}
    rec["wall_s"] = time.perf_counter() - tic
    rec["cpu_s"] = _cpu_seconds() - cpu
    rec["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    _emit(out, rec)


SYNTH_SPLITS = ("combo", "perturbation_ood")


def synthetic(out: Path, work: Path, seeds: list[int], *, ensemble_only: bool = False) -> None:
    """The seed's synthetic graph regime on a combo and a perturbation_ood split per data seed.

    The "random" graph has the true graph's density but no program structure
    (``within_program=0``) and another seed, so it carries no information on the effects.
    """
    for s in seeds:
        ds = make_synthetic(n_obs=3000, n_genes=150, n_perts=40, seed=s)
        data = work / f"synth{s}"
        if not data.exists():
            save_dataset(ds, data)
        graphs = {
            "synthetic": synthetic_graph(n_genes=150, seed=s),
            "random": synthetic_graph(n_genes=150, seed=s + 1000, within_program=0.0),
        }
        for name, adjacency in graphs.items():
            if not (data / "graphs" / f"{name}.npz").exists():
                save_graph(data / "graphs" / f"{name}.npz", adjacency, ds.var)
        split_dir, runs = work / "splits", work / "runs"
        for spec in SYNTH_SPLITS:
            split = create_split(ds, {"name": spec}, seed=0, data_hash=dataset_hash(data))
            SplitStore(split_dir).save(split)
            h, regime = split.frozen_hash, f"synthetic {spec}"
            args = (out, regime)
            if ensemble_only:
                _model(
                    *args,
                    "v2 true graph K=5",
                    data,
                    h,
                    runs,
                    split_dir,
                    s,
                    "perturbfm-v2",
                    {},
                    ["synthetic"],
                    k=5,
                )
                continue
            _baselines(out, regime, data, h, runs, split_dir, s)
            _model(*args, "v0.full", data, h, runs, split_dir, s, "perturbfm-v0", {})
            _model(
                *args, "v2 true graph (gated)", data, h, runs, split_dir, s, "perturbfm-v2", {}, ["synthetic"]
            )
            _model(
                *args, "v2 random graph (gated)", data, h, runs, split_dir, s, "perturbfm-v2", {}, ["random"]
            )
            _model(*args, "v2.no_graph", data, h, runs, split_dir, s, "perturbfm-v2", {"use_graph": False})


def devel(
    out: Path, work: Path, seeds: list[int], *, ensemble_only: bool = False, splits: list[str] | None = None
) -> None:
    from perturbfm.data.graph_build import build_graph_file

    data = work / "devel"
    if not data.exists():
        ds = import_h5ad(
            REPO_ROOT.parent / "shared/data/perturbench_devel/devel.h5ad"
            if not Path("/work/shared").exists()
            else Path("/work/shared/data/perturbench_devel/devel.h5ad"),
            pert_key="perturbation",
            context_key="cell_type",
            control_label="control",
        )
        save_dataset(ds, data)
        build_graph_file(data, "go", source="orgdb")
    split_dir, runs = REPO_ROOT / "splits", work / "runs"
    for regime, h in DEVEL_SPLITS.items():
        if splits is not None and regime not in splits:
            continue
        tag = f"devel {regime}"
        if ensemble_only:
            for s in seeds:
                _model(
                    out, tag, "v2 GO graph K=5", data, h, runs, split_dir, s, "perturbfm-v2", {}, ["go"], k=5
                )
            continue
        if 0 in seeds:  # baselines are deterministic: once
            _baselines(out, tag, data, h, runs, split_dir, 0)
        for s in seeds:
            _model(out, tag, "v0.full", data, h, runs, split_dir, s, "perturbfm-v0", {})
            _model(out, tag, "v1 GO graph", data, h, runs, split_dir, s, "perturbfm-v1", {}, ["go"])
            _model(out, tag, "v2 GO graph", data, h, runs, split_dir, s, "perturbfm-v2", {}, ["go"])
            _model(out, tag, "v2.no_graph", data, h, runs, split_dir, s, "perturbfm-v2", {"use_graph": False})
            _model(out, tag, "v3 GO graph", data, h, runs, split_dir, s, "perturbfm-v3", {}, ["go"])


COLUMNS = (
    "pcc_delta_centroid",
    "pcc_delta_centroid_vs_global_mean",
    "pds_l1",
    "mse",
    "mse_vs_global_mean",
    "rmse_perturbench",
    "rank_rmse",
    "conformal_coverage_0.9",
    "conformal_coverage_0.9_unit_cell",
    "conformal_coverage_0.9_model_variance",
    "epistemic_ood_auroc",
    "epistemic_ood_auroc_per_group",
    "epistemic_ood_auroc_relative",
    "seconds_per_epoch",
)


def speed(out: Path, work: Path, *, n_epochs: int = 5) -> None:
    """CPU and wall seconds per training epoch of v0-v3 on devel (combo split's training rows).

    Fixed ``n_epochs`` without early stopping, one torch thread (the trainer's CPU setting);
    CPU = process user + system time, so the figure does not depend on the machine's load.
    """
    from perturbfm.data.artifact import load_dataset
    from perturbfm.models import get_model

    devel(out, work, [], splits=[])  # makes the artifact and the GO graph when missing
    data = work / "devel"
    ds = load_dataset(data)
    split = SplitStore(REPO_ROOT / "splits").load(DEVEL_SPLITS["combo"])
    go = str(data / "graphs" / "go.npz")
    configs = {
        "v0.full": ("perturbfm-v0", {}),
        "v1 GO graph": ("perturbfm-v1", {"graphs": [go]}),
        "v2.no_graph": ("perturbfm-v2", {"use_graph": False}),
        "v2 GO graph": ("perturbfm-v2", {"graphs": [go]}),
        "v3 GO graph": ("perturbfm-v3", {"graphs": [go]}),
    }
    for label, (name, params) in configs.items():
        model = get_model(name, epochs=n_epochs, **params)
        tic, cpu = time.perf_counter(), _cpu_seconds()
        model.fit(ds, split.train_idx, None, seed=0)
        wall, cpu = time.perf_counter() - tic, _cpu_seconds() - cpu
        _emit(
            out,
            {
                "regime": "speed devel combo",
                "model": label,
                "n_train_rows": int(split.train_idx.size),
                "n_genes": ds.n_genes,
                "torch_threads": 1,  # the trainer's CPU setting
                "cpu_s_per_epoch": cpu / n_epochs,
                "wall_s_per_epoch": wall / n_epochs,
            },
        )


def summarise(paths: list[Path], columns: list[str] | None = None, models: list[str] | None = None) -> str:
    """Markdown table: mean +- sd over seeds per (regime, model) of the JSON-lines results."""
    import pandas as pd

    rows = [json.loads(line) for p in paths for line in p.read_text().splitlines() if line.strip()]
    table = pd.DataFrame(rows)
    cols = [c for c in (columns or COLUMNS) if c in table.columns]
    if models:
        table = table[table["model"].isin(models)]
    lines = ["| regime | model | n | " + " | ".join(cols) + " |", "|---|---|---|" + "---|" * len(cols)]
    for (regime, model), g in table.groupby(["regime", "model"], sort=False):
        cells = []
        for c in cols:
            v = pd.to_numeric(g[c], errors="coerce").dropna()
            if v.empty:
                cells.append("")
            elif len(v) > 1:
                cells.append(f"{v.mean():.3f} +- {v.std(ddof=1):.3f}")
            else:
                cells.append(f"{v.iloc[0]:.3f}")
        lines.append(f"| {regime} | {model} | {len(g)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=["all", "synthetic", "devel", "ensemble", "speed"], default="all")
    parser.add_argument("--out", type=Path, help="JSON-lines file the results are appended to")
    parser.add_argument("--summarise", type=Path, nargs="*", help="print the table of these result files")
    parser.add_argument(
        "--models", nargs="*", default=[], help="model labels to run or summarise (default: all)"
    )
    parser.add_argument(
        "--columns", nargs="*", default=None, help="columns of --summarise (default: COLUMNS)"
    )
    parser.add_argument("--no-baselines", action="store_true", help="skip the baselines")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed+seeds-1")
    parser.add_argument("--devel-splits", nargs="*", default=list(DEVEL_SPLITS), choices=list(DEVEL_SPLITS))
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.summarise:
        print(summarise(args.summarise, args.columns, args.models))
        return
    if args.out is None:
        parser.error("--out is required unless --summarise is given")
    work = args.work or Path(tempfile.mkdtemp(prefix="pfm_models_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TQDM_DISABLE", "1")
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    ONLY.extend(args.models)
    if args.no_baselines:
        BASELINES.clear()
    if args.part in ("all", "synthetic"):
        synthetic(args.out, work, seeds)
    if args.part in ("all", "devel"):
        devel(args.out, work, seeds, splits=args.devel_splits)
    if args.part in ("all", "ensemble"):
        # Seed by seed over every regime, so a partial run still has whole seeds.
        for s in seeds if args.part == "ensemble" else [0]:
            synthetic(args.out, work, [s], ensemble_only=True)
            devel(args.out, work, [s], ensemble_only=True, splits=args.devel_splits)
    if args.part == "speed":
        speed(args.out, work)
    print(f"results in {args.out}; scratch in {work}", file=sys.stderr)


if __name__ == "__main__":
    main()
