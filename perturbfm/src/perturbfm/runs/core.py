"""Train a baseline on a frozen split, or evaluate an existing predictions file, into a run folder.

A run folder holds ``config.json`` (resolved config, data/split/config hashes, seed,
package versions), ``split_hash.txt``, ``predictions.npz``, ``metrics.json`` (every panel),
``calibration.json`` (the uncertainty panel) and ``report.html``. Everything is computed
before the folder is opened, and the folder is assembled atomically, so bad input or a
failure leaves no partial run behind; an existing run is never overwritten.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from omicsrun import InputError
from omicsrun.atomic import output_dir, write_bytes, write_json, write_text
from omicsrun.commit import claim_unique_dir, final_path
from omicsrun.errors import check_seed
from omicsrun.hashing import sha256_file, sha256_file_async, sha256_json
from omicsrun.manifest import run_manifest
from perturbfm.data.dataset import PerturbDataset
from perturbfm.runs.ids import make_run_id
from perturbfm.runs.predictions import load_predictions, write_predictions

PathLike = str | os.PathLike[str]


def _no_check() -> None:
    return None


@dataclass(frozen=True)
class RunInputs:
    """A loaded dataset with its hash and the verified split that indexes it."""

    ds: PerturbDataset
    data_hash: str
    split: Any  # perturbfm.splits.Split
    test_idx: np.ndarray  # non-control test rows (the rows predictions cover)
    control_idx: np.ndarray  # control test rows (the reference controls)
    val_idx: np.ndarray  # non-control validation rows of the test contexts (else all of them)
    verify: Callable[[], None] = _no_check  # waits for the artifact's checksums (deferred load)

    @contextlib.contextmanager
    def checked(self) -> Iterator[None]:
        """Work on the inputs while their checksums are still computed (``defer_verify``).

        The checksums are awaited when the block ends, so nothing computed from a changed
        artifact can be written after it; when the block fails, a checksum mismatch is
        raised in place of the failure (a changed file explains it better).
        """
        try:
            yield
        except BaseException:
            self.verify()
            raise
        self.verify()

    @property
    def ood_labels(self) -> np.ndarray | None:
        if "is_ood" not in self.ds.obs.columns:
            return None
        return self.ds.obs["is_ood"].to_numpy(dtype=bool)[self.test_idx]


def load_run_inputs(
    data_dir: PathLike, split_hash: str, *, split_dir: PathLike | None = None, defer_verify: bool = False
) -> RunInputs:
    """Load a dataset artifact and the split ``split_hash`` (a hash or unique prefix).

    With ``defer_verify`` the artifact's file checksums are still being computed on
    background threads when this returns; work inside :meth:`RunInputs.checked`.

    Raises
    ------
    InputError
        When the artifact cannot be read, the split does not exist, fails its hash check,
        or was made for other data.
    """
    from perturbfm.data.artifact import open_dataset_deferred
    from perturbfm.splits import SplitStore

    ds, data_hash, verify = open_dataset_deferred(data_dir)
    if not defer_verify:
        verify()
        verify = _no_check
    try:
        return _run_inputs(
            ds, data_hash, SplitStore(root=split_dir).load(split_hash, data_hash=data_hash), verify
        )
    except BaseException:
        verify()  # a changed artifact explains a failure better than the failure itself
        raise


def _run_inputs(ds: PerturbDataset, data_hash: str, split: Any, verify: Callable[[], None]) -> RunInputs:
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
        verify=verify,
    )


def _evaluate(
    inputs: RunInputs, mean: np.ndarray, var: np.ndarray | None, seed: int, val_var: np.ndarray | None
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


def _validation(inputs: RunInputs, val_mean: np.ndarray | None) -> dict[str, Any]:
    """Validation score of the run (model selection only), or a note why there is none."""
    from perturbfm.eval.robust import validation_scores

    if val_mean is None or inputs.val_idx.size == 0:
        return {"val_rmse_delta": None, "reason": "no validation predictions"}
    genes = inputs.split.metric_genes
    cols = np.arange(inputs.ds.n_genes) if genes is None else np.asarray(genes)
    if cols.size and not np.issubdtype(cols.dtype, np.integer):
        lookup = {g: i for i, g in enumerate(inputs.ds.var)}
        cols = np.asarray([lookup[str(g)] for g in cols], dtype=np.int64)
    obs = inputs.ds.obs
    keys = (
        obs["pert_id"].astype(str).to_numpy()[inputs.val_idx]
        + "\t"
        + obs["context_id"].astype(str).to_numpy()[inputs.val_idx]
    )
    code = np.unique(keys, return_inverse=True)[1]
    true = np.asarray(inputs.ds.rows(inputs.val_idx, "delta", genes=cols), dtype=np.float64)
    return validation_scores(np.asarray(val_mean, dtype=np.float64)[:, cols], true, code)


def _write_run(
    run_dir: Path,
    *,
    inputs: RunInputs,
    config: dict[str, Any],
    config_hash: str,
    mean: np.ndarray,
    var: np.ndarray | None,
    seed: int,
    val: tuple[np.ndarray, np.ndarray | None] | None = None,
    overwrite: bool = False,
    run_name: str | None = None,
    extra_arrays: dict[str, np.ndarray] | None = None,
    extra_uncertainty: dict[str, Any] | None = None,
    write_extra: Callable[[Path], None] | None = None,
) -> Path:
    from perturbfm.report import render_run_report
    from perturbfm.runs.relative import baseline_globals, metric_tables, relative_scores, table_bytes

    run_name = run_name or run_dir.name  # run_dir may be the build folder of a claimed run

    metrics = _evaluate(inputs, mean, var, seed, None if val is None else val[1])
    if extra_uncertainty:  # e.g. the conformal panel of a model run
        metrics["uncertainty"].update(extra_uncertainty)
    metrics["baseline_relative"] = relative_scores(metrics, baseline_globals(inputs, seed))
    metrics["validation"] = _validation(inputs, None if val is None else val[0])
    tables = {name: table_bytes(t) for name, t in metric_tables(metrics).items()}
    split_hash = inputs.split.frozen_hash
    header = {
        "run": run_name,
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
    labels = inputs.split.labels if inputs.split.name == "combo" else None
    html = render_run_report(
        inputs.ds, metrics, mean=mean, idx=inputs.test_idx, header=header, pert_labels=labels
    )
    manifest = run_manifest(
        tool="perturbfm",
        config=config,
        seed=seed,
        data_hash=inputs.data_hash,
        extra={"split_hash": split_hash, "config_hash": config_hash, "run_id": run_name},
    )
    with output_dir(run_dir, overwrite=overwrite, what="run") as tmp:
        write_json(tmp / "config.json", manifest)
        write_text(tmp / "split_hash.txt", split_hash + "\n")
        write_predictions(
            tmp / "predictions.npz",
            mean,
            var,
            inputs.test_idx,
            val=val,
            val_idx=inputs.val_idx,
            extra=extra_arrays,
        )
        write_json(tmp / "metrics.json", metrics)
        for name, (parquet, csv) in tables.items():
            write_bytes(tmp / f"{name}.parquet", parquet)
            write_bytes(tmp / f"{name}.csv", csv)
        write_json(tmp / "calibration.json", metrics["uncertainty"])
        write_text(tmp / "report.html", html)
        if write_extra is not None:
            write_extra(tmp)
    return run_dir


def _selected_result(inputs: RunInputs, mean: np.ndarray, metrics: list[str], seed: int) -> dict[str, Any]:
    """The group-level metrics ``metrics`` only (no variance, report or relative scores)."""
    from perturbfm.eval import evaluate_predictions

    pert_labels = inputs.split.labels if inputs.split.name == "combo" else None
    return evaluate_predictions(
        inputs.ds,
        test_idx=inputs.test_idx,
        control_idx=inputs.control_idx,
        mean=mean,
        var=None,
        metric_genes=inputs.split.metric_genes,
        pert_labels=pert_labels,
        seed=seed,
        metrics=metrics,
    )


def _write_selected(
    run_dir: Path, *, inputs: RunInputs, config: dict[str, Any], result: dict[str, Any], seed: int
) -> None:
    """A metric-selection run: config, split hash, ``metrics.json`` and the tables only."""
    from perturbfm.runs.relative import metric_tables, table_bytes

    present = {k: v for k, v in result.items() if v is not None}
    tables = {name: table_bytes(t) for name, t in metric_tables(present).items()}
    manifest = run_manifest(
        tool="perturbfm",
        config=config,
        seed=seed,
        data_hash=inputs.data_hash,
        extra={"split_hash": inputs.split.frozen_hash, "config_hash": config["config_hash"]},
    )
    with output_dir(run_dir, what="evaluation output") as tmp:
        write_json(tmp / "config.json", manifest)
        write_text(tmp / "split_hash.txt", inputs.split.frozen_hash + "\n")
        write_json(tmp / "metrics.json", result)
        for name, (parquet, csv) in tables.items():
            write_bytes(tmp / f"{name}.parquet", parquet)
            write_bytes(tmp / f"{name}.csv", csv)


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
    seed = check_seed(seed)
    model = get_model(baseline, **(params or {}))
    say(f"loading {data_dir} and split {split_hash[:12]}")
    inputs = load_run_inputs(data_dir, split_hash, split_dir=split_dir)
    config = {
        "kind": "train_baseline",
        "model": {"name": baseline, "params": model.get_params()},
        "data_dir": str(final_path(Path(data_dir).resolve())),
        "data_hash": inputs.data_hash,
        "split_hash": inputs.split.frozen_hash,
        "split_spec": inputs.split.spec,
        "seed": int(seed),
    }
    config_hash = sha256_json({k: v for k, v in config.items() if k != "data_dir"})
    config["config_hash"] = config_hash
    run_id = make_run_id(split_hash=inputs.split.frozen_hash, model_name=baseline, config_hash=config_hash)
    # The run folder is claimed (locked, checked writable) before fitting: a run started in
    # the same second takes the next free name at once instead of failing after its fit.
    claim = claim_unique_dir(runs_root, run_id, what="run", inputs=[data_dir])
    with claim as build:
        say(f"fitting {baseline} on {inputs.split.train_idx.size} training rows")
        try:
            model.fit(inputs.ds, inputs.split.train_idx, seed=seed)
        except ValueError as err:  # scikit-learn's own range check of a hyperparameter
            if type(err).__name__ != "InvalidParameterError":
                raise
            msg = f"model {baseline!r}: {err}"
            raise InputError(msg) from None
        say(f"predicting {inputs.test_idx.size} test and {inputs.val_idx.size} validation cells")
        mean, var = model.predict(inputs.ds, inputs.test_idx)
        # Validation cells are held out from fitting but belong to training groups: the
        # in-distribution reference of the OOD AUROC.
        val = model.predict(inputs.ds, inputs.val_idx) if inputs.val_idx.size else None
        say("computing the metric panels and the report")
        _write_run(
            build,
            inputs=inputs,
            config=config,
            config_hash=config_hash,
            mean=mean,
            var=var,
            seed=seed,
            val=val,
            run_name=claim.final.name if claim.final is not None else run_id,
        )
    if claim.final is None:  # pragma: no cover - set whenever the claim was entered
        msg = "run folder was not claimed"
        raise RuntimeError(msg)
    return claim.final


def eval_predictions(
    *,
    data_dir: PathLike,
    split_hash: str,
    preds_path: PathLike,
    out_dir: PathLike,
    seed: int = 0,
    split_dir: PathLike | None = None,
    overwrite: bool = False,
    pert_key: str = "target_gene",
    context_key: str | None = None,
    control_label: str = "non-targeting",
    metrics: list[str] | None = None,
) -> Path:
    """Evaluate predictions made elsewhere; write a run folder.

    ``preds_path`` is either a ``predictions.npz`` (``mean``, optional ``var``, ``idx``)
    covering exactly the split's non-control test rows, in order, with finite means and
    finite non-negative variances; or an AnnData ``.h5ad`` of predicted cells in cell-eval's
    layout (``obs[pert_key]``, optional ``obs[context_key]``, the dataset's genes; see
    :mod:`perturbfm.runs.anndata_io`). Without a variance the uncertainty panel is marked
    absent. Everything is checked before anything is written.

    With ``metrics`` (registered group-level metric names) only those are computed
    (:func:`perturbfm.eval.evaluate_predictions`) and the folder holds ``config.json``,
    ``split_hash.txt``, ``metrics.json`` and the per-perturbation / per-context tables: no
    report, baseline-relative scores or copy of the predictions (the config records their
    path and SHA-256).

    Returns
    -------
    pathlib.Path
        ``out_dir``.
    """
    from perturbfm.eval.evaluator import check_metric_selection

    seed = check_seed(seed)
    if metrics is not None:
        metrics = check_metric_selection(metrics)
    with output_dir(
        out_dir, overwrite=overwrite, what="evaluation output", inputs=[data_dir, preds_path]
    ) as build:
        # The artifact's checksums and the run record's digest of the predictions file are
        # computed on other cores while the data are read, the predictions checked and (with
        # ``metrics``) the metrics computed; all are awaited before anything is written.
        preds_digest = sha256_file_async(preds_path, cached=True) if Path(preds_path).is_file() else None
        inputs = load_run_inputs(data_dir, split_hash, split_dir=split_dir, defer_verify=True)
        with inputs.checked():
            mean, var, val, source = _read_predictions(
                inputs,
                preds_path,
                mean_only=metrics is not None,
                pert_key=pert_key,
                context_key=context_key,
                control_label=control_label,
            )
            selected = None if metrics is None else _selected_result(inputs, mean, metrics, seed)
        config = {
            "kind": "eval_predictions",
            "predictions": str(Path(preds_path).resolve()),
            "predictions_sha256": preds_digest.result() if preds_digest else sha256_file(preds_path),
            "predictions_source": source,
            "data_dir": str(final_path(Path(data_dir).resolve())),
            "data_hash": inputs.data_hash,
            "split_hash": inputs.split.frozen_hash,
            "split_spec": inputs.split.spec,
            "seed": int(seed),
        }
        if metrics is not None:
            config["metrics"] = metrics
        config_hash = sha256_json({k: v for k, v in config.items() if k not in ("data_dir", "predictions")})
        config["config_hash"] = config_hash
        if selected is not None:
            _write_selected(build, inputs=inputs, config=config, result=selected, seed=seed)
            return Path(out_dir)
        _write_run(
            build,
            inputs=inputs,
            config=config,
            config_hash=config_hash,
            mean=mean.astype(np.float32, copy=False),
            var=None if var is None else var.astype(np.float32, copy=False),
            seed=seed,
            val=None
            if val is None or val[1] is None
            else (val[0].astype(np.float32, copy=False), val[1].astype(np.float32, copy=False)),
            overwrite=overwrite,
            run_name=Path(out_dir).name,
        )
    return Path(out_dir)


def _read_predictions(
    inputs: RunInputs,
    preds_path: PathLike,
    *,
    mean_only: bool,
    pert_key: str,
    context_key: str | None,
    control_label: str,
) -> tuple[np.ndarray, np.ndarray | None, tuple[np.ndarray, np.ndarray | None] | None, dict[str, Any]]:
    """Predictions of the test rows from an ``.npz`` or an ``.h5ad``, checked: mean, variance
    (None when absent), validation mean and variance (None when absent) and the source record."""
    from perturbfm.eval import validate_predictions

    if Path(preds_path).suffix.lower() == ".h5ad":
        from perturbfm.runs.anndata_io import predictions_from_h5ad

        if not Path(preds_path).is_file():
            msg = f"predictions file {preds_path} does not exist"
            raise InputError(msg)
        raw_mean, raw_var, source = predictions_from_h5ad(
            preds_path, inputs, pert_key=pert_key, context_key=context_key, control_label=control_label
        )
        mean, var = validate_predictions(
            raw_mean, raw_var, inputs.test_idx, inputs.test_idx, inputs.ds.n_genes
        )
        return mean, var, None, source
    preds = load_predictions(preds_path, mean_only=mean_only)
    mean, var = validate_predictions(
        preds["mean"], preds.get("var"), preds["idx"], inputs.test_idx, inputs.ds.n_genes
    )
    val = None
    if "val_var" in preds and var is not None:
        val = validate_predictions(
            preds["val_mean"],
            preds["val_var"],
            preds["val_idx"],
            inputs.val_idx,
            inputs.ds.n_genes,
            part="validation",
        )
    return mean, var, val, {"format": "npz"}
