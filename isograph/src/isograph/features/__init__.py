"""Sample x feature matrices a backend works on: switch coordinates and gene abundance.

- :func:`switch_scores`: one compositional switch coordinate per multi-isoform gene.
- :func:`log_cpm`: gene abundance on the log-CPM scale (edgeR's prior-count convention).
- :func:`covariate_design` / :func:`residualize`: nuisance covariates regressed out.
- :func:`build_features`: all of the above from a :class:`~isograph.bundle.Bundle`.
"""

from isograph.features.build import FeatureConfig, FeatureSet, build_features, default_covariates
from isograph.features.covariates import covariate_design, residualize
from isograph.features.switch import log_cpm, switch_scores

__all__ = [
    "FeatureConfig",
    "FeatureSet",
    "build_features",
    "covariate_design",
    "default_covariates",
    "log_cpm",
    "residualize",
    "switch_scores",
]
