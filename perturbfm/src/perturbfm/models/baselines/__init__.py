"""Baselines (importing this package registers them): the models to beat.

``control_only``, ``global_mean``, ``per_perturbation_mean``, ``per_perturbation_context_mean``,
``ridge``, ``latent_shift``, ``additive`` and ``linear`` (Ahlmann-Eltze et al. 2025).
"""

from perturbfm.models.baselines.additive import Additive
from perturbfm.models.baselines.latent_shift import LatentShift
from perturbfm.models.baselines.linear import LinearModel, linear_model_coefficients
from perturbfm.models.baselines.means import (
    ControlOnly,
    GlobalMean,
    PerPerturbationContextMean,
    PerPerturbationMean,
)
from perturbfm.models.baselines.ridge import RidgeDelta

__all__ = [
    "Additive",
    "ControlOnly",
    "GlobalMean",
    "LatentShift",
    "LinearModel",
    "PerPerturbationContextMean",
    "PerPerturbationMean",
    "RidgeDelta",
    "linear_model_coefficients",
]
