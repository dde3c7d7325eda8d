"""Module summaries shared by every backend: eigengenes, trait tests, feature scores, roles."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from isograph.backends.base import UNASSIGNED
from isograph.features.build import ABUNDANCE, SWITCH, FeatureSet
from isograph.network.eigengenes import eigengene_matrix
from isograph.network.eigengenes import standardize as _standardize
from omicsrun import InputError

ROLE_THRESHOLD = 0.2
"""|r| with the module eigengene at which a channel counts as active in a gene's role."""


def module_eigengenes(
    features: FeatureSet, feature_module: np.ndarray, module_ids: Sequence[str]
) -> pd.DataFrame:
    """First principal component of each module's standardised features.

    Parameters
    ----------
    features
        Feature set, matrix of shape (n_samples, n_features).
    feature_module
        Module id of each feature (its gene's module), shape (n_features,).
    module_ids
        Modules to summarise (one loop step per module, not per gene).

    Returns
    -------
    pandas.DataFrame
        Shape (n_samples, n_modules), index ``sample_id``; each column has mean 0, variance 1,
        and its sign makes it correlate positively with the module's mean feature.
    """
    z = _standardize(np.asarray(features.matrix, dtype=np.float64))
    out = eigengene_matrix(z, np.asarray(feature_module), np.asarray(module_ids))
    frame = pd.DataFrame(out, columns=list(module_ids))
    frame.index = pd.Index(features.sample_ids.astype(str), name="sample_id")
    return frame


def correlate_columns(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlations of every column of ``a`` (n x p) with every column of ``b`` (n x k): (p, k)."""
    return _standardize(a).T @ _standardize(b) / a.shape[0]


def benjamini_hochberg(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q values (NaN p values stay NaN and do not count), shape like input."""
    p = np.asarray(pvalues, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return q
    order = np.argsort(p[ok])
    ranked = p[ok][order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    values = np.empty(m)
    values[order] = np.minimum(ranked, 1.0)
    q[ok] = values
    return q


def trait_associations(
    eigengenes: pd.DataFrame,
    samples: pd.DataFrame,
    traits: Sequence[str],
    *,
    regressed: Sequence[str] = (),
) -> pd.DataFrame:
    """Test every module eigengene against every trait.

    Numeric traits with more than two values: Pearson r (t test on n - 2 df). Two-level
    traits: Welch t, positive when the eigengene is higher in the second level (sorted).
    More levels: one-way ANOVA F. Samples missing the trait are left out of its tests;
    categorical traits whose levels all have one sample (identifiers) are skipped.

    Parameters
    ----------
    eigengenes
        Shape (n_samples, n_modules), rows in sample-table order.
    samples
        Sample table (n_samples rows).
    traits
        Columns to test.
    regressed
        Covariates regressed out of the features. Their rows are kept as a check (they should
        show no association) with ``kind`` ``"covariate"``, and their BH correction is done
        apart from the traits', so these near-certain nulls do not dilute the traits' q values.

    Returns
    -------
    pandas.DataFrame
        ``module_id``, ``trait``, ``kind`` (``trait``/``covariate``), ``test``, ``statistic``,
        ``pvalue``, ``qvalue`` (BH within each kind), ``n``.

    Raises
    ------
    InputError
        For a trait absent from the sample table, or one that is constant.
    """
    columns = ["module_id", "trait", "kind", "test", "statistic", "pvalue", "qvalue", "n"]
    available = [c for c in map(str, samples.columns) if c != "sample_id"]
    for trait in traits:
        if trait not in samples.columns:
            msg = f"trait column {trait!r} is not in the sample table; columns are {available}"
            raise InputError(msg)
        if samples[trait].nunique(dropna=True) < 2:
            msg = (
                f"trait column {trait!r} is constant (values {list(samples[trait].dropna().unique()[:3])}); "
                "a constant trait cannot be tested: drop it from the sample table or the trait list"
            )
            raise InputError(msg)
    e = eigengenes.to_numpy(dtype=np.float64)
    modules = np.asarray(eigengenes.columns, dtype=str)
    frames = []
    for trait in traits:
        values = samples[trait]
        keep = values.notna().to_numpy()
        result = _test_trait(e[keep], values[keep])
        if result is None:
            continue
        test, statistic, pvalue = result
        frames.append(
            pd.DataFrame(
                {
                    "module_id": modules,
                    "trait": str(trait),
                    "kind": "covariate" if trait in set(regressed) else "trait",
                    "test": test,
                    "statistic": statistic,
                    "pvalue": pvalue,
                    "n": int(keep.sum()),
                }
            )
        )
    if not frames or not len(modules):
        return pd.DataFrame(
            {
                c: pd.Series(dtype=object if c in ("module_id", "trait", "kind", "test") else float)
                for c in columns
            }
        )
    table = pd.concat(frames, ignore_index=True)
    table["qvalue"] = np.nan
    for _, rows in table.groupby("kind").groups.items():
        table.loc[rows, "qvalue"] = benjamini_hochberg(table.loc[rows, "pvalue"].to_numpy())
    return table[columns]


def _test_trait(e: np.ndarray, values: pd.Series) -> tuple[str, np.ndarray, np.ndarray] | None:
    n = len(values)
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    levels, codes = np.unique(
        values.astype(str).to_numpy() if not numeric else values.to_numpy(), return_inverse=True
    )
    n_levels = len(levels)
    if numeric and n_levels > 2:
        r = correlate_columns(values.to_numpy(dtype=np.float64)[:, None], e)[0]
        r = np.clip(r, -1.0, 1.0)
        df = n - 2
        with np.errstate(divide="ignore"):
            t = r * np.sqrt(df / np.maximum(1.0 - r * r, 0.0))
        return "pearson", r, 2.0 * stats.t.sf(np.abs(t), df)
    sizes = np.bincount(codes, minlength=n_levels)
    if n_levels == 2:
        if sizes.min() < 2:
            return None
        a, b = e[codes == 0], e[codes == 1]
        va, vb = a.var(axis=0, ddof=1) / len(a), b.var(axis=0, ddof=1) / len(b)
        se = np.sqrt(va + vb)
        t = (b.mean(axis=0) - a.mean(axis=0)) / se
        df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
        return "welch_t", t, 2.0 * stats.t.sf(np.abs(t), df)
    if n - n_levels < 1:
        return None
    grand = e.mean(axis=0)
    sums = np.zeros((n_levels, e.shape[1]))
    np.add.at(sums, codes, e)
    means = sums / sizes[:, None]
    between = (sizes[:, None] * (means - grand) ** 2).sum(axis=0)
    within = ((e - means[codes]) ** 2).sum(axis=0)
    df_b, df_w = n_levels - 1, n - n_levels
    f = (between / df_b) / (within / df_w)
    return "anova_f", f, stats.f.sf(f, df_b, df_w)


def feature_scores(
    features: FeatureSet, feature_module: np.ndarray, eigengenes: pd.DataFrame, edges: pd.DataFrame
) -> pd.DataFrame:
    """Per-feature scores.

    Returns
    -------
    pandas.DataFrame
        ``feature_id``, ``gene_id``, ``feature_type``, ``module_id``, ``kme`` (Pearson r with the
        own module's eigengene; NaN when unassigned), ``abs_kme``, ``max_abs_r_other`` (largest
        |r| with another module's eigengene), ``degree`` and ``connectivity`` (number and sum of
        |weight| of the gene's edges).
    """
    table = features.table()
    table["module_id"] = feature_module
    n_features = features.n_features
    kme = np.full(n_features, np.nan)
    other = np.full(n_features, np.nan)
    if eigengenes.shape[1]:
        r = correlate_columns(np.asarray(features.matrix, dtype=np.float64), eigengenes.to_numpy())
        column = pd.Index(eigengenes.columns).get_indexer(pd.Index(feature_module))
        has = column >= 0
        kme[has] = r[np.flatnonzero(has), column[has]]
        masked = np.abs(r)
        masked[np.flatnonzero(has), column[has]] = -np.inf
        if r.shape[1] > 1:
            other = masked.max(axis=1)
    table["kme"] = kme
    table["abs_kme"] = np.abs(kme)
    table["max_abs_r_other"] = other
    ends = pd.concat([edges["gene_a"], edges["gene_b"]], ignore_index=True).astype(str)
    weights = np.abs(np.r_[edges["weight"].to_numpy(), edges["weight"].to_numpy()])
    degree = ends.value_counts()
    strength = pd.Series(weights, index=ends.to_numpy()).groupby(level=0).sum()
    genes = table["gene_id"].astype(str)
    table["degree"] = degree.reindex(genes).fillna(0).to_numpy(dtype=np.int64)
    table["connectivity"] = strength.reindex(genes).fillna(0.0).to_numpy(dtype=np.float64)
    return table


def gene_roles(features: FeatureSet, modules: pd.DataFrame, eigengenes: pd.DataFrame) -> pd.DataFrame:
    """Channel role of each module gene (multiplex fits).

    ``switch_r``/``abundance_r``: Pearson r of the gene's switch/abundance feature with its
    module eigengene (NaN when the gene lacks that feature); ``switch_abundance_r``: r between
    the two features; a channel is active when |r| >= 0.2. Roles: ``coupled`` (both active,
    same sign), ``discordant`` (both active, opposite signs), ``switch_only``,
    ``abundance_only``, ``inactive``.

    Returns
    -------
    pandas.DataFrame
        ``module_id``, ``gene_id``, ``module_role``, ``switch_r``, ``abundance_r``,
        ``switch_abundance_r``, ``switch_active``, ``abundance_active``; one row per assigned gene.
    """
    placed = modules[modules["module_id"] != UNASSIGNED].reset_index(drop=True)
    genes = placed["gene_id"].astype(str).to_numpy()
    column = pd.Index(eigengenes.columns).get_indexer(pd.Index(placed["module_id"]))
    e = _standardize(eigengenes.to_numpy(dtype=np.float64))
    z = _standardize(np.asarray(features.matrix, dtype=np.float64))
    n = z.shape[0]

    def channel(kind: str) -> np.ndarray:
        mask = features.feature_type == kind
        where = pd.Index(features.gene_ids[mask].astype(str)).get_indexer(genes)
        values = np.full((n, len(genes)), np.nan)
        values[:, where >= 0] = z[:, np.flatnonzero(mask)[where[where >= 0]]]
        return values

    sw, ab = channel(SWITCH), channel(ABUNDANCE)
    eig = e[:, column]
    switch_r = (sw * eig).sum(axis=0) / n
    abundance_r = (ab * eig).sum(axis=0) / n
    both_r = (sw * ab).sum(axis=0) / n
    switch_active = np.abs(np.nan_to_num(switch_r)) >= ROLE_THRESHOLD
    abundance_active = np.abs(np.nan_to_num(abundance_r)) >= ROLE_THRESHOLD
    same = np.sign(np.nan_to_num(switch_r)) == np.sign(np.nan_to_num(abundance_r))
    role = np.select(
        [
            switch_active & abundance_active & same,
            switch_active & abundance_active,
            switch_active,
            abundance_active,
        ],
        ["coupled", "discordant", "switch_only", "abundance_only"],
        default="inactive",
    )
    return pd.DataFrame(
        {
            "module_id": placed["module_id"].astype(str).to_numpy(),
            "gene_id": genes,
            "module_role": role,
            "switch_r": switch_r,
            "abundance_r": abundance_r,
            "switch_abundance_r": both_r,
            "switch_active": switch_active,
            "abundance_active": abundance_active,
        }
    )


def covariate_checks(
    raw_eigengenes: pd.DataFrame,
    adjusted_eigengenes: pd.DataFrame,
    samples: pd.DataFrame,
    *,
    regressed: Sequence[str],
    unregressed: Sequence[str],
) -> pd.DataFrame:
    """Covariate checks that can fail.

    The eigengene of a module built from covariate-adjusted features is orthogonal to every
    regressed covariate by construction, so testing it against them says nothing. Two tests
    that can fail instead:

    - ``covariate_before``: the module's eigengene recomputed from the *unadjusted* features
      (same members) against every covariate, regressed or not: how much of the module the
      covariate carried before adjustment (a module that is a batch effect shows here);
    - ``covariate_after``: the adjusted eigengene against covariates that were *not*
      regressed (library size when it was not regressed, and the batch/sex/age-like columns
      no one named): a nuisance left in the data shows here.

    Tests as in :func:`trait_associations`; BH within each kind.

    Parameters
    ----------
    raw_eigengenes, adjusted_eigengenes
        Shape (n_samples, n_modules), rows in sample-table order, same columns.
    samples
        Sample table (with ``log_library_size`` when it is to be checked).
    regressed
        Covariates regressed out of the features.
    unregressed
        Nuisance columns that were not regressed.

    Returns
    -------
    pandas.DataFrame
        Columns of :func:`trait_associations`; ``kind`` is ``covariate_before`` or
        ``covariate_after``.
    """
    parts = []
    usable = [c for c in (*regressed, *unregressed) if c in samples.columns and samples[c].nunique() > 1]
    after = [c for c in unregressed if c in usable]
    for kind, eigengenes, columns in (
        ("covariate_before", raw_eigengenes, usable),
        ("covariate_after", adjusted_eigengenes, after),
    ):
        if not columns or not eigengenes.shape[1]:
            continue
        table = trait_associations(eigengenes.reset_index(drop=True), samples, columns)
        table["kind"] = kind
        parts.append(table)
    if not parts:
        return trait_associations(pd.DataFrame(index=samples.index), samples, [])
    return pd.concat(parts, ignore_index=True)


def nuisance_candidates(samples: pd.DataFrame, *, exclude: Sequence[str]) -> list[str]:
    """Columns worth checking as unregressed nuisance: batch/sex/age-like names and library size."""
    names = ("batch", "sex", "age", "log_library_size", "lane", "run", "centre", "center", "site", "lab")
    skip = set(exclude)
    return [c for c in map(str, samples.columns) if c.lower() in names and c not in skip]


def power_warnings(features: FeatureSet, feature_module: np.ndarray, *, alpha: float = 10.0) -> list[str]:
    """Plain-language warnings when a channel has too few samples to detect anything.

    For each channel: the |correlation| a pair of its features needs to pass a
    Bonferroni bound of ``alpha`` expected false edges over all its pairs at the residual
    degrees of freedom (the t test of a correlation); a warning when that exceeds 0.8 (only
    near-duplicates would pass), and one when no feature of the channel is in any module.

    Returns
    -------
    list of str
        Empty when nothing needs saying.
    """
    out = []
    dof = max(int(features.dof) - 2, 1)
    for channel in (SWITCH, ABUNDANCE):
        mask = features.feature_type == channel
        m = int(mask.sum())
        if m < 2:
            continue
        pairs = m * (m - 1) / 2
        t = float(stats.t.isf(min(alpha / (2.0 * pairs), 0.5), dof))
        r_needed = t / np.sqrt(t * t + dof)
        if r_needed > 0.8:
            out.append(
                f"{channel} channel: {features.dof} residual degrees of freedom; a pairwise edge among "
                f"{m:,} features needs |r| >= {r_needed:.2f} (Bonferroni, {alpha:g} false edges expected), "
                "so edge-based networks have almost no power here; modules rest on "
                "permutation-calibrated factors where the backend supports them"
            )
        if not (np.asarray(feature_module)[mask] != UNASSIGNED).any():
            out.append(f"{channel} channel: no feature is in any module ({features.dof} residual dof)")
    return out
