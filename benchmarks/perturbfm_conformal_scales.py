"""Conformal coverage of finished model runs under other nonconformity scales (README figures).

For each run folder given (a ``perturbfm train`` run of a torch model or ensemble), reload its
members, predict its split's OOD-validation cells (the calibration set) and test cells, and
report the test coverage of split-conformal intervals whose normalised score ``|r| / s``
uses, as the scale ``s^2``:

  model      the predicted variance (aleatoric + epistemic; what ``train_model`` uses);
  context    the variance of the control cells of the cell's own context (training controls
             for training contexts, the test split's controls for a held-out context: no
             perturbed test cell is used), per gene;
  model x context ratio  the predicted variance times (context control variance / pooled
             training control variance), per gene.

Calibration unit (``--unit``): ``group`` (default, as ``train_model`` now: each
(perturbation, context) group of the calibration part weighs equally) or ``cell`` (every
entry once; what ``train_model`` did before session 4).

Usage: python benchmarks/perturbfm_conformal_scales.py --split-dir splits [--unit cell] RUN [RUN ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from perturbfm.models.base import VAR_FLOOR, load_model, pert_context_keys
from perturbfm.models.uncertainty import conformal_quantiles, conformal_report
from perturbfm.runs.core import load_run_inputs


def check(run: Path, split_dir: Path, unit: str = "group") -> dict:
    config = json.loads((run / "config.json").read_text())["config"]
    inputs = load_run_inputs(config["data_dir"], config["split_hash"], split_dir=split_dir)
    ds, split = inputs.ds, inputs.split
    members = [load_model(p) for p in sorted((run / "model").glob("member_*"))]
    cal_idx = np.asarray(split.ood_val_idx, dtype=np.int64)
    cal_idx = cal_idx[~ds.is_control[cal_idx]]
    train = np.asarray(split.train_idx, dtype=np.int64)
    ctrl_rows = np.r_[train[ds.is_control[train]], inputs.control_idx]
    contexts = ds.obs["context_id"].astype(str).to_numpy()
    pooled = np.asarray(ds.rows(ctrl_rows[np.isin(ctrl_rows, train)], "control"), dtype=np.float64).var(
        axis=0
    )

    def components(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        preds = [m.predict(ds, idx) for m in members]
        means = np.stack([p[0] for p in preds]).astype(np.float64)
        var = np.stack([p[1] for p in preds]).astype(np.float64).mean(axis=0) + means.var(axis=0)
        ctx_var = np.zeros((idx.size, ds.n_genes))
        for c in np.unique(contexts[idx]):
            rows = ctrl_rows[contexts[ctrl_rows] == c]
            ctx_var[contexts[idx] == c] = np.asarray(ds.rows(rows, "control"), dtype=np.float64).var(axis=0)
        resid = np.asarray(ds.rows(idx, "delta"), dtype=np.float64) - means.mean(axis=0)
        return resid, var, ctx_var

    r_cal, v_cal, c_cal = components(cal_idx)
    r_test, v_test, c_test = components(inputs.test_idx)
    ratio_cal = c_cal / np.maximum(pooled, VAR_FLOOR)
    ratio_test = c_test / np.maximum(pooled, VAR_FLOOR)
    scales = {
        "model": (v_cal, v_test),
        "context": (c_cal, c_test),
        "model x context ratio": (v_cal * ratio_cal, v_test * ratio_test),
    }
    out: dict = {
        "run": run.name,
        "n_members": len(members),
        "calibration_contexts": sorted(set(contexts[cal_idx])),
        "test_contexts": sorted(set(contexts[inputs.test_idx])),
        "mean_abs_residual": {
            "calibration": float(np.abs(r_cal).mean()),
            "test": float(np.abs(r_test).mean()),
        },
    }
    groups = pert_context_keys(ds, cal_idx).astype(str) if unit == "group" else None
    out["unit"] = unit
    for name, (cal, test) in scales.items():
        quantiles = conformal_quantiles(r_cal, cal, groups=groups)
        report = conformal_report(quantiles, r_test, np.maximum(test, VAR_FLOOR))
        out[name] = {level: round(v["coverage"], 3) for level, v in report.items()}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--split-dir", type=Path, default=Path("splits"))
    parser.add_argument("--unit", choices=["group", "cell"], default="group")
    args = parser.parse_args(argv)
    for run in args.runs:
        print(json.dumps(check(run, args.split_dir, args.unit)), flush=True)


if __name__ == "__main__":
    main()
