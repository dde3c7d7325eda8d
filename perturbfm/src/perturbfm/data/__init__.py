"""Datasets: the validated hub object, its artifact format, importers and generators."""

from perturbfm.data.artifact import dataset_hash, list_graphs, load_dataset, save_dataset
from perturbfm.data.dataset import CONTROL_ID, OBS_REQUIRED, PerturbDataset
from perturbfm.data.graph import load_graph, save_graph
from perturbfm.data.h5ad import import_h5ad
from perturbfm.data.summary import describe_dataset
from perturbfm.data.synthetic import make_synthetic, synthetic_graph

__all__ = [
    "CONTROL_ID",
    "OBS_REQUIRED",
    "PerturbDataset",
    "dataset_hash",
    "describe_dataset",
    "import_h5ad",
    "list_graphs",
    "load_dataset",
    "load_graph",
    "make_synthetic",
    "save_dataset",
    "save_graph",
    "synthetic_graph",
]
