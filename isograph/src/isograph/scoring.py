"""Module-recovery scores against planted truth (Saelens, Cannoodt & Saeys 2018).

Definitions (``../shared/design/ANCHORS.md``):

- the gene universe is every gene in the truth (``truth_switch`` lists all genes of a fixture);
  found genes outside it are dropped, universe genes absent from the fit count as unassigned;
- ``J``: Jaccard matrix between found modules (restricted to the universe, size >= 5 after
  restriction, the unassigned label excluded) and true modules;
- ``recovery``: mean over true modules of the best J; ``relevance``: mean over found
  modules of the best J; ``f_rr``: their harmonic mean (0 when no found module survives);
- ``ari``/``nmi`` (sklearn; NMI with arithmetic normalisation) over all universe genes, with
  unassigned genes one label and background truth genes one label; ``ari_assigned``/
  ``nmi_assigned`` over genes that are in a true module and assigned to a found module;
- ``unassigned_fraction``, ``n_modules`` (found modules, unassigned excluded, before the size
  filter), ``n_scored_modules`` (after it), ``n_true_modules``;
- ``<score>_permuted``: the same score against a truth whose labels are permuted over the
  universe (seeded; module sizes kept), and ``<score>_over_permuted`` = score / that
  (Saelens et al.'s normalisation) for the scores that are not chance-corrected: recovery,
  relevance, F_rr and NMI. ARI is already chance-corrected (its permuted value is about 0,
  of either sign), so dividing by it gives noise; ``ari_permuted`` is reported alone;
- ``role_recall[R]``: fraction of truth genes with role R whose fitted ``module_role`` is R
  (genes missing from the fitted role table are misses).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from isograph.backends.base import UNASSIGNED
from isograph.bundle import Bundle
from isograph.bundle.model import ROLES
from omicsrun import InputError

BACKGROUND = "__background__"
MIN_MODULE_SIZE = 5


@dataclass(frozen=True)
class Metric:
    """A registered score: its name, direction and what it compares."""

    name: str
    higher_is_better: bool
    compares: str


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "recovery",
            higher_is_better=True,
            compares="mean over true modules of the best Jaccard with a found module",
        ),
        Metric(
            "relevance",
            higher_is_better=True,
            compares="mean over found modules of the best Jaccard with a true module",
        ),
        Metric("f_rr", higher_is_better=True, compares="harmonic mean of recovery and relevance"),
        Metric(
            "ari",
            higher_is_better=True,
            compares="adjusted Rand index, all genes, unassigned and background as labels",
        ),
        Metric(
            "nmi",
            higher_is_better=True,
            compares="normalised mutual information, all genes, unassigned and background as labels",
        ),
        Metric(
            "ari_assigned",
            higher_is_better=True,
            compares="adjusted Rand index on genes assigned in both truth and fit",
        ),
        Metric(
            "nmi_assigned",
            higher_is_better=True,
            compares="normalised mutual information on genes assigned in both",
        ),
        Metric(
            "unassigned_fraction",
            higher_is_better=False,
            compares="fraction of truth genes the fit placed in no module",
        ),
    )
}
PERMUTED_SCORES = ("recovery", "relevance", "f_rr", "ari", "nmi", "ari_assigned", "nmi_assigned")
# ARI is chance-corrected: no ratio to its (near-zero) permuted value.
RATIO_SCORES = ("recovery", "relevance", "f_rr", "nmi", "nmi_assigned")


def _codes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uniques, codes = np.unique(labels.astype(str), return_inverse=True)
    return uniques, codes.ravel()


def jaccard_matrix(
    found: np.ndarray, truth: np.ndarray, *, min_module_size: int = MIN_MODULE_SIZE
) -> pd.DataFrame:
    """Jaccard index between every found module and every true module.

    Parameters
    ----------
    found, truth
        Labels of the same genes, shape (n_genes,). ``unassigned`` in ``found`` and the
        background label in ``truth`` are not modules.
    min_module_size
        Found modules with fewer genes are dropped.

    Returns
    -------
    pandas.DataFrame
        Shape (n_found_kept, n_true), index found module ids, columns true module ids.
    """
    found = np.asarray(found).astype(str)
    truth = np.asarray(truth).astype(str)
    if found.shape != truth.shape or found.ndim != 1:
        msg = f"found and truth labels must be 1-D of equal length; found {found.shape} and {truth.shape}"
        raise InputError(msg)
    f_names, f_codes = _codes(found)
    t_names, t_codes = _codes(truth)
    table = np.zeros((f_names.size, t_names.size), dtype=np.int64)
    np.add.at(table, (f_codes, t_codes), 1)
    f_size = table.sum(axis=1)
    t_keep = t_names != BACKGROUND
    f_keep = (f_names != UNASSIGNED) & (f_size >= min_module_size)
    inter = table[np.ix_(f_keep, t_keep)]
    union = f_size[f_keep][:, None] + table[:, t_keep].sum(axis=0)[None, :] - inter
    jac = np.divide(inter, union, out=np.zeros(inter.shape), where=union > 0)
    return pd.DataFrame(jac, index=f_names[f_keep], columns=t_names[t_keep])


def _partition_scores(
    found: np.ndarray, truth: np.ndarray, min_module_size: int
) -> tuple[dict[str, float], int]:
    """The partition scores, and the number of found modules the Jaccard scores used."""
    jac = jaccard_matrix(found, truth, min_module_size=min_module_size).to_numpy()
    if jac.shape[0] == 0 or jac.shape[1] == 0:
        recovery = relevance = 0.0
    else:
        recovery = float(jac.max(axis=0).mean())
        relevance = float(jac.max(axis=1).mean())
    total = recovery + relevance
    f_rr = 2.0 * recovery * relevance / total if total > 0 else 0.0
    both = (found != UNASSIGNED) & (truth != BACKGROUND)
    if both.sum() >= 2:
        ari_assigned = float(adjusted_rand_score(truth[both], found[both]))
        nmi_assigned = float(normalized_mutual_info_score(truth[both], found[both]))
    else:
        ari_assigned = nmi_assigned = float("nan")
    scores = {
        "recovery": recovery,
        "relevance": relevance,
        "f_rr": f_rr,
        "ari": float(adjusted_rand_score(truth, found)),
        "nmi": float(normalized_mutual_info_score(truth, found)),
        "ari_assigned": ari_assigned,
        "nmi_assigned": nmi_assigned,
    }
    return scores, jac.shape[0]


def _require_columns(table: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        msg = f"{what} table has no column {missing[0]!r}; columns are {list(map(str, table.columns))}"
        raise InputError(msg)


def _aligned_labels(
    found_modules: pd.DataFrame, truth_modules: pd.DataFrame, universe: Sequence[str] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    _require_columns(found_modules, ("gene_id", "module_id"), "found modules")
    _require_columns(truth_modules, ("gene_id", "module_id"), "truth modules")
    genes = pd.Index(pd.unique(np.asarray(universe, dtype=str)))
    found_map = found_modules.drop_duplicates("gene_id")
    found_series = pd.Series(
        found_map["module_id"].astype(str).to_numpy(), index=found_map["gene_id"].astype(str)
    )
    found = found_series.reindex(genes).fillna(UNASSIGNED).to_numpy(dtype=str)
    truth_map = truth_modules.drop_duplicates("gene_id")
    truth_series = pd.Series(
        truth_map["module_id"].astype(str).to_numpy(), index=truth_map["gene_id"].astype(str)
    )
    stray = ~truth_series.index.isin(genes)
    if stray.any():
        example = truth_series.index[stray][0]
        msg = f"truth modules name {int(stray.sum())} gene(s) outside the gene universe, e.g. {example!r}"
        raise InputError(msg)
    truth = truth_series.reindex(genes).fillna(BACKGROUND).to_numpy(dtype=str)
    return found, truth


def score_modules(
    found_modules: pd.DataFrame,
    truth_modules: pd.DataFrame,
    *,
    universe: Sequence[str] | np.ndarray,
    seed: int = 0,
    min_module_size: int = MIN_MODULE_SIZE,
) -> dict[str, Any]:
    """Score found modules against planted ones.

    Parameters
    ----------
    found_modules
        ``gene_id``, ``module_id`` (``unassigned`` for unplaced genes), shape (n_found_genes, 2).
    truth_modules
        ``gene_id``, ``module_id`` of module genes; universe genes not listed are background.
    universe
        All truth genes (length n_genes); found genes outside are dropped.
    seed
        Seed of the label permutation behind the ``*_permuted`` scores.
    min_module_size
        Found modules smaller than this (after restriction) are left out of the Jaccard scores.

    Returns
    -------
    dict
        Scores named in the module docstring.

    Raises
    ------
    InputError
        When a table lacks ``gene_id`` or ``module_id``, or the truth names genes outside the
        universe.
    """
    found, truth = _aligned_labels(found_modules, truth_modules, universe)
    partition, n_scored = _partition_scores(found, truth, min_module_size)
    scores: dict[str, Any] = dict(partition)
    found_names = np.unique(found[found != UNASSIGNED])
    scores["unassigned_fraction"] = float(np.mean(found == UNASSIGNED)) if found.size else float("nan")
    scores["n_modules"] = int(found_names.size)
    scores["n_scored_modules"] = int(n_scored)
    scores["n_true_modules"] = int(np.unique(truth[truth != BACKGROUND]).size)
    scores["n_genes"] = int(found.size)
    permuted = np.random.default_rng(seed).permutation(truth)
    perm_scores, _ = _partition_scores(found, permuted, min_module_size)
    for name in PERMUTED_SCORES:
        base = perm_scores[name]
        scores[f"{name}_permuted"] = base
        if name in RATIO_SCORES:
            ratio = scores[name] / base if base != 0.0 and np.isfinite(base) else float("nan")
            scores[f"{name}_over_permuted"] = float(ratio)
    return scores


def role_recall(fitted_roles: pd.DataFrame | None, truth_roles: pd.DataFrame) -> dict[str, Any]:
    """Per-role recall of fitted channel roles.

    Parameters
    ----------
    fitted_roles
        ``gene_id``, ``module_role`` (the fit's ``module_gene_roles`` table), or None (all misses).
    truth_roles
        ``gene_id``, ``role``.

    Returns
    -------
    dict
        ``{"role_recall": {role: recall}, "role_support": {role: n_truth_genes}}``; a role
        with no truth genes has recall NaN.

    Raises
    ------
    InputError
        When ``truth_roles`` lacks ``gene_id``/``role`` or ``fitted_roles`` lacks
        ``gene_id``/``module_role``.
    """
    _require_columns(truth_roles, ("gene_id", "role"), "truth roles")
    if fitted_roles is None:
        fitted = pd.Series(dtype=str)
    else:
        _require_columns(fitted_roles, ("gene_id", "module_role"), "fitted role")
        dedup = fitted_roles.drop_duplicates("gene_id")
        fitted = pd.Series(dedup["module_role"].astype(str).to_numpy(), index=dedup["gene_id"].astype(str))
    truth_role = truth_roles["role"].astype(str).to_numpy()
    predicted = fitted.reindex(truth_roles["gene_id"].astype(str)).to_numpy()
    hit = predicted == truth_role
    recall: dict[str, float] = {}
    support: dict[str, int] = {}
    for role in ROLES:
        mask = truth_role == role
        support[role] = int(mask.sum())
        recall[role] = float(hit[mask].mean()) if mask.any() else float("nan")
    return {"role_recall": recall, "role_support": support}


def score_fit(
    bundle: Bundle, modules: pd.DataFrame, roles: pd.DataFrame | None = None, *, seed: int = 0
) -> dict[str, Any]:
    """All scores of one fit against a fixture bundle's truth.

    The universe is ``truth_switch``'s genes (every gene of a fixture), else the gene table.
    Adds ``role_recall``/``role_support`` when the bundle has ``truth_roles``.

    Raises
    ------
    InputError
        When the bundle has no ``truth_modules`` table.
    """
    if "truth_modules" not in bundle.truth:
        msg = f"bundle {bundle.dataset_name!r} has no truth_modules table; only fixtures can be scored"
        raise InputError(msg)
    universe = (
        bundle.truth["truth_switch"]["gene_id"].astype(str).to_numpy()
        if "truth_switch" in bundle.truth
        else bundle.gene_ids.to_numpy()
    )
    scores = score_modules(modules, bundle.truth["truth_modules"], universe=universe, seed=seed)
    if "truth_roles" in bundle.truth:
        scores.update(role_recall(roles, bundle.truth["truth_roles"]))
    return scores
