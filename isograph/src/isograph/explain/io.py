"""Writing an explain run: one folder per module, a shared manifest, figures; all or nothing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from omicsrun.atomic import output_dir, write_json
from omicsrun.manifest import run_manifest

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from isograph.explain.core import ExplainConfig, ExplainResult


def _save(fig: Figure, stem: Path, formats: tuple[str, ...]) -> list[Path]:
    paths = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        fig.savefig(path, dpi=150)
        paths.append(path)
    return paths


def write_explain(
    results: dict[str, ExplainResult],
    out_dir: str | os.PathLike[str],
    *,
    config: ExplainConfig,
    artifact_dir: str | os.PathLike[str],
    fit: dict[str, Any],
    overwrite: bool = False,
    usage: pd.DataFrame | None = None,
    values: pd.DataFrame | None = None,
) -> Path:
    """Write ``{out}/{module}/*.parquet``, ``switch_pairs.tsv``, figures and the shared manifest."""
    from isograph.explain import core, plots

    with output_dir(out_dir, overwrite=overwrite, what="explain output") as tmp:
        files: dict[str, dict[str, str]] = {}
        for module_id, result in results.items():
            folder = tmp / module_id
            folder.mkdir()
            written = {
                "gene_driver_table": "gene_driver_table.parquet",
                "transcript_polarity_table": "transcript_polarity_table.parquet",
                "high_vs_low_table": "high_vs_low_table.parquet",
                "switch_pairs": "switch_pairs.tsv",
            }
            result.gene_driver_table.to_parquet(folder / written["gene_driver_table"], index=False)
            result.transcript_polarity_table.to_parquet(
                folder / written["transcript_polarity_table"], index=False
            )
            result.high_vs_low_table.to_parquet(folder / written["high_vs_low_table"], index=False)
            result.switch_pairs.to_csv(folder / written["switch_pairs"], sep="\t", index=False)
            result.eigengene.rename_axis("sample_id").rename("eigengene").reset_index().to_parquet(
                folder / "eigengene.parquet", index=False
            )
            written["eigengene"] = "eigengene.parquet"
            for key in ("vae_drivers", "ig_attributions", "enrichment"):
                table = getattr(result, key)
                if table is not None:
                    name = {"ig_attributions": "ig_attributions.parquet"}.get(key, f"{key}.parquet")
                    table.to_parquet(folder / name, index=False)
                    written[key] = name
            if config.plot:
                source = values if values is not None else usage
                figures = [
                    (
                        "top_drivers",
                        plots.driver_bars(result.gene_driver_table, module_id, top_n=config.top_n),
                    )
                ]
                if usage is not None:
                    figures.append(
                        (
                            "usage_gradient",
                            plots.usage_gradient(
                                usage,
                                result.transcript_polarity_table,
                                result.gene_driver_table,
                                result.eigengene,
                                module_id,
                                n_genes=config.n_gradient_genes,
                            ),
                        )
                    )
                if source is not None:
                    figures.append(
                        (
                            "driver_heatmap",
                            plots.driver_heatmap(
                                source,
                                result.gene_driver_table,
                                result.eigengene,
                                module_id,
                                top_n=config.top_n,
                            ),
                        )
                    )
                for stem, fig in figures:
                    for path in _save(fig, folder / stem, config.output_formats):
                        written[f"{stem}_{path.suffix[1:]}"] = path.name
                        result.figures.append(f"{module_id}/{path.name}")
            files[module_id] = {k: f"{module_id}/{v}" for k, v in written.items()}
        enrichments = [r.enrichment for r in results.values() if r.enrichment is not None]
        shared: dict[str, str] = {}
        if enrichments:
            combined = pd.concat(enrichments, ignore_index=True)
            combined.to_parquet(tmp / "enrichment.parquet", index=False)
            shared["enrichment"] = "enrichment.parquet"
            if config.plot:
                for path in _save(
                    plots.enrichment_dots(combined), tmp / "enrichment_dotplot", config.output_formats
                ):
                    shared[f"enrichment_dotplot_{path.suffix[1:]}"] = path.name
        pairs = [r.switch_pairs.assign(module_id=m) for m, r in results.items() if len(r.switch_pairs)]
        if pairs:
            pd.concat(pairs, ignore_index=True).to_csv(tmp / "switch_pairs.tsv", sep="\t", index=False)
            shared["switch_pairs"] = "switch_pairs.tsv"
        manifest = run_manifest(
            tool="isograph",
            config=dict(core.config_dict(config)),
            seed=fit["manifest"].get("seed"),
            data_hash=fit["manifest"].get("data_hash"),
            extra={
                "format": core.EXPLAIN_FORMAT,
                "format_version": core.EXPLAIN_FORMAT_VERSION,
                "artifact_dir": str(Path(artifact_dir).resolve()),
                "module_ids": list(results),
                "files": files,
                "shared_files": shared,
                "optional_features": {
                    "vae_attribution": any(r.vae_drivers is not None for r in results.values()),
                    "integrated_gradients": any(r.ig_attributions is not None for r in results.values()),
                    "enrichment": bool(enrichments),
                    "plots": config.plot,
                },
            },
        )
        write_json(tmp / "module_explanation_manifest.json", manifest)
    return Path(out_dir)
