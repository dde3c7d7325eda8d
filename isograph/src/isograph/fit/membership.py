"""Module membership (kME) of every feature in every module, with p values.

kME is WGCNA's module membership: the Pearson correlation of a feature with a module
eigengene. It is computed for EVERY feature and EVERY module (not only a module's own
members), so a user can see how close an ``unassigned`` gene is to each program and which
genes sit between two modules. The p value is the two-sided Student t test of a
correlation (WGCNA's ``corPvalueStudent``) on the residual degrees of freedom the features
carry after covariate regression, ``df = dof - 1`` (``n - 2`` when nothing was regressed).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from isograph.backends.base import UNASSIGNED
from isograph.features.build import FeatureSet
from isograph.network.eigengenes import standardize

MEMBERSHIP_COLUMNS = ("feature_id", "gene_id", "feature_type", "module_id", "kme", "pvalue", "is_member")


def module_membership(
    features: FeatureSet, eigengenes: pd.DataFrame, feature_module: np.ndarray, *, block_size: int = 4096
) -> pd.DataFrame:
    """kME and its p value for every feature x module pair (long table).

    Parameters
    ----------
    features
        Feature set, matrix of shape (n_samples, n_features).
    eigengenes
        Module eigengenes, shape (n_samples, n_modules), columns are module ids.
    feature_module
        Hard module of each feature (its gene's module), shape (n_features,).
    block_size
        Features correlated at a time (memory stays O(block_size x n_samples)).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`MEMBERSHIP_COLUMNS`, n_features x n_modules rows ordered by feature then
        module (eigengene column order); ``is_member`` marks the feature's own module.
    """
    module_ids = [str(m) for m in eigengenes.columns]
    n_features, n_modules = features.n_features, len(module_ids)
    if n_modules == 0:
        return _empty()
    e = standardize(eigengenes.to_numpy(dtype=np.float64))
    n = features.n_samples
    df = max(int(features.dof) - 1, 1) if features.dof > 0 else max(n - 2, 1)
    kme = np.empty((n_features, n_modules), dtype=np.float64)
    for start in range(0, n_features, block_size):
        stop = min(start + block_size, n_features)
        block = standardize(np.asarray(features.matrix[:, start:stop], dtype=np.float64))
        kme[start:stop] = block.T @ e / n
    np.clip(kme, -1.0, 1.0, out=kme)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = kme * np.sqrt(df / np.maximum(1.0 - kme**2, 1e-300))
    pvalue = 2.0 * stats.t.sf(np.abs(t), df)
    own = np.asarray(feature_module).astype(str)
    modules = np.tile(np.asarray(module_ids, dtype=object), n_features)
    return pd.DataFrame(
        {
            "feature_id": np.repeat(features.feature_ids.astype(str), n_modules),
            "gene_id": np.repeat(features.gene_ids.astype(str), n_modules),
            "feature_type": np.repeat(features.feature_type.astype(str), n_modules),
            "module_id": modules.astype(str),
            "kme": kme.ravel(),
            "pvalue": pvalue.ravel(),
            "is_member": (np.repeat(own, n_modules) == modules.astype(str)) & (modules != UNASSIGNED),
        }
    )


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "feature_id": pd.Series(dtype=str),
            "gene_id": pd.Series(dtype=str),
            "feature_type": pd.Series(dtype=str),
            "module_id": pd.Series(dtype=str),
            "kme": pd.Series(dtype=np.float64),
            "pvalue": pd.Series(dtype=np.float64),
            "is_member": pd.Series(dtype=bool),
        }
    )
