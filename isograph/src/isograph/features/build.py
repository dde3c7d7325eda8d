"""The feature set a backend sees, built from a bundle."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from isograph.bundle import Bundle
from isograph.features.covariates import _residualize, covariate_design, with_intercept
from isograph.features.switch import log_cpm, switch_scores
from omicsrun import InputError

SWITCH = "switch"
ABUNDANCE = "abundance"
_DEFAULT_COVARIATES = ("batch", "sex", "age")
LIBRARY_SIZE = "log_library_size"
"""Name of the depth covariate: log of each sample's total transcript count."""


def log_library_size(bundle: Bundle) -> np.ndarray:
    """``log(total transcript count)`` per sample, shape (n_samples,); empty libraries get the smallest."""
    total = np.asarray(bundle.transcript_counts, dtype=np.float64).sum(axis=0)
    floor = total[total > 0].min() if (total > 0).any() else 1.0
    return np.log(np.maximum(total, floor))


def with_library_size(bundle: Bundle, samples: pd.DataFrame | None = None) -> pd.DataFrame:
    """The sample table with a ``log_library_size`` column added (unless one exists)."""
    table = (bundle.samples if samples is None else samples).copy()
    if LIBRARY_SIZE not in table.columns:
        table[LIBRARY_SIZE] = log_library_size(bundle)
    return table


@dataclass(frozen=True)
class FeatureConfig:
    """Hyper-parameters of feature construction (dotted overrides ``features.<name>``).

    Attributes
    ----------
    pseudocount
        Added to transcript counts before usage proportions.
    prior_count
        Prior count of the log-CPM abundance channel.
    min_switch_transcripts
        Genes with fewer transcripts get no switch feature.
    depth_scaled_pseudocount
        Scale the switch pseudo-count by each library's size (see
        :func:`isograph.features.switch.switch_scores`), so low-count transcripts carry no
        depth signal.
    regress_library_size
        Regress log library size out of both channels along with the covariates (recorded
        as the covariate ``log_library_size``). On by default: with the depth-scaled
        pseudo-count alone, eigengenes of 60 random gene sets on a null with a 10x library
        range still correlate with log library size at p < 0.05 in 14-25 of them (3 expected); with
        the regression in 0 of 60, at no cost in planted recovery (README, "Depth").
    """

    pseudocount: float = 0.5
    prior_count: float = 2.0
    min_switch_transcripts: int = 2
    depth_scaled_pseudocount: bool = True
    regress_library_size: bool = True


@dataclass(frozen=True, eq=False)
class FeatureSet:
    """Standardised, covariate-adjusted features (samples x features).

    Attributes
    ----------
    matrix
        Shape (n_samples, n_features), float32; every column has mean 0 and variance 1.
    feature_ids
        ``"<gene_id>:switch"`` or ``"<gene_id>:abundance"``, shape (n_features,).
    feature_type
        ``"switch"`` or ``"abundance"`` per feature, shape (n_features,).
    gene_ids
        Gene of each feature, shape (n_features,).
    sample_ids
        Shape (n_samples,).
    covariates
        Sample-table columns regressed out (empty when none).
    dof
        Residual degrees of freedom: n_samples minus the rank of ``[1, covariates]``.
    n_dropped
        Features dropped because they were constant after adjustment.
    """

    matrix: np.ndarray
    feature_ids: np.ndarray
    feature_type: np.ndarray
    gene_ids: np.ndarray
    sample_ids: np.ndarray
    covariates: tuple[str, ...] = ()
    dof: int = 0
    n_dropped: int = 0

    @property
    def n_samples(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.matrix.shape[1])

    @property
    def is_multiplex(self) -> bool:
        """True when both channels are present."""
        return bool((self.feature_type == ABUNDANCE).any() and (self.feature_type == SWITCH).any())

    def table(self) -> pd.DataFrame:
        """``feature_id``, ``gene_id``, ``feature_type`` per feature."""
        return pd.DataFrame(
            {"feature_id": self.feature_ids, "gene_id": self.gene_ids, "feature_type": self.feature_type}
        )


def default_covariates(bundle: Bundle) -> list[str]:
    """Covariates to regress out when the caller names none.

    ``provenance["covariates"]`` (comma-separated) when the bundle names at least one,
    otherwise (no record, or an empty one as ``isograph import`` without ``--covariate``
    writes) any sample-table column named batch, sex or age (case-insensitive).
    """
    recorded = [c.strip() for c in bundle.provenance.get("covariates", "").split(",") if c.strip()]
    if recorded:
        return recorded
    return [c for c in bundle.trait_columns() if str(c).lower() in _DEFAULT_COVARIATES]


def build_features(
    bundle: Bundle,
    *,
    pseudocount: float = 0.5,
    prior_count: float = 2.0,
    regress_covariates: bool = True,
    covariates: Sequence[str] | None = None,
    min_switch_transcripts: int = 2,
    depth_scaled_pseudocount: bool = True,
    regress_library_size: bool = True,
) -> FeatureSet:
    """Switch (and, with gene counts, abundance) features of a bundle.

    Parameters
    ----------
    bundle
        A validated bundle with n_samples samples.
    pseudocount
        Added to transcript counts before usage proportions (must be > 0).
    prior_count
        Prior count of log-CPM (must be > 0).
    regress_covariates
        Regress nuisance covariates (and, with ``regress_library_size``, log library size)
        out of both channels; ``False`` gives the unadjusted features.
    covariates
        Sample-table columns to regress out; ``None`` uses :func:`default_covariates`.
    min_switch_transcripts
        Genes with fewer transcripts get no switch feature (at least 2).
    depth_scaled_pseudocount
        Scale the switch pseudo-count by library size.
    regress_library_size
        Also regress log library size (recorded in ``covariates`` as ``log_library_size``)
        when covariates are regressed at all.

    Returns
    -------
    FeatureSet
        Switch features (gene-table order) followed by abundance features (gene-table order).

    Raises
    ------
    InputError
        For a bad hyper-parameter, an unknown covariate column, too many covariates for the
        samples, or a bundle that yields no feature.
    """
    if not pseudocount > 0:
        msg = f"pseudocount must be > 0; found {pseudocount}"
        raise InputError(msg)
    if not prior_count > 0:
        msg = f"prior_count must be > 0; found {prior_count}"
        raise InputError(msg)
    if int(min_switch_transcripts) < 2:
        msg = f"min_switch_transcripts must be at least 2; found {min_switch_transcripts}"
        raise InputError(msg)
    columns = list(default_covariates(bundle) if covariates is None else covariates)
    if not regress_covariates:
        columns = []
    elif regress_library_size and LIBRARY_SIZE not in columns:
        columns.append(LIBRARY_SIZE)
    design, _ = covariate_design(with_library_size(bundle), columns)
    full = with_intercept(design)
    dof = bundle.n_samples - int(np.linalg.matrix_rank(full))

    gene_ids = bundle.gene_ids.to_numpy()
    codes = pd.Index(gene_ids).get_indexer(bundle.transcripts["gene_id"].astype(str))
    switch, switch_codes = switch_scores(
        bundle.transcript_counts,
        codes,
        pseudocount=pseudocount,
        min_transcripts=int(min_switch_transcripts),
        design=full if columns else None,
        library_size=np.exp(log_library_size(bundle)) if depth_scaled_pseudocount else None,
    )
    blocks = [switch]
    kinds = [np.full(switch.shape[1], SWITCH)]
    genes = [gene_ids[switch_codes]]
    if bundle.gene_counts is not None:
        abundance = log_cpm(bundle.gene_counts, prior_count=prior_count)
        blocks.append(abundance)
        kinds.append(np.full(abundance.shape[1], ABUNDANCE))
        genes.append(gene_ids)
    values = np.hstack(blocks)
    if columns:
        # Switch columns are already residual; one lstsq over everything keeps it simple and exact.
        values = _residualize(values, full)
    values -= values.mean(axis=0)
    scale = values.std(axis=0)
    keep = scale > 1e-9 * max(1.0, float(np.abs(values).max(initial=0.0)))
    if not keep.any():
        msg = (
            f"bundle {bundle.dataset_name!r} yields no variable feature: no gene with "
            f">= {min_switch_transcripts} transcripts varies across samples"
            + ("" if bundle.gene_counts is not None else " and there are no gene counts")
        )
        raise InputError(msg)
    matrix = (values[:, keep] / scale[keep]).astype(np.float32)
    kind = np.concatenate(kinds)[keep]
    gene = np.concatenate(genes)[keep].astype(str)
    return FeatureSet(
        matrix=matrix,
        feature_ids=np.char.add(np.char.add(gene, ":"), kind.astype(str)).astype(object),
        feature_type=kind.astype(object),
        gene_ids=gene.astype(object),
        sample_ids=bundle.sample_ids.to_numpy().astype(object),
        covariates=tuple(columns),
        dof=dof,
        n_dropped=int((~keep).sum()),
    )
