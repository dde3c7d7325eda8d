"""Fitting modules to a bundle and writing the fit folder.

- :func:`fit_bundle`: features -> backend -> eigengenes, trait tests, feature scores, roles.
- :func:`write_fit`: the seed-001 output folder, written atomically.
"""

from isograph.fit.core import (
    FIT_FORMAT,
    FIT_FORMAT_VERSION,
    FitResult,
    bundle_content_hash,
    fit_bundle,
    parse_overrides,
    resolve_configs,
    write_fit,
)
from isograph.fit.stats import (
    ROLE_THRESHOLD,
    benjamini_hochberg,
    feature_scores,
    gene_roles,
    module_eigengenes,
    trait_associations,
)

__all__ = [
    "FIT_FORMAT",
    "FIT_FORMAT_VERSION",
    "ROLE_THRESHOLD",
    "FitResult",
    "benjamini_hochberg",
    "bundle_content_hash",
    "feature_scores",
    "fit_bundle",
    "gene_roles",
    "module_eigengenes",
    "parse_overrides",
    "resolve_configs",
    "trait_associations",
    "write_fit",
]
