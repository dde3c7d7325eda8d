"""The backend contract and registry.

A backend turns a feature set (samples x features, already normalised and residualised by
:mod:`isograph.features`) into gene modules and a sparse edge list. Everything else a fit
writes (eigengenes, trait tests, feature scores, channel roles) is computed once, in
:mod:`isograph.fit`, for every backend alike. A new backend registers itself with
:func:`register` and needs no change in ``fit`` or ``benchmark``; heavy dependencies (torch,
R) are imported inside its ``fit`` only.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, Union, runtime_checkable

import numpy as np
import pandas as pd

from omicsrun import InputError

UNASSIGNED = "unassigned"
"""``module_id`` of genes that a backend placed in no module (WGCNA's "grey")."""

BACKEND_STATE_FORMAT = "isograph-backend-state"
BACKEND_STATE_VERSION = 1
BACKEND_DIR = "backend"
"""Subfolder of a fit folder holding the fitted backend (see :func:`save_backend_state`)."""


@dataclass(frozen=True, eq=False)
class RawCounts:
    """Raw counts of the bundle a feature set was built from (for backends that model counts).

    Attributes
    ----------
    transcript_counts
        Shape (n_transcripts, n_samples), rows in ``transcript_ids`` order.
    transcript_ids, transcript_gene_ids
        Shape (n_transcripts,).
    gene_counts
        Shape (n_genes, n_samples) or ``None`` for switch-only bundles.
    gene_ids
        Shape (n_genes,).
    sample_ids
        Shape (n_samples,), the column order of both matrices (and the row order of the features).
    """

    transcript_counts: np.ndarray
    transcript_ids: np.ndarray
    transcript_gene_ids: np.ndarray
    gene_counts: np.ndarray | None
    gene_ids: np.ndarray
    sample_ids: np.ndarray

    @property
    def library_size(self) -> np.ndarray:
        """Total transcript counts per sample, shape (n_samples,)."""
        return np.asarray(self.transcript_counts, dtype=np.float64).sum(axis=0)


@dataclass
class BackendResult:
    """What a backend returns: a fitted backend with its state and typed outputs.

    Attributes
    ----------
    modules
        ``gene_id``, ``module_id``: one row per gene the backend saw; genes in no module carry
        :data:`UNASSIGNED`. Module ids are ``M000``, ``M001``... ordered by decreasing size.
    edges
        ``gene_a``, ``gene_b``, ``weight``: the sparse gene-gene network (may be empty).
    diagnostics
        Backend-specific numbers worth recording in ``fit_config.json`` (thresholds,
        convergence).
    calibration
        JSON-able calibration record (e.g. held-out log-likelihood per k, soft-power fit);
        the benchmark writes it to ``<stage>-calibration.json``.
    sample_scores
        Optional per-sample scores of latent factors: index ``sample_id``, one float column per
        factor (``F00``, ``F01``...), shape (n_samples, n_factors).
    feature_loadings
        Optional per-feature loadings or memberships: index ``feature_id``, one float column per
        factor, shape (n_features, n_factors).
    soft_membership
        Optional soft membership of every gene in every module: index ``gene_id``, one float
        column per module id, shape (n_genes, n_modules).
    state
        What the backend needs to be reloaded: numpy arrays (saved to ``state.npz``) and
        JSON-able values (saved to ``state.json``). Backends with other state (torch weights)
        implement ``save_state(state, folder)`` / ``load_state(folder)`` themselves.
    log
        Lines for the fit folder's ``run.log`` (an external program's own messages, e.g. R's).
    """

    modules: pd.DataFrame
    edges: pd.DataFrame
    diagnostics: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)
    sample_scores: pd.DataFrame | None = None
    feature_loadings: pd.DataFrame | None = None
    soft_membership: pd.DataFrame | None = None
    state: dict[str, Any] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)


@runtime_checkable
class Backend(Protocol):
    """A module-discovery backend.

    ``name`` is the registry key; ``config_class`` is a dataclass whose fields are the
    backend's hyper-parameters (reachable from the command line as dotted overrides).

    Optional class attributes, read with ``getattr`` so a minimal backend needs none:

    - ``uses_counts: bool``: when true, ``fit`` also receives ``counts=`` (:class:`RawCounts`).
    - ``requires: tuple[str, ...]``: Python modules the backend imports inside ``fit``;
      ``install_hint: str``: what to install when one is missing.
    - ``check_dependencies()``: raise :class:`~omicsrun.InputError` in one line when a
      non-Python dependency (R) is missing.
    - ``save_state(state, folder)`` / ``load_state(folder) -> dict``: custom state I/O.
    """

    name: ClassVar[str]
    config_class: ClassVar[type]

    def fit(self, features: Any, *, config: Any, seed: int) -> BackendResult:  # features: FeatureSet
        ...


_REGISTRY: dict[str, Callable[[], Backend]] = {}
_UNAVAILABLE: dict[str, str] = {}
_BUILTIN = ("baseline", "latent", "graph", "vae", "wgcna")


def register(name: str) -> Callable[[type], type]:
    """Class decorator adding a backend to the registry under ``name``.

    Raises
    ------
    ValueError
        When another class already holds that name.
    """

    def decorate(cls: type) -> type:
        existing = _REGISTRY.get(name)
        if existing is not None and _qualname(existing) != _qualname(cls):
            msg = f"backend name {name!r} is already registered by {_qualname(existing)}"
            raise ValueError(msg)
        _REGISTRY[name] = cls
        return cls

    return decorate


def _qualname(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def _load_builtin() -> None:
    # Importing the modules registers them; optional heavy imports stay inside each fit().
    # A module that exists but imports a missing third-party package is recorded as
    # unavailable, with the line that says what to install.
    import importlib

    for module in _BUILTIN:
        if module in _REGISTRY or module in _UNAVAILABLE:
            continue
        try:
            importlib.import_module(f"isograph.backends.{module}")
        except ModuleNotFoundError as err:
            missing = err.name or "?"
            if missing == f"isograph.backends.{module}":
                continue
            top = missing.split(".")[0]
            if top == "isograph":
                raise
            _UNAVAILABLE[module] = (
                f"backend {module!r} needs the Python package {top!r}, which is not installed; "
                f"install it with: pip install {top}"
            )


def available_backends() -> list[str]:
    """Names of registered backends (backends whose module exists and imports)."""
    _load_builtin()
    return sorted(_REGISTRY)


def get_backend(name: str) -> Backend:
    """A backend instance by name.

    Raises
    ------
    InputError
        When no backend has that name, or its module needs a package that is not installed.
    """
    _load_builtin()
    if name in _UNAVAILABLE and name not in _REGISTRY:
        raise InputError(_UNAVAILABLE[name])
    if name not in _REGISTRY:
        msg = f"unknown backend {name!r}; expected one of {sorted(_REGISTRY)}"
        raise InputError(msg)
    return _REGISTRY[name]()


def check_backend_dependencies(model: Any) -> None:
    """Raise one line saying what to install when a backend's optional dependency is missing.

    Checks the Python modules in ``model.requires`` (without importing them) and calls
    ``model.check_dependencies()`` when the backend defines it (R and its packages).

    Raises
    ------
    InputError
        Naming the missing dependency and how to install it.
    """
    import importlib.util

    for module in getattr(model, "requires", ()):
        if importlib.util.find_spec(module) is None:
            hint = getattr(model, "install_hint", f"pip install {module}")
            msg = f"backend {model.name!r} needs the Python package {module!r}; install it with: {hint}"
            raise InputError(msg)
    check = getattr(model, "check_dependencies", None)
    if callable(check):
        check()


def validate_config(config: Any) -> None:
    """Call ``config.validate()`` when the config class defines it (range checks)."""
    check = getattr(config, "validate", None)
    if callable(check):
        check()


def save_backend_state(result: BackendResult, folder: Path, *, backend: str, model: Any = None) -> None:
    """Write a fitted backend into ``folder`` (a fit folder's ``backend/``), versioned.

    Files: ``backend.json`` (format, version, backend name, which outputs exist),
    ``calibration.json`` (when the backend reports calibration),
    ``sample_scores.parquet``, ``feature_loadings.parquet``, ``soft_membership.parquet``
    (those present), ``state.npz`` (array state) and ``state.json`` (other state), or whatever
    the backend's own ``save_state`` writes.
    """
    folder.mkdir(parents=True, exist_ok=True)
    outputs = {}
    for key, index_name in _OUTPUTS.items():
        frame = getattr(result, key)
        outputs[key] = frame is not None
        if frame is not None:
            table = frame.copy()
            table.columns = [str(c) for c in table.columns]
            table.index = table.index.astype(str).rename(index_name)
            table.reset_index().to_parquet(folder / f"{key}.parquet", index=False)
    custom = getattr(model, "save_state", None)
    if callable(custom):
        custom(result.state, folder)
        state_kind = "custom"
    else:
        arrays = {k: np.asarray(v) for k, v in result.state.items() if isinstance(v, np.ndarray)}
        other = {k: v for k, v in result.state.items() if k not in arrays}
        if arrays:
            np.savez(folder / "state.npz", **arrays)  # type: ignore[arg-type]
        _write_json(folder / "state.json", other)
        state_kind = "npz+json"
    if result.calibration:
        _write_json(folder / "calibration.json", result.calibration)
    _write_json(
        folder / "backend.json",
        {
            "format": BACKEND_STATE_FORMAT,
            "format_version": BACKEND_STATE_VERSION,
            "backend": backend,
            "outputs": outputs,
            "state": state_kind,
        },
    )


_OUTPUTS = {"sample_scores": "sample_id", "feature_loadings": "feature_id", "soft_membership": "gene_id"}


@dataclass(eq=False)
class FittedBackend:
    """A fitted backend loaded back from a fit folder (see :func:`load_backend_state`)."""

    backend: str
    sample_scores: pd.DataFrame | None
    feature_loadings: pd.DataFrame | None
    soft_membership: pd.DataFrame | None
    state: dict[str, Any]
    format_version: int


def load_backend_state(fit_dir: str | os.PathLike[str]) -> FittedBackend:
    """Load the fitted backend a fit folder holds in its ``backend/`` subfolder.

    Raises
    ------
    InputError
        When the folder has no ``backend/`` subfolder or its format or version is not one this
        version reads.
    """
    folder = Path(fit_dir) / BACKEND_DIR
    meta_path = folder / "backend.json"
    if not meta_path.is_file():
        msg = f"{fit_dir}: expected a fitted backend in {BACKEND_DIR}/backend.json; found none"
        raise InputError(msg)
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != BACKEND_STATE_FORMAT or meta.get("format_version") != BACKEND_STATE_VERSION:
        msg = (
            f"{meta_path}: expected format {BACKEND_STATE_FORMAT} version {BACKEND_STATE_VERSION}; "
            f"found {meta.get('format')!r} version {meta.get('format_version')!r}"
        )
        raise InputError(msg)
    frames: dict[str, pd.DataFrame | None] = {}
    for key, index_name in _OUTPUTS.items():
        path = folder / f"{key}.parquet"
        frames[key] = pd.read_parquet(path).set_index(index_name) if path.is_file() else None
    name = str(meta["backend"])
    if meta.get("state") == "custom":
        model = get_backend(name)
        state = model.load_state(folder)  # type: ignore[attr-defined]
    else:
        state = json.loads((folder / "state.json").read_text())
        if (folder / "state.npz").is_file():
            with np.load(folder / "state.npz", allow_pickle=False) as arrays:
                state.update({k: arrays[k] for k in arrays.files})
    return FittedBackend(
        backend=name,
        sample_scores=frames["sample_scores"],
        feature_loadings=frames["feature_loadings"],
        soft_membership=frames["soft_membership"],
        state=state,
        format_version=int(meta["format_version"]),
    )


def _write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    msg = f"cannot write {type(value).__name__} to JSON"
    raise TypeError(msg)


def apply_overrides(config: Any, overrides: dict[str, str], *, prefix: str) -> Any:
    """Return a copy of dataclass ``config`` with ``prefix.key=value`` overrides applied.

    Values are parsed to the field's declared type (``float | None`` accepts a number or
    ``none``; bool accepts true/false/1/0/yes/no; ``Literal[...]`` one of its values; tuples a
    comma-separated list). The result's ``validate()`` (range checks) runs when defined.

    Raises
    ------
    InputError
        For an unknown key (naming the valid ones), a value of the wrong type, or one out of range.
    """
    fields = {f.name: f for f in dataclasses.fields(config)}
    hints = typing.get_type_hints(type(config))
    changes: dict[str, Any] = {}
    for key, raw in overrides.items():
        short = key.removeprefix(f"{prefix}.")
        if short not in fields:
            valid = sorted(f"{prefix}.{k}" for k in fields)
            msg = f"unknown override key {key!r}; valid keys are {valid}"
            raise InputError(msg)
        changes[short] = _parse_typed(key, str(raw), hints.get(short, type(getattr(config, short))))
    updated = dataclasses.replace(config, **changes)
    validate_config(updated)
    return updated


def _type_name(kind: Any) -> str:
    if typing.get_origin(kind) is typing.Literal:
        return "one of " + "/".join(str(a) for a in typing.get_args(kind))
    args = typing.get_args(kind)
    if args and typing.get_origin(kind) in (Union, types.UnionType):
        return " or ".join("none" if a is type(None) else _type_name(a) for a in args)
    return getattr(kind, "__name__", str(kind))


def _parse_typed(key: str, raw: str, kind: Any) -> Any:
    try:
        return _parse_as(raw.strip(), kind)
    except (ValueError, TypeError) as err:
        msg = f"override {key}={raw!r}: expected {_type_name(kind)}, found {raw!r}"
        raise InputError(msg) from err


def _parse_as(text: str, kind: Any) -> Any:
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin in (Union, types.UnionType):
        if type(None) in args and text.lower() in {"none", "null", ""}:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _parse_as(text, option)
            except (ValueError, TypeError):
                continue
        raise ValueError(text)
    if origin is typing.Literal:
        for option in args:
            if str(option) == text:
                return option
        raise ValueError(text)
    if origin in (tuple, list):
        item = args[0] if args else str
        items = [t.strip() for t in text.strip("[]()").split(",") if t.strip()]
        return (tuple if origin is tuple else list)(_parse_as(t, item) for t in items)
    if kind is bool:
        lowered = text.lower()
        if lowered in {"true", "1", "yes", "on"}:
            return True
        if lowered in {"false", "0", "no", "off"}:
            return False
        raise ValueError(text)
    if kind is int:
        return int(text)
    if kind is float:
        value = float(text)
        if not np.isfinite(value):
            raise ValueError(text)
        return value
    if kind is str:
        return text
    if kind is type(None):
        if text.lower() in {"none", "null"}:
            return None
        raise ValueError(text)
    raise TypeError(kind)
