"""Train a PerturbFM model (optionally a deep ensemble with a conformal layer) into a run folder.

While it trains, the run lives in ``<runs_root>/.training/<model>_<config hash>/``: one
``member_<k>/last.pt`` checkpoint per ensemble member, rewritten after every epoch. A run
interrupted by a crash is continued with ``resume=True`` (the same configuration finds the
same folder). At the end the finished run folder is assembled in a temporary folder and
renamed into place in one step (:func:`omicsrun.atomic.output_dir`), and the training
folder is removed; a failure leaves earlier runs untouched.

Seeds: ``seed`` drives the model (initial weights, batch order; member k of an ensemble
gets :func:`~perturbfm.models.uncertainty.member_seeds`), ``eval_seed`` only the
evaluation's random tie-breaking, so either can be varied alone.

Graphs: names resolve to ``<data_dir>/graphs/<name>.npz`` (or are paths). A graph whose
provenance says it was computed from cells (``coexpression``) must have been computed from
this split's training rows (its ``split_hash`` and ``data_hash`` match); any other is
refused, since it would carry information from validation or test cells.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from omicsrun import InputError
from omicsrun.atomic import write_json
from omicsrun.commit import claim_unique_dir, final_path, hold
from omicsrun.errors import check_seed
from omicsrun.hashing import sha256_json
from perturbfm.data.graph import load_graph_meta
from perturbfm.runs.core import RunInputs, _write_run, load_run_inputs
from perturbfm.runs.ids import make_run_id

PathLike = str | os.PathLike[str]
TRAINING_DIR = ".training"
CELL_GRAPH_SOURCES = ("coexpression",)


def resolve_graphs(names: Sequence[str], *, data_dir: PathLike, inputs: RunInputs) -> list[str]:
    """Graph names or paths -> existing ``.npz`` paths, provenance checked (see module docstring)."""
    out = []
    for name in names:
        path = Path(name)
        if not path.suffix:
            path = Path(data_dir) / "graphs" / f"{name}.npz"
        if not path.is_file():
            available = sorted(p.stem for p in (Path(data_dir) / "graphs").glob("*.npz"))
            msg = f"graph {name!r} not found (looked for {path}); graphs of this dataset: {available}"
            raise InputError(msg)
        meta = load_graph_meta(path)
        if meta.get("source") in CELL_GRAPH_SOURCES:
            same_split = meta.get("split_hash") == inputs.split.frozen_hash
            same_data = meta.get("data_hash") == inputs.data_hash
            if not (same_split and same_data):
                msg = (
                    f"graph {path.name} was computed from cells of split {str(meta.get('split_hash'))[:12]} "
                    f"(data {str(meta.get('data_hash'))[:12]}), not from the training rows of split "
                    f"{inputs.split.frozen_hash[:12]}; it would leak held-out cells - rebuild it with "
                    "'perturbfm graphs build --from coexpression --split <this split>'"
                )
                raise InputError(msg)
        out.append(str(path.resolve()))
    return out


def train_model(
    *,
    data_dir: PathLike,
    split_hash: str,
    model: str,
    params: dict[str, Any] | None = None,
    graphs: Sequence[str] = (),
    n_members: int = 1,
    conformal: bool = True,
    conformal_unit: str = "group",
    runs_root: PathLike = "runs",
    seed: int = 0,
    eval_seed: int = 0,
    split_dir: PathLike | None = None,
    resume: bool = False,
    cluster: str = "serial",
    n_workers: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Fit ``model`` (K members) on the split's training rows with early stopping on its
    OOD-validation part, calibrate conformal intervals there, predict and evaluate the test
    rows, and write the run folder.

    ``conformal_unit``: ``"group"`` (each (perturbation, context) group of the calibration
    part weighs equally, with a finite-sample correction on the number of groups) or
    ``"cell"`` (every calibration entry once); see :mod:`perturbfm.models.uncertainty`.
    With ``n_members > 1`` the members default to ``unseen_inputs="sample"`` unless
    ``params`` sets it (:func:`~perturbfm.models.uncertainty.member_params`); the resolved
    value is in ``config.json``.

    Returns
    -------
    pathlib.Path
        The new run folder ``runs_root/<run_id>``; besides the usual files it holds
        ``training.json`` (per-member history, best epoch, seconds per epoch),
        ``model_diagnostics.json`` (graph reliance) and ``model/member_<k>/``.
    """
    from perturbfm.models import get_model
    from perturbfm.models.base import pert_context_keys
    from perturbfm.models.uncertainty import (
        CONFORMAL_UNITS,
        DeepEnsemble,
        member_params,
    )

    say = progress or (lambda _msg: None)
    seed, eval_seed = check_seed(seed), check_seed(eval_seed)
    params = dict(params or {})
    if conformal_unit not in CONFORMAL_UNITS:
        msg = f"conformal_unit must be one of {list(CONFORMAL_UNITS)}; found {conformal_unit!r}"
        raise InputError(msg)
    say(f"loading {data_dir} and split {split_hash[:12]}")
    inputs = load_run_inputs(data_dir, split_hash, split_dir=split_dir)
    ds, split = inputs.ds, inputs.split
    neural = model.startswith("perturbfm-")
    ood_val = split.require_ood_val(f"training {model}") if neural or conformal else split.ood_val_idx
    ood_val = ood_val[~ds.is_control[ood_val]]
    if graphs:
        params["graphs"] = resolve_graphs(graphs, data_dir=data_dir, inputs=inputs)
    # Validates names and fills defaults; K > 1 members sample unseen inputs unless set.
    resolved = get_model(model, **member_params(model, params, int(n_members))).get_params()
    config = {
        "kind": "train_model",
        "model": {"name": model, "params": resolved},
        "ensemble": {"n_members": int(n_members)},
        "conformal": bool(conformal),
        "conformal_unit": conformal_unit,
        "data_dir": str(final_path(Path(data_dir).resolve())),
        "data_hash": inputs.data_hash,
        "split_hash": split.frozen_hash,
        "split_spec": split.spec,
        "seed": int(seed),
        "eval_seed": int(eval_seed),
    }
    config_hash = sha256_json({k: v for k, v in config.items() if k != "data_dir"})
    config["config_hash"] = config_hash
    work = Path(runs_root) / TRAINING_DIR / f"{model}_{config_hash[:16]}"
    # One process per training folder: a second identical run started meanwhile is refused
    # (it would write the same checkpoints).
    with hold(work, what="training folder"):
        if work.exists() and not resume:
            msg = (
                f"an unfinished run of this configuration is in {work}; "
                "pass --resume to continue it or remove it"
            )
            raise InputError(msg)
        work.mkdir(parents=True, exist_ok=True)
        write_json(work / "config.json", config)

        say(
            f"fitting {n_members} x {model} on {split.train_idx.size} rows "
            f"(early stopping on {ood_val.size} OOD-val cells)"
        )
        ensemble = DeepEnsemble(name=model, params=resolved, n_members=n_members).fit(
            ds,
            split.train_idx,
            ood_val,
            seed=seed,
            checkpoint_root=work,
            resume=resume,
            cluster=cluster,
            n_workers=n_workers,
            progress=lambda done, total: say(f"ensemble members fitted: {done}/{total}"),
        )
        say(
            f"predicting {inputs.test_idx.size} test, {inputs.val_idx.size} validation, "
            f"{ood_val.size} OOD-val cells"
        )
        test = ensemble.predict_components(ds, inputs.test_idx)
        val = ensemble.predict_components(ds, inputs.val_idx) if inputs.val_idx.size else None
        extra_arrays = {"var_aleatoric": test["var_aleatoric"], "var_epistemic": test["var_epistemic"]}
        extra_uncertainty: dict[str, Any] = {
            "epistemic": {
                "n_members": int(n_members),
                "mean_var_aleatoric": float(test["var_aleatoric"].mean()),
                "mean_var_epistemic": float(test["var_epistemic"].mean()),
            }
        }
        if n_members > 1 and val is not None:
            from perturbfm.models.uncertainty import epistemic_ood_auroc

            extra_uncertainty["epistemic"].update(
                epistemic_ood_auroc(
                    val,
                    test,
                    pert_context_keys(ds, inputs.val_idx).astype(str),
                    pert_context_keys(ds, inputs.test_idx).astype(str),
                )
            )
        if conformal:
            extra_uncertainty["conformal"], extra_arrays["var_conformal"] = _conformal_panel(
                ensemble, inputs, ood_val, test, unit=conformal_unit
            )
        diagnostics = [
            m.diagnostics(ds, inputs.test_idx) if hasattr(m, "diagnostics") else {} for m in ensemble.members_
        ]
        training = [d.pop("training", None) for d in diagnostics]

        def write_extra(tmp: Path) -> None:
            write_json(tmp / "training.json", {"members": training})
            write_json(tmp / "model_diagnostics.json", {"members": diagnostics})
            for k, member in enumerate(ensemble.members_):
                member.save(tmp / "model" / f"member_{k}")

        run_id = make_run_id(split_hash=split.frozen_hash, model_name=model, config_hash=config_hash)
        say("computing the metric panels and the report")
        # The run folder is claimed (locked, checked writable; the next free name when taken) and
        # assembled aside, then committed in one step (omicsrun.commit).
        claim = claim_unique_dir(runs_root, run_id, what="run", inputs=[data_dir])
        with claim as build:
            _write_run(
                build,
                inputs=inputs,
                config=config,
                config_hash=config_hash,
                mean=test["mean"].astype(np.float32),
                var=test["var"].astype(np.float32),
                seed=eval_seed,
                val=None if val is None else (val["mean"].astype(np.float32), val["var"].astype(np.float32)),
                extra_arrays=extra_arrays,
                extra_uncertainty=extra_uncertainty,
                write_extra=write_extra,
                run_name=claim.final.name if claim.final is not None else run_id,
            )
        if claim.final is None:  # pragma: no cover - set whenever the claim was entered
            msg = "run folder was not claimed"
            raise RuntimeError(msg)
        shutil.rmtree(work, ignore_errors=True)
    with contextlib.suppress(OSError):  # the shared .training folder goes when no run is training
        work.parent.rmdir()
    return claim.final


def _conformal_panel(
    ensemble: Any, inputs: RunInputs, ood_val: np.ndarray, test: dict[str, np.ndarray], *, unit: str
) -> tuple[dict[str, Any], np.ndarray]:
    """Split-conformal intervals calibrated on the OOD-validation rows ``ood_val``: the
    ``uncertainty.conformal`` report and the test rows' ``var_conformal`` (the 0.9 interval)."""
    from perturbfm.models.base import pert_context_keys
    from perturbfm.models.uncertainty import (
        CONFORMAL_LEVELS,
        conformal_quantiles,
        conformal_report,
        conformal_variance,
        context_noise_ratio,
        group_correction_applies,
    )

    ds, split = inputs.ds, inputs.split
    # Normalised scores |r| / sqrt(var x context noise ratio): a held-out context noisier
    # than the calibration cells' (devel U87MG: 13x larger residuals than K562) gets wider
    # intervals instead of under-covering (README, "Uncertainty").
    train = np.asarray(split.train_idx, dtype=np.int64)
    train_ctrl = train[ds.is_control[train]]
    controls = np.r_[train_ctrl, inputs.control_idx]
    cal = ensemble.predict_components(ds, ood_val)
    cal_var = cal["var"] * context_noise_ratio(ds, ood_val, controls, train_ctrl)
    test_var = test["var"] * context_noise_ratio(ds, inputs.test_idx, controls, train_ctrl)
    cal_residual = np.asarray(ds.rows(ood_val, "delta"), dtype=np.float64) - cal["mean"]
    cal_groups = pert_context_keys(ds, ood_val).astype(str)
    unit_groups = cal_groups if unit == "group" else None
    quantiles = conformal_quantiles(cal_residual, cal_var, groups=unit_groups)
    residual = np.asarray(ds.rows(inputs.test_idx, "delta"), dtype=np.float64) - test["mean"]
    n_groups = int(np.unique(cal_groups).size)
    report: dict[str, Any] = {
        "calibration": "split conformal on the OOD-validation part; score |residual| / "
        "sqrt(predicted variance x context control-variance ratio)",
        "unit": unit,
        "n_calibration_cells": int(ood_val.size),
        "n_calibration_groups": n_groups,
        # group unit: the l (J+1)/J level holds only with J >= l / (1 - l) for every level
        "finite_sample_correction": unit == "cell" or group_correction_applies(n_groups, CONFORMAL_LEVELS),
        "levels": conformal_report(quantiles, residual, test_var),
        "levels_model_variance_only": conformal_report(
            conformal_quantiles(cal_residual, cal["var"], groups=unit_groups), residual, test["var"]
        ),
    }
    if unit == "group":  # the entry-level scheme beside it, for comparison
        report["levels_unit_cell"] = conformal_report(
            conformal_quantiles(cal_residual, cal_var), residual, test_var
        )
    return report, conformal_variance(test_var, quantiles)
