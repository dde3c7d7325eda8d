"""PerturbFM at Perturb-seq scale: time and peak RSS of every command, side by side with cell-eval.

Builds a synthetic Perturb-seq-like ``.h5ad`` (log-normalised, CSR, about 10% non-zeros;
K562-like: one cell line in two batches-as-contexts, one target gene per perturbation,
about 10% non-targeting controls) under ``benchmarks/datasets/`` (git-ignored), then runs,
each in its own process (wall time and peak RSS from ``wait4``):

1. ``perturbfm data import-h5ad`` (streaming, CSR artifact);
2. ``perturbfm splits create --spec covariate_transfer`` (perturbations held out in one
   context, seen in the other);
3. ``perturbfm train baseline --baseline per_perturbation_mean`` (fit, predict, every
   metric panel, report);
4. ``perturbfm eval predictions --metrics pearson_delta_celleval,pds_l1,mse_all,mae_all``:
   exactly the four metrics cell-eval computes below, on the same predictions (a);
4a. the same command again (the file digests are then remembered) (a');
5. ``perturbfm eval predictions`` on the same predictions: every panel (DE, distribution
   metrics, uncertainty, data ceiling, baseline-relative scores, report) (b);
6. cell-eval 0.8.2 (``MetricsEvaluator``, DE skipped) on the same predictions, written in
   its layout as ``perturbfm export`` writes it (real: test cells + test controls; pred:
   ``X_control + predicted delta`` of the same cells + the same test controls), metrics
   ``pearson_delta``, ``mse``, ``mae``, ``discrimination_score_l1``.

It prints a markdown table (step, wall seconds, user+sys CPU seconds, peak RSS), the
speed-ups of (a) and (b) over cell-eval, and the per-perturbation agreement
(max |ours - cell-eval|) of the four shared metrics.

    flock /tmp/heavy.lock .venv/bin/python benchmarks/perturbfm_scale.py --size 100k
    flock /tmp/heavy.lock .venv/bin/python benchmarks/perturbfm_scale.py --size replogle --skip-celleval

Sizes: ``small`` (6k x 1k, a smoke run), ``100k`` (100,000 x 5,000), ``replogle``
(310,000 x 8,500, Replogle K562 essential sized).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
SIZES = {
    # n_cells, n_genes, n_perts, holdout_fraction of covariate_transfer
    "small": (6_000, 1_000, 40, 0.5),
    "100k": (100_000, 5_000, 500, 0.5),
    "replogle": (310_000, 8_500, 1_550, 0.2),
}
# metric of cell-eval -> (panel, our metric) compared per perturbation
AGREEMENT = {
    "mse": ("scperturbench", "mse_all"),
    "mae": ("scperturbench", "mae_all"),
    "pearson_delta": ("perturbench", "pearson_delta_celleval"),
    "discrimination_score_l1": ("perturbench", "pds_l1"),
}
IMPORT_KEYS = ("--pert-key", "perturbation", "--context-key", "cell_type", "--control", "control")
CELLEVAL_METRICS = ["pearson_delta", "mse", "mae", "discrimination_score_l1"]
OUR_METRICS = "pearson_delta_celleval,pds_l1,mse_all,mae_all"  # the same four, our names


def build_h5ad(path: Path, n_cells: int, n_genes: int, n_perts: int, seed: int = 0) -> None:
    """Write the synthetic set block by block (never the whole matrix in memory as dense)."""
    import anndata as ad
    import h5py
    from anndata.io import sparse_dataset, write_elem

    rng = np.random.default_rng(seed)
    genes = np.array([f"G{i:05d}" for i in range(n_genes)])
    # Detection probability per gene (mean about 0.1) and count rate when detected.
    p_gene = np.clip(rng.lognormal(np.log(0.06), 0.9, n_genes), 0.002, 0.9).astype(np.float32)
    rate = rng.gamma(1.5, 1.0, n_genes).astype(np.float32)
    ctx_fac = np.exp(rng.normal(0, 0.2, (2, n_genes))).astype(np.float32)
    targets = rng.choice(n_genes, n_perts, replace=False)
    pert_fac = np.ones((n_perts + 1, n_genes), dtype=np.float32)  # last row: controls
    for p in range(n_perts):
        hit = rng.choice(n_genes, 40, replace=False)
        pert_fac[p, hit] = np.exp(rng.normal(0, 0.8, 40))
        pert_fac[p, targets[p]] = 0.15  # knock-down of the target
    is_ctrl = rng.random(n_cells) < 0.1
    pert = np.where(is_ctrl, n_perts, rng.integers(0, n_perts, n_cells))
    ctx = rng.integers(0, 2, n_cells)
    labels = np.concatenate([genes[targets], ["control"]])[pert]
    obs = pd.DataFrame(
        {
            "perturbation": pd.Categorical(labels),
            "cell_type": pd.Categorical(np.array(["K562_b0", "K562_b1"])[ctx]),
        },
        index=[f"cell{i}" for i in range(n_cells)],
    )
    var = pd.DataFrame(index=genes)
    tmp = path.with_suffix(".tmp")
    with h5py.File(tmp, "w") as f:
        f.attrs["encoding-type"] = "anndata"
        f.attrs["encoding-version"] = "0.1.0"
        write_elem(f, "obs", obs)
        write_elem(f, "var", var)
        write_elem(f, "uns", {"log1p": {"base": "e"}})
        for key in ("obsm", "varm", "obsp", "varp", "layers"):
            write_elem(f, key, {})
        step = max(1, 4_000_000 // n_genes)
        for start in range(0, n_cells, step):
            stop = min(start + step, n_cells)
            prob = p_gene * ctx_fac[ctx[start:stop]] * np.minimum(pert_fac[pert[start:stop]], 8.0)
            mask = rng.random(prob.shape, dtype=np.float32) < np.minimum(prob, 0.95)
            r, c = np.nonzero(mask)
            counts = 1.0 + rng.poisson(rate[c] * pert_fac[pert[start:stop]][r, c])
            block = sp.csr_matrix((counts.astype(np.float32), (r, c)), shape=prob.shape)
            total = np.asarray(block.sum(axis=1)).ravel()
            block = sp.diags((1e4 / np.maximum(total, 1.0)).astype(np.float32)) @ block
            block.data = np.log1p(block.data).astype(np.float32)
            block = sp.csr_matrix(block, dtype=np.float32)
            if start == 0:
                write_elem(f, "X", block)
            else:
                sparse_dataset(f["X"]).append(block)
    tmp.replace(path)
    back = ad.read_h5ad(path, backed="r")
    assert back.shape == (n_cells, n_genes), back.shape
    back.file.close()


def run_step(name: str, cmd: list[str], log: Path) -> dict:
    """Run one command in its own process; wall seconds and peak RSS (wait4 of that child)."""
    start = time.perf_counter()
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=out, text=True)
        assert proc.stdout is not None
        stdout = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.write(stdout)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{name} failed (exit {proc.returncode}); see {log}")
    return {
        "step": name,
        "seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "stdout": stdout,
    }


def value(stdout: str, key: str) -> str:
    match = re.search(rf"^{key}=(.+)$", stdout, flags=re.MULTILINE)
    if match is None:
        sys.exit(f"no {key}= line in the output:\n{stdout}")
    return match.group(1).strip()


def write_celleval_inputs(data: Path, split_dir: Path, split_hash: str, preds: Path, out: Path) -> Path:
    """cell-eval's layout from our artifact and predictions (the benchmark's own preparation).

    cell-eval refuses negative expression, so predicted expression ``X_control + mean`` is
    clipped at 0 and the same clipped prediction is written back as ``preds_clipped.npz``
    (``mean = clip(X_control + mean, 0) - X_control``) for PerturbFM: both tools score
    identical predictions.
    """
    import anndata as ad

    from perturbfm.data import load_dataset
    from perturbfm.splits import SplitStore

    ds = load_dataset(data)
    split = SplitStore(root=split_dir).load(split_hash)
    test = np.asarray(split.test_idx)
    is_ctrl = ds.is_control[test]
    cells, ctrl = test[~is_ctrl], test[is_ctrl]
    with np.load(preds) as handle:
        arrays = {k: handle[k] for k in handle.files}
    idx = arrays["idx"]
    assert np.array_equal(idx, cells)
    x_ctrl = np.asarray(ds.rows(cells, "control"))
    pred_expr = np.maximum(x_ctrl + arrays["mean"], 0.0).astype(np.float32)
    arrays["mean"] = pred_expr - x_ctrl
    del x_ctrl
    clipped = out / "preds_clipped.npz"
    np.savez(clipped, **arrays)
    del arrays
    pert = ds.obs["pert_id"].to_numpy()[cells].astype(str)
    var = pd.DataFrame(index=ds.var)

    def make(x: sp.csr_matrix | np.ndarray, labels: np.ndarray) -> ad.AnnData:
        obs = pd.DataFrame({"target": pd.Categorical(labels)}, index=[f"c{i}" for i in range(len(labels))])
        return ad.AnnData(X=x, obs=obs, var=var)

    real = make(
        sp.vstack([ds.rows(cells, "pert", sparse=True), ds.rows(ctrl, "pert", sparse=True)]).tocsr(),
        np.concatenate([pert, np.full(ctrl.size, "control")]),
    )
    real.write_h5ad(out / "real.h5ad")
    del real
    # the test controls on both sides, as ``perturbfm export`` writes them
    pred_x = np.vstack([pred_expr, np.asarray(ds.rows(ctrl, "pert"), dtype=np.float32)])
    make(pred_x, np.concatenate([pert, np.full(ctrl.size, "control")])).write_h5ad(out / "pred.h5ad")
    return clipped


CELLEVAL_SCRIPT = """
import sys, warnings
warnings.filterwarnings("ignore")
from cell_eval import MetricsEvaluator
from cell_eval.metrics import metrics_registry
wanted = sys.argv[3].split(",")
ev = MetricsEvaluator(adata_pred=sys.argv[1], adata_real=sys.argv[2], control_pert="control",
                      pert_col="target", skip_de=True, num_threads=1, outdir=sys.argv[4])
skip = [m for m in metrics_registry.list_metrics() if m not in wanted]
results, agg = ev.compute(profile="anndata", skip_metrics=skip, write_csv=True)
"""


def agreement(run_json: Path, celleval_dir: Path) -> list[dict]:
    ours = json.loads(run_json.read_text())
    ref = pd.read_csv(celleval_dir / "results.csv")
    out = []
    for ce_name, (panel, key) in AGREEMENT.items():
        per = ours[panel]["per_perturbation"]
        diffs = [
            abs(float(row[ce_name]) - float(per[p][key]))
            for p, row in ref.set_index("perturbation").iterrows()
            if p in per and per[p].get(key) is not None and np.isfinite(row[ce_name])
        ]
        out.append(
            {
                "cell-eval": ce_name,
                "perturbfm": f"{panel}.{key}",
                "n_perts": len(diffs),
                "max_abs_diff": max(diffs) if diffs else float("nan"),
                "median_abs_diff": float(np.median(diffs)) if diffs else float("nan"),
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="100k")
    parser.add_argument("--skip-celleval", action="store_true", help="run PerturbFM only")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the h5ad even if present")
    args = parser.parse_args()
    n_cells, n_genes, n_perts, holdout = SIZES[args.size]
    data_dir = ROOT / "datasets"
    data_dir.mkdir(exist_ok=True)
    h5ad = data_dir / f"perturbseq_{args.size}.h5ad"
    if args.rebuild or not h5ad.is_file():
        t0 = time.perf_counter()
        build_h5ad(h5ad, n_cells, n_genes, n_perts)
        print(f"built {h5ad} ({h5ad.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.0f} s")
    work = data_dir / f"work_{args.size}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    # A digest cache of this run only: every file is hashed in full the first time.
    os.environ["OMICSRUN_CACHE_DIR"] = str(work / "digest-cache")
    log = work / "log.txt"
    pfm = str(BIN / "perturbfm")
    art, splits, runs = work / "artifact", work / "splits", work / "runs"
    steps = [
        run_step(
            "perturbfm data import-h5ad",
            [pfm, "data", "import-h5ad", "--dataset", str(h5ad), "--out", str(art), *IMPORT_KEYS],
            log,
        )
    ]
    steps.append(
        run_step(
            "perturbfm splits create",
            [
                pfm,
                "splits",
                "create",
                "--data",
                str(art),
                "--spec",
                "covariate_transfer",
                "--context",
                "K562_b1",
                "--holdout-fraction",
                str(holdout),
                "--n-hvg",  # every gene is a metric gene, as in cell-eval
                str(n_genes),
                "--split-dir",
                str(splits),
            ],
            log,
        )
    )
    split_hash = value(steps[-1]["stdout"], "split_hash")
    steps.append(
        run_step(
            "perturbfm train baseline (fit + predict + eval + report)",
            [
                pfm,
                "train",
                "baseline",
                "--data",
                str(art),
                "--split",
                split_hash,
                "--baseline",
                "per_perturbation_mean",
                "--runs-root",
                str(runs),
                "--split-dir",
                str(splits),
            ],
            log,
        )
    )
    run_dir = Path(value(steps[-1]["stdout"], "run_dir"))
    preds = run_dir / "predictions.npz"
    ce_dir = work / "celleval"
    if not args.skip_celleval:
        ce_dir.mkdir()
        # In a child process: a child's peak RSS (wait4) starts from the RSS of the parent it
        # was forked from, so the benchmark process itself must stay small.
        prep = (
            "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
            "from perturbfm_scale import write_celleval_inputs as w; "
            "w(*map(Path, sys.argv[2:4]), sys.argv[4], *map(Path, sys.argv[5:7]))"
        )
        cmd = [
            sys.executable,
            "-c",
            prep,
            str(ROOT),
            str(art),
            str(splits),
            split_hash,
            str(preds),
            str(ce_dir),
        ]
        subprocess.run(cmd, check=True)
        preds = ce_dir / "preds_clipped.npz"
    eval_args = ["--data", str(art), "--split", split_hash, "--preds", str(preds), "--split-dir", str(splits)]
    selected = [pfm, "eval", "predictions", *eval_args, "--metrics", OUR_METRICS, "--out"]
    steps.append(
        run_step(
            "(a) perturbfm eval --metrics (cell-eval's four)", [*selected, str(work / "eval_selected")], log
        )
    )
    # The same command again: the artifact's and the predictions' file digests are now
    # remembered (omicsrun.hashing.sha256_file_cached), as for any later command on them.
    steps.append(
        run_step(
            "(a') the same, repeated (file digests remembered)",
            [*selected, str(work / "eval_selected_again")],
            log,
        )
    )
    steps.append(
        run_step(
            "(b) perturbfm eval predictions (every panel)",
            [pfm, "eval", "predictions", *eval_args, "--out", str(work / "eval")],
            log,
        )
    )
    agree: list[dict] = []
    if not args.skip_celleval:
        steps.append(
            run_step(
                "cell-eval 0.8.2 (" + ", ".join(CELLEVAL_METRICS) + ")",
                [
                    sys.executable,
                    "-c",
                    CELLEVAL_SCRIPT,
                    str(ce_dir / "pred.h5ad"),
                    str(ce_dir / "real.h5ad"),
                    ",".join(CELLEVAL_METRICS),
                    str(ce_dir / "out"),
                ],
                log,
            )
        )
        agree = agreement(work / "eval_selected" / "metrics.json", ce_dir / "out")
    size = f"{n_cells:,} cells x {n_genes:,} genes"
    print(f"\n### {args.size}: {size}, {h5ad.stat().st_size / 1e6:.0f} MB h5ad\n")
    print("| step | wall s | CPU s (user+sys) | peak RSS (MB) |\n|---|---:|---:|---:|")
    for s in steps:
        print(f"| {s['step']} | {s['seconds']:.1f} | {s['cpu_seconds']:.1f} | {s['peak_rss_mb']:.0f} |")
    ref = next((s for s in steps if s["step"].startswith("cell-eval")), None)
    if ref is not None:
        for ours in (s for s in steps if s["step"].startswith("(")):
            wall = ref["seconds"] / ours["seconds"]
            cpu = ref["cpu_seconds"] / ours["cpu_seconds"]
            print(f"\n{ours['step'].split()[0]} speed-up over cell-eval: wall {wall:.1f}x, CPU {cpu:.1f}x")
    if agree:
        print("\n| cell-eval metric | PerturbFM metric | perturbations | max abs diff | median abs diff |")
        print("|---|---|---:|---:|---:|")
        for a in agree:
            print(
                f"| {a['cell-eval']} | {a['perturbfm']} | {a['n_perts']} | "
                f"{a['max_abs_diff']:.3g} | {a['median_abs_diff']:.3g} |"
            )
    disk = sum(p.stat().st_size for p in art.rglob("*") if p.is_file())
    print(f"\nartifact on disk: {disk / 1e6:.0f} MB; log: {log}")
    summary = {
        "size": args.size,
        "steps": [{k: v for k, v in s.items() if k != "stdout"} for s in steps],
        "agreement": agree,
        "artifact_mb": disk / 1e6,
    }
    (work / "summary.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
