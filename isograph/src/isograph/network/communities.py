"""Splitting oversized connected components into communities (Leiden).

Connected components of a thresholded network are the natural modules when programs are
separate, but on real data a few strong shared factors (a stimulus, a batch) chain most
genes into one giant component, which carries no module structure. Components holding more
than a set fraction of the nodes are therefore partitioned by the Leiden algorithm
(``leidenalg``, modularity with |weight| edge weights, seeded), the community-detection
method single-cell and network tools use on sparse graphs.
"""

from __future__ import annotations

import numpy as np

from isograph.network.components import relabel_by_size


def _leiden(
    n_nodes: int, i: np.ndarray, j: np.ndarray, weight: np.ndarray, *, resolution: float, seed: int
) -> np.ndarray:
    import igraph
    import leidenalg

    graph = igraph.Graph(n=n_nodes, edges=np.column_stack([i, j]).tolist(), directed=False)
    graph.es["weight"] = np.abs(weight).astype(float).tolist()
    partition = leidenalg.find_partition(
        graph,
        leidenalg.RBConfigurationVertexPartition,
        weights="weight",
        resolution_parameter=resolution,
        seed=seed,
        n_iterations=-1,
    )
    return np.asarray(partition.membership, dtype=np.int64)


def split_large_components(
    labels: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    weight: np.ndarray,
    *,
    max_fraction: float,
    min_size: int = 1,
    resolution: float = 1.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Partition every component larger than ``max_fraction`` of the nodes with Leiden.

    Parameters
    ----------
    labels
        Component of each node (-1 for none), shape (n_nodes,).
    i, j, weight
        Edges and their weights, shape (n_edges,).
    max_fraction
        Components with more than ``max_fraction * n_nodes`` nodes are split; ``>= 1`` splits none.
    min_size
        Communities (and components) with fewer nodes are labelled -1.
    resolution
        Leiden resolution (RB configuration model; 1.0 is modularity).
    seed
        Leiden's seed: the same seed gives the same partition.

    Returns
    -------
    labels
        New labels numbered by decreasing size, shape (n_nodes,).
    sizes
        Sizes of the kept labels.
    n_split
        How many components were split.
    """
    labels = np.asarray(labels, dtype=np.int64)
    n_nodes = len(labels)
    sizes = np.bincount(labels[labels >= 0], minlength=1)
    large = np.flatnonzero(sizes > max_fraction * n_nodes) if max_fraction < 1 else np.zeros(0, np.int64)
    if len(large) == 0:
        return (*relabel_by_size(labels, min_size=min_size), 0)
    new = labels.copy()
    next_label = int(labels.max()) + 1
    for comp in large:  # a handful of components at most
        nodes = np.flatnonzero(labels == comp)
        local = np.full(n_nodes, -1, dtype=np.int64)
        local[nodes] = np.arange(len(nodes))
        inside = (local[i] >= 0) & (local[j] >= 0)
        membership = _leiden(
            len(nodes), local[i[inside]], local[j[inside]], weight[inside], resolution=resolution, seed=seed
        )
        new[nodes] = next_label + membership
        next_label += int(membership.max()) + 1
    relabelled, kept = relabel_by_size(new, min_size=min_size)
    return relabelled, kept, len(large)
