"""Run folders: train a baseline or evaluate predictions on a frozen split, with full provenance."""

from perturbfm.runs.core import RunInputs, eval_predictions, load_run_inputs, train_baseline
from perturbfm.runs.ids import make_run_id, unique_run_dir
from perturbfm.runs.predictions import load_predictions, write_predictions
from perturbfm.runs.training import train_model

__all__ = [
    "RunInputs",
    "eval_predictions",
    "load_predictions",
    "load_run_inputs",
    "make_run_id",
    "train_baseline",
    "train_model",
    "unique_run_dir",
    "write_predictions",
]
