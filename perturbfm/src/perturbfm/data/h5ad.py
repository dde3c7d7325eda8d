"""Import an AnnData ``.h5ad`` file into a :class:`PerturbDataset`.

Pairing rule (also written into ``metadata["pairing"]`` of every imported dataset):

- Each perturbed cell gets one control cell drawn uniformly at random, with replacement,
  from the control cells of its own context; with ``batch_key``, from the control cells of
  its own (context, batch), falling back to the whole context when that batch has no
  control cell (the number of such cells is recorded as ``n_batch_fallback``).
- Each control cell is paired with a *different* control cell drawn the same way (so a
  control's ``delta`` is noise, not zero). A group with a single control pairs it with
  itself (counted in ``n_control_self_paired``).
- All draws come from ``numpy.random.default_rng(seed)``; the same file and seed give the
  same pairs. ``obs["control_obs_idx"]`` names the paired control's row in the h5ad file.

The dataset stores the file's cells once, in file order (``pert_row = arange``), and the
pairing (``ctrl_row = control_obs_idx``): ``X_pert`` row i is h5ad row i, ``X_control`` row
i is h5ad row ``control_obs_idx[i]``, ``delta = X_pert - X_control`` (computed when read).
Combinations written ``A+B`` give ``pert_genes == ["A", "B"]``; singles give ``[name]``;
controls ``[]`` and the pert id ``"control"`` (the file's own control label is kept in the
metadata).

Streaming: the file is opened in backed mode and its matrix read in row blocks; a sparse
matrix stays CSR (about 8 bytes per non-zero in memory), a dense one is kept dense only
when more than ``CSR_MAX_DENSITY`` of its values are non-zero. No dense copy of a sparse
matrix, and no second copy for the controls, is ever made.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from omicsrun import InputError
from omicsrun.errors import check_seed
from omicsrun.hashing import sha256_file
from perturbfm.data.dataset import CONTROL_ID, PerturbDataset
from perturbfm.data.labels import check_matrix_size, check_pert_labels

# Values (rows x genes) read per block from the file.
_BLOCK_VALUES = 1 << 23
# A dense matrix with at most this share of non-zeros is kept as CSR.
CSR_MAX_DENSITY = 0.3


def _read_cells(matrix: Any, n_obs: int, n_genes: int, name: str) -> np.ndarray | sp.csr_matrix:
    """The expression matrix read in row blocks: CSR when stored sparse, or when a dense
    matrix has at most ``CSR_MAX_DENSITY`` non-zeros (judged on its first block), else dense.

    Only one block is ever dense in memory; sparse blocks are concatenated as CSR.
    """
    step = max(1, _BLOCK_VALUES // max(n_genes, 1))
    as_csr: bool | None = None
    sparse_parts: list[sp.csr_matrix] = []
    dense: np.ndarray | None = None
    for start in range(0, n_obs, step):
        stop = min(start + step, n_obs)
        block = matrix[start:stop]
        if as_csr is None:
            as_csr = sp.issparse(block) or np.count_nonzero(block) <= CSR_MAX_DENSITY * max(block.size, 1)
        if as_csr:
            part = sp.csr_matrix(block, dtype=np.float32)
            if not np.isfinite(part.data).all():
                msg = f"{name}: the expression matrix holds NaN or infinite values (rows {start}-{stop - 1})"
                raise InputError(msg)
            part.eliminate_zeros()
            sparse_parts.append(part)
        else:
            if dense is None:
                dense = np.empty((n_obs, n_genes), dtype=np.float32)
            dense[start:stop] = block.toarray() if sp.issparse(block) else np.asarray(block, dtype=np.float32)
            if not np.isfinite(dense[start:stop]).all():
                msg = f"{name}: the expression matrix holds NaN or infinite values (rows {start}-{stop - 1})"
                raise InputError(msg)
    if not as_csr:
        return dense if dense is not None else np.zeros((0, n_genes), dtype=np.float32)
    if not sparse_parts:
        return sp.csr_matrix((0, n_genes), dtype=np.float32)
    out = sp.vstack(sparse_parts, format="csr", dtype=np.float32)
    sparse_parts.clear()
    return out


def _pair_within_groups(
    rng: np.random.Generator, cell_group: np.ndarray, ctrl_rows: np.ndarray, ctrl_group: np.ndarray
) -> np.ndarray:
    """For each cell, a control row drawn uniformly from the controls of its group.

    ``cell_group`` [n] and ``ctrl_group`` [m] are integer group codes; every group in
    ``cell_group`` must hold at least one control.
    """
    order = np.argsort(ctrl_group, kind="stable")
    sorted_rows, sorted_group = ctrl_rows[order], ctrl_group[order]
    n_groups = int(max(cell_group.max(initial=-1), ctrl_group.max(initial=-1))) + 1
    counts = np.bincount(sorted_group, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pick = np.floor(rng.random(cell_group.shape[0]) * counts[cell_group]).astype(np.int64)
    return sorted_rows[starts[cell_group] + pick]


def _pair_controls(
    rng: np.random.Generator, ctrl_rows: np.ndarray, ctrl_group: np.ndarray
) -> tuple[np.ndarray, int]:
    """Pair each control with a different control of its group (itself when alone)."""
    order = np.argsort(ctrl_group, kind="stable")
    sorted_rows, sorted_group = ctrl_rows[order], ctrl_group[order]
    n_groups = int(ctrl_group.max(initial=-1)) + 1
    counts = np.bincount(sorted_group, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    own = np.arange(sorted_rows.shape[0]) - starts[sorted_group]
    n_other = counts[sorted_group] - 1
    pick = np.floor(rng.random(sorted_rows.shape[0]) * np.maximum(n_other, 1)).astype(np.int64)
    pick = np.where(pick >= own, pick + 1, pick)  # skip the cell itself
    pick = np.where(n_other == 0, own, pick)
    paired_sorted = sorted_rows[starts[sorted_group] + pick]
    paired = np.empty_like(paired_sorted)
    paired[order] = paired_sorted
    return paired, int((n_other == 0).sum())


def _parse_pert_genes(label: str, control_label: str) -> list[str]:
    if label == control_label:
        return []
    return [g.strip() for g in label.split("+") if g.strip()]


def import_h5ad(
    path: str | os.PathLike[str],
    *,
    pert_key: str,
    context_key: str,
    control_label: str,
    batch_key: str | None = None,
    layer: str | None = None,
    covariate_keys: Sequence[str] = (),
    seed: int = 0,
) -> PerturbDataset:
    """Read an AnnData file and pair every cell with a control of its context.

    Parameters
    ----------
    path
        ``.h5ad`` file with cells as rows (n_cells x n_genes), dense or sparse.
    pert_key, context_key
        ``obs`` columns holding the perturbation label (``A+B`` for combinations) and the
        context (cell type / cell line).
    control_label
        Value of ``obs[pert_key]`` that marks control cells.
    batch_key
        Optional ``obs`` column; pairs are then drawn within (context, batch).
    layer
        Use ``layers[layer]`` instead of ``X``.
    covariate_keys
        ``obs`` columns copied into the dataset's ``obs`` (dose, time...).
    seed
        Seed of the pairing draws.

    Returns
    -------
    PerturbDataset
        n_cells rows in file order, float32. See the module docstring for the pairing rule.

    Raises
    ------
    InputError
        When the file is missing or unreadable, a named column or layer is absent, or a
        context has no control cell.
    """
    import anndata as ad

    path = Path(path)
    if not path.is_file():
        msg = f"h5ad file {path} does not exist"
        raise InputError(msg)
    seed = check_seed(seed)
    try:
        adata = ad.read_h5ad(path, backed="r")
    except (OSError, KeyError, ValueError) as err:
        msg = f"cannot read {path} as an AnnData h5ad file ({type(err).__name__}: {err})"
        raise InputError(msg) from None
    try:
        return _import(
            adata, path, pert_key, context_key, control_label, batch_key, layer, covariate_keys, seed
        )
    finally:
        if adata.isbacked:
            adata.file.close()


def _import(
    adata: Any,
    path: Path,
    pert_key: str,
    context_key: str,
    control_label: str,
    batch_key: str | None,
    layer: str | None,
    covariate_keys: Sequence[str],
    seed: int,
) -> PerturbDataset:
    obs_in = adata.obs
    wanted = [("pert_key", pert_key), ("context_key", context_key)]
    wanted += [("batch_key", batch_key)] if batch_key is not None else []
    wanted += [("covariate_keys", k) for k in covariate_keys]
    for option, key in wanted:
        if key not in obs_in.columns:
            msg = (
                f"{path.name} obs has no column {key!r} (from {option}); "
                f"obs columns are {list(obs_in.columns)}"
            )
            raise InputError(msg)
    if layer is not None and layer not in adata.layers:
        msg = f"{path.name} has no layer {layer!r}; layers are {list(adata.layers.keys())}"
        raise InputError(msg)
    if obs_in[[pert_key, context_key]].isna().any().any():
        msg = f"{path.name}: obs[{pert_key!r}] or obs[{context_key!r}] has missing values"
        raise InputError(msg)
    labels = obs_in[pert_key].astype(str).to_numpy()
    check_matrix_size(adata.n_obs, adata.n_vars, source=path.name)
    check_pert_labels(labels, control_label, pert_key=pert_key)
    contexts = obs_in[context_key].astype(str).to_numpy()
    is_control = labels == control_label
    if not is_control.any():
        found = pd.unique(labels)[:5].tolist()
        msg = f"no cell has {pert_key} == {control_label!r}; values include {found}"
        raise InputError(msg)
    ctx_codes, ctx_names = pd.factorize(contexts, sort=True)
    ctrl_per_ctx = np.bincount(ctx_codes[is_control], minlength=len(ctx_names))
    lacking = [str(ctx_names[i]) for i in np.flatnonzero(ctrl_per_ctx == 0)]
    if lacking:
        msg = (
            f"context(s) {lacking} ({context_key}) have no control cells ({pert_key} == {control_label!r}); "
            "every context needs controls to pair with"
        )
        raise InputError(msg)
    batches = obs_in[batch_key].astype(str).to_numpy() if batch_key is not None else None

    ctx = ctx_codes.astype(np.int64)
    ctrl_rows = np.flatnonzero(is_control)
    if batches is None:
        group, ctrl_group, n_fallback = ctx, ctx[is_control], 0
        pool_rows, pool_group = ctrl_rows, ctrl_group
    else:
        cb_codes = pd.factorize(pd.Series(contexts) + "\x1f" + pd.Series(batches), sort=True)[0]
        n_cb = int(cb_codes.max()) + 1
        use_batch = (np.bincount(cb_codes[is_control], minlength=n_cb) > 0)[cb_codes]
        n_fallback = int((~use_batch).sum())
        # Disjoint codes: (context, batch) groups first, then whole contexts for fallbacks; every
        # control sits in the pool twice, under its (context, batch) and under its context.
        group = np.where(use_batch, cb_codes, n_cb + ctx).astype(np.int64)
        ctrl_group = cb_codes[is_control].astype(np.int64)
        pool_rows = np.concatenate([ctrl_rows, ctrl_rows])
        pool_group = np.concatenate([ctrl_group, n_cb + ctx[is_control]])
    rng = np.random.default_rng(seed)
    pair = np.empty(adata.n_obs, dtype=np.int64)
    pair[~is_control] = _pair_within_groups(rng, group[~is_control], pool_rows, pool_group)
    pair[is_control], n_self = _pair_controls(rng, ctrl_rows, ctrl_group)

    matrix = adata.layers[layer] if layer is not None else adata.X
    cells = _read_cells(matrix, adata.n_obs, adata.n_vars, path.name)

    label_codes, unique_labels = pd.factorize(labels)  # parse each distinct label once
    parsed = [_parse_pert_genes(str(lab), control_label) for lab in unique_labels]
    obs = pd.DataFrame(
        {
            "pert_id": np.where(is_control, CONTROL_ID, labels).astype(object),
            "context_id": contexts.astype(object),
            "batch_id": batches.astype(object) if batches is not None else "all",
            "is_control": is_control,
            "pert_genes": [parsed[c] for c in label_codes],  # PerturbDataset copies each list
            "cell_id": np.asarray(adata.obs_names, dtype=object),
            "control_obs_idx": pair,
            "obs_idx": np.arange(adata.n_obs, dtype=np.int64),
        }
    )
    for key in covariate_keys:
        col = obs_in[key]
        obs[key] = (
            col.astype(str).to_numpy(dtype=object)
            if isinstance(col.dtype, pd.CategoricalDtype)
            else col.to_numpy()
        )
    metadata = {
        "name": path.stem,
        # The file's name and content hash, not its path: the same file imported from another
        # folder gives the same dataset hash.
        "source": {"file": path.name, "sha256": sha256_file(path), "format": "h5ad", "layer": layer},
        "import": {
            "pert_key": pert_key,
            "context_key": context_key,
            "batch_key": batch_key,
            "control_label": control_label,
            "covariate_keys": list(covariate_keys),
            "seed": seed,
        },
        "pairing": {
            "rule": (
                "each perturbed cell: one control drawn uniformly with replacement from the controls of "
                "its context (of its (context, batch) when batch_key is set, falling back to the context "
                "when the batch has no control); each control: a different control of the same group; "
                "numpy default_rng(seed)"
            ),
            "seed": seed,
            "n_batch_fallback": n_fallback,
            "n_control_self_paired": n_self,
        },
        "uns_log1p": "log1p" in adata.uns,
    }
    return PerturbDataset(
        cells=cells,
        pert_row=np.arange(adata.n_obs, dtype=np.int64),
        ctrl_row=pair,
        obs=obs,
        var=list(map(str, adata.var_names)),
        metadata=metadata,
    )
