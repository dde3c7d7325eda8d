"""A self-contained ``report.html`` for one run: header, panel tables, embedded PNG plots."""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from perturbfm.data.dataset import PerturbDataset
from perturbfm.eval.metrics_scperturbench import rowwise_pearson
from perturbfm.report import plots

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0;font-size:.85em}
th,td{border:1px solid #ddd;padding:.25em .55em;text-align:right}th{background:#f3f5f8}
td.l,th.l{text-align:left}code{background:#f4f4f4;padding:0 .25em}
.fig{display:inline-block;margin:.4em;vertical-align:top}.note{color:#555;font-size:.85em}
.dir{color:#888;font-size:.8em}
.tw{overflow-x:auto;max-width:100%}
.warn{background:#fff4e5;border-left:4px solid #dd8452;padding:.4em .8em;margin:.6em 0}
"""

RANK_METRIC = ("scperturbench", "pcc_delta_centroid")


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


def _table(
    rows: Sequence[Sequence[Any]],
    header: Sequence[str],
    *,
    left_cols: int = 1,
    raw_cols: set[int] | frozenset[int] = frozenset(),
) -> str:
    """An HTML table; cells are escaped except in ``raw_cols`` (trusted markup such as links)."""
    th = "".join(
        f'<th class="{"l" if i < left_cols else ""}">{html.escape(h)}</th>' for i, h in enumerate(header)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"l" if i < left_cols else ""}">{c if i in raw_cols else _fmt(c)}</td>'
            for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    # wide tables scroll inside the page instead of running past its edge
    return f"<div class='tw'><table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>"


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
    # Plain Unicode: cell text is HTML-escaped, so an entity would show as text.
    return {"higher": "\u2191", "lower": "\u2193"}.get(str(d), "")


def _panel_tables(metrics: Mapping[str, Any], registry: Mapping[str, Any]) -> str:
    parts = []
    for panel in ("scperturbench", "perturbench", "celleval_de"):
        block = metrics.get(panel) or {}
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
    panel, name = RANK_METRIC
    per = metrics.get("scperturbench", {}).get("per_perturbation", {})
    ptb = metrics.get("perturbench", {}).get("per_perturbation", {})
    src = per if panel == "scperturbench" else ptb
    scored = [(p, v.get(name)) for p, v in src.items() if v.get(name) is not None]
    scored.sort(key=lambda kv: kv[1], reverse=True)

    def rows(items: Sequence[tuple[str, float]]) -> list[list[Any]]:
        return [
            [
                p,
                s,
                per[p].get("pcc_delta"),
                per[p].get("mse"),
                ptb.get(p, {}).get("pds_l1"),
                ptb.get(p, {}).get("rmse"),
            ]
            for p, s in items
        ]

    head = ["perturbation", name, "pcc_delta", "mse", "pds_l1", "rmse"]
    if len(scored) <= 2 * n:
        what = "perturbation" if len(scored) == 1 else f"{len(scored)} perturbations"
        return "\n".join([f"<h3>All {what}, best first by {name}</h3>", _table(rows(scored), head)])
    return "\n".join(
        [
            f"<h3>Best {n} perturbations by {name}</h3>",
            _table(rows(scored[:n]), head),
            f"<h3>Worst {n} perturbations by {name} (of {len(scored)})</h3>",
            _table(rows(scored[-n:][::-1]), head),
        ]
    )


def _uncertainty_tables(unc: Mapping[str, Any]) -> str:
    if unc.get("status") == "absent":
        return f"<p class='note'>Absent: {html.escape(str(unc.get('reason')))}.</p>"
    pre = ""
    if unc.get("status") == "degenerate":
        pre = f"<p class='warn'>Degenerate: {html.escape(str(unc.get('reason')))}.</p>"
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
    return pre + _table(rows, head) + note_html


def _block_group_means(values: np.ndarray, keys: np.ndarray) -> tuple[pd.Index, np.ndarray]:
    """Sorted distinct keys and float64 row means of ``values`` per key, in row blocks (no
    float64 copy of the whole (n, n_genes) prediction)."""
    codes, uniq = pd.factorize(pd.Series(keys), sort=True)
    n_groups = len(uniq)
    sums = np.zeros((n_groups, values.shape[1]))
    step = max(1, (1 << 22) // max(values.shape[1], 1))
    for start in range(0, len(codes), step):
        c = codes[start : start + step]
        ind = sp.csr_matrix((np.ones(c.size), (c, np.arange(c.size))), shape=(n_groups, c.size))
        sums += ind @ np.asarray(values[start : start + step], dtype=np.float64)
    counts = np.bincount(codes, minlength=n_groups)
    return pd.Index(uniq), sums / counts[:, None]


def _scatter_panels(
    ds: PerturbDataset, metrics: Mapping[str, Any], mean: np.ndarray, idx: np.ndarray, n_panels: int = 6
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Mean true vs predicted delta of a few (pert, context) groups, best to worst by the rank metric;
    titles carry the Pearson r of the two mean deltas and the group's rank-metric value."""
    obs = ds.obs
    keys = (
        obs["pert_id"].to_numpy()[idx].astype(object)
        + " | "
        + obs["context_id"].to_numpy()[idx].astype(object)
    )
    groups, pred_means = _block_group_means(mean, keys)
    _, true_means, _ = ds.group_means_by(idx, keys, "delta")  # row blocks, not a dense copy
    per = metrics.get(RANK_METRIC[0], {}).get("per_perturbation", {})
    score = {p: v.get(RANK_METRIC[1]) for p, v in per.items() if v.get(RANK_METRIC[1]) is not None}
    pert_of = np.array([g.split(" | ")[0] for g in groups], dtype=object)
    order = sorted(
        range(len(groups)),
        key=lambda i: -score.get(pert_of[i], -np.inf),
    )
    if len(order) > n_panels:
        pick = np.unique(np.linspace(0, len(order) - 1, n_panels).round().astype(int))
        order = [order[i] for i in pick]
    out = []
    for i in order:
        r = rowwise_pearson(pred_means[i][None, :], true_means[i][None, :])[0]
        centroid = score.get(pert_of[i])
        r_text = f"{r:.2f}" if np.isfinite(r) else "n/a (flat prediction)"
        title = f"{groups[i]}\nr(delta) = {r_text}" + (
            f", {RANK_METRIC[1]} = {centroid:.2f}" if centroid is not None else ""
        )
        out.append((title, true_means[i], pred_means[i]))
    return out


def _headline(metrics: Mapping[str, Any], registry: Mapping[str, Any]) -> tuple[str, dict, dict]:
    rel = metrics.get("baseline_relative") or {}
    ceiling = metrics.get("ceiling") or {}
    bases = list(rel.get("baselines", []))
    rows, values, directions = [], {}, {}
    for r in rel.get("rows", []):
        name = r["metric"]
        ceil = ceiling.get(name, {}) if isinstance(ceiling, Mapping) else {}
        rows.append(
            [
                f"{name} {_direction(registry, name)}",
                r.get("value"),
                *[r.get(b) for b in bases],
                *[r.get(f"vs_{b}") for b in bases],
                ceil.get("mean") if isinstance(ceil, Mapping) else None,
            ]
        )
        values[name] = {"this run": r.get("value"), **{b: r.get(b) for b in bases}}
        directions[name] = r.get("direction", "")
    head = ["metric", "this run", *bases, *[f"vs {b}" for b in bases], "data ceiling"]
    note = (
        "<p class='note'>vs &lt;baseline&gt;: 1 = perfect, 0 = no better than that baseline, "
        "below 0 = worse (" + html.escape(str(rel.get("formula", ""))) + "). Baselines are fitted "
        "on the same split's training rows. Data ceiling: the same metric between two random "
        "halves of the true cells of each group (mean of 10 splits), carried to full depth "
        "(Spearman-Brown for correlations, RMSE halved); a model cannot be expected to beat it.</p>"
    )
    return _table(rows, head) + note, values, directions


def _flags(metrics: Mapping[str, Any]) -> str:
    items = [html.escape(w) for w in metrics.get("warnings", [])]
    flags = metrics.get("flags", {})
    neg = flags.get("negative_predicted_expression") or {}
    if neg.get("n"):
        items.append(
            f"{neg['n']} predicted expression values ({100 * neg['fraction']:.1f}%) are below 0 "
            "(matched control + predicted delta); `perturbfm export` clips them at 0"
        )
    if flags.get("kl_zero_variance_groups"):
        items.append(
            f"kl_gauss_sym_log2 withheld for {flags['kl_zero_variance_groups']} group(s): a DEG with "
            "zero variance makes it meaningless"
        )
    if flags.get("de_no_true_significant_groups"):
        items.append(
            f"{flags['de_no_true_significant_groups']} group(s) have no gene at FDR < 0.05 in the "
            "truth: their cell-eval overlaps are 0 by convention, not a model failure"
        )
    unc = metrics.get("uncertainty", {})
    if unc.get("status") in ("absent", "degenerate"):
        items.append(f"uncertainty panel {unc['status']}: {html.escape(str(unc.get('reason')))}")
    if not items:
        return ""
    return (
        "<div class='warn'><b>Read with care</b><ul>"
        + "".join(f"<li>{i}</li>" for i in items)
        + "</ul></div>"
    )


def render_run_report(
    ds: PerturbDataset,
    metrics: Mapping[str, Any],
    *,
    mean: np.ndarray,
    idx: np.ndarray,
    header: Mapping[str, Any],
    pert_labels: Mapping[str, object] | None = None,
) -> str:
    """The HTML text of a run report.

    Parameters
    ----------
    ds
        The dataset.
    metrics
        Output of :func:`perturbfm.eval.evaluate_predictions` (plus ``baseline_relative``).
    mean
        Predicted delta means, shape (len(idx), n_genes).
    idx
        Dataset rows of the predictions, shape (n,).
    header
        Run facts shown at the top (model, dataset, hashes, seed...).
    pert_labels
        Optional perturbation -> singles seen in training (combo splits): colours the bars.
    """
    registry = metrics.get("registry", {})
    unc = metrics.get("uncertainty", {})
    title = f"PerturbFM run: {header.get('model', '')} on split {str(header.get('split_hash', ''))[:12]}"
    head_rows = [
        [k, json.dumps(v, default=str) if isinstance(v, (dict, list)) else v] for k, v in header.items()
    ]
    headline_html, values, directions = _headline(metrics, registry)
    panel, name = RANK_METRIC
    per_pert = {p: v.get(name) for p, v in metrics.get(panel, {}).get("per_perturbation", {}).items()}
    scatter = _scatter_panels(ds, metrics, mean, idx)
    figs = [
        _figure_tag(
            plots.plot_per_perturbation_scores(per_pert, metric=name, seen=pert_labels),
            f"{name} per perturbation",
        ),
    ]
    if values:
        figs.append(
            _figure_tag(plots.plot_baseline_comparison(values, directions=directions), "baseline comparison")
        )
    if unc.get("status") != "absent":
        rc = unc.get("risk_coverage", {})
        figs += [
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
        ]
    figs.append(_figure_tag(plots.plot_delta_scatter(scatter), "predicted vs true delta"))
    diag = metrics.get("diagnostics", {}).get("global", {})
    reg_rows = [
        [n, s.get("panel"), s.get("direction"), s.get("compares"), s.get("genes")]
        for n, s in (registry.items() if isinstance(registry, Mapping) else [])
        if isinstance(s, Mapping)
    ]
    cov09 = unc.get("coverage", {}).get("0.9") if unc.get("status") != "absent" else None
    body = [
        f"<h1>{html.escape(title)}</h1>",
        "<h2>Run</h2>",
        _table(head_rows, ["field", "value"], left_cols=2),
        "<h2>Headline: robust metrics and scores relative to the baselines</h2>",
        _flags(metrics),
        headline_html,
        _table(
            [
                ["coverage@0.9 (ideal 0.9: closer is better)", cov09],
                ["Gaussian NLL \u2193", unc.get("nll") if unc.get("status") != "absent" else None],
            ],
            ["uncertainty", "value"],
        ),
        "<h2>Plots</h2>",
        f"<p class='note'>{name} per perturbation (best at top); the run against the baselines "
        "on each headline metric; calibration of the central Gaussian intervals of the predicted "
        "delta and risk-coverage (when the predictions carry a variance); mean delta per gene, "
        f"predicted vs true, for {len(scatter)} groups spanning best to worst.</p>",
        "".join(figs),
        "<h2>Metric panels</h2>",
        _panel_tables(metrics, registry),
        "<h2>Perturbations</h2>",
        _top_bottom(metrics),
        "<h2>Uncertainty panel</h2>",
        _uncertainty_tables(unc),
        "<h2>Collapse diagnostics</h2>",
        _table([[k, v] for k, v in diag.items()], ["diagnostic", "value"]),
        "<h2 id='definitions'>Metric definitions</h2>",
        "<p class='note'>From the metric registry: what each number compares (written once).</p>",
        _table(reg_rows, ["metric", "panel", "direction", "compares", "genes"], left_cols=5),
    ]
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
