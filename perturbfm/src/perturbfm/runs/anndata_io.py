"""AnnData in and out: predicted cells as ``.h5ad`` (cell-eval's layout) and ``perturbfm export``.

Reading: an AnnData of predicted cells with ``obs[pert_key]`` naming each cell's perturbation
(control cells, if any, are ignored), optionally ``obs[context_key]``, and the dataset's genes
in ``var_names`` (any order; extra genes are dropped). Each test group (perturbation, context)
needs at least one predicted cell. When a group has exactly as many predicted cells as test
cells, cell k of the file is the prediction for the group's k-th test cell (in dataset order)
and the per-cell (distribution) metrics use them; otherwise the group's predicted mean is
spread over its test cells as a shift of their matched controls (group-level metrics are then
exact, per-cell metrics see the matched controls' spread). An optional layer ``var`` (same
shape) is the predicted delta variance (cell mode only); without it the uncertainty panel is
marked absent.

Writing (:func:`export_run`): for each test context one pair ``real_<context>.h5ad`` (true test
cells + the test-split controls) and ``pred_<context>.h5ad`` (predicted cells + the same
controls), ``obs`` columns ``target_gene`` (control: ``non-targeting``; cell-eval's defaults),
``condition`` (control: ``control``; PerturBench) and ``cell_type`` / ``context_id``. Predicted
expression below zero is clipped at 0 (cell-eval refuses negative log-expression); the count
is written into ``export.json`` and ``uns['perturbfm']``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from omicsrun import InputError
from omicsrun.atomic import output_dir, write_json

CELL_EVAL_PERT_COL = "target_gene"
CELL_EVAL_CONTROL = "non-targeting"
PERTURBENCH_PERT_COL = "condition"
PERTURBENCH_CONTROL = "control"


def _dense(x: Any) -> np.ndarray:
    return np.asarray(x.toarray() if sp.issparse(x) else x, dtype=np.float64)


def predictions_from_h5ad(
    path: str | os.PathLike[str],
    inputs: Any,
    *,
    pert_key: str = CELL_EVAL_PERT_COL,
    context_key: str | None = None,
    control_label: str = CELL_EVAL_CONTROL,
) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    """Predicted delta mean (and variance) for the split's test rows from an ``.h5ad``.

    Parameters
    ----------
    path
        AnnData file of predicted cells.
    inputs
        :class:`perturbfm.runs.core.RunInputs` of the split.
    pert_key, context_key, control_label
        obs column of the perturbation, optional obs column of the context, control label.

    Returns
    -------
    mean, var, info
        (n_test, n_genes) predicted deltas aligned with ``inputs.test_idx``; ``var`` or None;
        ``info`` records the mode per group (``cell`` / ``group_mean``).
    """
    import anndata as ad

    path = Path(path)
    try:
        adata = ad.read_h5ad(path)
    except (OSError, ValueError, KeyError) as err:
        msg = f"cannot read {path} as an AnnData .h5ad file ({type(err).__name__}: {err})"
        raise InputError(msg) from None
    ds = inputs.ds
    if pert_key not in adata.obs.columns:
        msg = (
            f"{path} has no obs column {pert_key!r} naming each cell's perturbation; "
            f"obs columns are {list(adata.obs.columns)[:10]} (pass --pert-key)"
        )
        raise InputError(msg)
    gene_pos = pd.Index(adata.var_names.astype(str)).get_indexer(pd.Index(ds.var))
    if (gene_pos < 0).any():
        missing = [g for g, p in zip(ds.var, gene_pos, strict=True) if p < 0]
        msg = f"{path} lacks {len(missing)} of the dataset's {ds.n_genes} genes, e.g. {missing[:3]}"
        raise InputError(msg)
    obs = ds.obs
    test = inputs.test_idx
    t_pert = obs["pert_id"].to_numpy().astype(str)[test]
    t_ctx = obs["context_id"].to_numpy().astype(str)[test]
    f_pert = adata.obs[pert_key].to_numpy().astype(str)
    keep = f_pert != control_label
    if context_key is not None:
        if context_key not in adata.obs.columns:
            msg = f"{path} has no obs column {context_key!r}; obs columns are {list(adata.obs.columns)[:10]}"
            raise InputError(msg)
        f_ctx = adata.obs[context_key].to_numpy().astype(str)
    else:
        contexts = np.unique(t_ctx)
        if contexts.size > 1:
            msg = (
                f"the split's test cells span {contexts.size} contexts {list(contexts)[:5]}; "
                "pass --context-key naming the obs column of the context"
            )
            raise InputError(msg)
        f_ctx = np.full(f_pert.size, contexts[0])
    test_keys = pd.Series(t_pert) + "\t" + pd.Series(t_ctx)
    file_keys = pd.Series(f_pert[keep]) + "\t" + pd.Series(f_ctx[keep])
    missing_groups = sorted(set(test_keys) - set(file_keys))
    if missing_groups:
        shown = [k.replace("\t", " in ") for k in missing_groups[:3]]
        msg = f"{path} has no predicted cells for {len(missing_groups)} test group(s), e.g. {shown}"
        raise InputError(msg)
    extra = sorted(set(file_keys) - set(test_keys))
    if extra:
        shown = [k.replace("\t", " in ") for k in extra[:3]]
        msg = f"{path} predicts {len(extra)} group(s) that are not in the split's test set, e.g. {shown}"
        raise InputError(msg)
    x = adata.X
    rows_file = np.flatnonzero(keep)
    has_var = "var" in adata.layers
    mean = np.empty((test.size, ds.n_genes))
    var = np.empty((test.size, ds.n_genes)) if has_var else None
    modes: dict[str, int] = {"cell": 0, "group_mean": 0}
    file_groups = file_keys.groupby(file_keys.to_numpy()).indices
    for key, pos_list in test_keys.groupby(test_keys.to_numpy()).indices.items():
        pos = np.asarray(pos_list, dtype=np.int64)
        frows = rows_file[np.asarray(file_groups[key], dtype=np.int64)]
        pred = _dense(x[frows])[:, gene_pos]
        ctrl = np.asarray(ds.rows(test[pos], "control"), dtype=np.float64)
        if frows.size == pos.size:
            modes["cell"] += 1
            mean[pos] = pred - ctrl
            if var is not None:
                var[pos] = _dense(adata.layers["var"][frows])[:, gene_pos]
        else:
            modes["group_mean"] += 1
            mean[pos] = pred.mean(axis=0) - ctrl.mean(axis=0)
            if var is not None:
                var[pos] = _dense(adata.layers["var"][frows])[:, gene_pos].mean(axis=0)
    if var is not None and modes["group_mean"]:
        var = None  # a group-mean variance is not a per-cell predictive variance
    info = {"format": "h5ad", "pert_key": pert_key, "context_key": context_key, "groups_by_mode": modes}
    return mean, var, info


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def export_run(
    run_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    split_dir: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a run's predictions and truth as AnnData pairs, one pair per test context.

    Returns
    -------
    pathlib.Path
        ``out_dir``, holding ``pred_<context>.h5ad``, ``real_<context>.h5ad`` and ``export.json``.
    """
    import json

    import anndata as ad

    from omicsrun.atomic import check_output_dir
    from perturbfm.runs.core import load_run_inputs
    from perturbfm.runs.predictions import load_predictions

    run = Path(run_dir)
    check_output_dir(out_dir, overwrite=overwrite, what="export")
    for name in ("config.json", "predictions.npz"):
        if not (run / name).is_file():
            msg = f"{run} is not a run folder: {name} is missing"
            raise InputError(msg)
    config = json.loads((run / "config.json").read_text())
    cfg = config.get("config", config)
    inputs = load_run_inputs(cfg["data_dir"], cfg["split_hash"], split_dir=split_dir)
    preds = load_predictions(run / "predictions.npz")
    if not np.array_equal(preds["idx"], inputs.test_idx):
        msg = f"{run}/predictions.npz does not cover the split's test rows"
        raise InputError(msg)
    ds, obs = inputs.ds, inputs.ds.obs
    genes = pd.DataFrame(index=pd.Index(ds.var, name="gene_id"))
    summary: dict[str, Any] = {"run": str(run.resolve()), "split_hash": inputs.split.frozen_hash, "pairs": []}
    ctx_all = obs["context_id"].to_numpy().astype(str)
    with output_dir(out_dir, overwrite=overwrite, what="export", inputs=[run, cfg["data_dir"]]) as tmp:
        for ctx in np.unique(ctx_all[inputs.test_idx]):
            sel = ctx_all[inputs.test_idx] == ctx
            rows, ctrl = inputs.test_idx[sel], inputs.control_idx[ctx_all[inputs.control_idx] == ctx]
            pred = np.asarray(ds.rows(rows, "control"), dtype=np.float64) + preds["mean"][sel]
            n_neg = int((pred < 0).sum())
            pred = np.maximum(pred, 0.0)
            pert = obs["pert_id"].to_numpy().astype(str)[rows]
            labels_ce = np.concatenate([pert, [CELL_EVAL_CONTROL] * ctrl.size])
            labels_pb = np.concatenate([pert, [PERTURBENCH_CONTROL] * ctrl.size])
            o = pd.DataFrame(
                {
                    CELL_EVAL_PERT_COL: labels_ce,
                    PERTURBENCH_PERT_COL: labels_pb,
                    "cell_type": ctx,
                    "context_id": ctx,
                    "is_control": np.r_[np.zeros(rows.size, bool), np.ones(ctrl.size, bool)],
                },
                index=[f"cell{i}" for i in range(rows.size + ctrl.size)],
            )
            x_ctrl = np.asarray(ds.rows(ctrl, "pert"), dtype=np.float32)
            real = ad.AnnData(
                X=np.vstack([np.asarray(ds.rows(rows, "pert"), dtype=np.float32), x_ctrl]), obs=o, var=genes
            )
            predicted = ad.AnnData(X=np.vstack([pred.astype(np.float32), x_ctrl]), obs=o.copy(), var=genes)
            meta = {"run": run.name, "context": str(ctx), "n_negative_clipped": n_neg}
            real.uns["perturbfm"] = {**meta, "side": "real"}
            predicted.uns["perturbfm"] = {**meta, "side": "pred"}
            stem = _safe(str(ctx))
            real.write_h5ad(tmp / f"real_{stem}.h5ad")
            predicted.write_h5ad(tmp / f"pred_{stem}.h5ad")
            summary["pairs"].append(
                {
                    "context": str(ctx),
                    "real": f"real_{stem}.h5ad",
                    "pred": f"pred_{stem}.h5ad",
                    "n_cells": int(rows.size),
                    "n_controls": int(ctrl.size),
                    "n_negative_clipped": n_neg,
                    "fraction_negative_clipped": n_neg / pred.size if pred.size else 0.0,
                }
            )
        summary["note"] = (
            "predicted expression = matched control + predicted delta, values below 0 clipped at 0 "
            "(cell-eval refuses negative expression); both files hold the test-split controls, "
            f"labelled {CELL_EVAL_CONTROL!r} in obs[{CELL_EVAL_PERT_COL!r}] (cell-eval) and "
            f"{PERTURBENCH_CONTROL!r} in obs[{PERTURBENCH_PERT_COL!r}] (PerturBench)"
        )
        write_json(tmp / "export.json", summary)
    return Path(out_dir)
