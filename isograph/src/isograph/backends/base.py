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
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import pandas as pd

from omicsrun import InputError

UNASSIGNED = "unassigned"
"""``module_id`` of genes that a backend placed in no module (WGCNA's "grey")."""


@dataclass
class BackendResult:
    """What a backend returns.

    Attributes
    ----------
    modules
        ``gene_id``, ``module_id``: one row per gene the backend saw; genes in no module carry
        :data:`UNASSIGNED`. Module ids are ``M000``, ``M001``... ordered by decreasing size.
    edges
        ``gene_a``, ``gene_b``, ``weight``: the sparse gene-gene network (may be empty).
    diagnostics
        Backend-specific numbers worth recording (thresholds, calibration, convergence).
    """

    modules: pd.DataFrame
    edges: pd.DataFrame
    diagnostics: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """A module-discovery backend.

    ``name`` is the registry key; ``config_class`` is a dataclass whose fields are the
    backend's hyper-parameters (reachable from the command line as dotted overrides).
    """

    name: ClassVar[str]
    config_class: ClassVar[type]

    def fit(self, features: Any, *, config: Any, seed: int) -> BackendResult:  # features: FeatureSet
        ...


_REGISTRY: dict[str, Callable[[], Backend]] = {}


def register(name: str) -> Callable[[type], type]:
    """Class decorator adding a backend to the registry under ``name``."""

    def decorate(cls: type) -> type:
        _REGISTRY[name] = cls
        return cls

    return decorate


def _load_builtin() -> None:
    # Importing the modules registers them; optional heavy imports stay inside each fit().
    import importlib

    for module in ("baseline", "latent", "graph", "vae", "wgcna"):
        try:
            importlib.import_module(f"isograph.backends.{module}")
        except ModuleNotFoundError as err:
            if err.name != f"isograph.backends.{module}":
                raise


def available_backends() -> list[str]:
    """Names of registered backends."""
    _load_builtin()
    return sorted(_REGISTRY)


def get_backend(name: str) -> Backend:
    """A backend instance by name.

    Raises
    ------
    InputError
        When no backend has that name.
    """
    _load_builtin()
    if name not in _REGISTRY:
        msg = f"unknown backend {name!r}; expected one of {sorted(_REGISTRY)}"
        raise InputError(msg)
    return _REGISTRY[name]()


def apply_overrides(config: Any, overrides: dict[str, str], *, prefix: str) -> Any:
    """Return a copy of dataclass ``config`` with ``prefix.key=value`` overrides applied.

    Values are parsed to the field's type (bool accepts true/false/1/0/yes/no).

    Raises
    ------
    InputError
        For an unknown key (naming the valid ones) or a value of the wrong type.
    """
    fields = {f.name: f for f in dataclasses.fields(config)}
    changes: dict[str, Any] = {}
    for key, raw in overrides.items():
        short = key.removeprefix(f"{prefix}.")
        if short not in fields:
            valid = sorted(f"{prefix}.{k}" for k in fields)
            msg = f"unknown override key {key!r}; valid keys are {valid}"
            raise InputError(msg)
        current = getattr(config, short)
        changes[short] = _parse_value(key, raw, current)
    return dataclasses.replace(config, **changes)


def _parse_value(key: str, raw: str, current: Any) -> Any:
    text = str(raw).strip()
    try:
        if isinstance(current, bool):
            lowered = text.lower()
            if lowered in {"true", "1", "yes", "on"}:
                return True
            if lowered in {"false", "0", "no", "off"}:
                return False
            raise ValueError(text)
        if isinstance(current, int):
            return int(text)
        if isinstance(current, float):
            number = float(text)
            if not math.isfinite(number):  # nan/inf would pass into numpy unnoticed
                raise ValueError(text)
            return number
        if current is None:
            if text.lower() in {"none", "null"}:
                return None
            try:
                return int(text)
            except ValueError:
                try:
                    return float(text)
                except ValueError:
                    return text
        if isinstance(current, (tuple, list)):
            items = [t for t in text.strip("[]()").split(",") if t.strip()]
            kind = type(current[0]) if current else str
            return type(current)(kind(t.strip()) for t in items)
    except ValueError as err:
        msg = f"override {key}={raw!r}: expected a {type(current).__name__}, found {raw!r}"
        raise InputError(msg) from err
    return text
