"""The registry of models by name, kept apart from the base class.

The base module defines the contract and imports no plug-in; this module knows where the
plug-ins live. Baselines register themselves when :mod:`perturbfm.models.baselines` is
imported; the torch models (``perturbfm-v0`` ... ``perturbfm-v3``) are listed here by
import path and imported only when one is asked for, so ``import perturbfm`` never pulls
in torch.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from omicsrun import InputError

if TYPE_CHECKING:
    from perturbfm.models.base import PerturbationModel

_REGISTRY: dict[str, type[PerturbationModel]] = {}
_M = TypeVar("_M", bound="type[PerturbationModel]")

# Lazily imported plug-ins: name -> module that registers it on import.
_LAZY: dict[str, str] = {
    "perturbfm-v0": "perturbfm.models.neural.models",
    "perturbfm-v1": "perturbfm.models.neural.models",
    "perturbfm-v2": "perturbfm.models.neural.models",
    "perturbfm-v3": "perturbfm.models.neural.models",
}


def register_model(name: str) -> Callable[[_M], _M]:
    """Class decorator adding a model to the registry under ``name``."""

    def deco(cls: _M) -> _M:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def _ensure_builtin() -> None:
    import perturbfm.models.baselines  # noqa: F401  (registers the baselines)


def _model_class(name: str) -> type[PerturbationModel]:
    _ensure_builtin()
    if name not in _REGISTRY and name in _LAZY:
        try:
            importlib.import_module(_LAZY[name])
        except ImportError as err:
            msg = f"model {name!r} needs PyTorch ({err}); install it with: pip install torch==2.13.0"
            raise InputError(msg) from None
    if name not in _REGISTRY:
        msg = f"unknown model {name!r}; available models are {available_models()}"
        raise InputError(msg)
    return _REGISTRY[name]


def available_models() -> list[str]:
    """Names of every model, registered or importable on demand, sorted."""
    _ensure_builtin()
    return sorted(set(_REGISTRY) | set(_LAZY))


def get_model(name: str, **params: Any) -> PerturbationModel:
    """A new, unfitted model by registry name.

    Raises
    ------
    InputError
        When ``name`` is not registered, or a parameter is not one the model accepts.
    """
    cls = _model_class(name)
    accepted = cls._param_names()
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        msg = f"model {name!r} has no parameter {unknown[0]!r}; its parameters are {accepted}"
        raise InputError(msg)
    from omicsrun.validate import check_like_default

    defaults = {p.name: p.default for p in inspect.signature(cls.__init__).parameters.values()}
    for key, value in params.items():  # a number where a number is expected, finite
        check_like_default(value, defaults.get(key), f"model {name!r} parameter {key!r}")
    model = cls(**params)
    model.check_params()
    return model


def model_class(name: str) -> type[PerturbationModel]:
    """The class registered under ``name`` (imports a lazy plug-in)."""
    return _model_class(name)


__all__ = ["available_models", "get_model", "model_class", "register_model"]
