"""``explain_module``: which genes drive a module and which transcript each driver switches towards.

For every module the eigengene of the fit (or a user score table) is correlated with every
feature (transcript usage, gene switch coordinates, abundance), with missing values handled
per feature. Genes are ranked by |r| of their gene-level switch feature when the feature
table has one, else by their strongest feature (p value Bonferroni-corrected for the gene's
number of features). ``switch_strength = max(r) - min(r)`` over the transcript features of a
gene: a gene whose transcripts move in opposite directions along the eigengene is switching
isoforms, not merely changing expression.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from isograph.explain.stats import fisher_ci, masked_pearson, welch
from isograph.fit.stats import benjamini_hochberg
from omicsrun import InputError

GENE_LEVEL_TYPES = ("switch", "abundance")
EXPLAIN_FORMAT = "isograph-explain"
EXPLAIN_FORMAT_VERSION = 1
OutputFormat = Literal["png", "pdf"]


@dataclass(frozen=True)
class ExplainConfig:
    """Settings of :func:`explain_module` (the command line builds one).

    Attributes
    ----------
    plot
        Write per-module figures.
    output_formats
        Figure formats: ``("png",)``, ``("pdf",)`` or both.
    high_low_percentile
        Samples in the top and bottom this-percent of the eigengene form the contrast groups.
    top_n
        Driver genes shown in the bar plot and heatmap (half positive, half negative there).
    n_gradient_genes
        Driver genes in the transcript-usage gradient plot.
    enrichment
        GO BP and KEGG over-representation per module (needs the org.*.eg.db SQLite file).
    enrich_top
        Also test the top this-many positive and negative drivers of each module
        (``<module>:positive`` / ``<module>:negative``); 0 turns it off. A large module that
        mixes two opposite programs shows each of them here.
    species
        ``"human"`` or ``"mouse"``, or a path to an org.*.eg.sqlite file.
    vae_attribution, vae_fdr_threshold, vae_percentile_threshold, vae_step
        Decoder-Jacobian attribution from the fit's VAE and its three criteria.
    integrated_gradients, ig_n_steps, ig_baseline
        Captum Integrated Gradients through the VAE encoder.
    """

    plot: bool = False
    output_formats: tuple[OutputFormat, ...] = ("png",)
    high_low_percentile: float = 25.0
    top_n: int = 20
    n_gradient_genes: int = 4
    enrichment: bool = False
    enrich_top: int = 200
    species: str = "human"
    vae_attribution: bool = False
    vae_fdr_threshold: float = 0.05
    vae_percentile_threshold: float = 90.0
    vae_step: float = 0.5
    integrated_gradients: bool = False
    ig_n_steps: int = 100
    ig_baseline: Literal["zero", "mean"] = "zero"

    def __post_init__(self) -> None:
        if not 0 < self.high_low_percentile <= 50:
            msg = f"high_low_percentile must be in (0, 50]; found {self.high_low_percentile}"
            raise InputError(msg)
        bad = [f for f in self.output_formats if f not in ("png", "pdf")]
        if bad or not self.output_formats:
            msg = f"output formats must be png and/or pdf; found {list(self.output_formats)}"
            raise InputError(msg)
        if self.top_n < 1 or self.n_gradient_genes < 1 or self.ig_n_steps < 2 or self.enrich_top < 0:
            msg = (
                "top_n and n_gradient_genes must be >= 1, ig_n_steps >= 2 and enrich_top >= 0; found "
                f"{self.top_n}, {self.n_gradient_genes}, {self.ig_n_steps}, {self.enrich_top}"
            )
            raise InputError(msg)
        if not 0 < self.vae_fdr_threshold <= 1 or not 0 <= self.vae_percentile_threshold < 100:
            msg = (
                "vae_fdr_threshold must be in (0, 1] and vae_percentile_threshold in [0, 100); found "
                f"{self.vae_fdr_threshold}, {self.vae_percentile_threshold}"
            )
            raise InputError(msg)
        if self.ig_baseline not in ("zero", "mean"):
            msg = f"ig_baseline must be 'zero' or 'mean'; found {self.ig_baseline!r}"
            raise InputError(msg)


@dataclass(eq=False)
class ExplainResult:
    """Explanation of one module (tables as described in seed 003)."""

    module_id: str
    gene_driver_table: pd.DataFrame
    transcript_polarity_table: pd.DataFrame
    high_vs_low_table: pd.DataFrame
    switch_pairs: pd.DataFrame
    eigengene: pd.Series
    vae_drivers: pd.DataFrame | None = None
    ig_attributions: pd.DataFrame | None = None
    enrichment: pd.DataFrame | None = None
    figures: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# inputs


def _read_parquet(path: Path, what: str) -> pd.DataFrame:
    if not path.is_file():
        msg = f"{what}: {str(path)!r} does not exist; expected a fit folder written by 'isograph fit'"
        raise InputError(msg)
    return pd.read_parquet(path)


def read_fit_tables(artifact_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The fit folder's modules, feature scores, eigengenes and config (``fit_config.json``)."""
    root = Path(artifact_dir)
    if not root.is_dir():
        msg = f"fit folder {str(root)!r} does not exist"
        raise InputError(msg)
    modules = _read_parquet(root / "modules.parquet", "fit folder has no modules table")
    scores = _read_parquet(root / "feature_scores.parquet", "fit folder has no feature scores")
    eig_path = root / "eigengenes.parquet"
    eigengenes = pd.read_parquet(eig_path) if eig_path.is_file() else None
    config_path = root / "fit_config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    return {"modules": modules, "feature_scores": scores, "eigengenes": eigengenes, "manifest": config}


def _as_sample_frame(table: pd.DataFrame, what: str) -> pd.DataFrame:
    frame = table.set_index("sample_id") if "sample_id" in table.columns else table
    frame.index = frame.index.astype(str)
    if frame.index.has_duplicates:
        msg = f"{what} has duplicate sample ids, e.g. {frame.index[frame.index.duplicated()][0]!r}"
        raise InputError(msg)
    return frame


def _check_meta(feature_meta: pd.DataFrame, features: pd.Index) -> pd.DataFrame:
    missing = [c for c in ("feature_id", "gene_id", "feature_type") if c not in feature_meta.columns]
    if missing:
        msg = (
            f"feature metadata has no column {missing[0]!r}; expected feature_id, gene_id, feature_type; "
            f"found {list(feature_meta.columns)}"
        )
        raise InputError(msg)
    meta = feature_meta.drop_duplicates("feature_id").set_index(
        feature_meta["feature_id"].astype(str).to_numpy()
    )
    absent = features.difference(meta.index)
    if len(absent):
        msg = (
            f"feature metadata lacks {len(absent)} feature(s) of the feature table, e.g. {absent[0]!r}; "
            "every feature column needs a row"
        )
        raise InputError(msg)
    return meta.loc[features]


# ---------------------------------------------------------------------------------------------
# the public entry point


def explain_module(
    artifact_dir: str | os.PathLike[str],
    feature_table: pd.DataFrame,
    feature_meta: pd.DataFrame,
    *,
    module_ids: Sequence[str] | None = None,
    config: ExplainConfig | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    module_score_table: pd.DataFrame | None = None,
    annotation_table: pd.DataFrame | None = None,
    overwrite: bool = False,
    vae: Any = None,
    gene_level_matrix: pd.DataFrame | None = None,
) -> dict[str, ExplainResult]:
    """Explain modules of a fit by their driver genes and transcript polarity.

    Parameters
    ----------
    artifact_dir
        Fit folder (``modules.parquet``, ``feature_scores.parquet``, ``eigengenes.parquet``).
    feature_table
        Samples x features (index or ``sample_id`` column), shape (n_samples, n_features);
        NaN marks a missing value.
    feature_meta
        ``feature_id``, ``gene_id``, ``feature_type`` (+ optional ``gene_name``,
        ``transcript_id``, ``transcript_name``, ...), one row per feature.
    module_ids
        Modules to explain (default: every module of the fit).
    config
        :class:`ExplainConfig`; default settings when ``None``.
    output_dir
        Folder to write (atomically; refused when it holds results unless ``overwrite``).
    module_score_table
        Samples x modules scores overriding the fit's eigengenes.
    annotation_table
        Output of ``isograph annotate-structure``; merged into the driver tables.
    vae
        A loaded VAE handle (see :mod:`isograph.explain.attribution`) for the attributions;
        loaded from the fit folder when an attribution is asked for and this is ``None``.
    gene_level_matrix
        Samples x VAE input features for the attributions (default: ``feature_table``).

    Returns
    -------
    dict[str, ExplainResult]
        Keyed by module id, in the order asked.

    Raises
    ------
    InputError
        Missing fit files, unknown module ids, misaligned samples, bad metadata.
    """
    config = config or ExplainConfig()
    fit = read_fit_tables(artifact_dir)
    if (config.vae_attribution or config.integrated_gradients) and vae is None:
        from isograph.explain.attribution import load_handle

        vae = load_handle(Path(artifact_dir))  # before any work: a fit without a VAE fails here
    features = _as_sample_frame(feature_table, "feature table")
    features.columns = features.columns.astype(str)
    meta = _check_meta(feature_meta, pd.Index(features.columns))
    if module_score_table is not None:
        scores = _as_sample_frame(module_score_table, "module score table")
    elif fit["eigengenes"] is not None:
        scores = _as_sample_frame(fit["eigengenes"], "fit eigengenes")
    else:
        msg = "fit folder has no eigengenes.parquet; pass a module score table"
        raise InputError(msg)
    available = [str(c) for c in scores.columns]
    chosen = list(dict.fromkeys(module_ids)) if module_ids else available
    unknown = [m for m in chosen if m not in available]
    if unknown:
        msg = f"unknown module id {unknown[0]!r}; the fit has modules {available}"
        raise InputError(msg)
    shared = features.index.intersection(scores.index)
    if len(shared) < 4:
        msg = (
            f"feature table and module scores share {len(shared)} sample id(s); need at least 4 "
            f"(feature table e.g. {list(features.index[:2])}, scores e.g. {list(scores.index[:2])})"
        )
        raise InputError(msg)
    if annotation_table is not None and "gene_id" not in annotation_table.columns:
        msg = f"annotation table has no column 'gene_id'; found {list(annotation_table.columns)}"
        raise InputError(msg)
    x = features.loc[shared].to_numpy(dtype=np.float64)
    assignment = pd.Series(
        fit["modules"]["module_id"].astype(str).to_numpy(),
        index=fit["modules"]["gene_id"].astype(str).to_numpy(),
    )
    results: dict[str, ExplainResult] = {}
    for module_id in chosen:
        eigengene = scores.loc[shared, module_id].astype(np.float64)
        results[module_id] = _explain_one(module_id, x, eigengene, meta, assignment, config, annotation_table)
    if config.enrichment:
        from isograph.explain.enrichment import enrich_modules

        extra: dict[str, list[str]] = {}
        if config.enrich_top > 0:
            for module_id in chosen:
                drivers = results[module_id].gene_driver_table
                placed = drivers[drivers["in_module"] & (drivers["qvalue"] <= 0.05)]
                extra[f"{module_id}:positive"] = (
                    placed[placed["r"] > 0]["gene_id"].head(config.enrich_top).tolist()
                )
                extra[f"{module_id}:negative"] = (
                    placed[placed["r"] < 0]["gene_id"].head(config.enrich_top).tolist()
                )
        enrichment = enrich_modules(fit["modules"], chosen, source=config.species, extra_lists=extra)
        base = enrichment["module_id"].astype(str).str.split(":").str[0]
        for module_id in chosen:
            results[module_id].enrichment = enrichment[base == module_id].reset_index(drop=True)
    if config.vae_attribution or config.integrated_gradients:
        from isograph.explain.attribution import attach_attributions

        attach_attributions(
            results,
            vae=vae,
            artifact_dir=Path(artifact_dir),
            inputs=gene_level_matrix if gene_level_matrix is not None else features.loc[shared],
            config=config,
        )
    if output_dir is not None:
        from isograph.explain.io import write_explain

        is_tx = ~meta["feature_type"].astype(str).isin(GENE_LEVEL_TYPES).to_numpy()
        usage = features.loc[shared, meta.index[is_tx]] if is_tx.any() else None
        write_explain(
            results,
            output_dir,
            config=config,
            artifact_dir=artifact_dir,
            fit=fit,
            overwrite=overwrite,
            usage=usage,
            values=features.loc[shared],
        )
    return results


def _explain_one(
    module_id: str,
    x: np.ndarray,
    eigengene: pd.Series,
    meta: pd.DataFrame,
    assignment: pd.Series,
    config: ExplainConfig,
    annotation_table: pd.DataFrame | None,
) -> ExplainResult:
    e = eigengene.to_numpy()
    n_samples = x.shape[0]
    r, p, n = masked_pearson(x, e)
    gene = meta["gene_id"].astype(str).to_numpy()
    ftype = meta["feature_type"].astype(str).to_numpy()
    names = meta["gene_name"] if "gene_name" in meta.columns else pd.Series(np.nan, index=meta.index)
    polarity = pd.DataFrame(
        {
            "feature_id": meta.index.to_numpy(),
            "gene_id": gene,
            "gene_name": names.to_numpy(),
            "feature_type": ftype,
            "r": r,
            "pvalue": p,
            "qvalue": benjamini_hochberg(p),
            "n_samples": n,
            "missing_fraction": 1.0 - n / n_samples,
        }
    )
    for optional in ("transcript_id", "transcript_name", "transcript_type"):
        if optional in meta.columns:
            polarity[optional] = meta[optional].to_numpy()
    is_tx = ~np.isin(ftype, GENE_LEVEL_TYPES)
    tx = polarity[is_tx & np.isfinite(r)]
    strength = tx.groupby("gene_id")["r"].agg(lambda v: v.max() - v.min() if len(v) > 1 else np.nan)
    polarity["switch_strength"] = polarity["gene_id"].map(strength).astype(np.float64)
    polarity = polarity.reindex(polarity["r"].abs().sort_values(ascending=False, na_position="last").index)

    genes = _gene_drivers(polarity, n_samples)
    genes["module_id"] = genes["gene_id"].map(assignment).fillna("unassigned")
    genes["in_module"] = genes["module_id"] == module_id
    pairs = _switch_pairs(tx, genes)
    up = pairs.set_index("gene_id")
    for key in ("transcript_up", "transcript_down", "r_up", "r_down"):
        genes[key] = genes["gene_id"].map(up[key]) if len(up) else np.nan
    genes["switch_strength"] = genes["gene_id"].map(strength).astype(np.float64)
    if annotation_table is not None:
        genes = _merge_annotation(genes, annotation_table)
        pairs = _merge_annotation(pairs, annotation_table)

    cut = max(1, int(np.floor(n_samples * config.high_low_percentile / 100.0)))
    order = np.argsort(e, kind="stable")
    high, low = order[-cut:], order[:cut]
    contrast = welch(x[high], x[low])
    high_low = pd.DataFrame(
        {"feature_id": meta.index.to_numpy(), "gene_id": gene, "gene_name": names.to_numpy()}
    )
    for key, values in contrast.items():
        high_low[key] = values
    high_low["qvalue"] = benjamini_hochberg(high_low["pvalue"].to_numpy())
    high_low["missing_fraction"] = 1.0 - n / n_samples
    high_low = high_low.reindex(high_low["pvalue"].sort_values(na_position="last").index).reset_index(
        drop=True
    )
    return ExplainResult(
        module_id=module_id,
        gene_driver_table=genes.reset_index(drop=True),
        transcript_polarity_table=polarity.reset_index(drop=True),
        high_vs_low_table=high_low,
        switch_pairs=pairs.reset_index(drop=True),
        eigengene=eigengene,
    )


def _gene_drivers(polarity: pd.DataFrame, n_samples: int) -> pd.DataFrame:
    valid = polarity[np.isfinite(polarity["r"].to_numpy())]
    switch = valid[valid["feature_type"] == "switch"]
    # Genes without a switch feature are represented by their strongest feature (Bonferroni over
    # the gene's features, so a gene with many transcripts is not favoured by chance).
    rest = valid[~valid["gene_id"].isin(switch["gene_id"]) & (valid["feature_type"] != "abundance")]
    if len(rest):
        n_features = rest.groupby("gene_id")["r"].transform("size").to_numpy()
        best = rest.assign(pvalue=np.minimum(rest["pvalue"].to_numpy() * n_features, 1.0))
        best = best.loc[best["r"].abs().groupby(best["gene_id"]).idxmax()]
    else:
        best = rest
    chosen = pd.concat([switch, best], ignore_index=True)
    table = pd.DataFrame(
        {
            "gene_id": chosen["gene_id"].to_numpy(),
            "gene_name": chosen["gene_name"].to_numpy(),
            "r": chosen["r"].to_numpy(),
            "pvalue": chosen["pvalue"].to_numpy(),
            "n_samples": chosen["n_samples"].to_numpy(),
            "missing_fraction": chosen["missing_fraction"].to_numpy(),
            "driver_feature": chosen["feature_id"].to_numpy(),
        }
    )
    table["qvalue"] = benjamini_hochberg(table["pvalue"].to_numpy())
    low, high = fisher_ci(table["r"].to_numpy(), table["n_samples"].to_numpy())
    table["ci_low"], table["ci_high"] = low, high
    table["polarity"] = np.where(table["r"] >= 0, "positive", "negative")
    abundance = (
        valid[valid["feature_type"] == "abundance"].drop_duplicates("gene_id").set_index("gene_id")["r"]
    )
    table["abundance_r"] = table["gene_id"].map(abundance).astype(np.float64)
    columns = ["gene_id", "gene_name", "r", "pvalue", "qvalue", "n_samples", "missing_fraction"]
    columns += ["ci_low", "ci_high", "polarity", "abundance_r", "driver_feature"]
    table = table[columns]
    return table.reindex(table["r"].abs().sort_values(ascending=False).index).reset_index(drop=True)


def _switch_pairs(tx: pd.DataFrame, genes: pd.DataFrame) -> pd.DataFrame:
    """Per gene with >= 2 transcript features: the transcripts of largest and smallest r."""
    columns = [
        "gene_id",
        "gene_name",
        "transcript_up",
        "transcript_down",
        "r_up",
        "r_down",
        "switch_strength",
    ]
    multi = tx[tx.groupby("gene_id")["r"].transform("size") >= 2]
    if multi.empty:
        return pd.DataFrame(columns=columns)
    top = multi.loc[multi.groupby("gene_id")["r"].idxmax()].set_index("gene_id")
    bottom = multi.loc[multi.groupby("gene_id")["r"].idxmin()].set_index("gene_id")
    ident = "transcript_id" if "transcript_id" in multi.columns else "feature_id"
    pairs = pd.DataFrame(
        {
            "gene_id": top.index.to_numpy(),
            "gene_name": top["gene_name"].to_numpy(),
            "transcript_up": top[ident].to_numpy(),
            "transcript_down": bottom.loc[top.index, ident].to_numpy(),
            "r_up": top["r"].to_numpy(),
            "r_down": bottom.loc[top.index, "r"].to_numpy(),
        }
    )
    pairs["switch_strength"] = pairs["r_up"] - pairs["r_down"]
    rank = pd.Series(np.arange(len(genes)), index=genes["gene_id"].to_numpy())
    pairs["driver_rank"] = pairs["gene_id"].map(rank)
    return pairs.sort_values(["driver_rank", "gene_id"]).drop(columns="driver_rank").reset_index(drop=True)


def _merge_annotation(table: pd.DataFrame, annotation: pd.DataFrame) -> pd.DataFrame:
    keep = [c for c in annotation.columns if c not in table.columns or c == "gene_id"]
    labels = annotation[keep].drop_duplicates("gene_id")
    return table.merge(labels, on="gene_id", how="left")


def config_dict(config: ExplainConfig) -> Mapping[str, Any]:
    """The config as plain JSON values."""
    out = asdict(config)
    out["output_formats"] = list(config.output_formats)
    return out
