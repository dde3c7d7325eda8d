"""``isograph report``: one self-contained HTML page about a fit (figures inlined, no external request)."""

from __future__ import annotations

import base64
import html
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from isograph.explain.core import read_fit_tables
from omicsrun import InputError
from omicsrun.atomic import write_text

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left}th{background:#f3f3f3}
img{max-width:100%;border:1px solid #eee}.note{color:#666;font-size:.9em}
"""


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return (
        '<img alt="figure" src="data:image/png;base64,' + base64.b64encode(buffer.getvalue()).decode() + '">'
    )


def _table(frame: pd.DataFrame, digits: int = 3) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.{digits}g}", border=0, na_rep="")


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _module_sizes(modules: pd.DataFrame) -> tuple[pd.Series, str]:
    sizes = modules["module_id"].astype(str).value_counts()
    fig = _figure(7, 2.8)
    ax = fig.add_subplot()
    # The same colour per module as in the eigengene tree (module order M000, M001, ...).
    placed = sorted(m for m in sizes.index if m != "unassigned")
    colours = ["0.7" if m == "unassigned" else f"C{placed.index(m) % 10}" for m in sizes.index]
    ax.bar(sizes.index, sizes.to_numpy(), color=colours)
    ax.set_ylabel("genes")
    ax.set_title("Module sizes")
    ax.tick_params(axis="x", rotation=45)
    return sizes, _png(fig)


def _tree(eigengenes: pd.DataFrame) -> str:
    values = eigengenes.drop(columns="sample_id", errors="ignore")
    if values.shape[1] < 2:
        return '<p class="note">One module: no eigengene tree to draw.</p>'
    from scipy.cluster.hierarchy import dendrogram, linkage
    from scipy.spatial.distance import squareform

    corr = np.corrcoef(values.to_numpy(dtype=np.float64).T)
    distance = squareform(np.clip(1.0 - corr, 0.0, 2.0), checks=False)
    fig = _figure(7, 3)
    ax = fig.add_subplot()
    tree = dendrogram(linkage(distance, "average"), labels=list(values.columns), ax=ax, color_threshold=0)
    placed = sorted(map(str, values.columns))
    for label in ax.get_xticklabels():
        label.set_color(f"C{placed.index(label.get_text()) % 10}")
    ax.set_ylabel("1 - r between eigengenes")
    ax.set_title("Eigengene correlation tree (labels in module colours)")
    del tree
    return _png(fig)


def signed_trait_matrix(eigengenes: pd.DataFrame, samples: pd.DataFrame, traits: list[str]) -> pd.DataFrame:
    """Pearson r of each eigengene with each numeric trait and with each level of each factor (one-vs-rest).

    Returns a modules x columns frame; a factor ``condition`` with level ``IFNg`` gives column
    ``condition=IFNg``.
    """
    e = eigengenes.set_index("sample_id") if "sample_id" in eigengenes.columns else eigengenes
    table = samples.set_index(samples["sample_id"].astype(str)).reindex(e.index.astype(str))
    columns: dict[str, np.ndarray] = {}
    for trait in traits:
        if trait not in table.columns:
            continue
        values = table[trait]
        numeric = pd.to_numeric(values, errors="coerce")
        if numeric.notna().all() and numeric.nunique() > 2:
            columns[trait] = numeric.to_numpy(dtype=np.float64)
        else:
            for level in sorted(values.dropna().astype(str).unique()):
                columns[f"{trait}={level}"] = (values.astype(str) == level).to_numpy(dtype=np.float64)
    out = pd.DataFrame(index=e.columns.astype(str))
    x = e.to_numpy(dtype=np.float64)
    for name, v in columns.items():
        if np.nanstd(v) == 0:
            continue
        out[name] = [np.corrcoef(x[:, j], v)[0, 1] for j in range(x.shape[1])]
    return out


def _trait_heatmap(matrix: pd.DataFrame) -> str:
    if matrix.empty or matrix.shape[1] == 0:
        return '<p class="note">No trait to show.</p>'
    fig = _figure(2.5 + 0.9 * matrix.shape[1], 2.6 + 0.45 * matrix.shape[0])
    ax = fig.add_subplot()
    image = ax.imshow(matrix.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(matrix.shape[1]), matrix.columns, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(matrix.shape[0]), matrix.index)
    for (i, j), v in np.ndenumerate(matrix.to_numpy()):
        ax.text(j, i, f"{v:+.2f}", ha="center", va="center", fontsize=8)
    fig.colorbar(image, ax=ax, label="r (eigengene vs trait / level)")
    ax.set_title("Module-trait links (signed)")
    return _png(fig)


def _isoform_fractions(bundle: Any, pairs: pd.DataFrame, trait: str, n_pairs: int = 4) -> str:
    from isograph.explain.inputs import transcript_usage

    usage = transcript_usage(bundle)
    pairs = pairs[pairs["transcript_up"].isin(usage.columns) & pairs["transcript_down"].isin(usage.columns)]
    pairs = pairs.head(n_pairs)
    if pairs.empty:
        return '<p class="note">No switch pair to plot.</p>'
    groups = (
        bundle.samples.set_index(bundle.samples["sample_id"].astype(str))[trait]
        .astype(str)
        .reindex(usage.index)
    )
    levels = sorted(groups.unique())
    fig = _figure(3.2 * len(pairs), 3.2)
    for i, (_, row) in enumerate(pairs.iterrows()):
        ax = fig.add_subplot(1, len(pairs), i + 1)
        for k, (column, colour) in enumerate(
            ((row["transcript_up"], "#c0392b"), (row["transcript_down"], "#2471a3"))
        ):
            data = [usage.loc[groups == level, column].to_numpy() for level in levels]
            positions = np.arange(len(levels)) + (k - 0.5) * 0.35
            parts = ax.boxplot(data, positions=positions, widths=0.3, patch_artist=True, showfliers=False)
            for box in parts["boxes"]:
                box.set_facecolor(colour)
                box.set_alpha(0.6)
        ax.set_xticks(range(len(levels)), levels, rotation=45, fontsize=7)
        name = row["gene_name"] if isinstance(row.get("gene_name"), str) else row["gene_id"]
        ax.set_title(f"{name}\nred {row['transcript_up']}\nblue {row['transcript_down']}", fontsize=7)
        ax.set_ylabel("isoform fraction", fontsize=8)
    return _png(fig)


def _patterns(eigengenes: pd.DataFrame, samples: pd.DataFrame, traits: list[str]) -> list[str]:
    """Eigengenes by level of each categorical trait with 2-12 levels (a design factor)."""
    from isograph.report.patterns import eigengene_patterns

    out = []
    for trait in traits:
        column = samples[trait]
        numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
        if not numeric and 2 <= column.nunique() <= 12 and eigengenes.shape[1] > 1:
            out.append(f"<h3>Eigengenes by {html.escape(trait)}</h3>")
            out.append(_png(eigengene_patterns(eigengenes, samples, trait)))
    return out


def write_report(
    fit_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    explain_dir: str | os.PathLike[str] | None = None,
    bundle_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the fit report (one HTML file, every figure inlined as PNG).

    Raises
    ------
    InputError
        Missing fit or explain folder.
    """
    fit = read_fit_tables(fit_dir)
    manifest = fit["manifest"]
    modules, eigengenes = fit["modules"], fit["eigengenes"]
    if eigengenes is None:
        msg = f"fit folder {str(fit_dir)!r} has no eigengenes.parquet"
        raise InputError(msg)
    explain = Path(explain_dir) if explain_dir is not None else None
    if explain is not None and not (explain / "module_explanation_manifest.json").is_file():
        msg = f"{str(explain)!r} is not an explain folder (no module_explanation_manifest.json)"
        raise InputError(msg)
    bundle = None
    if bundle_dir is not None:
        from isograph.bundle import read_bundle

        bundle = read_bundle(bundle_dir)
    config = manifest.get("config", {})
    diagnostics = manifest.get("diagnostics", {})
    parts = [f"<h1>IsoGraph fit report: {html.escape(str(Path(fit_dir).resolve().name))}</h1>"]
    parts.append(
        f'<p class="note">backend {html.escape(str(config.get("backend")))}, seed {manifest.get("seed")}, '
        f"bundle hash {html.escape(str(manifest.get('data_hash', ''))[:16])}, "
        f"created {manifest.get('created_utc', '')}</p>"
    )
    parts.append("<h2>Data and filters</h2>")
    facts = {k: v for k, v in diagnostics.items() if isinstance(v, (int, float, str, bool))}
    facts.update({f"features.{k}": str(v) for k, v in config.get("features", {}).items()})
    if bundle is not None:
        facts.update(
            {
                f"import.{k}": v
                for k, v in bundle.provenance.items()
                if k.startswith(("filter", "n_", "gene_names"))
            }
        )
    parts.append(_table(pd.DataFrame({"item": list(facts), "value": [str(v) for v in facts.values()]})))
    sizes, size_png = _module_sizes(modules)
    parts.append("<h2>Modules</h2>" + size_png)
    parts.append(_table(sizes.rename_axis("module_id").reset_index(name="n_genes")))
    parts.append("<h2>Eigengene tree</h2>" + _tree(eigengenes))
    parts.append("<h2>Module-trait links</h2>")
    traits_path = Path(fit_dir) / "traits.parquet"
    regressed = set(config.get("features", {}).get("covariates", []))
    shown_traits = [
        t for t in config.get("traits", []) if t not in regressed
    ]  # covariates were regressed out
    if bundle is not None:
        parts.append(_trait_heatmap(signed_trait_matrix(eigengenes, bundle.samples, shown_traits)))
        parts.extend(_patterns(eigengenes, bundle.samples, shown_traits))
    if traits_path.is_file():
        parts.append(_table(pd.read_parquet(traits_path).sort_values("pvalue").head(20)))
    parts.append("<h2>Top drivers per module</h2>")
    pairs = pd.DataFrame()
    module_ids = [c for c in eigengenes.columns if c != "sample_id"]
    for module_id in module_ids:
        table: pd.DataFrame
        if explain is not None and (explain / module_id / "gene_driver_table.parquet").is_file():
            table = pd.read_parquet(explain / module_id / "gene_driver_table.parquet")
            if "in_module" in table.columns:
                table = table.loc[table["in_module"].to_numpy(dtype=bool)]
            table = table.head(12)
            keep = [
                c
                for c in (
                    "gene_name",
                    "gene_id",
                    "r",
                    "qvalue",
                    "transcript_up",
                    "transcript_down",
                    "switch_strength",
                    "labels",
                )
                if c in table.columns
            ]
            table = table[keep]
        else:
            scores = fit["feature_scores"]
            table = scores[scores["module_id"] == module_id].sort_values("abs_kme", ascending=False).head(12)
            keep = [c for c in ("gene_name", "gene_id", "feature_type", "kme") if c in table.columns]
            table = table[keep]
        parts.append(f"<h3>{html.escape(module_id)}</h3>" + _table(table))
    if explain is not None:
        parts.append("<h2>Enrichment (GO BP, KEGG)</h2>")
        enrichment_path = explain / "enrichment.parquet"
        if enrichment_path.is_file():
            from isograph.explain.plots import enrichment_dots

            enrichment = pd.read_parquet(enrichment_path)
            parts.append(_png(enrichment_dots(enrichment)))
            top = enrichment.sort_values("pvalue").groupby("module_id").head(10)
            cols = [
                "module_id",
                "source",
                "term_id",
                "term_name",
                "n_overlap",
                "n_term",
                "fold_enrichment",
                "qvalue",
            ]
            parts.append(_table(top[cols]))
        else:
            parts.append('<p class="note">The explain run has no enrichment.</p>')
        pairs_path = explain / "switch_pairs.tsv"
        if pairs_path.is_file():
            pairs = pd.read_csv(pairs_path, sep="\t")
    stability_path = Path(fit_dir) / "stability.json"
    if stability_path.is_file():  # written by `isograph fit --stability N`
        summary = json.loads(stability_path.read_text())
        parts.append("<h2>Module stability</h2>")
        parts.append(
            '<p class="note">Co-membership with the full-data module across subsample refits, '
            "and genes kept in the consensus partition.</p>"
        )
        parts.append(_table(pd.DataFrame(summary.get("modules", []))))
    parts.append("<h2>Backend diagnostics</h2>")
    nested = {k: v for k, v in diagnostics.items() if not isinstance(v, (int, float, str, bool))}
    if nested:
        for key, value in nested.items():
            frame = (
                pd.DataFrame(value)
                if isinstance(value, list)
                else pd.json_normalize(value)
                if isinstance(value, dict)
                else None
            )
            if frame is not None and not frame.empty:
                parts.append(f"<h3>{html.escape(key)}</h3>" + _table(frame.head(30)))
    else:
        parts.append(
            '<p class="note">The backend reported scalar diagnostics only (see Data and filters).</p>'
        )
    if bundle is not None and not pairs.empty:
        factor = next(
            (t for t in shown_traits if t in bundle.samples.columns and bundle.samples[t].nunique() <= 12),
            None,
        )
        if factor is not None:
            parts.append(f"<h2>Isoform fractions of the top switches by {html.escape(factor)}</h2>")
            parts.append(_isoform_fractions(bundle, pairs, factor))
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>IsoGraph fit report</title>'
        f"<style>{_CSS}</style></head><body>" + "\n".join(parts) + "</body></html>"
    )
    return write_text(out, page)
