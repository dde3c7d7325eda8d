"""Group bookkeeping shared by the panels: indicator matrices and blockwise group moments.

Nothing here reads a whole matrix at once: rows are gathered in blocks of ``BLOCK`` and
reduced with a sparse (groups x cells) indicator, so memory-mapped data stay on disk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

BLOCK = 8192


def indicator(code: np.ndarray, n_groups: int) -> sp.csr_matrix:
    """(n_groups, n_cells) 0/1 float64 indicator of the group ``code`` (n_cells,) of each cell."""
    n = code.size
    return sp.csr_matrix((np.ones(n), (code, np.arange(n))), shape=(n_groups, n), dtype=np.float64)


@dataclass(frozen=True)
class Groups:
    """Test cells grouped by (pert_id, context_id).

    ``pos`` indexes the prediction arrays, ``rows`` the dataset; both have one entry per
    non-control test cell, ``code`` its group. Per-group arrays have length ``n_groups``.
    """

    pos: np.ndarray
    rows: np.ndarray
    code: np.ndarray
    pert: np.ndarray
    context: np.ndarray
    n_cells: np.ndarray
    pert_genes: list[list[str]]

    @property
    def n_groups(self) -> int:
        return int(self.pert.size)

    def indicator(self) -> sp.csr_matrix:
        """(n_groups, n_cells) 0/1 indicator of group membership."""
        return indicator(self.code, self.n_groups)

    def members(self) -> list[np.ndarray]:
        """Cell positions (into ``pos``/``rows``) of each group."""
        order = np.argsort(self.code, kind="stable")
        bounds = np.cumsum(self.n_cells)[:-1]
        return np.split(order, bounds)


def build_groups(obs: pd.DataFrame, test_idx: np.ndarray) -> Groups:
    """Group the non-control rows of ``test_idx`` by (pert_id, context_id)."""
    is_ctrl = obs["is_control"].to_numpy(dtype=bool)[test_idx]
    pos = np.flatnonzero(~is_ctrl)
    rows = test_idx[pos]
    if rows.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Groups(empty, empty, empty, np.zeros(0, dtype=str), np.zeros(0, dtype=str), empty, [])
    sub = obs.iloc[rows]
    keys = pd.MultiIndex.from_arrays([sub["pert_id"].to_numpy(), sub["context_id"].to_numpy()])
    code, uniq = pd.factorize(keys, sort=True)
    first = pd.Series(np.arange(code.size)).groupby(code).first().to_numpy()
    gene_lists = obs["pert_genes"].to_numpy()
    pert_genes: list[list[str]] = [list(gene_lists[rows[i]]) for i in first]
    return Groups(
        pos=pos,
        rows=rows,
        code=code.astype(np.int64),
        pert=np.asarray(uniq.get_level_values(0), dtype=str),
        context=np.asarray(uniq.get_level_values(1), dtype=str),
        n_cells=np.bincount(code, minlength=len(uniq)).astype(np.int64),
        pert_genes=pert_genes,
    )


def group_moments(
    indicator: sp.csr_matrix,
    n_cells: np.ndarray,
    fetch,
    n_rows: int,
    genes: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Group means and sample variances (ddof=1) of ``fetch(start, stop)[:, genes]``.

    ``fetch(start, stop)`` returns the dense rows ``start:stop`` (in cell order of the
    indicator's columns); it is called once per block.
    """
    n_groups = indicator.shape[0]
    s1 = np.zeros((n_groups, genes.size))
    s2 = np.zeros((n_groups, genes.size))
    for start in range(0, n_rows, BLOCK):
        stop = min(start + BLOCK, n_rows)
        block = np.asarray(fetch(start, stop), dtype=np.float64)[:, genes]
        ind = indicator[:, start:stop]
        s1 += ind @ block
        s2 += ind @ (block * block)
    n = n_cells[:, None].astype(np.float64)
    mean = s1 / n
    with np.errstate(invalid="ignore", divide="ignore"):
        var = (s2 - n * mean * mean) / (n - 1)
    return mean, np.maximum(var, 0.0)


def weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    """Weighted mean skipping NaN values; NaN when nothing is left."""
    ok = np.isfinite(values)
    if not ok.any():
        return float("nan")
    return float(np.average(values[ok], weights=weights[ok]))


def aggregate(
    per_group: dict[str, np.ndarray], groups: Groups, pert_labels: dict[str, object] | None = None
) -> dict[str, dict[str, dict[str, float | None]] | dict[str, float | None]]:
    """Global / per-perturbation / per-context cell-weighted means of per-group metrics.

    With ``pert_labels`` (perturbation id -> label), also ``per_label``: the same means over
    the groups of each label (keys are the labels as strings, plus ``n_groups`` and
    ``n_cells`` per label).
    """
    w = groups.n_cells.astype(np.float64)

    def summarise(mask: np.ndarray) -> dict[str, float | None]:
        return {k: to_json(weighted_mean(v[mask], w[mask])) for k, v in per_group.items()}

    out: dict[str, dict[str, dict[str, float | None]] | dict[str, float | None]] = {
        "global": summarise(np.ones(groups.n_groups, dtype=bool)),
        "per_perturbation": {p: summarise(groups.pert == p) for p in np.unique(groups.pert)},
        "per_context": {c: summarise(groups.context == c) for c in np.unique(groups.context)},
    }
    if pert_labels:
        label = pd.Series(groups.pert).map({str(k): str(v) for k, v in pert_labels.items()}).to_numpy()
        out["per_label"] = {
            lab: {
                **summarise(label == lab),
                "n_groups": int((label == lab).sum()),
                "n_cells": int(groups.n_cells[label == lab].sum()),
            }
            for lab in sorted({x for x in label if isinstance(x, str)})
        }
    return out


def to_json(value: float) -> float | None:
    """Python float, with NaN/inf as None (JSON has no NaN)."""
    value = float(value)
    return value if np.isfinite(value) else None
