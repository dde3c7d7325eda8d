"""Metric panels (scPerturBench, PerturBench, uncertainty, collapse diagnostics) and the evaluator."""

from perturbfm.eval.evaluator import evaluate_predictions, validate_predictions
from perturbfm.eval.registry import MetricSpec, metric_names, metric_registry

__all__ = [
    "MetricSpec",
    "evaluate_predictions",
    "metric_names",
    "metric_registry",
    "validate_predictions",
]
