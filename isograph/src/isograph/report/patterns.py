"""Eigengene patterns across the levels of a design factor (e.g. the four conditions of a study)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from omicsrun import InputError


def _aligned(eigengenes: pd.DataFrame, samples: pd.DataFrame, trait: str) -> tuple[pd.DataFrame, pd.Series]:
    if trait not in samples.columns:
        msg = f"sample table has no column {trait!r}; columns are {[str(c) for c in samples.columns]}"
        raise InputError(msg)
    values = eigengenes.set_index("sample_id") if "sample_id" in eigengenes.columns else eigengenes.copy()
    table = samples.set_index("sample_id") if "sample_id" in samples.columns else samples.copy()
    missing = [s for s in values.index.astype(str) if s not in set(table.index.astype(str))]
    if missing:
        msg = f"eigengene sample {missing[0]!r} is not in the sample table ({len(missing)} missing)"
        raise InputError(msg)
    table.index = table.index.astype(str)
    values.index = values.index.astype(str)
    return values, table.loc[values.index, trait].astype(str)


def _level_order(samples: pd.DataFrame, trait: str, present: pd.Series) -> list[str]:
    # a categorical column's own order, else order of first appearance in the sample table
    column = samples[trait]
    levels = column.cat.categories if isinstance(column.dtype, pd.CategoricalDtype) else column.unique()
    seen = set(present)
    return [str(v) for v in levels if str(v) in seen]


def eigengene_level_means(eigengenes: pd.DataFrame, samples: pd.DataFrame, trait: str) -> pd.DataFrame:
    """Mean eigengene per module and level of ``trait``.

    Parameters
    ----------
    eigengenes
        ``sample_id`` plus one column per module (the fit's ``eigengenes.parquet``).
    samples
        The bundle's sample table (``sample_id`` and ``trait``).
    trait
        A categorical column.

    Returns
    -------
    pandas.DataFrame
        Modules x levels (a categorical column's order, else first appearance in ``samples``).

    Raises
    ------
    InputError
        When ``trait`` is not a column or an eigengene sample is not in the sample table.
    """
    values, level = _aligned(eigengenes, samples, trait)
    return values.groupby(level.to_numpy()).mean().reindex(_level_order(samples, trait, level)).T


def eigengene_patterns(
    eigengenes: pd.DataFrame, samples: pd.DataFrame, trait: str, *, modules: list[str] | None = None
) -> Any:
    """One panel per module: each sample's eigengene by level of ``trait``, with the level means.

    Parameters
    ----------
    eigengenes, samples, trait
        As for :func:`eigengene_level_means`.
    modules
        Modules to draw (default: every eigengene column).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    values, level = _aligned(eigengenes, samples, trait)
    means = eigengene_level_means(eigengenes, samples, trait)
    names = list(values.columns if modules is None else modules)
    order = list(means.columns)
    position = level.map({lev: i for i, lev in enumerate(order)}).to_numpy(dtype=float)
    jitter = np.linspace(-0.12, 0.12, len(position)) if len(position) > 1 else np.zeros(1)
    fig = Figure(figsize=(2.4 * max(len(names), 1) + 0.6, 2.9), layout="constrained")
    axes = fig.subplots(1, max(len(names), 1), sharey=True, squeeze=False)[0]
    for i, (ax, name) in enumerate(zip(axes, names, strict=False)):
        ax.axhline(0, color="0.85", lw=0.8)
        ax.scatter(position + jitter, values[name].to_numpy(), s=12, color=f"C{i % 10}", alpha=0.7)
        ax.plot(range(len(order)), means.loc[name].to_numpy(), color="0.2", marker="_", ms=18, lw=1)
        ax.set_title(name)
        ax.set_xticks(range(len(order)), order, rotation=40, ha="right")
    axes[0].set_ylabel("eigengene")
    return fig
