"""``PerturbDataset``: the one object every PerturbFM stage takes, validated once.

Each row is one perturbed (or control) cell paired with a matched control expression
profile of the same context. ``delta = X_pert - X_control``. Control rows have
``is_control`` true and an empty ``pert_genes`` list.

Storage: one copy of the cells plus the pairing. ``cells`` is a (n_cells, n_genes) float
matrix, scipy CSR (sparse, e.g. log-normalised single-cell data) or dense (``numpy``
array or read-only ``numpy.memmap``); row i of the dataset is ``cells[pert_row[i]]``,
its matched control ``cells[ctrl_row[i]]``. ``X_pert``, ``X_control`` and ``delta`` are
never stored: they are views that compute the rows asked for (see :class:`RowView`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from omicsrun import InputError
from omicsrun.validate import all_finite

OBS_REQUIRED = ("pert_id", "context_id", "batch_id", "is_control", "pert_genes")
CONTROL_ID = "control"
WHICH = ("pert", "control", "delta")
# A delta passed in may differ from X_pert - X_control by float32 rounding only.
DELTA_RTOL = 1e-5
DELTA_ATOL = 1e-6
# Values per dense block (rows x genes) read at once by the blockwise accessors.
_BLOCK_VALUES = 1 << 22


def _check_matrix(name: str, value: Any, shape: tuple[int, int] | None) -> np.ndarray:
    arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    if arr.ndim != 2:
        msg = f"{name} must be a 2-D array [cells, genes]; found {arr.ndim}-D with shape {arr.shape}"
        raise InputError(msg)
    if shape is not None and arr.shape != shape:
        msg = f"{name} must have shape {shape} to match X_pert; found {arr.shape}"
        raise InputError(msg)
    if not np.issubdtype(arr.dtype, np.floating):
        msg = f"{name} must be a float array; found dtype {arr.dtype}"
        raise InputError(msg)
    return arr


def _check_cells(value: Any) -> np.ndarray | sp.csr_matrix:
    if sp.issparse(value):
        if value.ndim != 2:
            msg = f"cells must be a 2-D matrix [cells, genes]; found shape {value.shape}"
            raise InputError(msg)
        if not np.issubdtype(value.dtype, np.floating):
            msg = f"cells must hold floats; found dtype {value.dtype}"
            raise InputError(msg)
        mat = value if isinstance(value, sp.csr_matrix) else sp.csr_matrix(value)
        if not all_finite(mat.data):
            msg = "cells holds NaN or infinite values; expected finite expression"
            raise InputError(msg)
        return mat
    arr = _check_matrix("cells", value, None)
    _check_finite({"cells": arr})
    return arr


def _check_finite(arrays: Mapping[str, np.ndarray]) -> None:
    for name, arr in arrays.items():
        step = max(1, _BLOCK_VALUES // max(arr.shape[1], 1))
        for start in range(0, arr.shape[0], step):
            if not all_finite(arr[start : start + step]):
                msg = f"{name} holds NaN or infinite values; expected finite expression"
                raise InputError(msg)


def _gene_list(value: Any) -> list[str]:
    # A bare string would otherwise be split into characters by list(); NaN/None mean "none".
    if value is None or (isinstance(value, float) and value != value):
        return []
    if isinstance(value, str):
        msg = f"obs['pert_genes'] must hold lists of gene ids; found the string {value!r}"
        raise InputError(msg)
    return [str(g) for g in value]


def _gene_lists(column: Any) -> list[list[str]]:
    """``_gene_list`` of every row; lists of strings (what every reader builds) are checked
    with C-level iteration over the flattened column and kept as they are."""
    values = list(column)
    if set(map(type, values)) <= {list} and set(map(type, itertools.chain.from_iterable(values))) <= {str}:
        return values
    return [_gene_list(g) for g in values]


def _check_delta(x_pert: np.ndarray, x_ctrl: np.ndarray, delta: np.ndarray) -> None:
    """``delta`` equal to ``X_pert - X_control`` up to float32 rounding, checked in row blocks.

    The tolerance allows float32 rounding (``X_pert`` built as ``X_control + delta``, or
    float64 inputs stored as float32), not a different matrix.
    """
    step = max(1, _BLOCK_VALUES // max(x_pert.shape[1], 1))
    for start in range(0, x_pert.shape[0], step):
        rows = slice(start, start + step)
        p, c, d = x_pert[rows], x_ctrl[rows], delta[rows]
        err = np.subtract(p, c)
        err -= d
        np.abs(err, out=err)
        tol = np.abs(p)
        tol += np.abs(c)
        tol *= DELTA_RTOL
        tol += DELTA_ATOL
        off = err > tol
        if off.any():
            r, g = (int(i) for i in np.argwhere(off)[0])
            msg = (
                f"delta must equal X_pert - X_control; row {start + r}, gene {g} has delta "
                f"{float(d[r, g]):.6g} but X_pert - X_control = {float(p[r, g]) - float(c[r, g]):.6g} "
                f"({int(off.sum())} such values in rows {start}-{start + len(p) - 1})"
            )
            raise InputError(msg)


def _check_rows(name: str, value: Any, n_cells: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        msg = f"{name} must be a 1-D integer array; found dtype {arr.dtype} with shape {arr.shape}"
        raise InputError(msg)
    if arr.size and (arr.min() < 0 or arr.max() >= n_cells):
        msg = f"{name} must index the {n_cells} stored cells; found values in [{arr.min()}, {arr.max()}]"
        raise InputError(msg)
    return arr.astype(np.int64, copy=False)


class RowView:
    """``X_pert``, ``X_control`` or ``delta`` of a dataset, computed for the rows asked for.

    Indexing (``view[idx]``, ``view[idx, genes]``, slices, boolean masks) returns a dense
    ``numpy`` array of just those rows; ``numpy.asarray(view)`` materialises the whole
    matrix (n_obs x n_genes), as do array methods (``view.mean()``, ``view.copy()``...) and
    arithmetic. Code meant for large data indexes rows in blocks (or uses
    :meth:`PerturbDataset.iter_rows` / :meth:`PerturbDataset.group_moments`).
    """

    __slots__ = ("_ds", "_which")

    def __init__(self, ds: PerturbDataset, which: str) -> None:
        self._ds = ds
        self._which = which

    @property
    def shape(self) -> tuple[int, int]:
        return (self._ds.n_obs, self._ds.n_genes)

    @property
    def ndim(self) -> int:
        return 2

    @property
    def dtype(self) -> np.dtype:
        return self._ds.dtype

    def __len__(self) -> int:
        return self._ds.n_obs

    def __getitem__(self, key: Any) -> np.ndarray:
        cols: Any = None
        if isinstance(key, tuple):
            if len(key) != 2:
                msg = f"index with at most (rows, genes); found {len(key)} indices"
                raise IndexError(msg)
            key, cols = key
        scalar_row = isinstance(key, (int, np.integer))
        idx = np.arange(self._ds.n_obs)[key]
        block = self._ds.rows(np.atleast_1d(idx), self._which)
        if scalar_row:
            block = block[0]
        if cols is None:
            return block
        return block[..., cols] if scalar_row else block[:, cols]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self._ds.rows(np.arange(self._ds.n_obs), self._which)
        return out if dtype is None else out.astype(dtype, copy=False)

    def __getattr__(self, name: str) -> Any:
        # ndarray methods (copy, astype, mean, std, sum...) on the materialised matrix.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(np.asarray(self), name)

    def __repr__(self) -> str:
        return f"RowView({self._which!r}, shape={self.shape}, dtype={self.dtype})"

    def _dense(self) -> np.ndarray:
        return np.asarray(self)

    def __add__(self, other: Any) -> Any:
        return self._dense() + other

    def __radd__(self, other: Any) -> Any:
        return other + self._dense()

    def __sub__(self, other: Any) -> Any:
        return self._dense() - other

    def __rsub__(self, other: Any) -> Any:
        return other - self._dense()

    def __mul__(self, other: Any) -> Any:
        return self._dense() * other

    def __rmul__(self, other: Any) -> Any:
        return other * self._dense()

    def __truediv__(self, other: Any) -> Any:
        return self._dense() / other

    def __neg__(self) -> Any:
        return -self._dense()


# Group sums of CSR rows by one bincount when the (groups x columns) table has at most this many
# cells per stored entry of the block; else by a sparse product (the table would dominate).
_BINCOUNT_RATIO = 4


def _add_group_sums(s1: np.ndarray, s2: np.ndarray | None, rows: Any, codes: np.ndarray) -> None:
    """Add the per-group sums (and sums of squares) of CSR ``rows`` to ``s1`` (``s2``) in place.

    One ``bincount`` over the stored entries, keyed by (group, column): no sparse product and
    no sparse result to densify. Used when the (groups x columns) table is not much larger
    than the block's stored entries.
    """
    n_groups, n_cols = s1.shape
    key = np.repeat(codes * n_cols, np.diff(rows.indptr)) + rows.indices
    data = np.asarray(rows.data, dtype=np.float64)
    s1 += np.bincount(key, weights=data, minlength=n_groups * n_cols).reshape(n_groups, n_cols)
    if s2 is not None:
        s2 += np.bincount(key, weights=data * data, minlength=n_groups * n_cols).reshape(n_groups, n_cols)


def _group_sums(
    add: np.ndarray,
    codes: np.ndarray,
    add_rows: np.ndarray | None,
    n_groups: int,
    genes: np.ndarray | None,
    step: int,
) -> np.ndarray:
    """float64 sums per group of the rows of ``add``: row ``add_rows[i]`` (or ``i``) counts
    for group ``codes[i]``; ``add`` is read once, in row blocks, in its own order."""
    n_add = len(add)
    rows = np.arange(codes.size) if add_rows is None else np.asarray(add_rows, dtype=np.int64)
    weight = sp.csc_matrix((np.ones(codes.size), (codes, rows)), shape=(n_groups, n_add))
    n_cols = add.shape[1] if genes is None else genes.size
    out = np.zeros((n_groups, n_cols))
    # One float64 buffer for every block: a fresh array per block would fault in new pages
    # each time (hundreds of MB of page faults at 100k cells).
    buf = np.empty((min(step, n_add), n_cols))
    for start in range(0, n_add, step):
        stop = min(start + step, n_add)
        block = add[start:stop] if genes is None else add[start:stop][:, genes]
        np.copyto(buf[: stop - start], block)
        out += weight[:, start:stop] @ buf[: stop - start]
    return out


class PerturbDataset:
    """Paired perturbation data: one copy of the cells plus the pairing to controls.

    Two ways to build one:

    - ``PerturbDataset(X_control=..., X_pert=..., obs=..., var=..., delta=None, metadata=...)``
      with two dense (n_obs, n_genes) float matrices (the original API). They are stacked
      into ``cells`` (``X_pert`` rows, then ``X_control`` rows). A ``delta`` passed in is
      checked (``|delta - (X_pert - X_control)| <= DELTA_ATOL + DELTA_RTOL * (|X_pert| +
      |X_control|)``) and then dropped: ``delta`` is always computed from the cells.
    - ``PerturbDataset(cells=..., pert_row=..., ctrl_row=..., obs=..., var=..., metadata=...)``
      with the stored cells (scipy CSR or dense/memmap, n_cells x n_genes) and, for every
      dataset row, the cell it observes (``pert_row``) and its matched control (``ctrl_row``).
      This is how importers and :func:`perturbfm.data.artifact.load_dataset` build it; no
      dense copy is made.

    Parameters
    ----------
    obs
        One row per dataset row with ``pert_id`` (str, ``"control"`` for controls),
        ``context_id``, ``batch_id``, ``is_control`` (bool), ``pert_genes`` (list of gene
        ids; ``[]`` for controls), plus optional covariate columns (dose, time...) and ``is_ood``.
    var
        Gene identifiers, length n_genes, unique.
    metadata
        Free-form: dataset name, preprocessing, provenance of pairing.

    Data access
    -----------
    ``ds.X_pert``, ``ds.X_control``, ``ds.delta``
        :class:`RowView` objects: ``ds.delta[idx]`` computes only rows ``idx`` (dense);
        ``numpy.asarray(ds.delta)`` materialises everything (small data only).
    ``ds.rows(idx, which="pert" | "control" | "delta", genes=None, sparse=False)``
        Rows ``idx`` as a dense array (dtype of the cells; ``delta`` float32 for float32
        cells), or as CSR with ``sparse=True`` (``pert``/``control`` only).
    ``ds.iter_rows(idx=None, which=..., genes=None, block_rows=None)``
        Yields ``(start, stop, block)``: ``block`` holds rows ``idx[start:stop]``; blocks of
        about 4 M values.
    ``ds.group_moments(idx, codes, n_groups, which=..., genes=None)``
        Per-group mean, sample variance (ddof=1) and count of the rows ``idx`` grouped by
        ``codes``, accumulated blockwise (sparse products on CSR cells), float64.
    ``ds.group_means_by(idx, keys, which=...)``
        ``(sorted distinct keys, means, counts)`` for hashable keys per row.
    ``ds.cells``, ``ds.pert_row``, ``ds.ctrl_row``, ``ds.is_sparse``
        The storage itself. ``ds.subset(idx)`` shares the cells (no copy).
    """

    def __init__(
        self,
        X_control: Any = None,
        X_pert: Any = None,
        obs: pd.DataFrame | None = None,
        var: Any = None,
        delta: Any = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        cells: Any = None,
        pert_row: Any = None,
        ctrl_row: Any = None,
        _validated_obs: bool = False,
    ) -> None:
        if cells is not None:
            if X_control is not None or X_pert is not None or delta is not None:
                msg = "give either cells + pert_row + ctrl_row or X_control + X_pert, not both"
                raise InputError(msg)
            if pert_row is None or ctrl_row is None:
                msg = "cells need pert_row and ctrl_row (the observed cell and control of each row)"
                raise InputError(msg)
            cells = _check_cells(cells)
            pert_row = _check_rows("pert_row", pert_row, cells.shape[0])
            ctrl_row = _check_rows("ctrl_row", ctrl_row, cells.shape[0])
            if pert_row.shape != ctrl_row.shape:
                msg = (
                    f"pert_row and ctrl_row must have equal length; found {pert_row.size} and {ctrl_row.size}"
                )
                raise InputError(msg)
        else:
            if X_pert is None or X_control is None:
                msg = "PerturbDataset needs X_control and X_pert (or cells, pert_row and ctrl_row)"
                raise InputError(msg)
            x_pert = _check_matrix("X_pert", X_pert, None)
            x_ctrl = _check_matrix("X_control", X_control, x_pert.shape)
            arrays = {"X_pert": x_pert, "X_control": x_ctrl}
            if delta is not None:
                arrays["delta"] = _check_matrix("delta", delta, x_pert.shape)
            _check_finite(arrays)
            if delta is not None:
                _check_delta(x_pert, x_ctrl, arrays["delta"])
            n = x_pert.shape[0]
            dtype = np.result_type(x_pert.dtype, x_ctrl.dtype)
            cells = np.concatenate([np.asarray(x_pert, dtype=dtype), np.asarray(x_ctrl, dtype=dtype)])
            pert_row = np.arange(n, dtype=np.int64)
            ctrl_row = np.arange(n, 2 * n, dtype=np.int64)
        self.cells = cells
        self.pert_row = pert_row
        self.ctrl_row = ctrl_row
        shape = (int(pert_row.size), int(cells.shape[1]))
        var_list = [str(v) for v in (var if var is not None else [])]
        if len(var_list) != shape[1]:
            msg = f"var must name every gene: expected {shape[1]} ids, found {len(var_list)}"
            raise InputError(msg)
        if len(set(var_list)) != len(var_list):
            dup = pd.Index(var_list)[pd.Index(var_list).duplicated()][:3].tolist()
            msg = f"var ids must be unique; found duplicates such as {dup}"
            raise InputError(msg)
        self.var = var_list
        self.obs = obs if _validated_obs and isinstance(obs, pd.DataFrame) else _validate_obs(obs, shape[0])
        self.metadata = dict(metadata or {})

    # -- shape and storage ---------------------------------------------------------------
    @property
    def n_obs(self) -> int:
        return int(self.pert_row.size)

    @property
    def n_genes(self) -> int:
        return int(self.cells.shape[1])

    @property
    def n_cells(self) -> int:
        """Stored cells (rows of ``cells``), not dataset rows."""
        return int(self.cells.shape[0])

    @property
    def is_sparse(self) -> bool:
        return sp.issparse(self.cells)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.cells.dtype)

    @property
    def is_control(self) -> np.ndarray:
        return self.obs["is_control"].to_numpy(dtype=bool)

    @property
    def X_pert(self) -> RowView:
        return RowView(self, "pert")

    @property
    def X_control(self) -> RowView:
        return RowView(self, "control")

    @property
    def delta(self) -> RowView:
        return RowView(self, "delta")

    # -- blockwise access ----------------------------------------------------------------
    def _cell_rows(self, idx: np.ndarray, which: str) -> np.ndarray:
        if which == "pert":
            return self.pert_row[idx]
        if which == "control":
            return self.ctrl_row[idx]
        msg = f"which must be one of {WHICH}; found {which!r}"
        raise InputError(msg)

    def _gather(self, cell_rows: np.ndarray, genes: np.ndarray | None, *, sparse: bool) -> Any:
        cells = self.cells
        if sp.issparse(cells):
            block = cells[cell_rows]
            if genes is not None:
                block = block[:, genes]
            return block if sparse else block.toarray()
        block = np.asarray(cells[cell_rows])
        if genes is not None:
            block = block[:, genes]
        return sp.csr_matrix(block) if sparse else block

    def rows(self, idx: Any, which: str = "pert", *, genes: Any = None, sparse: bool = False) -> Any:
        """Rows ``idx`` of ``X_pert`` (``"pert"``), ``X_control`` (``"control"``) or ``delta``.

        Dense (n, n_genes or len(genes)) array, or CSR with ``sparse=True`` (not for delta).
        """
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        gsel = None if genes is None else np.asarray(genes, dtype=np.int64)
        if which == "delta":
            if sparse:
                msg = "delta rows are dense; ask for pert and control rows sparse instead"
                raise InputError(msg)
            out = self._gather(self.pert_row[idx], gsel, sparse=False)
            ctrl = self._gather(self.ctrl_row[idx], gsel, sparse=False)
            dtype = np.float32 if self.dtype == np.float32 else self.dtype
            return np.subtract(out, ctrl, dtype=dtype)
        return self._gather(self._cell_rows(idx, which), gsel, sparse=sparse)

    def block_rows(self, n_genes: int | None = None) -> int:
        """Rows per block so that one dense block holds about ``_BLOCK_VALUES`` values."""
        return max(1, _BLOCK_VALUES // max(n_genes if n_genes is not None else self.n_genes, 1))

    def iter_rows(
        self,
        idx: Any = None,
        which: str = "pert",
        *,
        genes: Any = None,
        block_rows: int | None = None,
        sparse: bool = False,
    ) -> Iterator[tuple[int, int, Any]]:
        """Yield ``(start, stop, rows(idx[start:stop], which))`` over ``idx`` (all rows when None)."""
        idx = np.arange(self.n_obs) if idx is None else np.asarray(idx, dtype=np.int64).reshape(-1)
        n_sel = self.n_genes if genes is None else len(genes)
        step = block_rows or self.block_rows(n_sel)
        for start in range(0, idx.size, step):
            stop = min(start + step, idx.size)
            yield start, stop, self.rows(idx[start:stop], which, genes=genes, sparse=sparse)

    def group_moments(
        self,
        idx: Any,
        codes: Any,
        n_groups: int,
        which: str = "pert",
        *,
        genes: Any = None,
        add: np.ndarray | None = None,
        add_rows: np.ndarray | None = None,
        with_var: bool = True,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean, sample variance (ddof=1, NaN for single-row groups) and count per group.

        Rows ``idx`` (n,) belong to groups ``codes`` (n,) in ``0..n_groups-1``. Sums and sums
        of squares are accumulated in float64 over row blocks; CSR cells stay sparse (for
        ``delta``, ``sum (p - c)^2 = sum p^2 - 2 sum p*c + sum c^2`` from sparse products).
        ``add`` (n, n_genes), aligned with ``idx``, is added to every row first (e.g. the
        moments of ``X_control + predicted delta``); with ``add_rows`` (n,), row i gets
        ``add[add_rows[i]]`` instead (no re-ordered copy of ``add``). ``with_var=False``
        skips the sums of squares (the variance comes back all NaN).
        """
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        codes = np.asarray(codes, dtype=np.int64).reshape(-1)
        if codes.shape != idx.shape:
            msg = f"codes must have one entry per row of idx ({idx.size}); found {codes.size}"
            raise InputError(msg)
        if add is not None and add_rows is None and len(add) != idx.size:
            msg = f"add must have one row per row of idx ({idx.size}); found {len(add)}"
            raise InputError(msg)
        gsel = None if genes is None else np.asarray(genes, dtype=np.int64)
        if gsel is not None and gsel.size == self.n_genes and np.array_equal(gsel, np.arange(self.n_genes)):
            gsel = None  # every gene in order: no column selection (a copy per block)
        n_cols = self.n_genes if gsel is None else gsel.size
        counts = np.bincount(codes, minlength=n_groups).astype(np.int64)
        if add is not None and not with_var:
            # Means only: the group sums of ``add`` are taken over its own rows in storage
            # order (no gathered, re-ordered float64 copy), those of the stored rows apart.
            mean = self.group_moments(idx, codes, n_groups, which, genes=gsel, with_var=False)[0]
            mean *= counts[:, None]
            mean += _group_sums(add, codes, add_rows, n_groups, gsel, self.block_rows(n_cols))
            with np.errstate(invalid="ignore", divide="ignore"):
                mean /= counts[:, None]
            return mean, np.full_like(mean, np.nan), counts
        s1 = np.zeros((n_groups, n_cols))
        s2 = np.zeros((n_groups, n_cols))
        sparse = self.is_sparse
        step = self.block_rows(n_cols) * (4 if sparse else 1)
        for start in range(0, idx.size, step):
            stop = min(start + step, idx.size)
            r, c = idx[start:stop], codes[start:stop]
            ind = sp.csr_matrix(
                (np.ones(r.size), (c, np.arange(r.size))), shape=(n_groups, r.size), dtype=np.float64
            )
            if add is not None:
                sel = add_rows[start:stop] if add_rows is not None else slice(start, stop)
                a = np.asarray(
                    add[sel] if gsel is None else add[np.ix_(np.arange(len(add))[sel], gsel)],
                    dtype=np.float64,
                )
                if sparse and which in ("pert", "control"):
                    b = self.rows(r, which, genes=gsel, sparse=True).astype(np.float64)
                    s1 += (ind @ b).toarray()
                    s1 += ind @ a
                    if with_var:
                        s2 += (ind @ b.multiply(b)).toarray() + 2.0 * (ind @ b.multiply(a)).toarray()
                        s2 += ind @ (a * a)
                else:
                    a += np.asarray(self.rows(r, which, genes=gsel), dtype=np.float64)
                    s1 += ind @ a
                    if with_var:
                        a *= a
                        s2 += ind @ a
            elif sparse and which in ("pert", "control"):
                b = self.rows(r, which, genes=gsel, sparse=True)
                if n_groups * n_cols <= _BINCOUNT_RATIO * b.nnz:
                    _add_group_sums(s1, s2 if with_var else None, b, c)
                else:
                    b = b.astype(np.float64)
                    s1 += (ind @ b).toarray()
                    if with_var:
                        s2 += (ind @ b.multiply(b)).toarray()
            elif sparse:
                p = self.rows(r, "pert", genes=gsel, sparse=True).astype(np.float64)
                q = self.rows(r, "control", genes=gsel, sparse=True).astype(np.float64)
                s1 += (ind @ (p - q)).toarray()
                if with_var:
                    s2 += (ind @ (p.multiply(p) - 2.0 * p.multiply(q) + q.multiply(q))).toarray()
            else:
                b = np.asarray(self.rows(r, which, genes=gsel), dtype=np.float64)
                s1 += ind @ b
                if with_var:
                    b *= b
                    s2 += ind @ b
        n = counts[:, None].astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = s1 / n
            var = (
                np.maximum((s2 - n * mean * mean) / (n - 1), 0.0) if with_var else np.full_like(mean, np.nan)
            )
        var[counts < 2] = np.nan
        return mean, var, counts

    def group_means_by(
        self, idx: Any, keys: Any, which: str = "delta"
    ) -> tuple[pd.Index, np.ndarray, np.ndarray]:
        """``(distinct keys sorted, means (n_groups, n_genes) float64, counts)`` of rows ``idx``.

        The blockwise counterpart of ``perturbfm.models.base.group_means(ds.delta[idx], keys)``.
        """
        codes, uniques = pd.factorize(pd.Series(np.asarray(keys, dtype=object)), sort=True)
        mean, _, counts = self.group_moments(idx, codes, len(uniques), which)
        return pd.Index(uniques), mean, counts

    def subset(self, idx: np.ndarray) -> PerturbDataset:
        """Rows ``idx`` as a new dataset sharing the stored cells (no expression copy)."""
        idx = np.asarray(idx, dtype=np.int64)
        return PerturbDataset(
            cells=self.cells,
            pert_row=self.pert_row[idx],
            ctrl_row=self.ctrl_row[idx],
            obs=self.obs.iloc[idx].reset_index(drop=True),
            var=self.var,
            metadata=self.metadata,
            _validated_obs=True,
        )

    def __repr__(self) -> str:
        kind = "csr" if self.is_sparse else type(self.cells).__name__
        return (
            f"PerturbDataset({self.n_obs} rows x {self.n_genes} genes; {self.n_cells} stored cells, {kind})"
        )


def _validate_obs(obs: Any, n_rows: int) -> pd.DataFrame:
    if not isinstance(obs, pd.DataFrame):
        msg = f"obs must be a pandas DataFrame; found {type(obs).__name__}"
        raise InputError(msg)
    missing = [c for c in OBS_REQUIRED if c not in obs.columns]
    if missing:
        msg = f"obs has no column {missing[0]!r}; columns are {list(map(str, obs.columns))}"
        raise InputError(msg)
    if len(obs) != n_rows:
        msg = f"obs must have one row per cell: expected {n_rows} rows, found {len(obs)}"
        raise InputError(msg)
    obs = obs.reset_index(drop=True).copy()
    for key in ("pert_id", "context_id", "batch_id"):
        if obs[key].isna().any():
            msg = f"obs[{key!r}] has {int(obs[key].isna().sum())} missing value(s)"
            raise InputError(msg)
        obs[key] = obs[key].astype(str)
    if not pd.api.types.is_bool_dtype(obs["is_control"]):
        # astype(bool) would turn the string "False" into True.
        msg = f"obs['is_control'] must be boolean; found dtype {obs['is_control'].dtype}"
        raise InputError(msg)
    obs["is_control"] = obs["is_control"].astype(bool)
    obs["pert_genes"] = _gene_lists(obs["pert_genes"])
    bad_ctrl = obs["is_control"] & (obs["pert_genes"].map(len) > 0)
    if bad_ctrl.any():
        msg = f"control rows must have empty pert_genes; found {int(bad_ctrl.sum())} that do not"
        raise InputError(msg)
    mislabelled = obs["is_control"] != (obs["pert_id"] == CONTROL_ID)
    if mislabelled.any():
        row = int(np.flatnonzero(mislabelled.to_numpy())[0])
        msg = (
            f"is_control must be true exactly where pert_id == {CONTROL_ID!r}; row {row} has "
            f"pert_id {obs['pert_id'].iloc[row]!r} and is_control {bool(obs['is_control'].iloc[row])}"
            f" ({int(mislabelled.sum())} such rows)"
        )
        raise InputError(msg)
    return obs
