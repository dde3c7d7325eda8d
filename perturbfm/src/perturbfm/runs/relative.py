"""Baseline-relative headline scores and the per-perturbation / per-context tables of a run.

Every run scores the two reference baselines on the same split (``control_only``: no
effect; ``global_mean``: the mean training delta, cell-eval's "mean baseline") with the
group-level metrics, and reports each headline metric normalised to both with cell-eval's
formula (:func:`perturbfm.eval.robust.baseline_relative`, not clipped).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from perturbfm.eval.robust import baseline_relative

if TYPE_CHECKING:
    from perturbfm.runs.core import RunInputs

REFERENCE_BASELINES = ("control_only", "global_mean")
# (panel, metric): the robust metrics a reader should look at first.
HEADLINE = (
    ("scperturbench", "pcc_delta_centroid"),
    ("perturbench", "pds_l1"),
    ("scperturbench", "mse"),
    ("perturbench", "rmse"),
    ("perturbench", "rank_rmse"),
)


def baseline_globals(inputs: RunInputs, seed: int) -> dict[str, dict[str, dict[str, Any]]]:
    """Global group-level metrics of the reference baselines on the run's split.

    Returns
    -------
    dict
        baseline name -> panel -> metric -> value.
    """
    from perturbfm.eval import evaluate_predictions
    from perturbfm.models import get_model

    out: dict[str, dict[str, dict[str, Any]]] = {}
    ds, idx = inputs.ds, inputs.test_idx
    for name in REFERENCE_BASELINES:
        model = get_model(name)
        # Only the mean enters these scores: no residual-variance pass over every training
        # cell and no (n_test, n_genes) variance array (at 100k x 5k cells that pass and the
        # two float32 copies were most of this step's time and memory).
        model.fit(ds, inputs.split.train_idx, seed=seed, mean_only=True)
        mean = model.predict_mean(ds, idx)
        m = evaluate_predictions(
            inputs.ds,
            test_idx=inputs.test_idx,
            control_idx=inputs.control_idx,
            mean=mean,
            var=None,
            metric_genes=inputs.split.metric_genes,
            seed=seed,
            full=False,
        )
        out[name] = {p: dict(m[p]["global"]) for p in ("scperturbench", "perturbench")}
    return out


def relative_scores(
    metrics: Mapping[str, Any], baselines: Mapping[str, Mapping[str, Mapping[str, Any]]]
) -> dict[str, Any]:
    """Headline metrics with their baseline values and baseline-relative scores.

    Returns
    -------
    dict
        ``rows``: one per headline metric with ``metric``, ``panel``, ``direction``,
        ``value``, ``<baseline>`` (its value) and ``vs_<baseline>`` (relative score: 1 =
        perfect, 0 = as good as that baseline, < 0 = worse); ``formula``.
    """
    registry = metrics["registry"]
    rows = []
    for panel, name in HEADLINE:
        direction = registry[name]["direction"]
        value = metrics[panel]["global"].get(name)
        row: dict[str, Any] = {"metric": name, "panel": panel, "direction": direction, "value": value}
        for base, panels in baselines.items():
            b = panels.get(panel, {}).get(name)
            row[base] = b
            row[f"vs_{base}"] = baseline_relative(value, b, direction)
        rows.append(row)
    return {
        "rows": rows,
        "baselines": list(baselines),
        "formula": "higher-is-better (best 1): (value - base) / (1 - base); lower-is-better (best 0): "
        "1 - value / base; cell-eval's baseline score without its clip at 0",
    }


def metric_tables(metrics: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """``per_perturbation`` and ``per_context`` tables: one row each, every group metric as a column."""
    out = {}
    for scope, key in (("per_perturbation", "pert_id"), ("per_context", "context_id")):
        frames = []
        for panel in ("scperturbench", "perturbench", "celleval_de"):
            block = (metrics.get(panel) or {}).get(scope, {})
            frames.append(pd.DataFrame.from_dict(block, orient="index"))
        unc = metrics.get("uncertainty", {}).get(scope)
        if isinstance(unc, Mapping) and unc:
            u = pd.DataFrame(
                {
                    k: {
                        "coverage@0.9": (v.get("coverage") or {}).get("0.9"),
                        "nll": v.get("nll"),
                        "n_cells": v.get("n_cells"),
                    }
                    for k, v in unc.items()
                }
            ).T
            frames.append(u)
        table = pd.concat(frames, axis=1)
        table.index.name = key
        out[scope] = table.reset_index()
    return out


def table_bytes(table: pd.DataFrame) -> tuple[bytes, bytes]:
    """(parquet, csv) bytes of a table, for atomic writes."""
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    return buf.getvalue(), table.to_csv(index=False).encode()
