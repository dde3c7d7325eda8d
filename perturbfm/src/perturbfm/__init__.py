"""PerturbFM: single-cell perturbation response prediction, rigorous by default.

The hub object is :class:`perturbfm.data.PerturbDataset`; splits are hash-locked
(:mod:`perturbfm.splits`); every model predicts a mean and a variance; every evaluation
reports full metric panels (:mod:`perturbfm.eval`).
"""

from perturbfm.data.dataset import PerturbDataset

__all__ = ["PerturbDataset"]
__version__ = "0.1.0"
