"""Blockwise thresholding of partial correlations into a sparse edge list.

Threshold rule (empirical null + Bonferroni): almost all feature pairs are unconnected, so
the bulk of the partial correlations of one pair class (switch-switch, switch-abundance,
abundance-abundance) is null. Its scale is estimated robustly, ``sigma = 1.4826 *
median(|pcor|)`` over the pairs of an evenly spaced sample of rows (Efron's central matching
with a zero-centred null), and a pair is an edge when ``|pcor| >= sigma * z`` with
``z = Phi^-1(1 - alpha / (2 m))``, m being the number of pairs in the class. ``alpha`` is thus
a bound on the expected number of false edges in the class: with connected-component modules
a handful of false edges would already chain unrelated modules, so the rule controls their
count rather than their proportion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from isograph.network.partial import ShrunkPartialCorrelation

_MAD_TO_SD = 1.482602218505602


@dataclass(frozen=True)
class EdgeList:
    """A sparse undirected graph over n_nodes nodes; each edge once, ``i < j``.

    Attributes
    ----------
    i, j
        Node indices, shape (n_edges,), int64.
    weight
        Partial correlation of each edge, shape (n_edges,), float64.
    n_nodes
        Number of nodes.
    """

    i: np.ndarray
    j: np.ndarray
    weight: np.ndarray
    n_nodes: int

    @property
    def n_edges(self) -> int:
        return len(self.i)

    def degree(self) -> np.ndarray:
        """Number of edges at each node, shape (n_nodes,)."""
        return np.bincount(np.r_[self.i, self.j], minlength=self.n_nodes)

    def strength(self) -> np.ndarray:
        """Sum of |weight| at each node, shape (n_nodes,)."""
        w = np.abs(np.r_[self.weight, self.weight])
        return np.bincount(np.r_[self.i, self.j], weights=w, minlength=self.n_nodes)


def _pair_mask(rows: np.ndarray, n_cols: int, group: np.ndarray | None, *, upper: bool) -> np.ndarray:
    cols = np.arange(n_cols)
    mask = cols[None, :] > rows[:, None] if upper else cols[None, :] != rows[:, None]
    if group is not None:
        mask &= group[None, :] != group[rows, None]
    return mask


def empirical_null_scale(
    pcor: ShrunkPartialCorrelation,
    node_class: np.ndarray,
    *,
    n_classes: int,
    group: np.ndarray | None = None,
    n_rows: int = 512,
) -> np.ndarray:
    """Robust null scale of the partial correlations of each pair class.

    Parameters
    ----------
    pcor
        Partial correlations over p features.
    node_class
        Class code (0..n_classes-1) of each feature, shape (p,).
    n_classes
        Number of classes.
    group
        Optional group code per feature (its gene); pairs within a group are ignored.
    n_rows
        Rows sampled (evenly spaced, deterministic).

    Returns
    -------
    numpy.ndarray
        Shape (n_classes, n_classes), symmetric; ``1.4826 * median(|pcor|)`` of each class pair
        (NaN where the class pair has no pair).
    """
    p = pcor.n_features
    rows = np.unique(np.linspace(0, p - 1, min(n_rows, p)).astype(np.int64))
    values = np.abs(pcor.rows(rows))
    mask = _pair_mask(rows, p, group, upper=False)
    scale = np.full((n_classes, n_classes), np.nan)
    pair = node_class[rows, None] * n_classes + node_class[None, :]
    for a in range(n_classes):
        for b in range(a, n_classes):
            sel = mask & ((pair == a * n_classes + b) | (pair == b * n_classes + a))
            if sel.any():
                scale[a, b] = scale[b, a] = _MAD_TO_SD * float(np.median(values[sel]))
    return scale


def bonferroni_z(alpha: float, n_pairs: int) -> float:
    """``Phi^-1(1 - alpha / (2 m))``: two-sided z cut-off with ``alpha`` expected false edges in m pairs."""
    if n_pairs <= 0:
        return float("inf")
    return float(stats.norm.isf(min(alpha / (2.0 * n_pairs), 0.5)))


def count_pairs(node_class: np.ndarray, n_classes: int, group: np.ndarray | None = None) -> np.ndarray:
    """Number of unordered node pairs in each class pair (pairs within a group excluded).

    Returns
    -------
    numpy.ndarray
        Shape (n_classes, n_classes), symmetric, int64.
    """
    sizes = np.bincount(node_class, minlength=n_classes).astype(np.int64)
    pairs = np.outer(sizes, sizes)
    pairs[np.diag_indices(n_classes)] = sizes * (sizes - 1) // 2
    if group is not None:
        # Subtract within-group pairs: counts of each (group, class) cell.
        _, g = np.unique(group, return_inverse=True)
        cell = np.zeros((g.max() + 1, n_classes), dtype=np.int64)
        np.add.at(cell, (g, node_class), 1)
        within = cell.T @ cell
        within[np.diag_indices(n_classes)] = (cell * (cell - 1) // 2).sum(axis=0)
        pairs -= within
    return pairs


def threshold_edges(
    pcor: ShrunkPartialCorrelation,
    cutoff: np.ndarray,
    node_class: np.ndarray,
    *,
    group: np.ndarray | None = None,
    block_size: int = 1024,
) -> EdgeList:
    """Keep feature pairs whose |partial correlation| reaches their class-pair cut-off.

    Rows are processed block by block; only one (block_size x p) block exists at a time.

    Parameters
    ----------
    pcor
        Partial correlations over p features.
    cutoff
        Shape (n_classes, n_classes): absolute cut-off for each class pair (``inf`` forbids it).
    node_class
        Class code of each feature, shape (p,).
    group
        Optional group code per feature; pairs within a group are never edges.
    block_size
        Rows per block.

    Returns
    -------
    EdgeList
        Upper-triangular edges with their partial correlations.
    """
    p = pcor.n_features
    found_i, found_j, found_w = [], [], []
    cutoff32 = np.asarray(cutoff, dtype=np.float32)
    for start, block in pcor.blocks(block_size=block_size):
        rows = np.arange(start, start + block.shape[0])
        limit = cutoff32[node_class[rows, None], node_class[None, :]]
        keep = np.abs(block) >= limit
        keep &= _pair_mask(rows, p, group, upper=True)
        r, c = np.nonzero(keep)
        found_i.append(rows[r])
        found_j.append(c)
        found_w.append(block[r, c])
        del block, limit, keep
    return EdgeList(
        i=np.concatenate(found_i).astype(np.int64),
        j=np.concatenate(found_j).astype(np.int64),
        weight=np.concatenate(found_w).astype(np.float64),
        n_nodes=p,
    )
