"""A self-contained ``report.html`` for one run: header, panel tables, embedded PNG plots."""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from perturbfm.data.dataset import PerturbDataset
from perturbfm.models.base import group_means
from perturbfm.report import plots

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0;font-size:.85em}
th,td{border:1px solid #ddd;padding:.25em .55em;text-align:right}th{background:#f3f5f8}
td.l,th.l{text-align:left}code{background:#f4f4f4;padding:0 .25em}
.fig{display:inline-block;margin:.4em;vertical-align:top}.note{color:#555;font-size:.85em}
.dir{color:#888;font-size:.8em}
"""

HEADLINE = (
    ("scperturbench", "pcc_delta"),
    ("scperturbench", "mse"),
    ("scperturbench", "edistance"),
    ("perturbench", "rmse"),
    ("perturbench", "cosine_logfc"),
    ("perturbench", "rank_rmse"),
)


def _fmt(value: Any) -> str:
    if value is None:
        return "&ndash;"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return f"{v:.4g}" if np.isfinite(v) else "&ndash;"
    return html.escape(str(value))


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str], *, left_cols: int = 1) -> str:
    th = "".join(
        f'<th class="{"l" if i < left_cols else ""}">{html.escape(h)}</th>' for i, h in enumerate(header)
    )
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"l" if i < left_cols else ""}">{_fmt(c)}</td>' for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _figure_tag(fig: Any, alt: str) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<div class="fig"><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></div>'


def _direction(registry: Mapping[str, Any], name: str) -> str:
    spec = registry.get(name) if isinstance(registry, Mapping) else None
    d = spec.get("direction") if isinstance(spec, Mapping) else None
    return {"higher": "&uarr;", "lower": "&darr;"}.get(str(d), "")


def _panel_tables(metrics: Mapping[str, Any], registry: Mapping[str, Any]) -> str:
    parts = []
    for panel in ("scperturbench", "perturbench"):
        block = metrics.get(panel, {})
        glob = block.get("global", {})
        names = list(glob)
        parts.append(f"<h3>{panel} &mdash; global (cell-weighted mean over perturbation groups)</h3>")
        parts.append(
            _table([[f"{n} {_direction(registry, n)}", glob[n]] for n in names], ["metric", "value"])
        )
        per_ctx = block.get("per_context", {})
        if per_ctx:
            parts.append(f"<h3>{panel} &mdash; per context</h3>")
            rows = [[c, *[vals.get(n) for n in names]] for c, vals in per_ctx.items()]
            parts.append(_table(rows, ["context", *names]))
        per_label = block.get("per_label", {})
        if per_label:
            parts.append(
                f"<h3>{panel} &mdash; per combination label (number of its singles seen in training)</h3>"
            )
            rows = [
                [lab, vals.get("n_groups"), vals.get("n_cells"), *[vals.get(n) for n in names]]
                for lab, vals in per_label.items()
            ]
            parts.append(_table(rows, ["singles seen", "groups", "cells", *names]))
    return "\n".join(parts)


def _top_bottom(metrics: Mapping[str, Any], n: int = 8) -> str:
    per = metrics.get("scperturbench", {}).get("per_perturbation", {})
    ptb = metrics.get("perturbench", {}).get("per_perturbation", {})
    scored = [(p, v.get("pcc_delta")) for p, v in per.items() if v.get("pcc_delta") is not None]
    scored.sort(key=lambda kv: kv[1], reverse=True)

    def rows(items: Sequence[tuple[str, float]]) -> list[list[Any]]:
        return [
            [
                p,
                s,
                per[p].get("mse"),
                per[p].get("edistance"),
                ptb.get(p, {}).get("rmse"),
                ptb.get(p, {}).get("rank_rmse"),
            ]
            for p, s in items
        ]

    head = ["perturbation", "pcc_delta", "mse", "edistance", "rmse", "rank_rmse"]
    out = [f"<h3>Best {min(n, len(scored))} perturbations by PCC-delta</h3>", _table(rows(scored[:n]), head)]
    if len(scored) > n:
        out += [
            f"<h3>Worst {min(n, len(scored) - n)} perturbations by PCC-delta</h3>",
            _table(rows(scored[-n:][::-1]), head),
        ]
    return "\n".join(out)


def _uncertainty_tables(unc: Mapping[str, Any]) -> str:
    cov = unc.get("coverage", {})
    levels = list(cov)
    rows = [
        [
            "all test cells",
            *[cov[k] for k in levels],
            unc.get("nll"),
            unc.get("mse"),
            unc.get("mean_var"),
            unc.get("risk_coverage", {}).get("aurc"),
            unc.get("ood_auroc"),
        ]
    ]
    for c, v in unc.get("per_context", {}).items():
        rows.append(
            [
                f"context {c}",
                *[v.get("coverage", {}).get(k) for k in levels],
                v.get("nll"),
                v.get("mse"),
                v.get("mean_var"),
                v.get("aurc"),
                v.get("ood_auroc"),
            ]
        )
    head = ["cells", *[f"coverage@{k}" for k in levels], "NLL", "MSE", "mean var", "AURC", "OOD AUROC"]
    note = unc.get("ood_auroc_labels")
    note_html = f"<p class='note'>OOD AUROC labels: {html.escape(str(note))}.</p>" if note else ""
    return _table(rows, head) + note_html


def _scatter_panels(
    ds: PerturbDataset, metrics: Mapping[str, Any], mean: np.ndarray, idx: np.ndarray, n_panels: int = 6
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Mean true vs predicted delta of a few (pert, context) groups: best, median and worst by PCC-delta."""
    obs = ds.obs
    keys = (
        obs["pert_id"].to_numpy()[idx].astype(object)
        + " | "
        + obs["context_id"].to_numpy()[idx].astype(object)
    )
    groups, pred_means, _ = group_means(mean, keys)
    _, true_means, _ = ds.group_means_by(idx, keys, "delta")  # row blocks, not a dense copy
    per = metrics.get("scperturbench", {}).get("per_perturbation", {})
    score = {p: v.get("pcc_delta") for p, v in per.items() if v.get("pcc_delta") is not None}
    pert_of = np.array([g.split(" | ")[0] for g in groups], dtype=object)
    order = sorted(
        range(len(groups)),
        key=lambda i: -score.get(pert_of[i], -np.inf),
    )
    if len(order) > n_panels:
        pick = np.unique(np.linspace(0, len(order) - 1, n_panels).round().astype(int))
        order = [order[i] for i in pick]
    return [(str(groups[i]), true_means[i], pred_means[i]) for i in order]


def render_run_report(
    ds: PerturbDataset,
    metrics: Mapping[str, Any],
    *,
    mean: np.ndarray,
    idx: np.ndarray,
    header: Mapping[str, Any],
) -> str:
    """The HTML text of a run report.

    Parameters
    ----------
    ds
        The dataset.
    metrics
        Output of :func:`perturbfm.eval.evaluate_predictions`.
    mean
        Predicted delta means, shape (len(idx), n_genes).
    idx
        Dataset rows of the predictions, shape (n,).
    header
        Run facts shown at the top (model, dataset, hashes, seed...).
    """
    registry = metrics.get("registry", {})
    unc = metrics.get("uncertainty", {})
    title = f"PerturbFM run: {header.get('model', '')} on split {str(header.get('split_hash', ''))[:12]}"
    head_rows = [
        [k, json.dumps(v, default=str) if isinstance(v, (dict, list)) else v] for k, v in header.items()
    ]
    sc = metrics.get("scperturbench", {}).get("global", {})
    pb = metrics.get("perturbench", {}).get("global", {})
    headline = [
        [f"{n} {_direction(registry, n)}", (sc if p == "scperturbench" else pb).get(n)] for p, n in HEADLINE
    ]
    headline.append(["coverage@0.9 &uarr;(ideal 0.9)", unc.get("coverage", {}).get("0.9")])
    headline.append(["Gaussian NLL &darr;", unc.get("nll")])
    per_pert = {
        p: v.get("pcc_delta") for p, v in metrics.get("scperturbench", {}).get("per_perturbation", {}).items()
    }
    rc = unc.get("risk_coverage", {})
    scatter = _scatter_panels(ds, metrics, mean, idx)
    figs = [
        _figure_tag(
            plots.plot_per_perturbation_scores(per_pert, metric="pcc_delta"), "PCC-delta per perturbation"
        ),
        _figure_tag(
            plots.plot_calibration(
                unc.get("coverage", {}),
                per_context={c: v.get("coverage", {}) for c, v in unc.get("per_context", {}).items()},
            ),
            "calibration curve",
        ),
        _figure_tag(
            plots.plot_risk_coverage(rc.get("coverage", []), rc.get("risk", []), aurc=rc.get("aurc")),
            "risk-coverage curve",
        ),
        _figure_tag(plots.plot_delta_scatter(scatter), "predicted vs true delta"),
    ]
    diag = metrics.get("diagnostics", {}).get("global", {})
    reg_rows = [
        [n, s.get("panel"), s.get("direction"), s.get("compares"), s.get("genes")]
        for n, s in (registry.items() if isinstance(registry, Mapping) else [])
        if isinstance(s, Mapping)
    ]
    body = [
        f"<h1>{html.escape(title)}</h1>",
        "<h2>Run</h2>",
        _table(head_rows, ["field", "value"], left_cols=2),
        "<h2>Headline (no single number tells the story: read the panels)</h2>",
        _table(headline, ["metric", "value"]),
        "<h2>Plots</h2>",
        "<p class='note'>PCC-delta per perturbation (best at top); calibration of the central Gaussian "
        "intervals of the predicted delta; risk-coverage (cells kept in order of predicted variance); "
        f"mean delta per gene, predicted vs true, for {len(scatter)} groups spanning best to worst.</p>",
        "".join(figs),
        "<h2>Metric panels</h2>",
        _panel_tables(metrics, registry),
        "<h2>Perturbations</h2>",
        _top_bottom(metrics),
        "<h2>Uncertainty panel</h2>",
        _uncertainty_tables(unc),
        "<h2>Collapse diagnostics</h2>",
        _table([[k, v] for k, v in diag.items()], ["diagnostic", "value"]),
        "<h2>Metric definitions</h2>",
        "<p class='note'>From the metric registry: what each number compares.</p>",
        _table(reg_rows, ["metric", "panel", "direction", "compares", "genes"], left_cols=5),
    ]
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
