"""Dataset artifacts on disk: one copy of the cells, the pairing, and ``meta.json``.

Layout of an artifact folder (format ``perturbfm-dataset``, version 2)::

    meta.json            format, format_version, storage ("csr" | "dense"), n_obs, n_genes,
                         n_cells, obs, var, metadata, content_hash, meta_digest, checksums
    cells.data.npy       CSR values (float32 [nnz])                        (storage "csr")
    cells.indices.npy    CSR gene columns (int32 [nnz])
    cells.indptr.npy     CSR row pointers (int64 [n_cells + 1])
    cells.npy            dense float32 [n_cells, n_genes]                  (storage "dense")
    pert_row.npy         int64 [n_obs]: the stored cell each dataset row observes
    ctrl_row.npy         int64 [n_obs]: the stored cell of its matched control
    obs_idx.npy          int64 [n_obs]: the row of each cell in its source (h5ad row)
    graphs/<name>.npz    optional gene graphs aligned to ``var`` (see :mod:`perturbfm.data.graph`)

Every ``.npy`` file is opened with ``np.load(mmap_mode="r")``: nothing is read whole, and
no dense ``X_control`` / ``X_pert`` / ``delta`` copy exists on disk (``delta`` is computed
by row blocks when asked for). Version 1 folders (``data.npz`` or ``X_control.npy``,
``X_pert.npy``, ``delta.npy``) are still read.

``obs`` is stored column by column (``obs.columns`` gives the order, ``obs.dtypes`` the
kind of each column: ``bool``, ``int``, ``float``, ``str`` or ``list`` for ``pert_genes``).
``obs_idx`` comes back as the ``obs_idx`` column of ``obs``.

Content hash (:func:`dataset_hash`): SHA-256 over the canonical JSON of the content
(format name, ``format_version`` 1, n_obs, n_genes, obs, var, metadata) and the float32
bytes of ``X_control``, ``X_pert``, ``delta`` and the int64 ``obs_idx``, fed row block by
row block. This is the version-1 digest, so artifacts and frozen splits made before the
storage changed keep their hash. It is computed once, when the artifact is written, and
stored as ``content_hash``; later reads verify it cheaply: ``meta_digest`` (SHA-256 of that
canonical JSON) and ``checksums`` (SHA-256 of every stored ``.npy`` file, i.e. of the
compact sparse bytes) must match, else the artifact was modified and is refused.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from omicsrun import InputError
from omicsrun.atomic import output_dir, write_json
from omicsrun.hashing import canonical_json, sha256_file, sha256_file_async
from omicsrun.readers import load_npz, read_json_object
from omicsrun.validate import check_type
from perturbfm.data.dataset import PerturbDataset
from perturbfm.data.graph import save_graph

FORMAT_NAME = "perturbfm-dataset"
FORMAT_VERSION = 2
# The content hash is defined as in format version 1 (see the module docstring).
HASH_FORMAT_VERSION = 1
ARRAY_KEYS = ("X_control", "X_pert", "delta", "obs_idx")
STORAGES = ("auto", "csr", "dense")
# Dense cells with at most this share of non-zeros are stored as CSR by storage="auto".
CSR_MAX_DENSITY = 0.3
_ROW_BLOCK = 16384


def _column_kind(name: str, col: pd.Series) -> str:
    if name == "pert_genes":
        return "list"
    if pd.api.types.is_bool_dtype(col):
        return "bool"
    if pd.api.types.is_integer_dtype(col):
        return "int"
    if pd.api.types.is_float_dtype(col):
        return "float"
    return "str"


def _obs_to_json(obs: pd.DataFrame) -> dict[str, Any]:
    columns = [str(c) for c in obs.columns if c != "obs_idx"]
    kinds = {c: _column_kind(c, obs[c]) for c in columns}
    data: dict[str, list[Any]] = {}
    for c in columns:
        col = obs[c]
        if kinds[c] == "list":
            data[c] = [list(v) for v in col]
        elif kinds[c] == "bool":
            data[c] = col.to_numpy(dtype=bool).tolist()
        elif kinds[c] == "int":
            data[c] = col.to_numpy(dtype=np.int64).tolist()
        elif kinds[c] == "float":
            data[c] = col.to_numpy(dtype=np.float64).tolist()
        else:
            data[c] = [None if pd.isna(v) else str(v) for v in col.astype(object)]
    return {"columns": columns, "dtypes": kinds, "data": data}


def _obs_from_json(table: dict[str, Any], obs_idx: np.ndarray) -> pd.DataFrame:
    out: dict[str, Any] = {}
    for c in table["columns"]:
        kind = table["dtypes"][c]
        values = table["data"][c]
        if kind == "bool":
            out[c] = np.asarray(values, dtype=bool)
        elif kind == "int":
            out[c] = np.asarray(values, dtype=np.int64)
        elif kind == "float":
            out[c] = np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
        elif kind == "list":
            out[c] = pd.Series(values, dtype=object)  # JSON arrays are new lists already
        else:
            out[c] = pd.Series(values, dtype=object)
    obs = pd.DataFrame(out)
    obs["obs_idx"] = np.asarray(obs_idx, dtype=np.int64)
    return obs


def _obs_idx(ds: PerturbDataset) -> np.ndarray:
    if "obs_idx" in ds.obs.columns:
        return ds.obs["obs_idx"].to_numpy(dtype=np.int64)
    return np.arange(ds.n_obs, dtype=np.int64)


def _content_view(meta: dict[str, Any]) -> dict[str, Any]:
    """The part of ``meta.json`` the content hash covers, as format version 1 wrote it."""
    return {
        "format": FORMAT_NAME,
        "format_version": HASH_FORMAT_VERSION,
        "n_obs": meta["n_obs"],
        "n_genes": meta["n_genes"],
        "obs": meta["obs"],
        "var": meta["var"],
        "metadata": meta.get("metadata", {}),
    }


def _choose_storage(ds: PerturbDataset, storage: str) -> str:
    if storage not in STORAGES:
        msg = f"storage must be one of {STORAGES}; found {storage!r}"
        raise InputError(msg)
    if storage != "auto":
        return storage
    if ds.is_sparse:
        return "csr"
    cells = ds.cells
    step = max(1, (1 << 22) // max(ds.n_genes, 1))
    nnz = sum(int(np.count_nonzero(cells[s : s + step])) for s in range(0, ds.n_cells, step))
    return "csr" if nnz <= CSR_MAX_DENSITY * max(ds.n_cells * ds.n_genes, 1) else "dense"


def _used_cells(ds: PerturbDataset) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Stored cells the rows use (None: all of them) and the row pointers renumbered to them."""
    used = np.unique(np.concatenate([ds.pert_row, ds.ctrl_row]))
    if used.size == ds.n_cells:
        return None, ds.pert_row, ds.ctrl_row
    return used, np.searchsorted(used, ds.pert_row), np.searchsorted(used, ds.ctrl_row)


def _block(start: int, step: int, n_rows: int, used: np.ndarray | None) -> np.ndarray:
    return np.arange(start, min(start + step, n_rows)) if used is None else used[start : start + step]


def _write_cells(tmp: Path, ds: PerturbDataset, storage: str, used: np.ndarray | None) -> None:
    cells = ds.cells
    n_rows = ds.n_cells if used is None else used.size
    step = max(1, (1 << 22) // max(ds.n_genes, 1))
    if storage == "dense":
        shape = (n_rows, ds.n_genes)
        out = np.lib.format.open_memmap(tmp / "cells.npy", mode="w+", dtype=np.float32, shape=shape)
        for start in range(0, n_rows, step):
            rows = _block(start, step, n_rows, used)
            block = cells[rows]
            out[start : start + rows.size] = block.toarray() if sp.issparse(block) else block
        out.flush()
        del out
        return
    parts_data, parts_idx, counts = [], [], [np.zeros(1, dtype=np.int64)]
    for start in range(0, n_rows, step * 8):
        rows = _block(start, step * 8, n_rows, used)
        block = cells[rows]
        block = sp.csr_matrix(block if sp.issparse(block) else np.asarray(block), dtype=np.float32)
        block.sum_duplicates()
        block.eliminate_zeros()
        parts_data.append(block.data.astype(np.float32, copy=False))
        parts_idx.append(block.indices.astype(np.int32, copy=False))
        counts.append(np.diff(block.indptr).astype(np.int64))
    np.save(tmp / "cells.data.npy", np.concatenate(parts_data) if parts_data else np.zeros(0, np.float32))
    np.save(tmp / "cells.indices.npy", np.concatenate(parts_idx) if parts_idx else np.zeros(0, np.int32))
    np.save(tmp / "cells.indptr.npy", np.cumsum(np.concatenate(counts)))


def _stored_files(storage: str) -> tuple[str, ...]:
    csr = ("cells.data.npy", "cells.indices.npy", "cells.indptr.npy")
    return (*(csr if storage == "csr" else ("cells.npy",)), "pert_row.npy", "ctrl_row.npy", "obs_idx.npy")


def save_dataset(
    ds: PerturbDataset,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    memmap: bool = False,
    storage: str = "auto",
    graphs: dict[str, np.ndarray] | None = None,
    progress: bool = False,
) -> Path:
    """Write ``ds`` as an artifact folder (format version 2), atomically.

    Parameters
    ----------
    ds
        The dataset; its cells are written once, as float32, plus the pairing.
    path
        Folder to create. An existing non-empty folder is refused unless ``overwrite``.
    overwrite
        Replace an existing artifact.
    memmap
        Kept for compatibility: every version-2 file is memory-mappable.
    storage
        ``"csr"`` (sparse), ``"dense"``, or ``"auto"``: CSR when the cells are sparse or
        at most ``CSR_MAX_DENSITY`` of their values are non-zero.
    graphs
        Optional gene graphs, name -> adjacency [G, G] aligned to ``ds.var``; written to
        ``graphs/<name>.npz``.
    progress
        Show a progress bar while the content hash is computed.

    Returns
    -------
    Path
        The artifact folder. Its content hash is computed here, from the written files,
        and stored in ``meta.json``.
    """
    del memmap  # every stored file is an .npy readable with mmap_mode="r"
    if not isinstance(ds, PerturbDataset):
        msg = f"save_dataset expects a PerturbDataset; found {type(ds).__name__}"
        raise InputError(msg)
    kind = _choose_storage(ds, storage)
    obs_idx = _obs_idx(ds)
    with output_dir(path, overwrite=overwrite, what="dataset") as tmp:
        used, pert_row, ctrl_row = _used_cells(ds)
        _write_cells(tmp, ds, kind, used)
        np.save(tmp / "pert_row.npy", pert_row.astype(np.int64))
        np.save(tmp / "ctrl_row.npy", ctrl_row.astype(np.int64))
        np.save(tmp / "obs_idx.npy", obs_idx)
        for name, adjacency in (graphs or {}).items():
            save_graph(tmp / "graphs" / f"{name}.npz", adjacency, ds.var)
        meta: dict[str, Any] = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "storage": kind,
            "n_obs": ds.n_obs,
            "n_genes": ds.n_genes,
            "n_cells": int(ds.n_cells if used is None else used.size),
            "obs": _obs_to_json(ds.obs),
            "var": list(ds.var),
            "metadata": dict(ds.metadata),
        }
        write_json(tmp / "meta.json", meta)
        # Hash what was written (read back), so a re-saved artifact hashes alike.
        meta = read_json_object(tmp / "meta.json", what="dataset metadata")
        stored = _open_v2(tmp, meta)
        view = canonical_json(_content_view(meta))
        meta["content_hash"] = _content_digest(view, stored, progress=progress)
        meta["meta_digest"] = hashlib.sha256(view.encode()).hexdigest()
        meta["checksums"] = {name: sha256_file(tmp / name) for name in _stored_files(kind)}
        del stored
        write_json(tmp / "meta.json", meta)
    return Path(path)


def _read_meta(path: Path) -> dict[str, Any]:
    meta_path = path / "meta.json"
    if not path.is_dir():
        msg = f"dataset folder {path} does not exist; expected a folder written by save_dataset"
        raise InputError(msg)
    if not meta_path.is_file():
        msg = f"dataset folder {path} has no meta.json; expected a PerturbFM dataset artifact"
        raise InputError(msg)
    meta = read_json_object(meta_path, what="dataset metadata")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        msg = f"{meta_path} has format {found!r}; expected {FORMAT_NAME!r}"
        raise InputError(msg)
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        msg = f"{meta_path} has format_version {version!r}; this PerturbFM reads versions <= {FORMAT_VERSION}"
        raise InputError(msg)
    _check_meta_types(meta_path, meta)
    return meta


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """An artifact's ``meta.json``, checked (an :class:`InputError` when ``path`` is none)."""
    return _read_meta(Path(path))


def _check_meta_types(meta_path: Path, meta: dict[str, Any]) -> None:
    """Fields the loader uses have their JSON types (a wrong type is one line, not a crash)."""
    where = f"{meta_path}:"
    if meta["format_version"] >= 2:
        if meta.get("storage") not in ("csr", "dense"):
            msg = f"{where} 'storage' must be 'csr' or 'dense'; found {meta.get('storage')!r:.80}"
            raise InputError(msg)
        for key in ("n_obs", "n_genes", "n_cells"):
            value = meta.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                msg = f"{where} {key!r} must be a non-negative integer; found {value!r:.80}"
                raise InputError(msg)
    elif meta.get("storage", "npz") not in ("npz", "npy"):
        msg = f"{where} 'storage' must be 'npz' or 'npy'; found {meta.get('storage')!r:.80}"
        raise InputError(msg)
    check_type(meta.get("var"), f"{where} 'var'", list, "a list of gene names")
    if not all(isinstance(g, str) for g in meta["var"]):
        msg = f"{where} 'var' must be a list of gene name strings"
        raise InputError(msg)
    check_type(meta.get("obs"), f"{where} 'obs'", dict, "a JSON object (the obs table)")
    check_type(meta.get("metadata", {}), f"{where} 'metadata'", dict, "a JSON object")


def _open_v1_arrays(path: Path, meta: dict[str, Any]) -> dict[str, np.ndarray]:
    storage = meta.get("storage", "npz")
    if storage == "npy":
        missing = [k for k in ARRAY_KEYS if not (path / f"{k}.npy").is_file()]
        if missing:
            msg = f"dataset folder {path} (storage npy) lacks {missing[0]}.npy"
            raise InputError(msg)
        return {k: np.load(path / f"{k}.npy", mmap_mode="r") for k in ARRAY_KEYS}
    npz = path / "data.npz"
    if not npz.is_file():
        msg = f"dataset folder {path} has no data.npz (storage {storage!r})"
        raise InputError(msg)
    arrays = load_npz(npz, what="dataset arrays", required=tuple(ARRAY_KEYS))
    return {k: arrays[k] for k in ARRAY_KEYS}


def _load_npy(path: Path, name: str) -> np.ndarray:
    file = path / name
    if not file.is_file():
        msg = f"dataset folder {path} lacks {name}; the artifact is incomplete"
        raise InputError(msg)
    try:
        return np.load(file, mmap_mode="r")
    except (OSError, ValueError) as err:
        msg = f"cannot read {file} ({type(err).__name__}: {err})"
        raise InputError(msg) from None


def _open_v2(path: Path, meta: dict[str, Any]) -> PerturbDataset:
    """The stored cells and pairing as a dataset (memory-mapped; obs/var from ``meta``)."""
    storage = meta.get("storage")
    n_obs, n_genes, n_cells = int(meta["n_obs"]), int(meta["n_genes"]), int(meta["n_cells"])
    cells: Any
    if storage == "csr":
        data = _load_npy(path, "cells.data.npy")
        indices = _load_npy(path, "cells.indices.npy")
        indptr = _load_npy(path, "cells.indptr.npy")
        if indptr.shape != (n_cells + 1,) or data.shape != indices.shape or int(indptr[-1]) != data.size:
            msg = f"dataset folder {path}: CSR arrays disagree with each other or with n_cells={n_cells}"
            raise InputError(msg)
        cells = sp.csr_matrix((data, indices, indptr), shape=(n_cells, n_genes))
    elif storage == "dense":
        cells = _load_npy(path, "cells.npy")
        if cells.shape != (n_cells, n_genes):
            msg = f"{path / 'cells.npy'} has shape {cells.shape}; expected {(n_cells, n_genes)}"
            raise InputError(msg)
    else:
        msg = f"{path / 'meta.json'} has storage {storage!r}; expected 'csr' or 'dense'"
        raise InputError(msg)
    keys = ("pert_row", "ctrl_row", "obs_idx")
    rows = {k: np.asarray(_load_npy(path, f"{k}.npy"), dtype=np.int64) for k in keys}
    bad = [k for k, v in rows.items() if v.shape != (n_obs,)]
    if bad:
        msg = f"{path / (bad[0] + '.npy')} has shape {rows[bad[0]].shape}; expected ({n_obs},)"
        raise InputError(msg)
    try:
        obs = _obs_from_json(meta["obs"], rows["obs_idx"])
    except (KeyError, TypeError, ValueError) as err:
        msg = f"{path / 'meta.json'} has a malformed obs table ({type(err).__name__}: {err})"
        raise InputError(msg) from None
    return PerturbDataset(
        cells=cells,
        pert_row=rows["pert_row"],
        ctrl_row=rows["ctrl_row"],
        obs=obs,
        var=list(meta["var"]),
        metadata=meta.get("metadata", {}),
    )


def load_dataset(path: str | os.PathLike[str]) -> PerturbDataset:
    """Read an artifact folder written by :func:`save_dataset` (format version 1 or 2).

    Version-2 artifacts come back with memory-mapped cells (CSR or dense); nothing is read
    whole. Version-1 artifacts are read as before (their matrices stacked into memory).

    Raises
    ------
    InputError
        When the folder is missing, is not a PerturbFM dataset, or its files disagree.
    """
    path = Path(path)
    return _load(path, _read_meta(path))


def _load(path: Path, meta: dict[str, Any]) -> PerturbDataset:
    if meta["format_version"] >= 2:
        return _open_v2(path, meta)
    arrays = _open_v1_arrays(path, meta)
    obs_idx = np.asarray(arrays["obs_idx"], dtype=np.int64)
    if obs_idx.shape != (arrays["X_pert"].shape[0],):
        msg = f"obs_idx has shape {obs_idx.shape}; expected ({arrays['X_pert'].shape[0]},)"
        raise InputError(msg)
    try:
        obs = _obs_from_json(meta["obs"], obs_idx)
    except (KeyError, TypeError, ValueError) as err:
        msg = f"{path / 'meta.json'} has a malformed obs table ({type(err).__name__}: {err})"
        raise InputError(msg) from None
    return PerturbDataset(
        X_control=arrays["X_control"],
        X_pert=arrays["X_pert"],
        delta=arrays["delta"],
        obs=obs,
        var=list(meta["var"]),
        metadata=meta.get("metadata", {}),
    )


def _array_digest(digest: Any, arr: np.ndarray) -> None:
    # Same bytes as omicsrun.hashing.sha256_array, fed row block by row block.
    digest.update(str(arr.dtype).encode())
    digest.update(str(tuple(arr.shape)).encode())
    for start in range(0, max(arr.shape[0], 1), _ROW_BLOCK):
        block = np.ascontiguousarray(arr[start : start + _ROW_BLOCK])
        digest.update(memoryview(block.reshape(-1).view(np.uint8)))  # type: ignore[arg-type]


def _content_digest(view_json: str, ds: PerturbDataset, *, progress: bool = False) -> str:
    """The version-1 content digest of ``ds`` (see the module docstring), row block by row block."""
    from tqdm.auto import tqdm

    digest = hashlib.sha256()
    digest.update(view_json.encode())
    step = ds.block_rows()
    blocks = range(0, max(ds.n_obs, 1), step)
    with tqdm(total=3 * len(blocks), desc="hashing", unit="block", disable=not progress) as bar:
        for key, which in (("X_control", "control"), ("X_pert", "pert"), ("delta", "delta")):
            digest.update(key.encode())
            digest.update(b"float32")
            digest.update(str((ds.n_obs, ds.n_genes)).encode())
            for start in blocks:
                rows = np.arange(start, min(start + step, ds.n_obs))
                block = np.ascontiguousarray(ds.rows(rows, which), dtype=np.float32)
                digest.update(memoryview(block.reshape(-1).view(np.uint8)))  # type: ignore[arg-type]
                bar.update()
    digest.update(b"obs_idx")
    _array_digest(digest, _obs_idx(ds))
    return digest.hexdigest()


def verify_dataset(path: str | os.PathLike[str]) -> None:
    """Check a version-2 artifact against the digests stored when it was written.

    Cheap: hashes ``meta.json``'s content part and the stored ``.npy`` files (the compact
    CSR bytes), never a dense matrix.

    Raises
    ------
    InputError
        When a file is missing or its content changed since the artifact was written.
    """
    path = Path(path)
    _verify(path, _read_meta(path))()


def _verify(path: Path, meta: dict[str, Any]) -> Callable[[], None]:
    """Check ``meta.json``'s digest now and start hashing the stored files in the background;
    the returned function waits for those digests and raises on a mismatch."""
    if meta["format_version"] < 2:
        return lambda: None
    for key in ("content_hash", "meta_digest", "checksums"):
        if key not in meta:
            msg = f"{path / 'meta.json'} has no {key!r}; the artifact was not finished by save_dataset"
            raise InputError(msg)
    view = canonical_json(_content_view(meta))
    if hashlib.sha256(view.encode()).hexdigest() != meta["meta_digest"]:
        msg = (
            f"{path / 'meta.json'}: obs, var or metadata changed after the artifact was written "
            "(its digest no longer matches); re-create the artifact"
        )
        raise InputError(msg)
    pending = {}
    for name, expected in dict(meta["checksums"]).items():
        file = path / name
        if not file.is_file():
            msg = f"dataset folder {path} lacks {name}; the artifact is incomplete"
            raise InputError(msg)
        pending[file] = (sha256_file_async(file, cached=True), expected)

    def finish() -> None:
        for file, (digest, expected) in pending.items():
            if digest.result() != expected:
                msg = f"{file} changed after the artifact was written (checksum mismatch); "
                raise InputError(msg + "re-create the artifact")

    return finish


def dataset_hash(path: str | os.PathLike[str], *, verify: bool = True) -> str:
    """Content hash (SHA-256 hex) of a dataset artifact.

    The digest of ``meta.json``'s content (canonical JSON, without the storage kind) and of
    the ``X_control``, ``X_pert``, ``delta`` and ``obs_idx`` contents, so the same data hash
    alike whatever the storage; any change to an expression value, an obs entry, a gene id
    or the metadata changes it. Graph files are not part of the hash.

    Version-2 artifacts store it (computed once by :func:`save_dataset`); it is returned after
    :func:`verify_dataset` (skipped with ``verify=False``). Version-1 artifacts are hashed
    from their arrays, row block by row block.
    """
    path = Path(path)
    return _hash(path, _read_meta(path), verify=verify)


def open_dataset(path: str | os.PathLike[str]) -> tuple[PerturbDataset, str]:
    """:func:`load_dataset` and :func:`dataset_hash` (verified) with ``meta.json`` read once."""
    ds, data_hash, verified = open_dataset_deferred(path)
    verified()
    return ds, data_hash


def open_dataset_deferred(
    path: str | os.PathLike[str],
) -> tuple[PerturbDataset, str, Callable[[], None]]:
    """:func:`open_dataset` whose file checksums are still being computed when it returns.

    The stored files are hashed on background threads while the caller works on the data;
    the returned function waits for the digests and raises :class:`InputError` on a mismatch.
    The caller must call it before anything computed from the data is written.
    """
    path = Path(path)
    meta = _read_meta(path)
    if meta["format_version"] < 2:
        return _load(path, meta), _hash(path, meta, verify=True), lambda: None
    verified = _verify(path, meta)  # the stored files are hashed while the obs table is built
    return _load(path, meta), str(meta["content_hash"]), verified


def _hash(path: Path, meta: dict[str, Any], *, verify: bool) -> str:
    if meta["format_version"] >= 2:
        if verify:
            _verify(path, meta)()
        return str(meta["content_hash"])
    arrays = _open_v1_arrays(path, meta)
    digest = hashlib.sha256()
    digest.update(canonical_json({k: v for k, v in meta.items() if k != "storage"}).encode())
    for key in ARRAY_KEYS:
        digest.update(key.encode())
        _array_digest(digest, arrays[key])
    return digest.hexdigest()


def list_graphs(path: str | os.PathLike[str]) -> list[str]:
    """Names of the gene graphs stored in an artifact's ``graphs/`` folder."""
    folder = Path(path) / "graphs"
    return sorted(p.stem for p in folder.glob("*.npz")) if folder.is_dir() else []
