"""Models behind one contract (:class:`~perturbfm.models.base.PerturbationModel`) and a registry.

``get_model(name, **params)`` builds one; ``available_models()`` lists the names;
``load_model(folder)`` reads a saved one.
"""

from perturbfm.models.base import PerturbationModel, load_model
from perturbfm.models.registry import available_models, get_model, model_class, register_model

__all__ = [
    "PerturbationModel",
    "available_models",
    "get_model",
    "load_model",
    "model_class",
    "register_model",
]
