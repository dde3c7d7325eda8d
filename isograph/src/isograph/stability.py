"""Stability selection for any backend: refit on subsamples, score each gene and module.

A module found once on 24 samples may be an accident of those samples. Refitting on N
subsamples (without replacement, ``fraction`` of the samples, stratified by a design column
when one is given so every condition keeps its share) and asking how often each gene stays
with its full-data module mates separates programs that hold from ones that do not
(Meinshausen and Buhlmann 2010 for the idea; the co-membership score is the consensus
clustering one of Monti et al. 2003, restricted to the full-data modules so that no gene x gene
matrix is formed).

Definitions, for a gene g in full-data module M (|M| >= 2) and resample r:
``co_r(g) = (#{h in M, h != g : label_r(h) == label_r(g)}) / (|M| - 1)``, and 0 when g is
unassigned in r. Gene stability is the mean of ``co_r(g)`` over resamples; module stability
is the mean over its genes. The consensus partition keeps a gene in its module when its
stability is at least ``consensus_threshold`` (0.5: it stays with most of its mates in most
resamples) and leaves it unassigned otherwise. Each resample is one task for
:func:`omicsrun.parallel.run_tasks` (serial, a local Dask cluster, an existing scheduler, or
SLURM through dask-jobqueue, with no code change).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from isograph.backends.base import UNASSIGNED
from isograph.bundle import Bundle
from omicsrun import InputError
from omicsrun.parallel import run_tasks

STABILITY_FORMAT = "isograph-stability"
STABILITY_FORMAT_VERSION = 1


@dataclass(frozen=True, eq=False)
class StabilityResult:
    """Per-gene and per-module stability and the consensus partition.

    Attributes
    ----------
    genes
        ``gene_id``, ``module_id`` (full data), ``stability`` (NaN when unassigned),
        ``consensus_module_id``.
    modules
        ``module_id``, ``n_genes``, ``stability``, ``n_consensus_genes``, ``best_match_jaccard``
        (mean over resamples of the best Jaccard overlap with a resample module).
    summary
        JSON-ready record: settings, resample sample lists' sizes, module table.
    """

    genes: pd.DataFrame
    modules: pd.DataFrame
    summary: dict[str, Any]


def default_strata(bundle: Bundle) -> str | None:
    """The first recorded trait that is categorical with every level seen at least twice, else ``None``."""
    for name in (t.strip() for t in bundle.provenance.get("traits", "").split(",")):
        if name and name in bundle.samples.columns:
            values = bundle.samples[name]
            numeric = pd.api.types.is_numeric_dtype(values) and values.nunique() > 10
            if not numeric and values.value_counts().min() >= 2:
                return name
    return None


def subsample_indices(
    n_samples: int,
    *,
    n_resamples: int,
    fraction: float,
    seed: int,
    strata: Sequence[Any] | None = None,
) -> list[np.ndarray]:
    """Sorted sample indices of each subsample (without replacement, stratified when asked).

    Each stratum keeps ``round(fraction * size)`` samples (at least 2 when it has 2).

    Raises
    ------
    InputError
        For a fraction outside (0, 1), fewer than one resample, or strata of the wrong length.
    """
    if not 0 < fraction < 1:
        msg = f"stability fraction must be in (0, 1); found {fraction}"
        raise InputError(msg)
    if n_resamples < 1:
        msg = f"number of stability resamples must be at least 1; found {n_resamples}"
        raise InputError(msg)
    codes = np.zeros(n_samples, dtype=np.int64)
    if strata is not None:
        if len(strata) != n_samples:
            msg = f"strata must have one value per sample ({n_samples}); found {len(strata)}"
            raise InputError(msg)
        _, codes = np.unique(np.asarray(strata).astype(str), return_inverse=True)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_resamples):
        chosen = []
        for level in np.unique(codes):
            members = np.flatnonzero(codes == level)
            take = round(fraction * len(members))
            take = min(len(members), max(take, min(2, len(members))))
            chosen.append(rng.choice(members, size=take, replace=False))
        out.append(np.sort(np.concatenate(chosen)))
    return out


def subset_bundle(bundle: Bundle, index: np.ndarray) -> Bundle:
    """The bundle restricted to the samples at ``index`` (tables and counts; truth kept)."""
    return Bundle(
        samples=bundle.samples.iloc[index].reset_index(drop=True),
        genes=bundle.genes,
        transcripts=bundle.transcripts,
        transcript_counts=np.asarray(bundle.transcript_counts)[:, index],
        gene_counts=None if bundle.gene_counts is None else np.asarray(bundle.gene_counts)[:, index],
        truth=bundle.truth,
        dataset_name=bundle.dataset_name,
        suite_name=bundle.suite_name,
        description=bundle.description,
        provenance=dict(bundle.provenance),
    )


def _fit_subsample(task: dict[str, Any]) -> np.ndarray:
    from isograph.fit.core import fit_bundle

    result = fit_bundle(subset_bundle(task["bundle"], task["index"]), **task["fit_kwargs"])
    labels = result.modules.set_index("gene_id")["module_id"].astype(str)
    return labels.reindex(task["gene_ids"]).fillna(UNASSIGNED).to_numpy(dtype=str)


def co_membership(full: np.ndarray, resample: np.ndarray) -> np.ndarray:
    """``co_r(g)`` of every gene (NaN where unassigned in the full fit or alone there), shape (n_genes,).

    Parameters
    ----------
    full, resample
        Module ids of every gene (``unassigned`` for none), shape (n_genes,).
    """
    full = np.asarray(full, dtype=str)
    resample = np.asarray(resample, dtype=str)
    out = np.full(len(full), np.nan)
    placed = full != UNASSIGNED
    if not placed.any():
        return out
    table = pd.DataFrame({"full": full[placed], "res": resample[placed]})
    size = table.groupby("full")["res"].transform("size").to_numpy()
    together = table.groupby(["full", "res"])["res"].transform("size").to_numpy()
    value = np.where(table["res"].to_numpy() == UNASSIGNED, 0.0, (together - 1) / np.maximum(size - 1, 1))
    value = np.where(size > 1, value, np.nan)
    out[placed] = value
    return out


def _best_jaccard(full: np.ndarray, resample: np.ndarray) -> pd.Series:
    placed = full != UNASSIGNED
    table = pd.crosstab(full[placed], resample[placed])
    table = table.drop(columns=[UNASSIGNED], errors="ignore")
    sizes_full = pd.Series(full[placed]).value_counts()
    sizes_res = pd.Series(resample[resample != UNASSIGNED]).value_counts()
    if table.shape[1] == 0:
        return pd.Series(0.0, index=sizes_full.index)
    inter = table.to_numpy(dtype=np.float64)
    union = (
        sizes_full.reindex(table.index).to_numpy()[:, None]
        + sizes_res.reindex(table.columns).to_numpy()[None, :]
        - inter
    )
    return pd.Series((inter / union).max(axis=1), index=table.index)


def stability_selection(
    bundle: Bundle,
    full_modules: pd.DataFrame,
    *,
    n_resamples: int,
    fraction: float = 0.8,
    strata_key: str | None = None,
    seed: int = 0,
    consensus_threshold: float = 0.5,
    fit_kwargs: Mapping[str, Any] | None = None,
    cluster: str = "serial",
    n_workers: int | None = None,
    progress: Any = None,
) -> StabilityResult:
    """Refit on subsamples and score the full fit's modules.

    Parameters
    ----------
    bundle
        The fitted bundle (n_samples samples).
    full_modules
        ``gene_id``, ``module_id`` of the full-data fit (every bundle gene).
    n_resamples
        Subsamples to refit.
    fraction
        Share of the samples (of each stratum) in a subsample.
    strata_key
        Sample-table column to stratify by (the design), or ``None``.
    seed
        Seed of the subsampling (the refits use ``fit_kwargs['seed']``).
    consensus_threshold
        Gene stability needed to stay in its module in the consensus partition.
    fit_kwargs
        Keyword arguments of :func:`isograph.fit.fit_bundle` (backend, seed, overrides...).
    cluster, n_workers, progress
        Passed to :func:`omicsrun.parallel.run_tasks`.

    Returns
    -------
    StabilityResult

    Raises
    ------
    InputError
        For an unknown strata column or bad resampling settings.
    """
    if strata_key is not None and strata_key not in bundle.samples.columns:
        msg = (
            f"stability strata column {strata_key!r} is not in the sample table; "
            f"columns are {[c for c in map(str, bundle.samples.columns) if c != 'sample_id']}"
        )
        raise InputError(msg)
    if not 0 < consensus_threshold <= 1:
        msg = f"consensus_threshold must be in (0, 1]; found {consensus_threshold}"
        raise InputError(msg)
    strata = None if strata_key is None else bundle.samples[strata_key].astype(str).tolist()
    indices = subsample_indices(
        bundle.n_samples, n_resamples=n_resamples, fraction=fraction, seed=seed, strata=strata
    )
    gene_ids = full_modules["gene_id"].astype(str).to_numpy()
    full = full_modules["module_id"].astype(str).to_numpy()
    tasks = [
        {"bundle": bundle, "index": index, "fit_kwargs": dict(fit_kwargs or {}), "gene_ids": gene_ids}
        for index in indices
    ]
    labels = run_tasks(_fit_subsample, tasks, cluster=cluster, n_workers=n_workers, progress=progress)
    co = np.vstack([co_membership(full, lab) for lab in labels])  # (n_resamples, n_genes)
    gene_stability = co.mean(axis=0)
    consensus = np.where(
        (full != UNASSIGNED) & (np.nan_to_num(gene_stability) >= consensus_threshold), full, UNASSIGNED
    )
    genes = pd.DataFrame(
        {
            "gene_id": gene_ids,
            "module_id": full,
            "stability": gene_stability,
            "consensus_module_id": consensus,
        }
    )
    jaccard = pd.concat([_best_jaccard(full, lab) for lab in labels], axis=1).mean(axis=1)
    placed = genes[genes["module_id"] != UNASSIGNED]
    modules = (
        placed.groupby("module_id")
        .agg(
            n_genes=("gene_id", "size"),
            stability=("stability", "mean"),
            n_consensus_genes=("consensus_module_id", lambda s: int((s != UNASSIGNED).sum())),
        )
        .reset_index()
    )
    modules["best_match_jaccard"] = jaccard.reindex(modules["module_id"]).fillna(0.0).to_numpy()
    summary = {
        "format": STABILITY_FORMAT,
        "format_version": STABILITY_FORMAT_VERSION,
        "n_resamples": int(n_resamples),
        "fraction": float(fraction),
        "strata": strata_key,
        "seed": int(seed),
        "consensus_threshold": float(consensus_threshold),
        "resample_sizes": [len(i) for i in indices],
        "n_modules_per_resample": [len(set(lab) - {UNASSIGNED}) for lab in labels],
        "modules": [
            {k: (round(float(v), 4) if isinstance(v, float) else v) for k, v in row.items()}
            for row in modules.to_dict(orient="records")
        ],
    }
    return StabilityResult(genes=genes, modules=modules, summary=summary)


def fixture_stability(
    bundle: Bundle,
    modules: pd.DataFrame,
    *,
    n_resamples: int,
    backend: str,
    seed: int,
    overrides: Mapping[str, str] | None = None,
    cluster: str = "local",
) -> dict[str, Any]:
    """Stability summary of a benchmark fit (stratified by the first recorded trait).

    On fixtures with planted truth it also gives the mean stability of genes placed in a
    module that belong to a planted module and of those that do not.
    """
    result = stability_selection(
        bundle,
        modules,
        n_resamples=n_resamples,
        strata_key=default_strata(bundle),
        seed=seed,
        fit_kwargs={"backend": backend, "seed": seed, "overrides": dict(overrides or {})},
        cluster=cluster,
    )
    summary = dict(result.summary)
    truth = bundle.truth.get("truth_modules")
    if truth is not None:
        genes = result.genes[result.genes["module_id"] != UNASSIGNED]
        planted = genes["gene_id"].isin(truth["gene_id"].astype(str))
        summary["mean_stability_planted_genes"] = _mean_or_none(genes.loc[planted, "stability"])
        summary["mean_stability_other_genes"] = _mean_or_none(genes.loc[~planted, "stability"])
    return summary


def _mean_or_none(values: pd.Series) -> float | None:
    values = values.dropna()
    return round(float(values.mean()), 4) if len(values) else None
