"""Nuisance covariates: a design matrix from the sample table, and least-squares residuals."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from omicsrun import InputError


def covariate_design(samples: pd.DataFrame, columns: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Design matrix of nuisance covariates (no intercept).

    Categorical columns (strings, categories, booleans) become one-hot indicators with the
    first level dropped; numeric columns are standardised (missing values set to the mean).
    Constant columns contribute nothing.

    Parameters
    ----------
    samples
        Sample table, one row per sample.
    columns
        Column names to use.

    Returns
    -------
    design
        Shape (n_samples, n_terms), float64.
    terms
        A name for each design column (``batch[b2]``, ``age``).

    Raises
    ------
    InputError
        When a column is absent from the sample table.
    """
    missing = [c for c in columns if c not in samples.columns]
    if missing:
        msg = (
            f"covariate column {missing[0]!r} is not in the sample table; "
            f"columns are {[c for c in map(str, samples.columns) if c != 'sample_id']}"
        )
        raise InputError(msg)
    blocks: list[np.ndarray] = []
    terms: list[str] = []
    for column in columns:
        values = samples[column]
        if _is_numeric(values):
            x = values.to_numpy(dtype=np.float64)
            x = np.where(np.isnan(x), np.nanmean(x) if np.isfinite(x).any() else 0.0, x)
            sd = x.std()
            if sd > 0:
                blocks.append(((x - x.mean()) / sd)[:, None])
                terms.append(str(column))
        else:
            labels = values.astype("string").fillna("NA")
            dummies = pd.get_dummies(labels, prefix=str(column), prefix_sep="[", drop_first=True, dtype=float)
            if dummies.shape[1]:
                blocks.append(dummies.to_numpy())
                terms.extend(f"{name}]" for name in dummies.columns)
    if not blocks:
        return np.zeros((len(samples), 0)), []
    return np.hstack(blocks), terms


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def residualize(values: np.ndarray, design: np.ndarray) -> np.ndarray:
    """Least-squares residuals of every column of ``values`` on ``[1, design]``.

    One ``lstsq`` solves all columns at once.

    Parameters
    ----------
    values
        Shape (n_samples, n_features).
    design
        Shape (n_samples, n_terms), without intercept (one is added).

    Returns
    -------
    numpy.ndarray
        Residuals, shape (n_samples, n_features), float64; orthogonal to every design column
        and to the intercept.

    Raises
    ------
    InputError
        When the design leaves no residual degrees of freedom.
    """
    full = with_intercept(design)
    return _residualize(np.asarray(values, dtype=np.float64), full)


def with_intercept(design: np.ndarray) -> np.ndarray:
    """``[1, design]``, checked to leave at least two residual degrees of freedom.

    Raises
    ------
    InputError
        When the design has rank n_samples - 1 or more.
    """
    n_samples = design.shape[0]
    full = np.hstack([np.ones((n_samples, 1)), design])
    rank = int(np.linalg.matrix_rank(full))
    if rank >= n_samples - 1:
        msg = (
            f"covariates leave no residual degrees of freedom: design rank {rank} with "
            f"{n_samples} samples; use fewer covariates (or --no-regress-covariates)"
        )
        raise InputError(msg)
    return full


def _residualize(values: np.ndarray, full: np.ndarray) -> np.ndarray:
    coef, *_ = np.linalg.lstsq(full, values, rcond=None)
    return values - full @ coef
