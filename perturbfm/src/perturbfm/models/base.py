"""The plug-in contract every PerturbFM model follows, and the registry of models by name.

Estimator style (scikit-learn): ``__init__`` stores keyword-only hyperparameters and does
nothing else; ``fit(ds, train_idx, val_idx=None, *, seed=0)`` learns from the training rows
(``val_idx``: the split's OOD-validation rows, for early stopping and model selection; a
model that does not select may ignore them) and returns ``self`` (learned state ends in
``_``); ``predict(ds, idx)`` returns ``(mean, var)``, both float32 of shape
``(len(idx), n_genes)`` in *delta* space (``X_pert - X_control``). ``clone``,
``get_params``/``set_params`` and ``save``/:func:`load_model` complete the contract; the
registry lives in :mod:`perturbfm.models.registry` (this module imports no plug-in).

Every model predicts a variance: either from its own head (the torch models) or from a
wrapper. The default wrapper is the residual one
(:meth:`PerturbationModel._fit_residual_variance`): the per-gene mean squared residual
``delta - fitted`` over the training perturbed cells of each context, falling back to all
training contexts for a context not seen in training. Bias therefore counts towards the
variance, which is what a calibrated interval needs.
"""

from __future__ import annotations

import copy
import inspect
import io
import json
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from omicsrun import InputError
from omicsrun.atomic import dumps_json, output_dir, write_bytes, write_text
from perturbfm.data.dataset import PerturbDataset
from perturbfm.models.registry import available_models, get_model, register_model

MODEL_FORMAT = "perturbfm-model"
MODEL_FORMAT_VERSION = 1

VAR_FLOOR = 1e-6
"""Smallest variance a model may predict (keeps the Gaussian NLL finite)."""


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
    # False for models whose own head predicts the variance (the torch models).
    _residual_variance: bool = True

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
    def set_params(self, **params: Any) -> PerturbationModel:
        """Change hyperparameters (unknown names refused); returns ``self``."""
        accepted = self._param_names()
        for key, value in params.items():
            if key not in accepted:
                msg = f"model {self.name!r} has no parameter {key!r}; its parameters are {accepted}"
                raise InputError(msg)
            setattr(self, key, value)
        return self

    def check_params(self) -> None:
        """Refuse hyperparameter values the model cannot use (:func:`get_model` calls it, so
        a bad value fails before any work or output starts); the base model has none."""

    def clone(self) -> PerturbationModel:
        """A new, unfitted model with the same hyperparameters (deep-copied)."""
        return type(self)(**copy.deepcopy(self.get_params()))

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "n_genes_")

    def fit(
        self,
        ds: PerturbDataset,
        train_idx: Any,
        val_idx: Any = None,
        *,
        seed: int = 0,
        mean_only: bool = False,
    ) -> PerturbationModel:
        """Learn from rows ``train_idx`` of ``ds`` (controls among them are allowed).

        Parameters
        ----------
        ds
            The dataset.
        train_idx
            Row indices, shape (n_train,); control rows are used only by models that need
            control expression (ridge, latent_shift, the torch models' cell encoder), never
            as perturbation examples.
        val_idx
            Optional OOD-validation row indices, shape (n_val,), disjoint from
            ``train_idx``: used for early stopping and model selection only (their
            controls are ignored). Models without such choices ignore them.
        seed
            Seed for any randomness.
        mean_only
            Skip the residual variance (a pass over every training cell): the fitted model
            then serves :meth:`predict_mean` only, and :meth:`predict` refuses.

        Returns
        -------
        self
        """
        idx = check_indices(ds, train_idx, "train_idx")
        pert_idx = idx[~ds.is_control[idx]]
        if pert_idx.size == 0:
            msg = "train_idx holds no perturbed (non-control) rows; a model needs at least one to learn from"
            raise InputError(msg)
        val = np.zeros(0, dtype=np.int64) if val_idx is None else check_indices(ds, val_idx, "val_idx")
        if np.intersect1d(val, idx).size:
            msg = f"val_idx and train_idx share {np.intersect1d(val, idx).size} rows; they must be disjoint"
            raise InputError(msg)
        self.train_idx_ = idx
        self.n_genes_ = ds.n_genes
        self.var_names_ = list(ds.var)
        self.seed_ = int(seed)
        self._fit_with_validation(ds, pert_idx, int(seed), val[~ds.is_control[val]])
        if self._residual_variance and not mean_only:
            self._fit_residual_variance(ds, pert_idx)
        return self

    # -- persistence -----------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the fitted model into folder ``path`` atomically.

        ``model.json`` (format, name, hyperparameters) and ``state.pkl`` (the learned
        attributes, pickled: load only folders you made or trust).
        """
        if not self.is_fitted:
            msg = f"model {self.name!r} is not fitted; nothing to save"
            raise InputError(msg)
        state = {k: v for k, v in vars(self).items() if k.endswith("_")}
        buffer = io.BytesIO()
        pickle.dump(state, buffer, protocol=pickle.HIGHEST_PROTOCOL)
        header = {
            "format": MODEL_FORMAT,
            "format_version": MODEL_FORMAT_VERSION,
            "name": self.name,
            "params": self.get_params(),
        }
        with output_dir(path, overwrite=overwrite, what="model folder") as tmp:
            write_text(tmp / "model.json", dumps_json(header))
            write_bytes(tmp / "state.pkl", buffer.getvalue())
        return Path(path)

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
        idx = self._check_predict(ds, idx)
        # Row blocks into float32 outputs: no float64 (n, n_genes) intermediate at scale.
        mean = np.empty((idx.size, ds.n_genes), dtype=np.float32)
        var = np.empty((idx.size, ds.n_genes), dtype=np.float32)
        step = 4 * ds.block_rows()
        for start in range(0, idx.size, step):
            rows = idx[start : start + step]
            m, v = self._predict_mean_var(ds, rows)
            mean[start : start + rows.size] = m
            var[start : start + rows.size] = np.maximum(v, VAR_FLOOR)
        return mean, var

    def predict_mean(self, ds: PerturbDataset, idx: Any) -> np.ndarray:
        """Predicted delta mean only (float32, shape (n, n_genes)), for point-prediction use.

        Skips the variance, so a model fitted with ``mean_only=True`` (the reference
        baselines of :mod:`perturbfm.runs.relative`) can predict without it.
        """
        idx = self._check_predict(ds, idx)
        mean = np.empty((idx.size, ds.n_genes), dtype=np.float32)
        step = 4 * ds.block_rows()
        for start in range(0, idx.size, step):
            mean[start : start + step] = self._predict_mean(ds, idx[start : start + step])
        return mean

    def _check_predict(self, ds: PerturbDataset, idx: Any) -> np.ndarray:
        if not hasattr(self, "n_genes_"):
            msg = f"model {self.name!r} is not fitted; call fit(ds, train_idx) first"
            raise InputError(msg)
        if list(ds.var) != self.var_names_:
            msg = (
                f"dataset genes differ from those the model was fitted on "
                f"({ds.n_genes} vs {self.n_genes_} genes)"
            )
            raise InputError(msg)
        return check_indices(ds, idx, "idx")

    # -- subclass hooks --------------------------------------------------------------
    def _fit(self, ds: PerturbDataset, pert_idx: np.ndarray, seed: int) -> None:
        raise NotImplementedError

    def _fit_with_validation(
        self, ds: PerturbDataset, pert_idx: np.ndarray, seed: int, val_pert_idx: np.ndarray
    ) -> None:
        # Models that select on validation rows (early stopping) override this.
        self._fit(ds, pert_idx, seed)

    def _predict_mean(self, ds: PerturbDataset, idx: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _predict_mean_var(self, ds: PerturbDataset, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._predict_mean(ds, idx), self._predict_var(ds, idx)

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
        if not hasattr(self, "resid_var_global_"):
            msg = f"model {self.name!r} was fitted with mean_only=True; it predicts means only (predict_mean)"
            raise InputError(msg)
        contexts = ds.obs["context_id"].to_numpy()[idx]
        uniq, inverse = np.unique(contexts, return_inverse=True)
        table = np.stack([self.resid_var_context_.get(c, self.resid_var_global_) for c in uniq])
        return table[inverse]


def load_model(path: str | os.PathLike[str]) -> PerturbationModel:
    """Read a model folder written by :meth:`PerturbationModel.save`."""
    folder = Path(path)
    head_path = folder / "model.json"
    if not head_path.is_file() or not (folder / "state.pkl").is_file():
        msg = f"{folder} is not a saved model: expected model.json and state.pkl in it"
        raise InputError(msg)
    header = json.loads(head_path.read_text())
    if header.get("format") != MODEL_FORMAT or header.get("format_version", 0) > MODEL_FORMAT_VERSION:
        msg = (
            f"{head_path} has format {header.get('format')!r} v{header.get('format_version')!r}; "
            f"this PerturbFM reads {MODEL_FORMAT!r} <= v{MODEL_FORMAT_VERSION}"
        )
        raise InputError(msg)
    model = get_model(header["name"], **header["params"])
    with (folder / "state.pkl").open("rb") as handle:
        state = pickle.load(handle)  # our own format (see save): trusted input only
    for key, value in state.items():
        setattr(model, key, value)
    return model


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
    "load_model",
    "register_model",
]
