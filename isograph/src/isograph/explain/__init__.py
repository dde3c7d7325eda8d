"""Explain modules: driver genes, transcript polarity, high-vs-low contrasts, plots, attributions."""

from isograph.explain.core import ExplainConfig, ExplainResult, explain_module

__all__ = ["ExplainConfig", "ExplainResult", "explain_module"]
