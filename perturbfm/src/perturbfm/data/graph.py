"""Gene graphs aligned to a dataset's ``var``: ``graphs/<name>.npz`` with ``adjacency`` + ``genes``.

A graph may also record its provenance in ``meta`` (a JSON string): ``source``
(``orgdb``, ``coexpression``, ``edges``, ``synthetic``...) and, for a graph computed from
cells, the ``split_hash`` whose training rows it was computed from and the ``data_hash``.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from omicsrun import InputError
from omicsrun.atomic import write_bytes


def save_graph(
    path: str | os.PathLike[str],
    adjacency: np.ndarray,
    genes: Sequence[str],
    *,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write a gene graph atomically.

    Parameters
    ----------
    path
        Target ``.npz`` file.
    adjacency
        Float array, shape (n_genes, n_genes), rows and columns in ``genes`` order.
    genes
        Gene ids, length n_genes (must equal the dataset's ``var``).
    meta
        Provenance, stored as JSON (see the module docstring).
    """
    adjacency = np.asarray(adjacency, dtype=np.float32)
    gene_ids = np.asarray([str(g) for g in genes])
    n = gene_ids.size
    if adjacency.ndim != 2 or adjacency.shape != (n, n):
        msg = f"adjacency must be [{n}, {n}] to match genes; found {adjacency.shape}"
        raise InputError(msg)
    buffer = io.BytesIO()
    np.savez(
        buffer, adjacency=adjacency, genes=gene_ids, meta=np.asarray(json.dumps(meta or {}, sort_keys=True))
    )
    return write_bytes(path, buffer.getvalue())


def load_graph(path: str | os.PathLike[str], *, var: Sequence[str] | None = None) -> np.ndarray:
    """Read a gene graph's adjacency, shape (n_genes, n_genes), float32.

    When ``var`` is given, the stored ``genes`` must equal it exactly (same ids, same order).
    """
    path = Path(path)
    if not path.is_file():
        msg = f"graph file {path} does not exist"
        raise InputError(msg)
    with np.load(path, allow_pickle=False) as handle:
        if "adjacency" not in handle.files or "genes" not in handle.files:
            msg = f"graph file {path} must hold 'adjacency' and 'genes'; found {sorted(handle.files)}"
            raise InputError(msg)
        adjacency = handle["adjacency"].astype(np.float32)
        genes = [str(g) for g in handle["genes"]]
    if var is not None and list(map(str, var)) != genes:
        msg = (
            f"graph {path.name} genes do not match the dataset var ({len(genes)} vs {len(var)} ids, or order)"
        )
        raise InputError(msg)
    return adjacency


def load_graph_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The provenance ``meta`` of a graph file (empty for a file written without it)."""
    path = Path(path)
    if not path.is_file():
        msg = f"graph file {path} does not exist"
        raise InputError(msg)
    with np.load(path, allow_pickle=False) as handle:
        if "meta" not in handle.files:
            return {}
        meta = json.loads(str(handle["meta"]))
    return dict(meta) if isinstance(meta, dict) else {}
