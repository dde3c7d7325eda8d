"""Dataset artifacts on disk: ``data.npz`` + ``meta.json``, or memory-mapped ``.npy`` files.

Layout of an artifact folder (format ``perturbfm-dataset``, version 1)::

    meta.json          format, format_version, storage ("npz" | "npy"), obs, var, metadata
    data.npz           X_control, X_pert, delta (float32 [N, G]), obs_idx (int64 [N])   (storage "npz")
    X_control.npy ...  the same four arrays as separate .npy files, opened with
                       ``np.load(mmap_mode="r")`` so nothing is read whole           (storage "npy")
    graphs/<name>.npz  optional gene graphs aligned to ``var`` (see :mod:`perturbfm.data.graph`)

``obs`` is stored column by column (``obs.columns`` gives the order, ``obs.dtypes`` the
kind of each column: ``bool``, ``int``, ``float``, ``str`` or ``list`` for ``pert_genes``).
``obs_idx`` is the row of each cell in the source it came from (an h5ad row; ``arange`` for
synthetic data); it comes back as the ``obs_idx`` column of ``obs``.

:func:`dataset_hash` digests the array contents and the metadata, not the file bytes, so the
same data stored either way hash alike and the hash does not depend on zip timestamps.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from omicsrun import InputError
from omicsrun.atomic import output_dir, write_json
from omicsrun.hashing import canonical_json
from omicsrun.readers import load_npz, read_json_object
from omicsrun.validate import check_type
from perturbfm.data.dataset import PerturbDataset
from perturbfm.data.graph import save_graph

FORMAT_NAME = "perturbfm-dataset"
FORMAT_VERSION = 1
ARRAY_KEYS = ("X_control", "X_pert", "delta", "obs_idx")
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
            out[c] = pd.Series([list(v) for v in values], dtype=object)
        else:
            out[c] = pd.Series(values, dtype=object)
    obs = pd.DataFrame(out)
    obs["obs_idx"] = np.asarray(obs_idx, dtype=np.int64)
    return obs


def _obs_idx(ds: PerturbDataset) -> np.ndarray:
    if "obs_idx" in ds.obs.columns:
        return ds.obs["obs_idx"].to_numpy(dtype=np.int64)
    return np.arange(ds.n_obs, dtype=np.int64)


def _meta(ds: PerturbDataset, storage: str) -> dict[str, Any]:
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "storage": storage,
        "n_obs": ds.n_obs,
        "n_genes": ds.n_genes,
        "obs": _obs_to_json(ds.obs),
        "var": list(ds.var),
        "metadata": dict(ds.metadata),
    }


def _copy_to_npy(path: Path, arr: np.ndarray, dtype: type) -> None:
    out = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=arr.shape)
    for start in range(0, arr.shape[0], _ROW_BLOCK):
        out[start : start + _ROW_BLOCK] = arr[start : start + _ROW_BLOCK]
    out.flush()
    del out


def save_dataset(
    ds: PerturbDataset,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    memmap: bool = False,
    graphs: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write ``ds`` as an artifact folder, atomically.

    Parameters
    ----------
    ds
        The dataset; its matrices are written as float32.
    path
        Folder to create. An existing non-empty folder is refused unless ``overwrite``.
    overwrite
        Replace an existing artifact.
    memmap
        Write separate ``.npy`` files (readable with ``mmap_mode="r"``, copied row block by
        row block) instead of one ``data.npz``.
    graphs
        Optional gene graphs, name -> adjacency [G, G] aligned to ``ds.var``; written to
        ``graphs/<name>.npz``.

    Returns
    -------
    Path
        The artifact folder.
    """
    if not isinstance(ds, PerturbDataset):
        msg = f"save_dataset expects a PerturbDataset; found {type(ds).__name__}"
        raise InputError(msg)
    obs_idx = _obs_idx(ds)
    with output_dir(path, overwrite=overwrite, what="dataset") as tmp:
        arrays: dict[str, np.ndarray] = {"X_control": ds.X_control, "X_pert": ds.X_pert}
        arrays["delta"] = ds.delta if ds.delta is not None else ds.X_pert - ds.X_control
        if memmap:
            for key, arr in arrays.items():
                _copy_to_npy(tmp / f"{key}.npy", arr, np.float32)
            np.save(tmp / "obs_idx.npy", obs_idx)
        else:
            dense = {k: np.asarray(v, dtype=np.float32) for k, v in arrays.items()}
            np.savez(tmp / "data.npz", obs_idx=obs_idx, **dense)  # type: ignore[arg-type]
        for name, adjacency in (graphs or {}).items():
            save_graph(tmp / "graphs" / f"{name}.npz", adjacency, ds.var)
        write_json(tmp / "meta.json", _meta(ds, "npy" if memmap else "npz"))
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


def _check_meta_types(meta_path: Path, meta: dict[str, Any]) -> None:
    """Fields the loader uses have their JSON types (a wrong type is one line, not a crash)."""
    where = f"{meta_path}:"
    if meta.get("storage", "npz") not in ("npz", "npy"):
        msg = f"{where} 'storage' must be 'npz' or 'npy'; found {meta.get('storage')!r:.80}"
        raise InputError(msg)
    check_type(meta.get("var"), f"{where} 'var'", list, "a list of gene names")
    if not all(isinstance(g, str) for g in meta["var"]):
        msg = f"{where} 'var' must be a list of gene name strings"
        raise InputError(msg)
    check_type(meta.get("obs"), f"{where} 'obs'", dict, "a JSON object (the obs table)")
    check_type(meta.get("metadata", {}), f"{where} 'metadata'", dict, "a JSON object")


def _open_arrays(path: Path, meta: dict[str, Any]) -> dict[str, np.ndarray]:
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


def load_dataset(path: str | os.PathLike[str]) -> PerturbDataset:
    """Read an artifact folder written by :func:`save_dataset` (either storage).

    Memory-mapped artifacts come back with read-only ``numpy.memmap`` matrices.

    Raises
    ------
    InputError
        When the folder is missing, is not a PerturbFM dataset, or its files disagree.
    """
    path = Path(path)
    meta = _read_meta(path)
    arrays = _open_arrays(path, meta)
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


def dataset_hash(path: str | os.PathLike[str]) -> str:
    """Content hash (SHA-256 hex) of a dataset artifact.

    Digests ``meta.json`` (canonical JSON, without the storage kind) and the contents of the
    four arrays, so an artifact re-saved with the other storage, or re-zipped, keeps its hash;
    any change to an expression value, an obs entry, a gene id or the metadata changes it.
    Graph files are not part of the hash.
    """
    path = Path(path)
    meta = _read_meta(path)
    arrays = _open_arrays(path, meta)
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
