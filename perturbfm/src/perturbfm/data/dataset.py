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


def _all_finite(arr: np.ndarray, block: int = 65536) -> bool:
    # Blockwise so a memory-mapped matrix is never read into memory whole.
    return all(np.isfinite(arr[i : i + block]).all() for i in range(0, arr.shape[0], block))


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
        ``X_pert - X_control``; computed when omitted.
    metadata
        Free-form: dataset name, preprocessing, provenance of pairing.

    Arrays may be ``numpy.memmap``: nothing here reads a whole matrix at once.
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
        if self.delta is None:
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
        for name in ("X_pert", "X_control", "delta"):
            if not _all_finite(getattr(self, name)):
                msg = f"{name} holds NaN or infinite values; expected finite expression"
                raise InputError(msg)

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
