"""Array operations of an import: transcript -> gene mapping, expression filter, gene sums.

Private-style helpers: callers (``isograph.io.importers``) validate inputs first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from isograph.io.tables import strip_version

#: The documented rule for matching count-table ids to the transcript-to-gene table.
MAPPING_RULE = (
    "exact transcript id first; ids still unmatched are matched with the version suffix removed "
    "(ENST00000456328.2 -> ENST00000456328) on both sides when that unversioned id is unique in the map; "
    "transcripts left without a gene are dropped"
)
#: The documented expression filter.
FILTER_RULE = "a transcript is kept when its count is >= min_count in at least min_samples samples"


@dataclass(frozen=True)
class GeneMapping:
    """Gene of each transcript and how it was found.

    Attributes
    ----------
    gene_ids : np.ndarray of object, (n_transcripts,)
        Gene id, ``None`` where the transcript has no gene.
    n_exact, n_unversioned, n_unmapped : int
    """

    gene_ids: np.ndarray
    n_exact: int
    n_unversioned: int
    n_unmapped: int


def map_transcripts(transcript_ids: pd.Index, tx2gene: pd.DataFrame) -> GeneMapping:
    """Map transcript ids to genes by :data:`MAPPING_RULE`.

    Parameters
    ----------
    transcript_ids : pd.Index, (n_transcripts,)
    tx2gene : pd.DataFrame
        ``transcript_id`` (unique) and ``gene_id`` (non-empty) columns.
    """
    map_ids = pd.Index(tx2gene["transcript_id"].astype(str))
    map_genes = tx2gene["gene_id"].astype(str).to_numpy(dtype=object)
    pos = map_ids.get_indexer(transcript_ids)
    n_exact = int((pos >= 0).sum())
    todo = np.flatnonzero(pos < 0)
    n_unversioned = 0
    if len(todo):
        keys = strip_version(map_ids)
        unique = ~keys.duplicated(keep=False)
        key_index = pd.Index(keys[unique])
        key_pos = np.flatnonzero(unique)
        hit = key_index.get_indexer(strip_version(transcript_ids[todo]))
        found = hit >= 0
        pos[todo[found]] = key_pos[hit[found]]
        n_unversioned = int(found.sum())
    genes = np.full(len(transcript_ids), None, dtype=object)
    genes[pos >= 0] = map_genes[pos[pos >= 0]]
    return GeneMapping(
        gene_ids=genes,
        n_exact=n_exact,
        n_unversioned=n_unversioned,
        n_unmapped=int((pos < 0).sum()),
    )


def expressed(counts: np.ndarray, *, min_count: float, min_samples: int) -> np.ndarray:
    """Boolean mask, (n_transcripts,): count >= ``min_count`` in >= ``min_samples`` samples."""
    return np.count_nonzero(counts >= min_count, axis=1) >= min_samples


def sum_by_group(counts: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Sum rows of ``counts`` (n_rows, n_samples) into ``n_groups`` groups.

    ``codes`` (n_rows,) holds each row's group, -1 for rows that belong to none. Sums are
    accumulated in float64 and returned as float32, shape (n_groups, n_samples).
    """
    rows = np.flatnonzero(codes >= 0)
    indicator = sp.csr_matrix(
        (np.ones(len(rows)), (codes[rows], rows)), shape=(n_groups, counts.shape[0]), dtype=np.float64
    )
    return np.asarray(indicator @ counts.astype(np.float64, copy=False), dtype=np.float32)
