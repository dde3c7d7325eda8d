"""``fit_bundle``: features -> backend -> module summaries; ``write_fit``: the output folder."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from isograph.annotation.names import with_gene_names
from isograph.backends.base import (
    BACKEND_DIR,
    UNASSIGNED,
    BackendResult,
    RawCounts,
    apply_overrides,
    check_backend_dependencies,
    get_backend,
    save_backend_state,
)
from isograph.bundle import Bundle
from isograph.features.build import FeatureConfig, FeatureSet, build_features, with_library_size
from isograph.fit.membership import module_membership
from isograph.fit.stats import (
    covariate_checks,
    feature_scores,
    gene_roles,
    module_eigengenes,
    nuisance_candidates,
    power_warnings,
    trait_associations,
)
from isograph.validation import check_feature_config, check_trait_values
from omicsrun import InputError
from omicsrun.atomic import output_dir, write_json, write_text
from omicsrun.errors import check_seed
from omicsrun.hashing import sha256_array, sha256_json
from omicsrun.manifest import run_manifest

FIT_FORMAT = "isograph-fit"
FIT_FORMAT_VERSION = 1
FIT_FILES = (
    "modules.parquet",
    "edges.parquet",
    "traits.parquet",
    "feature_scores.parquet",
    "eigengenes.parquet",
    "membership.parquet",
    "fit_config.json",
)


@dataclass(eq=False)
class FitResult:
    """Everything a fit produces.

    Attributes
    ----------
    modules
        ``gene_id``, ``module_id`` for every gene the backend saw (``unassigned`` when unplaced).
    edges
        ``gene_a``, ``gene_b``, ``weight``.
    traits
        ``module_id``, ``trait``, ``kind``, ``test``, ``statistic``, ``pvalue``, ``qvalue``, ``n``.
    feature_scores
        One row per feature (see :func:`isograph.fit.stats.feature_scores`).
    roles
        Channel role per module gene; ``None`` for switch-only fits.
    eigengenes
        Shape (n_samples, n_modules), index ``sample_id``.
    config
        Resolved configuration (backend, seed, feature and backend hyper-parameters, traits).
    diagnostics
        Backend diagnostics plus feature counts.
    bundle_hash
        Content hash of the bundle that was fitted.
    membership
        kME and p value of every feature in every module (see
        :func:`isograph.fit.membership.module_membership`).
    backend_result
        The fitted backend (typed optional outputs and state), saved under ``backend/``.
    """

    modules: pd.DataFrame
    edges: pd.DataFrame
    traits: pd.DataFrame
    feature_scores: pd.DataFrame
    roles: pd.DataFrame | None
    eigengenes: pd.DataFrame
    config: dict[str, Any]
    diagnostics: dict[str, Any] = field(default_factory=dict)
    bundle_hash: str = ""
    membership: pd.DataFrame | None = None
    backend_result: BackendResult | None = None
    stability: Any = None  # isograph.stability.StabilityResult when --stability was asked for


def parse_overrides(items: Sequence[str]) -> dict[str, str]:
    """``["a.b=1", ...]`` -> ``{"a.b": "1"}``.

    Raises
    ------
    InputError
        For an item without ``=`` or with an empty key.
    """
    parsed: dict[str, str] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            msg = f"malformed override {item!r}; expected key=value, e.g. baseline.min_module_size=5"
            raise InputError(msg)
        parsed[key.strip()] = value.strip()
    return parsed


def bundle_content_hash(bundle: Bundle) -> str:
    """SHA-256 over a bundle's tables and count matrices (independent of how it was stored)."""
    parts = {
        "samples": sha256_array(pd.util.hash_pandas_object(bundle.samples, index=False).to_numpy()),
        "genes": sha256_array(pd.util.hash_pandas_object(bundle.genes, index=False).to_numpy()),
        "transcripts": sha256_array(pd.util.hash_pandas_object(bundle.transcripts, index=False).to_numpy()),
        "transcript_counts": sha256_array(bundle.transcript_counts),
        "gene_counts": None if bundle.gene_counts is None else sha256_array(bundle.gene_counts),
    }
    return sha256_json(parts)


def resolve_configs(backend: str, overrides: Mapping[str, str] | None = None) -> tuple[Any, FeatureConfig]:
    """The backend and feature configs after dotted overrides.

    Parameters
    ----------
    backend
        Registered backend name.
    overrides
        ``<backend>.<field>`` or ``features.<field>`` -> value text.

    Returns
    -------
    tuple
        ``(backend_config, feature_config)``.

    Raises
    ------
    InputError
        Unknown backend, unknown override key (the message lists the valid keys), or a value
        of the wrong type.
    """
    model = get_backend(backend)
    return _resolve_configs(backend, model.config_class(), dict(overrides or {}))


def _resolve_configs(
    backend_name: str, backend_config: Any, overrides: Mapping[str, str]
) -> tuple[Any, FeatureConfig]:
    feature_keys = {k: v for k, v in overrides.items() if k.startswith("features.")}
    other = {k: v for k, v in overrides.items() if k not in feature_keys}
    valid = sorted(
        [f"features.{k}" for k in asdict(FeatureConfig())]
        + [f"{backend_name}.{k}" for k in asdict(backend_config)]
    )
    for key in other:
        if not key.startswith(f"{backend_name}.") or key.removeprefix(f"{backend_name}.") not in asdict(
            backend_config
        ):
            msg = f"unknown override key {key!r}; valid keys are {valid}"
            raise InputError(msg)
    return (
        apply_overrides(backend_config, other, prefix=backend_name),
        apply_overrides(FeatureConfig(), feature_keys, prefix="features"),
    )


def _default_traits(bundle: Bundle) -> list[str]:
    named = [
        name.strip()
        for key in ("traits", "covariates")
        for name in bundle.provenance.get(key, "").split(",")
        if name.strip()
    ]
    # Keep sample-table order, drop duplicates; fall back to every column when none is named.
    return [c for c in bundle.trait_columns() if c in set(named)] if named else bundle.trait_columns()


def fit_bundle(
    bundle: Bundle,
    *,
    backend: str = "baseline",
    seed: int = 0,
    overrides: Mapping[str, str] | None = None,
    regress_covariates: bool = True,
    covariates: Sequence[str] | None = None,
    traits: Sequence[str] | None = None,
) -> FitResult:
    """Fit modules to a bundle and summarise them.

    Parameters
    ----------
    bundle
        A validated bundle (n_samples samples, n_genes genes).
    backend
        Registered backend name (see :func:`isograph.backends.available_backends`).
    seed
        Passed to the backend.
    overrides
        Dotted ``key=value`` settings: ``<backend>.<field>`` or ``features.<field>``.
    regress_covariates
        Regress nuisance covariates out of the features.
    covariates
        Covariate columns; ``None`` uses the bundle's recorded covariates or batch/sex/age.
    traits
        Sample-table columns tested against eigengenes; ``None`` tests the traits and
        covariates the bundle records (``provenance["traits"]``/``["covariates"]``, as written
        by ``isograph import --trait/--covariate`` and by the fixtures) or, when it records
        none, every column but ``sample_id``.

    Returns
    -------
    FitResult

    Raises
    ------
    InputError
        Unknown backend, unknown or ill-typed override, unknown covariate or trait, constant
        trait.
    """
    seed = check_seed(seed)
    model = get_backend(backend)
    backend_config, feature_config = _resolve_configs(backend, model.config_class(), dict(overrides or {}))
    trait_list = list(_default_traits(bundle) if traits is None else traits)
    check_feature_config(feature_config)
    check_trait_values(bundle.samples, trait_list)
    # Check traits before any heavy work (constant or absent columns raise here).
    trait_associations(pd.DataFrame(index=range(bundle.n_samples)), bundle.samples, trait_list)
    features = build_features(
        bundle,
        pseudocount=feature_config.pseudocount,
        prior_count=feature_config.prior_count,
        min_switch_transcripts=feature_config.min_switch_transcripts,
        depth_scaled_pseudocount=feature_config.depth_scaled_pseudocount,
        regress_library_size=feature_config.regress_library_size,
        regress_covariates=regress_covariates,
        covariates=covariates,
    )
    raw = features
    if features.covariates:
        # The same features without adjustment, for the covariate checks that can fail.
        raw = build_features(
            bundle,
            pseudocount=feature_config.pseudocount,
            prior_count=feature_config.prior_count,
            min_switch_transcripts=feature_config.min_switch_transcripts,
            depth_scaled_pseudocount=feature_config.depth_scaled_pseudocount,
            regress_covariates=False,
        )
    check_backend_dependencies(model)
    extra = {"counts": raw_counts(bundle, features)} if getattr(model, "uses_counts", False) else {}
    result = model.fit(features, config=backend_config, seed=int(seed), **extra)
    return _summarise(
        bundle, features, result, backend, backend_config, feature_config, int(seed), trait_list, raw
    )


def _summarise(
    bundle: Bundle,
    features: FeatureSet,
    result: Any,
    backend: str,
    backend_config: Any,
    feature_config: FeatureConfig,
    seed: int,
    trait_list: list[str],
    raw: FeatureSet,
) -> FitResult:
    order = pd.Index(bundle.gene_ids)
    modules = result.modules.copy()
    modules["gene_id"] = modules["gene_id"].astype(str)
    # One row per bundle gene: genes the backend never saw (single-isoform genes in a
    # switch-only fit) are unassigned, in gene-table order.
    modules = (
        modules.set_index("gene_id")["module_id"]
        .astype(str)
        .reindex(order, fill_value=UNASSIGNED)
        .rename_axis("gene_id")
        .reset_index()
    )
    module_of = pd.Series(modules["module_id"].astype(str).to_numpy(), index=modules["gene_id"].to_numpy())
    feature_module = module_of.reindex(features.gene_ids.astype(str)).fillna(UNASSIGNED).to_numpy(dtype=str)
    sizes = modules.loc[modules["module_id"] != UNASSIGNED, "module_id"].value_counts()
    module_ids = sorted(sizes.index, key=lambda m: (-sizes[m], m))
    eigengenes = module_eigengenes(features, feature_module, module_ids)
    # Traits proper; regressed covariates are checked below in ways that can fail.
    regressed = list(features.covariates)
    traits = trait_associations(
        eigengenes.reset_index(drop=True), bundle.samples, [t for t in trait_list if t not in regressed]
    )
    samples = with_library_size(bundle)
    raw_module = module_of.reindex(raw.gene_ids.astype(str)).fillna(UNASSIGNED).to_numpy(dtype=str)
    raw_eigengenes = module_eigengenes(raw, raw_module, module_ids) if raw is not features else eigengenes
    checks = covariate_checks(
        raw_eigengenes,
        eigengenes,
        samples,
        regressed=regressed,
        unregressed=nuisance_candidates(samples, exclude=regressed),
    )
    traits = pd.concat([traits, checks], ignore_index=True) if len(checks) else traits
    scores = feature_scores(features, feature_module, eigengenes, result.edges)
    roles = gene_roles(features, modules, eigengenes) if features.is_multiplex else None
    membership = module_membership(features, eigengenes, feature_module)
    config = {
        "backend": backend,
        "seed": seed,
        "features": {
            **asdict(feature_config),
            "regress_covariates": bool(features.covariates),
            "covariates": list(features.covariates),
        },
        backend: asdict(backend_config),
        "traits": trait_list,
    }
    diagnostics = {
        **result.diagnostics,
        "n_samples": features.n_samples,
        "n_switch_features": int((features.feature_type == "switch").sum()),
        "n_abundance_features": int((features.feature_type == "abundance").sum()),
        "n_dropped_features": features.n_dropped,
        "residual_dof": features.dof,
        "multiplex": features.is_multiplex,
        "warnings": power_warnings(features, feature_module),
    }
    # Output tables carry gene names when the bundle knows them (isograph.annotation.names).
    named = with_gene_names(bundle.genes, modules, scores, roles, result.edges.reset_index(drop=True))
    named_modules, named_scores, roles, named_edges = named[0], named[1], named[2], named[3]
    assert (
        named_modules is not None and named_scores is not None and named_edges is not None
    )  # passed through
    return FitResult(
        modules=named_modules,
        edges=named_edges,
        traits=traits,
        feature_scores=named_scores,
        roles=roles,
        eigengenes=eigengenes,
        config=config,
        diagnostics=diagnostics,
        bundle_hash=bundle_content_hash(bundle),
        membership=membership,
        backend_result=result if isinstance(result, BackendResult) else None,
    )


def raw_counts(bundle: Bundle, features: FeatureSet) -> RawCounts:
    """The bundle's counts, columns in the feature set's sample order (for ``uses_counts`` backends)."""
    order = pd.Index(bundle.sample_ids.astype(str)).get_indexer(features.sample_ids.astype(str))
    return RawCounts(
        transcript_counts=np.asarray(bundle.transcript_counts)[:, order],
        transcript_ids=bundle.transcripts["transcript_id"].astype(str).to_numpy(),
        transcript_gene_ids=bundle.transcripts["gene_id"].astype(str).to_numpy(),
        gene_counts=None if bundle.gene_counts is None else np.asarray(bundle.gene_counts)[:, order],
        gene_ids=bundle.gene_ids.astype(str).to_numpy(),
        sample_ids=features.sample_ids.astype(str),
    )


def write_fit(result: FitResult, out_dir: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write a fit folder atomically (seed-001 layout).

    Files: ``modules.parquet``, ``edges.parquet``, ``traits.parquet``,
    ``feature_scores.parquet``, ``module_gene_roles.parquet`` (multiplex only),
    ``eigengenes.parquet`` (``sample_id`` + one column per module), ``membership.parquet``
    (kME + p of every feature in every module), ``backend/`` (the fitted backend, versioned;
    see :func:`isograph.backends.base.save_backend_state`) and ``fit_config.json`` (resolved
    config, seed, bundle hash, versions, diagnostics).

    Raises
    ------
    InputError
        When ``out_dir`` already holds results and ``overwrite`` is false.
    """
    from isograph import __version__

    with output_dir(out_dir, overwrite=overwrite, what="fit output") as tmp:
        result.modules.to_parquet(tmp / "modules.parquet", index=False)
        result.edges.to_parquet(tmp / "edges.parquet", index=False)
        result.traits.to_parquet(tmp / "traits.parquet", index=False)
        result.feature_scores.to_parquet(tmp / "feature_scores.parquet", index=False)
        result.eigengenes.reset_index().to_parquet(tmp / "eigengenes.parquet", index=False)
        if result.roles is not None:
            result.roles.to_parquet(tmp / "module_gene_roles.parquet", index=False)
        if result.membership is not None:
            result.membership.to_parquet(tmp / "membership.parquet", index=False)
        if result.backend_result is not None and result.backend_result.log:
            write_text(tmp / "run.log", "\n".join(result.backend_result.log) + "\n")
        if result.backend_result is not None:
            save_backend_state(
                result.backend_result,
                tmp / BACKEND_DIR,
                backend=str(result.config.get("backend")),
                model=get_backend(str(result.config.get("backend"))),
            )
        if result.stability is not None:
            result.stability.genes.to_parquet(tmp / "stability.parquet", index=False)
            write_json(tmp / "stability.json", result.stability.summary)
        manifest = run_manifest(
            tool="isograph",
            config=result.config,
            seed=int(result.config.get("seed", 0)),
            data_hash=result.bundle_hash,
            extra={
                "format": FIT_FORMAT,
                "format_version": FIT_FORMAT_VERSION,
                "isograph_version": __version__,
                "backend": result.config.get("backend"),
                "bundle_hash": result.bundle_hash,
                "diagnostics": result.diagnostics,
            },
        )
        write_json(tmp / "fit_config.json", manifest)
    return Path(out_dir)
