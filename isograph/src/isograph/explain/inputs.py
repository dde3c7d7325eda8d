"""The feature table and feature metadata of explain-module, derived from a bundle and its fit."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from isograph.bundle import Bundle
from isograph.features.build import build_features


def transcript_usage(bundle: Bundle, *, pseudocount: float = 0.5) -> pd.DataFrame:
    """Usage proportion of every transcript of a multi-transcript gene, samples x transcripts.

    ``(count + pseudocount) / sum over the gene's transcripts``; single-transcript genes have no
    usage (it is always 1).
    """
    tx = bundle.transcripts
    gene = tx["gene_id"].astype(str).to_numpy()
    sizes = pd.Series(gene).map(pd.Series(gene).value_counts()).to_numpy()
    keep = sizes >= 2
    counts = np.asarray(bundle.transcript_counts, dtype=np.float64)[keep] + pseudocount
    codes, _ = pd.factorize(gene[keep])
    totals = np.zeros((codes.max() + 1 if len(codes) else 0, counts.shape[1]))
    np.add.at(totals, codes, counts)
    usage = counts / totals[codes]
    return pd.DataFrame(
        usage.T, index=bundle.sample_ids, columns=tx["transcript_id"].astype(str).to_numpy()[keep]
    )


def features_from_bundle(
    bundle: Bundle, fit_manifest: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Feature table, feature metadata and the fit's own gene-level features for a bundle.

    Parameters
    ----------
    bundle
        The bundle that was fitted.
    fit_manifest
        The fit folder's ``fit_config.json``; its feature settings and covariates rebuild the
        exact gene-level features (switch coordinates, abundance) the backend saw.

    Returns
    -------
    feature_table
        Samples x (transcript usage + gene-level features).
    feature_meta
        ``feature_id``, ``gene_id``, ``feature_type`` (``transcript_usage``, ``switch``,
        ``abundance``), ``gene_name``, ``transcript_id``, ``transcript_name``, ``transcript_type``.
    gene_level
        Samples x gene-level features only (the input of a VAE attribution).
    """
    config = fit_manifest.get("config", {}).get("features", {})
    pseudocount = float(config.get("pseudocount", 0.5))
    usage = transcript_usage(bundle, pseudocount=pseudocount)
    covariates = list(config.get("covariates", []))
    gene_features = build_features(
        bundle,
        pseudocount=pseudocount,
        prior_count=float(config.get("prior_count", 2.0)),
        min_switch_transcripts=int(config.get("min_switch_transcripts", 2)),
        depth_scaled_pseudocount=bool(config.get("depth_scaled_pseudocount", True)),
        regress_library_size=bool(config.get("regress_library_size", False)),
        regress_covariates=bool(covariates),
        covariates=covariates or None,
    )
    gene_level = pd.DataFrame(
        np.asarray(gene_features.matrix, dtype=np.float64),
        index=pd.Index(gene_features.sample_ids.astype(str)),
        columns=gene_features.feature_ids.astype(str),
    )
    names = (
        bundle.genes.set_index(bundle.genes["gene_id"].astype(str))["gene_name"]
        if "gene_name" in bundle.genes.columns
        else pd.Series(dtype=object)
    )
    tx = bundle.transcripts.set_index(bundle.transcripts["transcript_id"].astype(str)).loc[usage.columns]
    tx_meta = pd.DataFrame(
        {
            "feature_id": usage.columns,
            "gene_id": tx["gene_id"].astype(str).to_numpy(),
            "feature_type": "transcript_usage",
            "transcript_id": usage.columns,
        }
    )
    for optional in ("transcript_name", "transcript_type"):
        tx_meta[optional] = tx[optional].to_numpy() if optional in tx.columns else None
    gene_meta = pd.DataFrame(
        {
            "feature_id": gene_level.columns,
            "gene_id": gene_features.gene_ids.astype(str),
            "feature_type": gene_features.feature_type.astype(str),
        }
    )
    meta = pd.concat([tx_meta, gene_meta], ignore_index=True)
    meta["gene_name"] = meta["gene_id"].map(names)
    table = pd.concat([usage, gene_level.reindex(usage.index)], axis=1)
    table.index.name = "sample_id"
    return table, meta, gene_level
