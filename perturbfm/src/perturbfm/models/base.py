"""The plug-in contract every PerturbFM model follows, and the registry of models by name.

Estimator style (scikit-learn): ``__init__`` stores keyword-only hyperparameters and does
nothing else; ``fit(ds, train_idx, *, seed=0)`` learns from the training rows and returns
``self`` (learned state ends in ``_``); ``predict(ds, idx)`` returns ``(mean, var)``, both
float32 of shape ``(len(idx), n_genes)`` in *delta* space (``X_pert - X_control``).

Every model predicts a variance. Baselines take it from their training residuals
(:meth:`PerturbationModel._fit_residual_variance`): the per-gene mean squared residual
``delta - fitted`` over the training perturbed cells of each context, falling back to all
training contexts for a context not seen in training. Bias therefore counts towards the
variance, which is what a calibrated interval needs.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from omicsrun import InputError
from perturbfm.data.dataset import PerturbDataset

VAR_FLOOR = 1e-6
"""Smallest variance a model may predict (keeps the Gaussian NLL finite)."""

_REGISTRY: dict[str, type[PerturbationModel]] = {}
_M = TypeVar("_M", bound="type[PerturbationModel]")


def register_model(name: str) -> Callable[[_M], _M]:
    """Class decorator adding a model to the registry under ``name``."""

    def deco(cls: _M) -> _M:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def _ensure_builtin() -> None:
    # Importing the baselines package registers them; torch models register lazily elsewhere.
    import perturbfm.models.baselines  # noqa: F401


def available_models() -> list[str]:
    """Names of every registered model, sorted."""
    _ensure_builtin()
    return sorted(_REGISTRY)


def get_model(name: str, **params: Any) -> PerturbationModel:
    """A new, unfitted model by registry name.

    Raises
    ------
    InputError
        When ``name`` is not registered, or a parameter is not one the model accepts.
    """
    _ensure_builtin()
    if name not in _REGISTRY:
        msg = f"unknown model {name!r}; available models are {sorted(_REGISTRY)}"
        raise InputError(msg)
    cls = _REGISTRY[name]
    accepted = cls._param_names()
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        msg = f"model {name!r} has no parameter {unknown[0]!r}; its parameters are {accepted}"
        raise InputError(msg)
    from omicsrun.validate import check_like_default

    defaults = {p.name: p.default for p in inspect.signature(cls.__init__).parameters.values()}
    for key, value in params.items():  # a number where a number is expected, finite
        check_like_default(value, defaults.get(key), f"model {name!r} parameter {key!r}")
    return cls(**params)


def _group_index(keys: pd.Series | np.ndarray) -> tuple[np.ndarray, pd.Index]:
    codes, uniques = pd.factorize(pd.Series(keys), sort=True)
    return codes.astype(np.int64), pd.Index(uniques)


def group_means(values: np.ndarray, keys: pd.Series | np.ndarray) -> tuple[pd.Index, np.ndarray, np.ndarray]:
    """Row means of ``values`` per key, by one sparse indicator product.

    Parameters
    ----------
    values
        Shape (n_rows, n_genes).
    keys
        Hashable key per row, length n_rows.

    Returns
    -------
    groups
        The distinct keys, sorted, length n_groups.
    means
        Shape (n_groups, n_genes), float64.
    counts
        Rows per group, shape (n_groups,).
    """
    codes, groups = _group_index(keys)
    n_rows = len(codes)
    ind = sp.csr_matrix((np.ones(n_rows), (codes, np.arange(n_rows))), shape=(len(groups), n_rows))
    counts = np.asarray(ind.sum(axis=1)).ravel()
    means = np.asarray(ind @ np.asarray(values, dtype=np.float64)) / counts[:, None]
    return groups, means, counts


def check_indices(ds: PerturbDataset, idx: Any, what: str) -> np.ndarray:
    """``idx`` as int64 row indices of ``ds``; InputError when empty or out of range."""
    arr = np.asarray(idx)
    if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        msg = f"{what} must be a 1-D array of integer row indices; found shape {arr.shape}, dtype {arr.dtype}"
        raise InputError(msg)
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= ds.n_obs):
        msg = f"{what} must index rows 0..{ds.n_obs - 1}; found values from {arr.min()} to {arr.max()}"
        raise InputError(msg)
    return arr


class PerturbationModel:
    """Base class of every perturbation-response model.

    Subclasses implement ``_fit(ds, train_idx, seed)`` (``train_idx`` already restricted to
    perturbed, non-control rows; the full training indices including controls are in
    ``self.train_idx_``) and ``_predict_mean(ds, idx) -> float64 (len(idx), n_genes)``.
    The base class adds index validation, the residual variance and float32 output.
    """

    name: str = "base"

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters as passed to ``__init__`` (defaults resolved)."""
        return {k: getattr(self, k) for k in self._param_names()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- public contract -------------------------------------------------------------
    def fit(self, ds: PerturbDataset, train_idx: Any, *, seed: int = 0) -> PerturbationModel:
        """Learn from rows ``train_idx`` of ``ds`` (controls among them are allowed).

        Parameters
        ----------
        ds
            The dataset.
        train_idx
            Row indices, shape (n_train,); control rows are used only by models that need
            control expression (ridge, latent_shift), never as perturbation examples.
        seed
            Seed for any randomness.

        Returns
        -------
        self
        """
        idx = check_indices(ds, train_idx, "train_idx")
        pert_idx = idx[~ds.is_control[idx]]
        if pert_idx.size == 0:
            msg = "train_idx holds no perturbed (non-control) rows; a model needs at least one to learn from"
            raise InputError(msg)
        self.train_idx_ = idx
        self.n_genes_ = ds.n_genes
        self.var_names_ = list(ds.var)
        self.seed_ = int(seed)
        self._fit(ds, pert_idx, int(seed))
        self._fit_residual_variance(ds, pert_idx)
        return self

    def predict(self, ds: PerturbDataset, idx: Any) -> tuple[np.ndarray, np.ndarray]:
        """Predicted delta mean and variance for rows ``idx``.

        Parameters
        ----------
        ds
            The dataset (the same genes as at ``fit``).
        idx
            Row indices, shape (n,).

        Returns
        -------
        mean, var
            float32 arrays of shape (n, n_genes); ``var > 0``.
        """
        if not hasattr(self, "n_genes_"):
            msg = f"model {self.name!r} is not fitted; call fit(ds, train_idx) first"
            raise InputError(msg)
        if list(ds.var) != self.var_names_:
            msg = (
                f"dataset genes differ from those the model was fitted on "
                f"({ds.n_genes} vs {self.n_genes_} genes)"
            )
            raise InputError(msg)
        idx = check_indices(ds, idx, "idx")
        # Row blocks into float32 outputs: no float64 (n, n_genes) intermediate at scale.
        mean = np.empty((idx.size, ds.n_genes), dtype=np.float32)
        var = np.empty((idx.size, ds.n_genes), dtype=np.float32)
        step = 4 * ds.block_rows()
        for start in range(0, idx.size, step):
            rows = idx[start : start + step]
            mean[start : start + rows.size] = self._predict_mean(ds, rows)
            var[start : start + rows.size] = self._predict_var(ds, rows)
        return mean, var

    # -- subclass hooks --------------------------------------------------------------
    def _fit(self, ds: PerturbDataset, pert_idx: np.ndarray, seed: int) -> None:
        raise NotImplementedError

    def _predict_mean(self, ds: PerturbDataset, idx: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # -- residual variance -----------------------------------------------------------
    def _fit_residual_variance(self, ds: PerturbDataset, pert_idx: np.ndarray) -> None:
        """Per-gene mean squared training residual, per context and overall (row blocks)."""
        ctx_codes, contexts = pd.factorize(pd.Series(ds.obs["context_id"].to_numpy()[pert_idx]), sort=True)
        sums = np.zeros((len(contexts), ds.n_genes))
        for start, stop, delta in ds.iter_rows(pert_idx, "delta"):
            resid2 = (np.asarray(delta, dtype=np.float64) - self._predict_mean(ds, pert_idx[start:stop])) ** 2
            code = ctx_codes[start:stop]
            sums += (
                sp.csr_matrix(
                    (np.ones(code.size), (code, np.arange(code.size))), shape=(len(contexts), code.size)
                )
                @ resid2
            )
        counts = np.bincount(ctx_codes, minlength=len(contexts))
        means = sums / np.maximum(counts, 1)[:, None]
        keep = counts >= 2
        self.resid_var_global_ = np.maximum(sums.sum(axis=0) / max(len(pert_idx), 1), VAR_FLOOR)
        self.resid_var_context_ = dict(
            zip(np.asarray(contexts)[keep], np.maximum(means[keep], VAR_FLOOR), strict=True)
        )

    def _predict_var(self, ds: PerturbDataset, idx: np.ndarray) -> np.ndarray:
        contexts = ds.obs["context_id"].to_numpy()[idx]
        uniq, inverse = np.unique(contexts, return_inverse=True)
        table = np.stack([self.resid_var_context_.get(c, self.resid_var_global_) for c in uniq])
        return table[inverse]


def pert_keys(ds: PerturbDataset, idx: np.ndarray) -> np.ndarray:
    """``pert_id`` of rows ``idx`` as an object array."""
    return ds.obs["pert_id"].to_numpy()[idx]


def pert_context_keys(ds: PerturbDataset, idx: np.ndarray) -> np.ndarray:
    """``pert_id`` and ``context_id`` of rows ``idx`` joined into one key per row."""
    obs = ds.obs
    return (
        obs["pert_id"].to_numpy()[idx].astype(object)
        + "\x1f"
        + obs["context_id"].to_numpy()[idx].astype(object)
    )


__all__ = [
    "VAR_FLOOR",
    "PerturbationModel",
    "available_models",
    "check_indices",
    "get_model",
    "group_means",
    "register_model",
]
