"""Modules from a trained VAE (numpy only; no torch here).

Two inference rules, both measured on ``core_v1``/``scale_v1``/``multiplex_v1`` (see the
README's VAE section for the table):

``decoded`` (default): the model-implied covariance of the decoded signal,
``c_fg = cov(D_f, D_g)`` with ``D = decoder(encoder_mean(X))`` and X standardised, i.e. the
Pearson correlation of the decoded signals times the square roots of the two features'
explained variances. Plain Pearson correlation of decoded signals is near +-1 for every pair
(the decoded signal has rank <= k), so background features would look as connected as
module members; weighting by explained variance keeps the VAE's denoising and removes that
artefact. Pairs are then thresholded exactly as the baseline thresholds partial
correlations (robust null scale per pair class, Bonferroni bound ``alpha`` on the expected
number of false edges), and modules are the connected components, oversized ones split by
Leiden and near-identical ones merged.

``loadings``: each feature goes to the latent dimension with the largest root-mean-square
decoder Jacobian ``sqrt(mean_i (dD_f/dz_j)^2)`` (a quadratic response has zero mean slope
but a large RMS one), when its explained variance stands out from the bulk. It needs the
latent axes to be one program each, which a VAE does not guarantee (its axes are rotated
mixtures of programs): on ``core_v1/standard`` it scores more than 0.2 F_rr below ``decoded``
(tested). A third rule was measured and not kept: similarity of the features' decoder
Jacobian directions (which would join a gene that follows a program through a sigmoid with
one that follows it through a quadratic) reached only F_rr 0.35 on ``core_v1/nonlinear``,
against 0.66 for ``decoded``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy import stats

from isograph.network.components import relabel_by_size


class DecodedCovariance:
    """Implied covariances of the decoded signal, produced a block of rows at a time.

    Same interface as :class:`isograph.network.ShrunkPartialCorrelation` (``n_features``,
    ``rows``, ``blocks``), so the baseline's blockwise thresholding applies unchanged and no
    p x p matrix is held.

    Parameters
    ----------
    decoded
        Decoded signal, shape (n_samples, n_features), in the units of the standardised input.
    """

    def __init__(self, decoded: np.ndarray) -> None:
        centred = np.asarray(decoded, dtype=np.float64)
        centred = centred - centred.mean(axis=0)
        self._d = (centred / np.sqrt(centred.shape[0])).astype(np.float32)

    @property
    def n_features(self) -> int:
        return int(self._d.shape[1])

    def rows(self, rows: np.ndarray | slice) -> np.ndarray:
        """Covariances of some features with all, shape (b, n_features); the diagonal is 1."""
        block = self._d[:, rows].T @ self._d
        index = np.arange(self.n_features)[rows]
        block[np.arange(len(index)), index] = 1.0
        return block

    def blocks(self, *, block_size: int = 1024) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(start, rows(slice(start, start + block_size)))`` over all features."""
        for start in range(0, self.n_features, block_size):
            yield start, self.rows(slice(start, min(start + block_size, self.n_features)))


def explained_variance(x: np.ndarray, decoded: np.ndarray) -> np.ndarray:
    """``1 - var(x - D) / var(x)`` per feature, shape (n_features,)."""
    resid = np.asarray(x, dtype=np.float64) - np.asarray(decoded, dtype=np.float64)
    var_x = np.asarray(x, dtype=np.float64).var(axis=0)
    return 1.0 - resid.var(axis=0) / np.where(var_x > 0, var_x, 1.0)


def loading_modules(
    loadings: np.ndarray, r2: np.ndarray, group: np.ndarray, n_genes: int, *, alpha: float, min_size: int
) -> np.ndarray:
    """Gene labels from decoder loadings (the ``loadings`` rule of the module docstring).

    Parameters
    ----------
    loadings
        RMS decoder Jacobian, shape (n_features, n_active_latent).
    r2
        Explained variance per feature, shape (n_features,).
    group
        Gene code of each feature, shape (n_features,).
    n_genes
        Number of genes.
    alpha
        Expected number of background features let in (robust z cut-off on r2).
    min_size
        Smaller modules are unassigned.

    Returns
    -------
    numpy.ndarray
        Module label per gene (-1 unassigned), numbered by decreasing size, shape (n_genes,).
    """
    median = float(np.median(r2))
    scale = 1.482602218505602 * float(np.median(np.abs(r2 - median)))
    cut = median + float(stats.norm.isf(min(alpha / max(len(r2), 1), 0.5))) * max(scale, 1e-12)
    best = np.argmax(np.abs(loadings), axis=1)
    strength = np.abs(loadings)[np.arange(len(best)), best] * (r2 >= cut)
    raw = np.full(n_genes, -1, dtype=np.int64)
    order = np.lexsort((-strength, group))  # per gene, its strongest feature first
    first = order[np.r_[True, group[order][1:] != group[order][:-1]]]
    kept = first[strength[first] > 0]
    raw[group[kept]] = best[kept]
    labels, _ = relabel_by_size(raw, min_size=min_size)
    return labels


def module_latent_dims(
    loadings: np.ndarray, feature_label: np.ndarray, n_modules: int, active_dims: np.ndarray
) -> list[int]:
    """Latent dimension driving each module: the largest mean RMS loading over its features.

    Returns
    -------
    list of int
        Index into the full latent space for modules 0..n_modules-1.
    """
    out = []
    for module in range(n_modules):  # one step per module, not per gene
        members = feature_label == module
        mean_load = np.abs(loadings[members]).mean(axis=0) if members.any() else np.zeros(len(active_dims))
        out.append(int(active_dims[int(np.argmax(mean_load))]) if len(active_dims) else -1)
    return out


def split_components_by_programs(
    matrix: np.ndarray,
    comp: np.ndarray,
    strength: np.ndarray,
    *,
    min_size: int,
    n_null: int,
    fdr: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Split every decoded-network component that holds more than one program.

    A decoder maps all features through one shared latent space, so the decoded covariance
    joins features of different programs that share a latent direction, and the network
    chains them into one component (``multiplex_hard``: 13 planted programs in one module,
    F_rr 0.05). Each component of at least ``2 * min_size`` features is therefore tested on
    the *measured* features (not the decoded ones, which have the decoder's rank) with the
    permutation null of :func:`isograph.network.programs.decompose_programs`: when more than
    one factor beats the null, the component is replaced by its programs (features no
    supported factor explains leave it); otherwise it is kept whole.

    Parameters
    ----------
    matrix
        Measured features, shape (n_samples, n_features).
    comp
        Component of each feature (-1: none), shape (n_features,).
    strength
        Edge strength of each feature, shape (n_features,).
    min_size, n_null, fdr, seed
        Smallest module; permutations, membership FDR and seed of the null.

    Returns
    -------
    tuple
        ``(comp, strength, n_split)``: new component labels and strengths (communality for
        features placed by a split) and how many components were split.
    """
    from isograph.network.programs import decompose_programs

    comp = comp.copy()
    strength = np.asarray(strength, dtype=np.float64).copy()
    sizes = np.bincount(comp[comp >= 0], minlength=1)
    next_label = int(comp.max(initial=-1)) + 1
    n_split = 0
    for c in np.flatnonzero(sizes >= 2 * min_size):
        members = np.flatnonzero(comp == c)
        found = decompose_programs(np.asarray(matrix)[:, members], n_null=n_null, fdr=fdr, seed=seed)
        if found.n_factors < 2:
            continue
        n_split += 1
        placed = found.labels >= 0
        comp[members] = np.where(placed, found.labels + next_label, -1)
        strength[members] = found.communality
        next_label += int(found.labels.max(initial=-1)) + 1
    return comp, strength, n_split
