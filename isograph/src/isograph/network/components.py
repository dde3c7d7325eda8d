"""Modules as connected components of a sparse graph."""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph


def connected_modules(
    n_nodes: int, i: np.ndarray, j: np.ndarray, *, min_size: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Connected components, numbered by decreasing size; small ones get -1.

    Parameters
    ----------
    n_nodes
        Number of nodes.
    i, j
        Edge end points, shape (n_edges,).
    min_size
        Components with fewer nodes are labelled -1.

    Returns
    -------
    labels
        Component of each node, shape (n_nodes,): 0 is the largest; ties broken by the
        smallest node index, so the numbering is deterministic.
    sizes
        Size of components 0, 1, ..., shape (n_components_kept,).
    """
    graph = sparse.coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n_nodes, n_nodes))
    _, raw = csgraph.connected_components(graph, directed=False)
    return relabel_by_size(raw, min_size=min_size)


def relabel_by_size(raw: np.ndarray, *, min_size: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Renumber integer labels 0.. by decreasing size (ties: smallest first member); small -> -1.

    Negative input labels stay -1.

    Returns
    -------
    labels
        Shape like ``raw``.
    sizes
        Sizes of the kept labels in order.
    """
    raw = np.asarray(raw)
    valid = raw >= 0
    if not valid.any():
        return np.full(raw.shape, -1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    uniq, first, inverse, counts = np.unique(
        raw[valid], return_index=True, return_inverse=True, return_counts=True
    )
    first_node = np.flatnonzero(valid)[first]
    order = np.lexsort((first_node, -counts))
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[order] = np.arange(len(uniq))
    keep = counts[order] >= min_size
    new = rank[inverse]
    new = np.where(keep[new], new, -1)
    labels = np.full(raw.shape, -1, dtype=np.int64)
    labels[valid] = new
    return labels, counts[order][keep]
