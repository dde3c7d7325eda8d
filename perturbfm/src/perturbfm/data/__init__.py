"""Datasets: the validated hub object, its artifact format, importers and generators."""

from perturbfm.data.dataset import OBS_REQUIRED, PerturbDataset

__all__ = ["OBS_REQUIRED", "PerturbDataset"]
