"""``PerturbDataset``: the one object every PerturbFM stage takes, validated once.

Each row is one perturbed (or control) cell paired with a matched control expression
profile of the same context. ``delta = X_pert - X_control``. Control rows have
``is_control`` true and an empty ``pert_genes`` list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from omicsrun import InputError

OBS_REQUIRED = ("pert_id", "context_id", "batch_id", "is_control", "pert_genes")
CONTROL_ID = "control"
# A delta passed in may differ from X_pert - X_control by float32 rounding only.
DELTA_RTOL = 1e-5
DELTA_ATOL = 1e-6
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


def _gene_list(value: Any) -> list[str]:
    # A bare string would otherwise be split into characters by list(); NaN/None mean "none".
    if value is None or (isinstance(value, float) and value != value):
        return []
    if isinstance(value, str):
        msg = f"obs['pert_genes'] must hold lists of gene ids; found the string {value!r}"
        raise InputError(msg)
    return [str(g) for g in value]


def _check_values(x_pert: np.ndarray, x_ctrl: np.ndarray, delta: np.ndarray, *, delta_given: bool) -> None:
    """Every value finite and, when ``delta`` was passed in, ``delta`` equal to ``X_pert - X_control``.

    One pass over row blocks of about ``_BLOCK_VALUES`` values, so a memory-mapped matrix is
    never read into memory whole. The tolerance allows float32 rounding (``X_pert`` built as
    ``X_control + delta``, or float64 inputs stored as float32), not a different matrix.
    """
    step = max(1, _BLOCK_VALUES // max(x_pert.shape[1], 1))
    for start in range(0, x_pert.shape[0], step):
        rows = slice(start, start + step)
        blocks = {"X_pert": x_pert[rows], "X_control": x_ctrl[rows], "delta": delta[rows]}
        for name, block in blocks.items():
            if not np.isfinite(block).all():
                msg = f"{name} holds NaN or infinite values; expected finite expression"
                raise InputError(msg)
        if not delta_given:
            continue
        p, c, d = blocks.values()
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


@dataclass(frozen=True, eq=False)
class PerturbDataset:
    """Paired perturbation data.

    Parameters
    ----------
    X_control
        Matched control expression, float, shape (n_cells, n_genes).
    X_pert
        Observed expression, float, shape (n_cells, n_genes).
    obs
        One row per cell with ``pert_id`` (str, ``"control"`` for controls), ``context_id``,
        ``batch_id``, ``is_control`` (bool), ``pert_genes`` (list of gene ids; ``[]`` for
        controls), plus optional covariate columns (dose, time...) and ``is_ood``.
    var
        Gene identifiers, length n_genes, unique.
    delta
        ``X_pert - X_control``; computed (float32) when omitted. One passed in must equal it
        up to float32 rounding (``|delta - (X_pert - X_control)| <= DELTA_ATOL + DELTA_RTOL *
        (|X_pert| + |X_control|)``).
    metadata
        Free-form: dataset name, preprocessing, provenance of pairing.

    Arrays may be ``numpy.memmap``: validation reads them in row blocks, never a whole
    matrix at once (a ``delta`` computed here is an in-memory array).
    """

    X_control: np.ndarray
    X_pert: np.ndarray
    obs: pd.DataFrame
    var: list[str]
    # Optional at construction (computed when omitted); always an array afterwards.
    delta: np.ndarray = None  # type: ignore[assignment]
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        x_pert = _check_matrix("X_pert", self.X_pert, None)
        shape = x_pert.shape
        x_ctrl = _check_matrix("X_control", self.X_control, shape)
        object.__setattr__(self, "X_pert", x_pert)
        object.__setattr__(self, "X_control", x_ctrl)
        delta_given = self.delta is not None
        if not delta_given:
            object.__setattr__(self, "delta", np.subtract(x_pert, x_ctrl, dtype=np.float32))
        else:
            object.__setattr__(self, "delta", _check_matrix("delta", self.delta, shape))
        var = [str(v) for v in self.var]
        if len(var) != shape[1]:
            msg = f"var must name every gene: expected {shape[1]} ids, found {len(var)}"
            raise InputError(msg)
        if len(set(var)) != len(var):
            dup = pd.Index(var)[pd.Index(var).duplicated()][:3].tolist()
            msg = f"var ids must be unique; found duplicates such as {dup}"
            raise InputError(msg)
        object.__setattr__(self, "var", var)
        obs = self.obs
        if not isinstance(obs, pd.DataFrame):
            msg = f"obs must be a pandas DataFrame; found {type(obs).__name__}"
            raise InputError(msg)
        missing = [c for c in OBS_REQUIRED if c not in obs.columns]
        if missing:
            msg = f"obs has no column {missing[0]!r}; columns are {list(map(str, obs.columns))}"
            raise InputError(msg)
        if len(obs) != shape[0]:
            msg = f"obs must have one row per cell: expected {shape[0]} rows, found {len(obs)}"
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
        obs["pert_genes"] = [_gene_list(g) for g in obs["pert_genes"]]
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
        object.__setattr__(self, "obs", obs)
        object.__setattr__(self, "metadata", dict(self.metadata))
        _check_values(self.X_pert, self.X_control, self.delta, delta_given=delta_given)

    @property
    def n_obs(self) -> int:
        return int(self.X_pert.shape[0])

    @property
    def n_genes(self) -> int:
        return int(self.X_pert.shape[1])

    @property
    def is_control(self) -> np.ndarray:
        return self.obs["is_control"].to_numpy(dtype=bool)

    def subset(self, idx: np.ndarray) -> PerturbDataset:
        """Rows ``idx`` as a new dataset (arrays copied into memory)."""
        idx = np.asarray(idx, dtype=np.int64)
        return PerturbDataset(
            X_control=np.asarray(self.X_control[idx]),
            X_pert=np.asarray(self.X_pert[idx]),
            delta=np.asarray(self.delta[idx]),
            obs=self.obs.iloc[idx].reset_index(drop=True),
            var=self.var,
            metadata=self.metadata,
        )
