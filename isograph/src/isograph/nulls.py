"""Calibration on fixtures with no planted module: spurious modules and the trait table's error rate.

On a null fixture every module is spurious and every trait association is a false positive.
The issue's targets: at most one spurious module per 10,000 features, and trait rows
significant at p < 0.05 in about 5% of tests (their nominal rate).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from isograph.backends.base import UNASSIGNED

NOMINAL_LEVEL = 0.05


def null_report(modules: pd.DataFrame, traits: pd.DataFrame, diagnostics: dict[str, Any]) -> dict[str, Any]:
    """Spurious modules per 10,000 features and the trait table's rejection rate at p < 0.05.

    Parameters
    ----------
    modules
        ``gene_id``, ``module_id`` of the fit.
    traits
        The fit's ``traits.parquet`` table.
    diagnostics
        The fit's diagnostics (``n_switch_features``, ``n_abundance_features``).

    Returns
    -------
    dict
        ``n_spurious_modules``, ``n_features``, ``spurious_modules_per_10k_features``,
        ``n_spurious_genes``, ``trait_tests``, ``trait_rejection_rate``, ``covariate_after_tests``,
        ``covariate_after_rejection_rate`` (NaN where there is no test), ``nominal_level``.
    """
    n_features = int(diagnostics.get("n_switch_features", 0)) + int(
        diagnostics.get("n_abundance_features", 0)
    )
    placed = modules["module_id"].astype(str) != UNASSIGNED
    n_modules = int(modules.loc[placed, "module_id"].nunique())

    def rate(kind: str) -> tuple[int, float]:
        rows = traits[traits["kind"] == kind]["pvalue"].dropna()
        return len(rows), float((rows < NOMINAL_LEVEL).mean()) if len(rows) else float("nan")

    n_trait, trait_rate = rate("trait")
    n_after, after_rate = rate("covariate_after")
    return {
        "n_spurious_modules": n_modules,
        "n_spurious_genes": int(placed.sum()),
        "n_features": n_features,
        "spurious_modules_per_10k_features": float(n_modules * 1e4 / max(n_features, 1)),
        "trait_tests": n_trait,
        "trait_rejection_rate": trait_rate,
        "covariate_after_tests": n_after,
        "covariate_after_rejection_rate": after_rate,
        "nominal_level": NOMINAL_LEVEL,
        # at most one per 10,000 features: none at 2,000 genes, at most one at 12,000
        "within_target": bool(n_modules * 1e4 / max(n_features, 1) <= 1.0),
    }


def pooled_rejection_rate(reports: list[dict[str, Any]]) -> float:
    """Trait rejection rate pooled over several null fits (tests weighted by count)."""
    tests = np.array([r["trait_tests"] for r in reports], dtype=float)
    rates = np.array([np.nan_to_num(r["trait_rejection_rate"]) for r in reports])
    return float((tests * rates).sum() / tests.sum()) if tests.sum() else float("nan")
