"""A readable summary of a dataset (``perturbfm data info``)."""

from __future__ import annotations

from typing import Any

from perturbfm.data.dataset import PerturbDataset


def describe_dataset(ds: PerturbDataset) -> dict[str, Any]:
    """Counts that describe ``ds``: cells, genes, contexts, perturbations, combinations, controls."""
    obs = ds.obs
    ctrl = obs["is_control"].to_numpy(dtype=bool)
    pert = obs.loc[~ctrl]
    n_genes_per = pert.groupby("pert_id")["pert_genes"].first().map(len)
    per_ctx = obs.groupby("context_id", sort=True)
    extra = [
        c for c in obs.columns if c not in {"pert_id", "context_id", "batch_id", "is_control", "pert_genes"}
    ]
    return {
        "n_cells": ds.n_obs,
        "n_genes": ds.n_genes,
        "n_controls": int(ctrl.sum()),
        "n_perturbations": int(n_genes_per.size),
        "n_combinations": int((n_genes_per >= 2).sum()),
        "n_batches": int(obs["batch_id"].nunique()),
        "contexts": {
            str(c): {
                "cells": len(g),
                "controls": int(g["is_control"].sum()),
                "perturbations": int(g.loc[~g["is_control"], "pert_id"].nunique()),
            }
            for c, g in per_ctx
        },
        "obs_columns": [str(c) for c in extra],
        "name": ds.metadata.get("name"),
    }
