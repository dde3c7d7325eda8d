"""Gene-level switch coordinates from compositional transcript usage, and log-CPM abundance.

For each gene with at least two transcripts, the usage proportions (counts plus a
pseudo-count, divided by the gene total) are mapped to centred log-ratios (CLR). The gene's
CLR block (samples x transcripts, centred over samples) has a dominant direction, its first
principal axis; a sample's switch coordinate is its projection on that axis. Orientation:
positive means higher usage of the gene's major transcript (largest mean proportion).

Everything runs over all genes at once: transcripts are sorted by gene, segment sums use
``np.add.reduceat``, and the per-gene principal axes come from batched ``eigh`` of the small
transcript x transcript cross-product matrices, with genes grouped into at most eight buckets
by transcript count (each bucket zero-padded to its largest gene).
"""

from __future__ import annotations

import numpy as np

from isograph.features.covariates import _residualize
from omicsrun import InputError

# Upper bounds of the transcript-count buckets; genes above the last one share a final bucket.
_BUCKET_EDGES = (2, 3, 4, 6, 8, 16, 32)


def switch_scores(
    transcript_counts: np.ndarray,
    transcript_gene: np.ndarray,
    *,
    pseudocount: float = 0.5,
    min_transcripts: int = 2,
    design: np.ndarray | None = None,
    library_size: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample switch coordinates of every gene with enough transcripts.

    Depth: with ``library_size`` the pseudo-count of sample j is
    ``pseudocount * library_size[j] / mean(library_size)`` (the edgeR ``prior.count``
    convention). A transcript at proportion q of a gene with expected count m per unit depth
    then has ``log(q m L_j + c L_j / Lbar) = log L_j + log(q m + c / Lbar)``: the depth term is
    common to the gene's transcripts and cancels in the CLR, so low-count transcripts no longer
    drift towards uniform usage in shallow libraries (with a fixed pseudo-count they do, and
    on a pure negative-binomial null with a 4x library range they formed a depth "module").

    Parameters
    ----------
    transcript_counts
        Counts, shape (n_transcripts, n_samples).
    transcript_gene
        Integer gene code of each transcript, shape (n_transcripts,).
    pseudocount
        Added to every count before proportions are taken.
    min_transcripts
        Genes with fewer transcripts get no coordinate.
    design
        Optional (n_samples, n_terms) array including the intercept column; when given, the CLR
        values are residualised on it before the principal axes are found, so that covariates
        cannot choose the direction.
    library_size
        Optional per-sample library size, shape (n_samples,); scales the pseudo-count (above).

    Returns
    -------
    scores
        Shape (n_samples, n_switch_genes), float64.
    gene_codes
        Gene code of each column, shape (n_switch_genes,), increasing.

    Raises
    ------
    InputError
        When ``pseudocount`` is not positive, or counts and gene codes differ in transcripts.
    """
    if not pseudocount > 0:
        msg = f"pseudocount must be > 0; found {pseudocount}"
        raise InputError(msg)
    codes = np.asarray(transcript_gene)
    if np.ndim(transcript_counts) != 2 or np.shape(transcript_counts)[0] != len(codes):
        msg = (
            f"transcript_counts must have one row per transcript ({len(codes)} gene codes); "
            f"found shape {np.shape(transcript_counts)}"
        )
        raise InputError(msg)
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    n_tx = len(sorted_codes)
    if n_tx == 0:
        return np.zeros((transcript_counts.shape[1], 0)), np.zeros(0, dtype=codes.dtype)
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    sizes = np.diff(np.r_[starts, n_tx])
    keep_gene = sizes >= min_transcripts
    keep_tx = np.repeat(keep_gene, sizes)
    order = order[keep_tx]
    sizes = sizes[keep_gene]
    gene_codes = sorted_codes[starts[keep_gene]]
    if len(sizes) == 0:
        return np.zeros((transcript_counts.shape[1], 0)), gene_codes
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    segment = np.repeat(np.arange(len(sizes)), sizes)

    prior = np.full(transcript_counts.shape[1], float(pseudocount))
    if library_size is not None:
        lib = np.asarray(library_size, dtype=np.float64)
        lib = np.where(lib > 0, lib, lib[lib > 0].mean() if (lib > 0).any() else 1.0)
        prior = pseudocount * lib / lib.mean()
    shifted = np.asarray(transcript_counts, dtype=np.float64)[order].T + prior[:, None]  # (n, T)
    logs = np.log(shifted)
    clr = logs - (np.add.reduceat(logs, starts, axis=1) / sizes)[:, segment]
    proportions = shifted / np.add.reduceat(shifted, starts, axis=1)[:, segment]
    mean_prop = proportions.mean(axis=0)
    del logs, proportions, shifted
    if design is not None:
        clr = _residualize(clr, design)
    clr -= clr.mean(axis=0)

    scores = np.empty((clr.shape[0], len(sizes)))
    bucket = np.searchsorted(np.asarray(_BUCKET_EDGES), sizes)
    padded = np.hstack([clr, np.zeros((clr.shape[0], 1))])  # column T is the zero pad
    mean_pad = np.r_[mean_prop, -np.inf]
    for b in np.unique(bucket):
        genes = np.flatnonzero(bucket == b)
        width = int(sizes[genes].max())
        offsets = np.arange(width)
        inside = offsets[None, :] < sizes[genes, None]
        index = np.where(inside, starts[genes, None] + offsets[None, :], clr.shape[1])  # (g, width)
        scores[:, genes] = _leading_projection(padded, index, mean_pad[index])
    return scores, gene_codes


def _leading_projection(padded: np.ndarray, index: np.ndarray, mean_prop: np.ndarray) -> np.ndarray:
    block = padded[:, index].transpose(1, 0, 2)  # (g, n, width)
    cross = block.transpose(0, 2, 1) @ block  # (g, width, width)
    _, vectors = np.linalg.eigh(cross)
    axis = vectors[:, :, -1]  # (g, width), eigenvalues ascend
    major = np.argmax(mean_prop, axis=1)
    sign = np.sign(axis[np.arange(len(axis)), major])
    axis *= np.where(sign == 0, 1.0, sign)[:, None]
    return np.einsum("gnw,gw->ng", block, axis)


def log_cpm(gene_counts: np.ndarray, *, prior_count: float = 2.0) -> np.ndarray:
    """Gene abundance as log2 counts per million (edgeR ``cpm(log=TRUE)`` convention).

    The prior count is scaled by each library's size relative to the mean library size, and
    twice the scaled prior is added to the library size.

    Parameters
    ----------
    gene_counts
        Counts, shape (n_genes, n_samples).
    prior_count
        Average count added to every gene before the log.

    Returns
    -------
    numpy.ndarray
        log2-CPM, shape (n_samples, n_genes), float64.

    Raises
    ------
    InputError
        When ``prior_count`` is not positive.
    """
    if not prior_count > 0:
        msg = f"prior_count must be > 0; found {prior_count}"
        raise InputError(msg)
    counts = np.asarray(gene_counts, dtype=np.float64)
    library = counts.sum(axis=0)
    library = np.where(library > 0, library, 1.0)
    prior = prior_count * library / library.mean()
    return np.log2((counts + prior) / (library + 2 * prior) * 1e6).T
