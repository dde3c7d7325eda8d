"""Module eigengenes and WGCNA-style merging of modules that are one program.

The eigengene of a module is the first principal component of its standardised members
(sign chosen to correlate positively with the members' mean). Two modules whose eigengenes
correlate at ``1 - cut_height`` or more describe one program and are merged, as WGCNA's
``mergeCloseModules`` does (average linkage on ``1 - r``, cut at ``mergeCutHeight``; 0.15
by default there and here), repeated until no pair is that close.
"""

from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from isograph.network.components import relabel_by_size


def standardize(values: np.ndarray) -> np.ndarray:
    """Columns centred and scaled to unit variance (constant columns only centred)."""
    centred = values - values.mean(axis=0)
    scale = centred.std(axis=0)
    return centred / np.where(scale > 0, scale, 1.0)


def eigengene_matrix(z: np.ndarray, labels: np.ndarray, label_values: np.ndarray) -> np.ndarray:
    """First principal component of each module, standardised.

    Parameters
    ----------
    z
        Standardised features, shape (n_samples, n_features).
    labels
        Module of each feature, shape (n_features,).
    label_values
        Modules to summarise, shape (n_modules,) (one SVD per module, not per gene).

    Returns
    -------
    numpy.ndarray
        Shape (n_samples, n_modules); each column has mean 0 and variance 1.
    """
    out = np.zeros((z.shape[0], len(label_values)))
    for k, module in enumerate(label_values):
        block = z[:, labels == module]
        u, s, _ = np.linalg.svd(block, full_matrices=False)
        pc = u[:, 0] * s[0]
        out[:, k] = -pc if pc @ block.mean(axis=1) < 0 else pc
    return standardize(out)


def merge_close_modules(
    z: np.ndarray, labels: np.ndarray, *, cut_height: float, max_rounds: int = 10
) -> tuple[np.ndarray, int]:
    """Merge modules whose eigengenes correlate at ``1 - cut_height`` or more.

    Parameters
    ----------
    z
        Standardised features, shape (n_samples, n_features).
    labels
        Module of each feature (-1 for none), shape (n_features,).
    cut_height
        Average-linkage height on ``1 - r`` at which the module tree is cut; 0 merges nothing.

    Returns
    -------
    labels
        Merged labels numbered by decreasing size (-1 kept), shape (n_features,).
    n_merged
        How many modules disappeared into others.
    """
    labels = np.asarray(labels, dtype=np.int64)
    n_before = len(np.unique(labels[labels >= 0]))
    if cut_height <= 0:
        return labels, 0
    for _ in range(max_rounds):
        values = np.unique(labels[labels >= 0])
        if len(values) < 2:
            break
        r = np.corrcoef(eigengene_matrix(z, labels, values).T)
        dissimilarity = np.clip(1.0 - r, 0.0, 2.0)
        np.fill_diagonal(dissimilarity, 0.0)
        tree = linkage(squareform(dissimilarity, checks=False), method="average")
        cluster = fcluster(tree, t=cut_height, criterion="distance")
        if len(np.unique(cluster)) == len(values):
            break
        lookup = np.full(labels.max() + 1, -1, dtype=np.int64)
        lookup[values] = cluster
        labels = np.where(labels >= 0, lookup[np.maximum(labels, 0)], -1)
    merged, _ = relabel_by_size(labels)
    return merged, n_before - len(np.unique(merged[merged >= 0]))


def merge_gene_modules(
    matrix: np.ndarray, gene_label: np.ndarray, group: np.ndarray, *, cut_height: float, min_size: int
) -> tuple[np.ndarray, int]:
    """:func:`merge_close_modules` for gene labels: merged on the features, returned per gene.

    Parameters
    ----------
    matrix
        Features, shape (n_samples, n_features) (standardised here).
    gene_label
        Module of each gene (-1 for none), shape (n_genes,).
    group
        Gene index of each feature, shape (n_features,).
    cut_height, min_size
        Merge height; modules smaller than ``min_size`` genes afterwards are dropped.

    Returns
    -------
    labels
        Merged gene labels numbered by decreasing size, shape (n_genes,).
    n_merged
        How many modules disappeared into others.
    """
    if cut_height <= 0 or gene_label.max(initial=-1) < 1:
        return gene_label, 0
    merged, n_merged = merge_close_modules(
        standardize(np.asarray(matrix, dtype=np.float64)), gene_label[group], cut_height=cut_height
    )
    raw = np.full(len(gene_label), -1, dtype=np.int64)
    raw[group] = merged
    labels, _ = relabel_by_size(raw, min_size=min_size)
    return labels, n_merged
