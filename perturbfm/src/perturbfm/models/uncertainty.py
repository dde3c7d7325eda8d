"""Variance wrappers beyond a model's own head: deep ensembles and split-conformal intervals.

Deep ensemble (Lakshminarayanan et al. 2017): K copies of a model, each fitted with its own
seed; the prediction is the mean of the members' means, the *aleatoric* variance the mean
of their variances and the *epistemic* variance the variance of their means (the law of
total variance: total = aleatoric + epistemic). Members are fitted through
:func:`omicsrun.parallel.run_tasks`, so they run serially, on a local Dask cluster, on an
existing scheduler or on SLURM without a code change.

Split conformal (normalised residuals): on calibration cells (the split's OOD-validation
part) the score of each entry is ``|y - mu| / sigma`` and the interval is ``mu +- q_l sigma``
for a coverage target ``l``. Two calibration units:

- ``"cell"``: every entry counts once; ``q_l`` is the ``ceil((n + 1) l) / n`` empirical
  quantile of the n scores (split conformal as if entries were exchangeable).
- ``"group"`` (default of the runs): entries of one (perturbation, context) group are not
  exchangeable with those of another (a group shares its perturbation's unexplained
  effect), and the OOD-validation part holds few such groups, possibly of very unequal
  size, so under ``"cell"`` its largest group would decide the interval of every test group. Here the
  groups are the exchangeable units: each of the J groups weighs 1/J (its entries 1/(J
  n_j) each) and ``q_l`` is the quantile of that group-weighted distribution. With
  enough groups it is taken at level ``l (J + 1) / J``, the pooled-CDF finite-sample
  correction of Lee, Barber & Willett (2023, "Distribution-free inference with
  hierarchical data"): for a new group exchangeable with the calibration groups, a random
  entry of it is covered with probability >= l. That level is <= 1 only when
  J >= l / (1 - l) (9 groups for 0.9, 19 for 0.95). The correction is applied when it
  holds for every requested level; otherwise no finite distribution-free bound exists
  for the highest ones, and every level uses the plug-in level ``l`` (one rule for all
  levels, so a higher target never gets a narrower interval). The
  report says which was used (``finite_sample_correction``). With J = 1 the intervals
  are that single group's own empirical quantiles: nothing can be certified about a new
  group from one group.

The test coverage is reported next to each target so any gap is visible.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import norm

from omicsrun import InputError
from omicsrun.parallel import run_tasks
from perturbfm.data.dataset import PerturbDataset
from perturbfm.models.base import VAR_FLOOR, PerturbationModel
from perturbfm.models.registry import get_model

CONFORMAL_LEVELS = (0.5, 0.8, 0.9, 0.95)
CONFORMAL_UNITS: tuple[str, ...] = ("group", "cell")


@dataclass(frozen=True)
class _MemberTask:
    name: str
    params: dict[str, Any]
    ds: PerturbDataset
    train_idx: np.ndarray
    val_idx: np.ndarray
    seed: int
    checkpoint_dir: str | None
    resume: bool


def _fit_member(task: _MemberTask) -> PerturbationModel:
    model = get_model(task.name, **task.params)
    if task.checkpoint_dir is not None and hasattr(model, "set_training_options"):
        model.set_training_options(checkpoint_dir=task.checkpoint_dir, resume=task.resume)
    return model.fit(task.ds, task.train_idx, task.val_idx, seed=task.seed)


def member_seeds(seed: int, n_members: int) -> list[int]:
    """Independent seeds of the K members, derived from ``seed`` (member 0 keeps ``seed``)."""
    spawned = np.random.SeedSequence(seed).spawn(max(n_members - 1, 0))
    return [int(seed)] + [int(s.generate_state(1)[0] % (2**31 - 1)) for s in spawned]


def member_params(name: str, params: dict[str, Any] | None, n_members: int) -> dict[str, Any]:
    """Hyperparameters of the members: ``params``, plus ``unseen_inputs="sample"`` when K > 1.

    An ensemble's epistemic variance is the members' disagreement; with the default
    ``unseen_inputs="mean"`` every member fills an unseen context or gene the same way, so
    they agree most where they know least (README, "Uncertainty"). A value the caller set
    is kept, and models without the hyperparameter (the baselines) are left alone.
    """
    out = dict(params or {})
    model = get_model(name, **out)  # refuses unknown names and parameters
    if n_members > 1 and "unseen_inputs" not in out and "unseen_inputs" in model.get_params():
        out["unseen_inputs"] = "sample"
    return out


class DeepEnsemble:
    """K independently seeded copies of model ``name`` (see the module docstring).

    With K > 1 the members default to ``unseen_inputs="sample"`` (:func:`member_params`);
    the hyperparameters they were fitted with are ``member_params_``.
    """

    def __init__(self, *, name: str, params: dict[str, Any] | None = None, n_members: int = 5) -> None:
        if not isinstance(n_members, int) or n_members < 1:
            msg = f"an ensemble needs n_members >= 1; found {n_members!r}"
            raise InputError(msg)
        self.name = name
        self.params = dict(params or {})
        self.n_members = n_members

    def fit(
        self,
        ds: PerturbDataset,
        train_idx: np.ndarray,
        val_idx: np.ndarray | None = None,
        *,
        seed: int = 0,
        checkpoint_root: str | os.PathLike[str] | None = None,
        resume: bool = False,
        cluster: str = "serial",
        n_workers: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> DeepEnsemble:
        """Fit every member (each checkpointing into ``checkpoint_root/member_<k>``)."""
        params = member_params(self.name, self.params, self.n_members)  # checks names first
        self.member_params_ = params
        val = np.zeros(0, dtype=np.int64) if val_idx is None else np.asarray(val_idx, dtype=np.int64)
        tasks = [
            _MemberTask(
                name=self.name,
                params=params,
                ds=ds,
                train_idx=np.asarray(train_idx, dtype=np.int64),
                val_idx=val,
                seed=s,
                checkpoint_dir=None
                if checkpoint_root is None
                else str(Path(checkpoint_root) / f"member_{k}"),
                resume=resume,
            )
            for k, s in enumerate(member_seeds(seed, self.n_members))
        ]
        for task in tasks:
            if task.checkpoint_dir is not None:
                Path(task.checkpoint_dir).mkdir(parents=True, exist_ok=True)
        self.members_: list[PerturbationModel] = run_tasks(
            _fit_member, tasks, cluster=cluster, n_workers=n_workers, progress=progress
        )
        return self

    def predict_components(self, ds: PerturbDataset, idx: np.ndarray) -> dict[str, np.ndarray]:
        """``mean``, ``var_aleatoric``, ``var_epistemic`` and ``var`` (their sum), each (n, G)."""
        if not hasattr(self, "members_"):
            msg = "the ensemble is not fitted; call fit first"
            raise InputError(msg)
        preds = [m.predict(ds, idx) for m in self.members_]
        means = np.stack([p[0] for p in preds]).astype(np.float64)
        aleatoric = np.stack([p[1] for p in preds]).astype(np.float64).mean(axis=0)
        epistemic = means.var(axis=0)
        mean = means.mean(axis=0)
        return {
            "mean": mean,
            "var_aleatoric": aleatoric,
            "var_epistemic": epistemic,
            "var": np.maximum(aleatoric + epistemic, VAR_FLOOR),
        }


def conformal_quantiles(
    residual: np.ndarray,
    var: np.ndarray,
    levels: Sequence[float] = CONFORMAL_LEVELS,
    *,
    groups: np.ndarray | None = None,
) -> dict[float, float]:
    """Calibrated factors ``q_l`` of ``|residual| / sqrt(var)`` on calibration entries.

    Parameters
    ----------
    residual, var
        Truth minus predicted mean, and predicted variance, (n_cells, n_genes).
    levels
        Coverage targets in (0, 1).
    groups
        One group key per cell, (n_cells,): calibrate with group-level weights (module
        docstring, unit ``"group"``). None: every entry counts once (unit ``"cell"``).
    """
    scores = np.abs(residual) / np.sqrt(np.maximum(var, VAR_FLOOR))
    if scores.size == 0:
        msg = "conformal calibration needs calibration cells; the split's OOD-validation part is empty"
        raise InputError(msg)
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != (scores.shape[0],):
            msg = f"groups needs one key per calibration cell ({scores.shape[0]}); found shape {groups.shape}"
            raise InputError(msg)
        return _group_quantiles(scores, groups, levels)
    ordered = np.sort(scores.ravel())
    n = ordered.size
    out = {}
    for level in levels:
        rank = min(int(np.ceil((n + 1) * level)), n)  # 1-based finite-sample rank
        out[float(level)] = float(ordered[rank - 1])
    return out


def group_correction_applies(n_groups: int, levels: Sequence[float] = CONFORMAL_LEVELS) -> bool:
    """Whether ``n_groups`` calibration groups certify every level (``J >= l / (1 - l)``)."""
    return all(level * (n_groups + 1) / n_groups <= 1.0 + 1e-12 for level in levels)


def _group_quantiles(scores: np.ndarray, groups: np.ndarray, levels: Sequence[float]) -> dict[float, float]:
    """Quantiles of the group-weighted score distribution (module docstring, unit ``"group"``)."""
    _, code = np.unique(groups, return_inverse=True)
    n_groups = int(code.max()) + 1
    cells_per_group = np.bincount(code, minlength=n_groups)
    entry_weight = 1.0 / (n_groups * cells_per_group[code] * scores.shape[1])  # (n_cells,)
    flat = scores.ravel()
    order = np.argsort(flat, kind="stable")
    cumulative = np.cumsum(np.repeat(entry_weight, scores.shape[1])[order])
    factor = (n_groups + 1) / n_groups if group_correction_applies(n_groups, levels) else 1.0
    out = {}
    for level in levels:
        target = min(level * factor, 1.0)
        # Smallest score whose cumulative group weight reaches the target (float-sum tolerance).
        pos = min(int(np.searchsorted(cumulative, target - 1e-12, side="left")), flat.size - 1)
        out[float(level)] = float(flat[order[pos]])
    return out


def conformal_report(
    quantiles: dict[float, float], residual: np.ndarray, var: np.ndarray
) -> dict[str, dict[str, float]]:
    """Per target: calibrated factor, Gaussian factor, empirical test coverage, mean width."""
    sd = np.sqrt(np.maximum(var, VAR_FLOOR))
    scores = np.abs(residual) / sd
    out = {}
    for level, q in quantiles.items():
        out[str(level)] = {
            "target": level,
            "quantile": q,
            "gaussian_quantile": float(norm.ppf(0.5 + level / 2)),
            "coverage": float((scores <= q).mean()),
            "mean_width": float((2 * q * sd).mean()),
        }
    return out


def conformal_variance(var: np.ndarray, quantiles: dict[float, float], level: float = 0.9) -> np.ndarray:
    """``var`` rescaled so the Gaussian ``level`` interval equals the conformal one."""
    z = norm.ppf(0.5 + level / 2)
    return var * (quantiles[level] / z) ** 2


def epistemic_ood_auroc(
    val: dict[str, np.ndarray],
    test: dict[str, np.ndarray],
    val_groups: np.ndarray,
    test_groups: np.ndarray,
) -> dict[str, float | None]:
    """How well the ensemble's epistemic variance tells test cells from validation cells.

    Label 0: the split's validation cells (held-out cells of training (perturbation,
    context) groups: in distribution); label 1: the test cells (out of distribution by the
    split's construction). A higher score should mean OOD, so 0.5 is no separation and
    values below 0.5 mean the members agree *more* on the test cells.

    Parameters
    ----------
    val, test
        :meth:`DeepEnsemble.predict_components` of the validation and test rows.
    val_groups, test_groups
        One (perturbation, context) key per row, for the per-group aggregation.

    Returns
    -------
    dict
        ``ood_auroc``: per cell, score = mean epistemic variance over genes (the evaluator's
        convention for the total variance); ``ood_auroc_per_group``: one score per
        (perturbation, context) group (mean over its cells), so large groups do not weigh
        more and cells of one group (v2 predicts the same for all of them) count once;
        ``ood_auroc_relative``: per cell, epistemic / aleatoric variance averaged over
        genes, which removes the scale of the effect (members disagree in proportion to the
        size of what they predict).
    """
    from perturbfm.eval.uncertainty import ood_auroc

    labels = np.r_[np.zeros(len(val_groups), bool), np.ones(len(test_groups), bool)]
    score = np.r_[val["var_epistemic"].mean(axis=1), test["var_epistemic"].mean(axis=1)]
    relative = np.r_[
        (val["var_epistemic"] / np.maximum(val["var_aleatoric"], VAR_FLOOR)).mean(axis=1),
        (test["var_epistemic"] / np.maximum(test["var_aleatoric"], VAR_FLOOR)).mean(axis=1),
    ]
    keys = np.r_[
        np.char.add("val\t", np.asarray(val_groups, dtype=str)),
        np.char.add("test\t", np.asarray(test_groups, dtype=str)),
    ]
    uniq, code = np.unique(keys, return_inverse=True)
    group_score = np.bincount(code, weights=score) / np.bincount(code)
    group_label = np.zeros(uniq.size, bool)
    group_label[code[labels]] = True
    return {
        "ood_auroc": ood_auroc(score, labels),
        "ood_auroc_per_group": ood_auroc(group_score, group_label),
        "ood_auroc_relative": ood_auroc(relative, labels),
        "n_val_cells": len(val_groups),
        "n_test_cells": len(test_groups),
    }


def context_noise_ratio(
    ds: PerturbDataset, idx: np.ndarray, control_idx: np.ndarray, reference_idx: np.ndarray
) -> np.ndarray:
    """Per row of ``idx`` and gene: control variance of the row's context / reference variance.

    The conformal layer multiplies the predicted variance by this ratio before scoring, so a
    context whose cells are noisier than the calibration cells' gets proportionally wider
    intervals. Only control cells are read (no perturbed cell of the test part).

    Parameters
    ----------
    ds
        The dataset.
    idx
        Rows to scale, (n,).
    control_idx
        Control rows available per context (the training controls and the test part's
        controls), (m,).
    reference_idx
        Control rows of the reference variance (the training controls), (r,).

    Returns
    -------
    numpy.ndarray
        (n, n_genes) float64; 1 for a context with fewer than two control cells.
    """
    idx = np.asarray(idx, dtype=np.int64)
    control_idx = np.asarray(control_idx, dtype=np.int64)
    contexts = ds.obs["context_id"].astype(str).to_numpy()
    ref = np.asarray(ds.rows(np.asarray(reference_idx, dtype=np.int64), "control"), dtype=np.float64).var(
        axis=0
    )
    out = np.ones((idx.size, ds.n_genes))
    for context in np.unique(contexts[idx]):
        rows = control_idx[contexts[control_idx] == context]
        if rows.size < 2:
            continue
        var = np.asarray(ds.rows(rows, "control"), dtype=np.float64).var(axis=0)
        out[contexts[idx] == context] = np.divide(var, ref, out=np.ones_like(var), where=ref > VAR_FLOOR)
    return out
