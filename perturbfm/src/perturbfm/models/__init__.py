"""Models behind one contract (:class:`~perturbfm.models.base.PerturbationModel`) and a registry.

``get_model(name, **params)`` builds one; ``available_models()`` lists the names.
"""

from perturbfm.models.base import PerturbationModel, available_models, get_model, register_model

__all__ = ["PerturbationModel", "available_models", "get_model", "register_model"]
