"""Sparse networks from many features and few samples, without dense p x p matrices.

- :func:`ledoit_wolf_shrinkage`: the Ledoit-Wolf intensity in closed form from an n x n Gram matrix.
- :class:`ShrunkPartialCorrelation`: partial correlations of the shrunk covariance through
  the Woodbury identity, produced block of rows by block of rows.
- :func:`threshold_edges`: blockwise thresholding into a sparse upper-triangular edge list.
- :func:`connected_modules`: connected components of the sparse graph, small ones dropped.
- :func:`~isograph.network.communities.split_large_components`: Leiden split of oversized
  components.
- :func:`~isograph.network.eigengenes.merge_close_modules`: WGCNA-style merge of modules whose
  eigengenes correlate closely (one eigengene routine for backends and fits).
"""

from isograph.network.components import connected_modules
from isograph.network.partial import ShrunkPartialCorrelation, ledoit_wolf_shrinkage
from isograph.network.threshold import EdgeList, empirical_null_scale, threshold_edges

__all__ = [
    "EdgeList",
    "ShrunkPartialCorrelation",
    "connected_modules",
    "empirical_null_scale",
    "ledoit_wolf_shrinkage",
    "threshold_edges",
]
