"""Train a baseline on a frozen split, or evaluate an existing predictions file, into a run folder.

A run folder holds ``config.json`` (resolved config, data/split/config hashes, seed,
package versions), ``split_hash.txt``, ``predictions.npz``, ``metrics.json`` (every panel),
``calibration.json`` (the uncertainty panel) and ``report.html``. Everything is computed
before the folder is opened, and the folder is assembled atomically, so bad input or a
failure leaves no partial run behind; an existing run is never overwritten.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from omicsrun import InputError
from omicsrun.atomic import check_output_dir, output_dir, write_bytes, write_json, write_text
from omicsrun.hashing import sha256_file, sha256_json
from omicsrun.manifest import run_manifest
from perturbfm.data.dataset import PerturbDataset
from perturbfm.runs.ids import make_run_id, unique_run_dir
from perturbfm.runs.predictions import load_predictions, predictions_bytes

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class RunInputs:
    """A loaded dataset with its hash and the verified split that indexes it."""

    ds: PerturbDataset
    data_hash: str
    split: Any  # perturbfm.splits.Split
    test_idx: np.ndarray  # non-control test rows (the rows predictions cover)
    control_idx: np.ndarray  # control test rows (the reference controls)
    val_idx: np.ndarray  # non-control validation rows of the test contexts (else all of them)

    @property
    def ood_labels(self) -> np.ndarray | None:
        if "is_ood" not in self.ds.obs.columns:
            return None
        return self.ds.obs["is_ood"].to_numpy(dtype=bool)[self.test_idx]


def load_run_inputs(data_dir: PathLike, split_hash: str, *, split_dir: PathLike | None = None) -> RunInputs:
    """Load a dataset artifact and the split ``split_hash`` (a hash or unique prefix).

    Raises
    ------
    InputError
        When the artifact cannot be read, the split does not exist, fails its hash check,
        or was made for other data.
    """
    from perturbfm.data.artifact import dataset_hash, load_dataset
    from perturbfm.splits import SplitStore

    ds = load_dataset(data_dir)
    data_hash = dataset_hash(data_dir)
    split = SplitStore(root=split_dir).load(split_hash, data_hash=data_hash)
    test = np.asarray(split.test_idx, dtype=np.int64)
    is_ctrl = ds.is_control[test]
    if (~is_ctrl).sum() == 0:
        msg = f"split {split.frozen_hash[:12]} has no perturbed test rows; nothing to predict"
        raise InputError(msg)
    val = np.asarray(split.val_idx, dtype=np.int64)
    val = val[~ds.is_control[val]]
    # The in-distribution reference of the OOD AUROC: validation cells of the contexts under
    # test when there are any (combo, perturbation_ood), else all of them (context_ood), so
    # that context-level variance differences do not pass for OOD separation.
    contexts = ds.obs["context_id"].to_numpy()
    same = np.isin(contexts[val], np.unique(contexts[test[~is_ctrl]]))
    if same.any():
        val = val[same]
    return RunInputs(
        ds=ds,
        data_hash=data_hash,
        split=split,
        test_idx=test[~is_ctrl],
        control_idx=test[is_ctrl],
        val_idx=val,
    )


def _evaluate(
    inputs: RunInputs, mean: np.ndarray, var: np.ndarray, seed: int, val_var: np.ndarray | None
) -> dict[str, Any]:
    from perturbfm.eval import evaluate_predictions

    # A combo split labels each held-out combination by the number of its singles seen in
    # training; the panels then report every metric per label too.
    pert_labels = inputs.split.labels if inputs.split.name == "combo" else None
    return evaluate_predictions(
        inputs.ds,
        test_idx=inputs.test_idx,
        control_idx=inputs.control_idx,
        mean=mean,
        var=var,
        metric_genes=inputs.split.metric_genes,
        ood_labels=inputs.ood_labels,
        id_var=val_var,
        pert_labels=pert_labels,
        seed=seed,
    )


def _write_run(
    run_dir: Path,
    *,
    inputs: RunInputs,
    config: dict[str, Any],
    config_hash: str,
    mean: np.ndarray,
    var: np.ndarray,
    seed: int,
    val: tuple[np.ndarray, np.ndarray] | None = None,
    overwrite: bool = False,
    extra_arrays: dict[str, np.ndarray] | None = None,
    extra_uncertainty: dict[str, Any] | None = None,
    write_extra: Callable[[Path], None] | None = None,
) -> Path:
    from perturbfm.report import render_run_report

    metrics = _evaluate(inputs, mean, var, seed, None if val is None else val[1])
    if extra_uncertainty:  # e.g. the conformal panel of a model run
        metrics["uncertainty"].update(extra_uncertainty)
    split_hash = inputs.split.frozen_hash
    header = {
        "run": run_dir.name,
        "model": config.get("model", {}).get("name", "external predictions"),
        "params": config.get("model", {}).get("params", {}),
        "dataset": str(config["data_dir"]),
        "data_hash": inputs.data_hash,
        "split_hash": split_hash,
        "split_spec": inputs.split.spec,
        "config_hash": config_hash,
        "seed": seed,
        "n_test_cells": int(inputs.test_idx.size),
        "n_test_controls": int(inputs.control_idx.size),
        "n_train_rows": int(inputs.split.train_idx.size),
    }
    html = render_run_report(inputs.ds, metrics, mean=mean, idx=inputs.test_idx, header=header)
    manifest = run_manifest(
        tool="perturbfm",
        config=config,
        seed=seed,
        data_hash=inputs.data_hash,
        extra={"split_hash": split_hash, "config_hash": config_hash, "run_id": run_dir.name},
    )
    with output_dir(run_dir, overwrite=overwrite, what="run") as tmp:
        write_json(tmp / "config.json", manifest)
        write_text(tmp / "split_hash.txt", split_hash + "\n")
        write_bytes(
            tmp / "predictions.npz",
            predictions_bytes(
                mean, var, inputs.test_idx, val=val, val_idx=inputs.val_idx, extra=extra_arrays
            ),
        )
        write_json(tmp / "metrics.json", metrics)
        write_json(tmp / "calibration.json", metrics["uncertainty"])
        write_text(tmp / "report.html", html)
        if write_extra is not None:
            write_extra(tmp)
    return run_dir


def train_baseline(
    *,
    data_dir: PathLike,
    split_hash: str,
    baseline: str,
    params: dict[str, Any] | None = None,
    runs_root: PathLike = "runs",
    seed: int = 0,
    split_dir: PathLike | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Fit a registered model on a split's training rows, predict its test rows, write a run.

    Parameters
    ----------
    data_dir
        Dataset artifact folder.
    split_hash
        Hash (or unique prefix) of a stored split made for this dataset.
    baseline
        Registered model name (see :func:`perturbfm.models.available_models`).
    params
        Model hyperparameters (keyword arguments of the model).
    runs_root
        Folder the run folder is created in.
    seed
        Seed passed to ``fit`` and to the evaluation's tie-breaking.
    split_dir
        Split store folder (default: ``$PERTURBFM_SPLIT_DIR`` or ``splits/``).
    progress
        Called with a one-line message before each stage (the CLI prints it to stderr).

    Returns
    -------
    pathlib.Path
        The new run folder ``runs_root/<run_id>``.
    """
    from perturbfm.models import get_model

    say = progress or (lambda _msg: None)
    model = get_model(baseline, **(params or {}))
    say(f"loading {data_dir} and split {split_hash[:12]}")
    inputs = load_run_inputs(data_dir, split_hash, split_dir=split_dir)
    say(f"fitting {baseline} on {inputs.split.train_idx.size} training rows")
    model.fit(inputs.ds, inputs.split.train_idx, seed=seed)
    say(f"predicting {inputs.test_idx.size} test and {inputs.val_idx.size} validation cells")
    mean, var = model.predict(inputs.ds, inputs.test_idx)
    # Validation cells are held out from fitting but belong to training groups: the
    # in-distribution reference of the OOD AUROC.
    val = model.predict(inputs.ds, inputs.val_idx) if inputs.val_idx.size else None
    config = {
        "kind": "train_baseline",
        "model": {"name": baseline, "params": model.get_params()},
        "data_dir": str(Path(data_dir).resolve()),
        "data_hash": inputs.data_hash,
        "split_hash": inputs.split.frozen_hash,
        "split_spec": inputs.split.spec,
        "seed": int(seed),
    }
    config_hash = sha256_json({k: v for k, v in config.items() if k != "data_dir"})
    config["config_hash"] = config_hash
    run_id = make_run_id(split_hash=inputs.split.frozen_hash, model_name=baseline, config_hash=config_hash)
    say("computing the metric panels and the report")
    return _write_run(
        unique_run_dir(runs_root, run_id),
        inputs=inputs,
        config=config,
        config_hash=config_hash,
        mean=mean,
        var=var,
        seed=seed,
        val=val,
    )


def eval_predictions(
    *,
    data_dir: PathLike,
    split_hash: str,
    preds_path: PathLike,
    out_dir: PathLike,
    seed: int = 0,
    split_dir: PathLike | None = None,
    overwrite: bool = False,
) -> Path:
    """Evaluate a ``predictions.npz`` (``mean``, ``var``, ``idx``) made elsewhere; write a run folder.

    The predictions must cover exactly the split's non-control test rows, in order, with
    finite means and finite non-negative variances; they are checked before anything is
    written.

    Returns
    -------
    pathlib.Path
        ``out_dir``.
    """
    from perturbfm.eval import validate_predictions

    check_output_dir(out_dir, overwrite=overwrite, what="evaluation output")
    inputs = load_run_inputs(data_dir, split_hash, split_dir=split_dir)
    preds = load_predictions(preds_path)
    mean, var = validate_predictions(
        preds["mean"], preds["var"], preds["idx"], inputs.test_idx, inputs.ds.n_genes
    )
    val = None
    if "val_var" in preds:
        val = validate_predictions(
            preds["val_mean"],
            preds["val_var"],
            preds["val_idx"],
            inputs.val_idx,
            inputs.ds.n_genes,
            part="validation",
        )
    config = {
        "kind": "eval_predictions",
        "predictions": str(Path(preds_path).resolve()),
        "predictions_sha256": sha256_file(preds_path),
        "data_dir": str(Path(data_dir).resolve()),
        "data_hash": inputs.data_hash,
        "split_hash": inputs.split.frozen_hash,
        "split_spec": inputs.split.spec,
        "seed": int(seed),
    }
    config_hash = sha256_json({k: v for k, v in config.items() if k not in ("data_dir", "predictions")})
    config["config_hash"] = config_hash
    return _write_run(
        Path(out_dir),
        inputs=inputs,
        config=config,
        config_hash=config_hash,
        mean=mean.astype(np.float32),
        var=var.astype(np.float32),
        seed=seed,
        val=None if val is None else (val[0].astype(np.float32), val[1].astype(np.float32)),
        overwrite=overwrite,
    )
