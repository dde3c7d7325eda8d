"""Report plots: each takes computed results and returns a matplotlib Figure; none computes metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

SEEN_COLORS = {"0": "#c44e52", "1": "#dd8452", "2": "#3b75af"}


def plot_per_perturbation_scores(
    scores: Mapping[str, float | None],
    *,
    metric: str,
    higher_is_better: bool = True,
    seen: Mapping[str, object] | None = None,
) -> Figure:
    """Horizontal bars of one metric per perturbation group, best at the top.

    Parameters
    ----------
    scores
        Perturbation name -> value (None values are skipped).
    metric
        Metric name for the axis label.
    higher_is_better
        Sort order.
    seen
        Optional perturbation -> number of its singles seen in training (combo splits): bars
        are then coloured by it, with a legend.
    """
    items = [(k, float(v)) for k, v in scores.items() if v is not None]
    items.sort(key=lambda kv: kv[1], reverse=not higher_is_better)
    items = items[::-1]  # matplotlib draws the first bar at the bottom
    height = max(2.5, 0.22 * len(items) + 1.0)
    fig, ax = plt.subplots(figsize=(6.5, min(height, 14)))
    if items:
        names, values = zip(*items, strict=True)
        if seen:
            colors = [SEEN_COLORS.get(str(seen.get(n)), "#999999") for n in names]
        else:
            colors = ["#3b75af" if v >= 0 else "#c44e52" for v in values]
        ax.barh(np.arange(len(values)), values, color=colors)
        ax.set_yticks(np.arange(len(values)))
        ax.set_yticklabels(names, fontsize=7 if len(values) > 25 else 8)
        mean = float(np.mean(values))
        ax.axvline(mean, color="k", lw=1, ls="--", label=f"mean {mean:.3f}")
        if seen:
            # a figure legend under the axis label, so that the colour key never hides a bar
            handles = [ax.get_lines()[-1]] + [
                Patch(color=SEEN_COLORS.get(lab, "#999999"), label=f"{lab} singles seen")
                for lab in sorted({str(seen.get(n)) for n in names})
            ]
            fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=7, frameon=False)
        else:
            ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel(metric)
    ax.set_title(f"{metric} per perturbation")
    fig.subplots_adjust(
        left=0.32,
        right=0.97,
        top=1 - 0.45 / fig.get_figheight(),
        bottom=(0.95 if seen else 0.6) / fig.get_figheight(),
    )
    return fig


def plot_calibration(
    coverage: Mapping[str, float], *, per_context: Mapping[str, Mapping[str, float]] | None = None
) -> Figure:
    """Nominal vs empirical coverage of the central Gaussian intervals (diagonal = calibrated).

    Parameters
    ----------
    coverage
        Nominal level (as a string or float) -> empirical coverage over all test cells.
    per_context
        Optional context -> the same mapping, drawn as thin lines.
    """
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls=":", label="ideal")
    for name, cov in (per_context or {}).items():
        lv = sorted((float(k), float(v)) for k, v in cov.items())
        ax.plot(*zip(*lv, strict=True), lw=0.8, alpha=0.6, marker=".", label=str(name))
    lv = sorted((float(k), float(v)) for k, v in coverage.items())
    ax.plot(*zip(*lv, strict=True), lw=2, color="k", marker="o", label="all test cells")
    ax.set_xlim(0.4, 1.0)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("nominal coverage")
    ax.set_ylabel("empirical coverage")
    ax.set_title("Calibration (delta space)")
    ax.legend(fontsize=7, loc="upper left")
    fig.subplots_adjust(left=0.15, right=0.97, top=0.92, bottom=0.12)
    return fig


def plot_risk_coverage(
    coverage: Sequence[float], risk: Sequence[float], *, aurc: float | None = None
) -> Figure:
    """Risk (mean squared delta error) of the cells kept, keeping the least uncertain first."""
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    ax.plot(coverage, risk, marker="o", color="#3b75af", label="kept cells")
    if len(risk):
        ax.axhline(risk[-1], color="grey", lw=1, ls=":", label="risk at full coverage")
    title = "Risk-coverage" + (f" (AURC {aurc:.4g})" if aurc is not None else "")
    ax.set_title(title)
    ax.set_xlabel("fraction of cells kept (lowest predicted variance first)")
    ax.set_ylabel("mean squared error of kept cells")
    ax.legend(fontsize=8)
    fig.subplots_adjust(left=0.17, right=0.97, top=0.92, bottom=0.12)
    return fig


def plot_delta_scatter(panels: Sequence[tuple[str, np.ndarray, np.ndarray]]) -> Figure:
    """Predicted vs true mean delta per gene, one panel per perturbation group.

    Parameters
    ----------
    panels
        ``(title, true_delta, predicted_delta)`` with two arrays of shape (n_genes,).
    """
    n = max(len(panels), 1)
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    for ax, (title, true, pred) in zip(axes.ravel(), panels, strict=False):
        lim = float(max(np.abs(true).max(initial=0), np.abs(pred).max(initial=0), 1e-6)) * 1.05
        ax.plot([-lim, lim], [-lim, lim], color="grey", lw=1, ls=":")
        ax.scatter(true, pred, s=6, alpha=0.6, color="#3b75af")
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("true mean delta", fontsize=8)
        ax.set_ylabel("predicted mean delta", fontsize=8)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.93, bottom=0.1, wspace=0.35, hspace=0.45)
    return fig


def plot_baseline_comparison(
    values: Mapping[str, Mapping[str, float | None]], *, directions: Mapping[str, str]
) -> Figure:
    """Grouped bars: each headline metric for the run and the reference baselines.

    Parameters
    ----------
    values
        Metric -> {"this run" / baseline name: value}.
    directions
        Metric -> "higher" or "lower" (shown in the panel title).
    """
    metrics = list(values)
    n = max(len(metrics), 1)
    fig, axes = plt.subplots(1, n, figsize=(min(2.3 * n, 12.0), 3.2), squeeze=False)
    palette = ["#3b75af", "#999999", "#dd8452", "#55a868"]
    for ax, name in zip(axes.ravel(), metrics, strict=False):
        entries = [(k, v) for k, v in values[name].items()]
        xs = np.arange(len(entries))
        heights = [np.nan if v is None else float(v) for _, v in entries]
        ax.bar(xs, np.nan_to_num(heights), color=palette[: len(entries)])
        for x, h in zip(xs, heights, strict=True):
            ax.text(
                x,
                0 if np.isnan(h) else h,
                "n/a" if np.isnan(h) else f"{h:.3g}",
                ha="center",
                va="bottom",
                fontsize=7,
            )
        ax.set_xticks(xs)
        ax.set_xticklabels([k for k, _ in entries], rotation=30, ha="right", fontsize=7)
        arrow = {"higher": "\u2191 better", "lower": "\u2193 better"}.get(directions.get(name, ""), "")
        ax.set_title(f"{name}\n({arrow})", fontsize=8)
        ax.axhline(0, color="k", lw=0.6)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.82, bottom=0.3, wspace=0.45)
    return fig
