"""Figures of explain-module: each function takes result tables and returns a Figure (saves nothing)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

POSITIVE = "#c0392b"
NEGATIVE = "#2471a3"
ENRICHMENT_Q = 0.05


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _label(gene_id: str, gene_name: object) -> str:
    return str(gene_name) if isinstance(gene_name, str) and gene_name else str(gene_id)


def _members(drivers: pd.DataFrame) -> pd.DataFrame:
    """The module's own genes when the table marks them (else every gene)."""
    if "in_module" in drivers.columns and bool(drivers["in_module"].any()):
        return drivers[drivers["in_module"].to_numpy(dtype=bool)]
    return drivers


def driver_bars(drivers: pd.DataFrame, module_id: str, *, top_n: int = 20) -> Figure:
    """Top drivers (module genes) by |r| with 95% confidence intervals, coloured by polarity."""
    top = _members(drivers).dropna(subset=["r"]).head(top_n).iloc[::-1]
    fig = _figure(6.5, 0.3 * len(top) + 1.6)
    ax = fig.add_subplot()
    labels = [_label(g, n) for g, n in zip(top["gene_id"], top["gene_name"], strict=True)]
    colours = np.where(top["r"].to_numpy() >= 0, POSITIVE, NEGATIVE)
    y = np.arange(len(top))
    err = np.vstack([top["r"] - top["ci_low"], top["ci_high"] - top["r"]])
    ax.barh(y, top["r"], color=colours, xerr=err, error_kw={"ecolor": "0.25", "capsize": 2, "lw": 0.8})
    ax.set_yticks(y, labels, fontsize=8)
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_xlim(-1.05, 1.05)
    ax.set_xlabel("Pearson r with module eigengene (95% CI)")
    ax.set_title(f"{module_id}: top {len(top)} driver genes")
    from matplotlib.patches import Patch

    ax.legend(
        handles=[Patch(color=POSITIVE, label="rises with eigengene"), Patch(color=NEGATIVE, label="falls")],
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        fontsize=7,
        frameon=False,
    )
    return fig


def _smooth(x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    # Gaussian-kernel (Nadaraya-Watson) trend; bandwidth a fifth of the eigengene range.
    width = max(float(np.ptp(x)) / 5.0, 1e-9)
    weights = np.exp(-0.5 * ((grid[:, None] - x[None, :]) / width) ** 2)
    ok = np.isfinite(y)
    return (weights[:, ok] @ y[ok]) / weights[:, ok].sum(axis=1)


def usage_gradient(
    usage: pd.DataFrame,
    polarity: pd.DataFrame,
    drivers: pd.DataFrame,
    eigengene: pd.Series,
    module_id: str,
    *,
    n_genes: int = 4,
    max_transcripts: int = 4,
) -> Figure:
    """Transcript usage against the eigengene, with a smoothed trend per transcript, for top drivers.

    ``usage``: samples x transcript-usage features; ``polarity``: the transcript polarity table.
    """
    tx = polarity[polarity["feature_type"] != "switch"]
    tx = tx[tx["feature_type"] != "abundance"]
    n_tx = tx["gene_id"].value_counts()
    genes = [g for g in _members(drivers)["gene_id"].head(5 * n_genes + 50) if n_tx.get(g, 0) >= 2][:n_genes]
    n_cols = min(2, max(1, len(genes)))
    n_rows = max(1, int(np.ceil(len(genes) / n_cols)))
    fig = _figure(4.2 * n_cols, 3.0 * n_rows + 0.4)
    e = eigengene.to_numpy(dtype=np.float64)
    grid = np.linspace(e.min(), e.max(), 60)
    names = drivers.set_index("gene_id")["gene_name"]
    if not genes:
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no driver gene with two or more transcript features", ha="center", va="center")
        ax.set_axis_off()
        return fig
    for i, gene in enumerate(genes):
        ax = fig.add_subplot(n_rows, n_cols, i + 1)
        rows = tx[tx["gene_id"] == gene].sort_values("r", ascending=False)
        chosen = pd.concat([rows.head(max_transcripts - 1), rows.tail(1)]).drop_duplicates("feature_id")
        for j, (_, row) in enumerate(chosen.iterrows()):
            y = usage.loc[eigengene.index, row["feature_id"]].to_numpy(dtype=np.float64)
            colour = f"C{j}"
            label_name = row.get("transcript_name")
            label = str(label_name) if isinstance(label_name, str) else str(row["feature_id"])
            ax.scatter(e, y, s=10, color=colour, alpha=0.6)
            ax.plot(grid, _smooth(e, y, grid), color=colour, lw=1.6, label=f"{label} (r={row['r']:+.2f})")
        ax.set_title(_label(gene, names.get(gene)), fontsize=10)
        ax.set_xlabel(f"{module_id} eigengene", fontsize=8)
        ax.set_ylabel("transcript usage", fontsize=8)
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=6, frameon=False, loc="best")
    fig.suptitle(f"{module_id}: transcript usage along the eigengene")
    return fig


def driver_heatmap(
    values: pd.DataFrame, drivers: pd.DataFrame, eigengene: pd.Series, module_id: str, *, top_n: int = 20
) -> Figure:
    """Standardised driver features (rows: top positive then top negative genes) x samples by eigengene.

    ``values``: samples x features; each driver row shows its ``driver_feature`` column.
    """
    ranked = _members(drivers).dropna(subset=["r"])
    half = max(1, top_n // 2)
    pos = ranked[ranked["r"] > 0].head(half)
    neg = ranked[ranked["r"] < 0].head(half)
    chosen = pd.concat([pos, neg])
    order = eigengene.sort_values().index
    matrix = values.loc[order, chosen["driver_feature"].to_numpy()].to_numpy(dtype=np.float64).T
    with np.errstate(invalid="ignore"):
        matrix = (matrix - np.nanmean(matrix, axis=1, keepdims=True)) / np.nanstd(
            matrix, axis=1, keepdims=True
        )
    fig = _figure(7.5, 0.28 * max(len(chosen), 4) + 2.2)
    grid = fig.add_gridspec(2, 1, height_ratios=[1, max(len(chosen), 4) / 3])
    top = fig.add_subplot(grid[0])
    top.bar(np.arange(len(order)), eigengene.loc[order], color="0.45", width=0.9)
    top.set_xlim(-0.5, len(order) - 0.5)
    top.set_xticks([])
    top.set_ylabel("eigengene", fontsize=8)
    top.set_title(f"{module_id}: top positive and negative drivers (z-scored), samples by eigengene")
    ax = fig.add_subplot(grid[1])
    image = ax.imshow(
        np.nan_to_num(matrix), aspect="auto", cmap="RdBu_r", vmin=-2.5, vmax=2.5, interpolation="none"
    )
    labels = [
        f"{_label(g, n)} ({'+' if r > 0 else '-'})"
        for g, n, r in zip(chosen["gene_id"], chosen["gene_name"], chosen["r"], strict=True)
    ]
    ax.set_yticks(np.arange(len(chosen)), labels, fontsize=7)
    ax.set_xticks(np.arange(len(order)), [str(s) for s in order], rotation=90, fontsize=6)
    ax.set_xlabel("sample")
    if len(pos) and len(neg):
        ax.axhline(len(pos) - 0.5, color="k", lw=1)
    fig.colorbar(image, ax=ax, shrink=0.6, label="z")
    return fig


def enrichment_dots(enrichment: pd.DataFrame, *, top_per_module: int = 8) -> Figure:
    """Dot plot of the top enriched terms per module: x module, size overlap, colour -log10 q.

    Terms at q >= ``ENRICHMENT_Q`` are drawn hollow (grey outline), so a driver list whose top
    terms are all noise is not read as enriched.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    table = enrichment.dropna(subset=["qvalue"]).sort_values("pvalue")
    table = table.groupby("module_id", sort=False).head(top_per_module)
    # Width grows with the number of columns (modules and their driver lists) so labels never collide.
    n_columns = table["module_id"].nunique()
    fig = _figure(max(7.5, 5.0 + 0.45 * n_columns), 0.28 * max(table["term_name"].nunique(), 3) + 1.8)
    ax = fig.add_subplot()
    if table.empty:
        ax.text(0.5, 0.5, "no enriched term", ha="center", va="center")
        ax.set_axis_off()
        return fig
    modules = list(dict.fromkeys(table["module_id"]))
    labels = list(
        dict.fromkeys(
            f"{t} [{s}]" for t, s in zip(table["term_name"].str.slice(0, 55), table["source"], strict=True)
        )
    )
    x = table["module_id"].map({m: i for i, m in enumerate(modules)})
    y = pd.Series(
        [f"{t} [{s}]" for t, s in zip(table["term_name"].str.slice(0, 55), table["source"], strict=True)]
    ).map({t: i for i, t in enumerate(labels)})
    score = -np.log10(np.maximum(table["qvalue"].to_numpy(dtype=np.float64), 1e-300))
    overlap = table["n_overlap"].to_numpy(dtype=np.float64)
    size = 25 + 175 * overlap / overlap.max()
    # Terms at q >= ENRICHMENT_Q are drawn hollow: a list whose top terms are all noise still
    # shows them, but nobody should read them as enriched.
    significant = table["qvalue"].to_numpy(dtype=np.float64) < ENRICHMENT_Q
    norm = Normalize(vmin=0.0, vmax=max(float(score.max()), -np.log10(ENRICHMENT_Q)))
    ax.scatter(
        x[significant], y[significant], s=size[significant], c=score[significant], cmap="viridis", norm=norm
    )
    ax.scatter(
        x[~significant],
        y[~significant],
        s=size[~significant],
        facecolors="none",
        edgecolors="0.45",
        linewidths=1.0,
    )
    ax.set_xticks(range(len(modules)), modules, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlim(-0.6, len(modules) - 0.4)
    ax.invert_yaxis()
    fig.colorbar(ScalarMappable(norm=norm, cmap="viridis"), ax=ax, label="-log10 q (BH)")
    ax.set_title(
        "GO BP / KEGG over-representation\n"
        f"(dot size: genes in term and list, largest {int(overlap.max())}; hollow: q >= {ENRICHMENT_Q:g})"
    )
    return fig
