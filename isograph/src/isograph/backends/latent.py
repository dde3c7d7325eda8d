"""The ``latent`` backend: factor analysis of the features, modules from rotated loadings.

Algorithm
---------
1. Features (samples x p, standardised; switch and, in multiplex mode, abundance) are fitted
   by maximum-likelihood factor analysis (:mod:`isograph.backends.factor`): blockwise EM in
   which the low-rank-plus-diagonal covariance is handled through Woodbury, never as a p x p
   matrix, so 20,000 features x 1,000 samples fit in memory.
2. The number of factors k (``k_rule``): by default Horn's parallel analysis, the factors
   whose eigenvalue beats the 95 % quantile of column-permuted data
   (:func:`isograph.network.programs.decompose_programs`); or the held-out log-likelihood over
   ``n_folds`` folds of the samples (``within_se``, ``max``); or ``n_factors`` when set.
   Why not cross-validation by default: with p >> n the maximum-likelihood fit of every k
   overfits (noise variances of some features run to the floor), so the held-out
   log-likelihood falls from the smallest candidate on: it chose k = 4 on every
   ``multiplex_v1`` and ``smalln_v1`` fixture (13 and 8 planted programs on multiplex), and
   F_rr was 0.25 and 0.09. Parallel analysis found 12 and 8 factors there, 17-21 on
   ``scale_v1``, 3 on the 24- and 40-sample fixtures.
3. Loadings are varimax-rotated so each factor loads on few features.
4. Assignment (``assignment``):

   - ``null`` (default): a feature is placed when its communality over the k factors beats
     the communalities of column-permuted data (the permutation null of step 2, empirical p,
     Benjamini-Hochberg at ``null_fdr``), and features so placed are grouped by the direction
     of their rotated loading vector (k-lines, started from the rotated axes: correlated
     programs stay apart).
   - ``loadings``: each factor's loadings are robustly z-scored (median, 1.4826 MAD);
     a feature joins the factor where its |z| is largest when that |z| is at least ``z_cut``.
     This is the decomposition route Saelens et al. (2018) found to recover modules best.
   - ``cluster``: k-means (k clusters, seeded) of the unit-normalised rotated loading rows of
     features whose communality (share of variance the factors explain) is at least
     ``min_communality``; the clustering route, kept for comparison.

   The default was chosen by measurement (README, "Backends"), with k by parallel analysis,
   mean F_rr on core_v1 / multiplex_v1 / smalln_v1: ``null`` 0.587 / 0.624 / 0.569,
   ``loadings`` 0.629 / 0.682 / 0.083. A fixed robust-z cut does not carry across sample
   sizes (a true loading's z shrinks with the noise of n = 24 samples: it found no module on
   ``factorial_n24``), while the permutation null is calibrated for each data set.
5. A gene takes the module of its feature with the largest communality (``null``), |z|
   (``loadings``) or communality (``cluster``); modules with fewer than ``min_module_size``
   genes become unassigned; modules whose eigengenes correlate at ``1 - merge_cut_height`` or
   more are merged (WGCNA's ``mergeCloseModules``), then relabelled ``M000``... by size.

Typed outputs: per-sample factor scores (``F00``...), per-feature rotated loadings, and a
soft membership of every gene in every module (the largest share of a feature's variance that
the module's factors explain). Edges: within-module gene pairs whose model-implied
correlation ``(W W^T)_ab / sqrt(C_aa C_bb)`` reaches ``edge_min_r``, at most
``edge_max_partners`` strongest per feature; abundance-abundance pairs
only when ``allow_abundance_abundance``. Calibration: held-out log-likelihood per k,
reconstruction RMSE, mean noise variance, EM iterations and convergence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from isograph.backends.base import UNASSIGNED, BackendResult, register
from isograph.backends.factor import FactorModel, choose_n_factors, fit_factor_model, varimax
from isograph.features.build import ABUNDANCE, FeatureSet
from isograph.network.components import relabel_by_size
from isograph.network.eigengenes import merge_gene_modules
from omicsrun import InputError


@dataclass(frozen=True)
class LatentConfig:
    """Hyper-parameters of the latent backend (dotted overrides ``latent.<name>``).

    Attributes
    ----------
    n_factors
        Fixed number of factors; ``None`` chooses k by ``k_rule``.
    candidates
        Values of k tried by cross-validation; the largest is also the cap of ``parallel``.
    n_folds
        Folds of the samples for the cross-validated rules.
    k_rule
        ``parallel`` (default): the factors whose eigenvalue beats the ``0.95`` quantile of
        column-permuted data (Horn's parallel analysis,
        :func:`isograph.network.programs.decompose_programs`); ``within_se``: the largest k
        within one standard error of the best held-out log-likelihood; ``max``: the best
        held-out log-likelihood (see :func:`isograph.backends.factor.choose_n_factors`).
    assignment
        ``null`` (default: features whose communality beats the permutation null, grouped by
        the direction of their rotated loadings), ``loadings`` (z-score cut on rotated
        loadings) or ``cluster`` (k-means of loading rows).
    null_permutations, null_fdr
        Permutations of the null (``parallel``, ``null``) and the Benjamini-Hochberg level of
        its per-feature membership test (``null``).
    z_cut
        Robust z of a loading at which a feature joins a factor (``loadings``).
    min_communality
        Share of a feature's variance the factors must explain for it to be clustered
        (``cluster``).
    min_module_size
        Modules with fewer genes are unassigned.
    merge_cut_height
        Modules whose eigengenes correlate at ``1 - merge_cut_height`` or more are merged.
    edge_min_r
        Model-implied correlation at which two module genes are joined by an edge.
    edge_max_partners
        An edge is kept when it is among the strongest ``edge_max_partners`` of one of its
        features (bounds the edge table at p x this; a module of thousands of genes would
        otherwise give tens of millions of pairs).
    allow_abundance_abundance
        Whether abundance-abundance pairs can be edges (multiplex).
    max_iter, tol
        EM iterations and relative log-likelihood tolerance.
    block_size
        Features per block in every data pass.
    """

    n_factors: int | None = None
    candidates: tuple[int, ...] = (4, 8, 12, 16, 24)
    n_folds: int = 3
    k_rule: Literal["parallel", "within_se", "max"] = "parallel"
    assignment: Literal["null", "loadings", "cluster"] = "null"
    null_permutations: int = 20
    null_fdr: float = 0.05
    z_cut: float = 4.0
    min_communality: float = 0.2
    min_module_size: int = 10
    merge_cut_height: float = 0.15
    edge_min_r: float = 0.5
    edge_max_partners: int = 50
    allow_abundance_abundance: bool = False
    max_iter: int = 200
    tol: float = 1e-5
    block_size: int = 4096

    def validate(self, prefix: str = "latent") -> None:
        """Raise :class:`InputError` naming the first out-of-range field."""
        checks = [
            ("n_factors", self.n_factors is None or self.n_factors >= 1, ">= 1 or none"),
            (
                "candidates",
                len(self.candidates) > 0 and min(self.candidates) >= 1,
                "a non-empty list of k >= 1",
            ),
            ("n_folds", self.n_folds >= 2, ">= 2"),
            ("k_rule", self.k_rule in ("parallel", "within_se", "max"), "parallel, within_se or max"),
            ("assignment", self.assignment in ("null", "loadings", "cluster"), "null, loadings or cluster"),
            ("null_permutations", self.null_permutations >= 10, ">= 10"),
            ("null_fdr", 0 < self.null_fdr < 1, "in (0, 1)"),
            ("z_cut", self.z_cut > 0, "> 0"),
            ("min_communality", 0 <= self.min_communality < 1, "in [0, 1)"),
            ("min_module_size", self.min_module_size >= 2, ">= 2"),
            ("merge_cut_height", 0 <= self.merge_cut_height < 1, "in [0, 1)"),
            ("edge_min_r", 0 < self.edge_min_r <= 1, "in (0, 1]"),
            ("edge_max_partners", self.edge_max_partners >= 1, ">= 1"),
            ("max_iter", self.max_iter >= 1, ">= 1"),
            ("tol", self.tol > 0, "> 0"),
            ("block_size", self.block_size >= 1, ">= 1"),
        ]
        for name, ok, expected in checks:
            if not ok:
                msg = f"{prefix}.{name} must be {expected}; found {getattr(self, name)!r}"
                raise InputError(msg)


@register("latent")
class LatentNetworkModel:
    """Factor analysis (blockwise EM, CV-chosen k), varimax, modules from loadings."""

    name: ClassVar[str] = "latent"
    config_class: ClassVar[type] = LatentConfig

    def fit(self, features: FeatureSet, *, config: LatentConfig, seed: int = 0) -> BackendResult:
        """Modules, edges, factor scores, loadings and soft membership of a feature set.

        Parameters
        ----------
        features
            Standardised features, shape (n_samples, n_features).
        config
            Hyper-parameters.
        seed
            Seed of the cross-validation folds and of k-means (``cluster``).
        """
        config.validate()
        return fit_latent(features, features.matrix, config=config, seed=seed, name=self.name)


def fit_latent(
    features: FeatureSet,
    x: np.ndarray,
    *,
    config: LatentConfig,
    seed: int,
    name: str,
    null_x: np.ndarray | None = None,
) -> BackendResult:
    """The latent pipeline on data ``x`` (n_samples, n_features) aligned with ``features``.

    ``x`` is ``features.matrix`` for ``latent`` and the graph-smoothed matrix for ``graph``.
    ``null_x`` (default ``x``) is what the permutation null of ``k_rule="parallel"`` and
    ``assignment="null"`` sees: the graph backend passes the unsmoothed features, because
    smoothing correlates neighbouring features, which a column permutation cannot mimic (on
    ``multiplex_v1`` the smoothed data "supported" 20-24 factors for 8-13 programs).
    """
    x = np.asarray(x, dtype=np.float32)
    x = x - x.mean(axis=0, dtype=np.float64).astype(np.float32)
    n = x.shape[0]
    cv_scores: dict[int, float] = {}
    pa_info: dict[str, Any] = {}
    if config.n_factors is None and config.k_rule == "parallel":
        k, pa_info = _parallel_analysis_k(x if null_x is None else null_x, config, seed)
    elif config.n_factors is None:
        candidates = tuple(
            sorted({int(k) for k in config.candidates if k < n * (1 - 1 / config.n_folds) - 1})
        )
        if not candidates:
            msg = f"{name}: no candidate k below the {n} samples; set {name}.n_factors"
            raise InputError(msg)
        k, cv_scores = choose_n_factors(
            x,
            candidates,
            n_folds=config.n_folds,
            seed=seed,
            max_iter=config.max_iter,
            tol=config.tol,
            block_size=config.block_size,
            rule=config.k_rule,
        )
    else:
        k = int(min(config.n_factors, n - 1))
    model = fit_factor_model(x, k, max_iter=config.max_iter, tol=config.tol, block_size=config.block_size)
    rotated, rotation = varimax(model.loadings)
    scores = model.scores(x, block_size=config.block_size) @ rotation
    psi = model.noise_variance
    total = (rotated**2).sum(axis=1) + psi

    gene_index = pd.Index(pd.unique(features.gene_ids))
    group = gene_index.get_indexer(features.gene_ids)
    if config.assignment == "null":
        explained = pa_info.get("explained")
        if explained is None:
            explained = _parallel_analysis_k(x if null_x is None else null_x, config, seed)[1]["explained"]
        factor, strength = _assign_by_lines(rotated, total, explained)
    elif config.assignment == "loadings":
        factor, strength = _assign_by_loadings(rotated, config.z_cut)
    else:
        factor, strength = _assign_by_clusters(rotated, total, config.min_communality, seed)
    gene_factor = _gene_labels(factor, strength, group, len(gene_index))
    labels, _ = relabel_by_size(gene_factor, min_size=config.min_module_size)
    labels, n_merged = merge_gene_modules(
        x, labels, group, cut_height=config.merge_cut_height, min_size=config.min_module_size
    )

    module_names = np.array([f"M{m:03d}" for m in range(int(labels.max(initial=-1)) + 1)], dtype=object)
    module_id = np.where(
        labels >= 0, module_names[np.maximum(labels, 0)] if len(module_names) else "", UNASSIGNED
    )
    modules = pd.DataFrame(
        {"gene_id": gene_index.astype(str).to_numpy(), "module_id": module_id.astype(object)}
    )
    factor_names = [f"F{j:02d}" for j in range(rotated.shape[1])]
    soft = _soft_membership(rotated, total, group, gene_index, gene_factor, labels, module_names)
    feature_module = labels[group]
    edges = _implied_edges(
        rotated,
        total,
        feature_module,
        group,
        gene_index,
        features.feature_type == ABUNDANCE,
        min_r=config.edge_min_r,
        allow_aa=config.allow_abundance_abundance,
        max_partners=config.edge_max_partners,
    )
    residual = _reconstruction_rmse(x, scores, rotated, config.block_size)
    calibration = {
        "n_factors": int(k),
        "n_factors_chosen_by": _k_rule_name(config),
        "parallel_analysis": {k: v for k, v in pa_info.items() if k != "explained"},
        "heldout_loglik_per_sample": {str(kk): v for kk, v in cv_scores.items()},
        "train_loglik_per_sample": model.loglik,
        "reconstruction_rmse": residual,
        "mean_noise_variance": float(psi.mean()),
        "em_iterations": model.n_iter,
        "converged": model.converged,
        "assignment": config.assignment,
    }
    diagnostics = {
        **calibration,
        "n_modules": len(module_names),
        "n_modules_merged": n_merged,
        "unassigned_fraction": float(np.mean(labels < 0)),
    }
    return BackendResult(
        modules=modules,
        edges=edges,
        diagnostics=diagnostics,
        calibration=calibration,
        sample_scores=pd.DataFrame(scores, index=features.sample_ids.astype(str), columns=factor_names),
        feature_loadings=pd.DataFrame(rotated, index=features.feature_ids.astype(str), columns=factor_names),
        soft_membership=soft,
        state={"loadings": rotated, "noise_variance": psi, "rotation": rotation, "n_factors": int(k)},
    )


def _k_rule_name(config: LatentConfig) -> str:
    if config.n_factors is not None:
        return "fixed"
    if config.k_rule == "parallel":
        return "parallel analysis (permutation null)"
    return f"cross-validation ({config.k_rule})"


def _parallel_analysis_k(x: np.ndarray, config: LatentConfig, seed: int) -> tuple[int, dict[str, Any]]:
    # Horn's parallel analysis on the permutation null of isograph.network.programs: the
    # factors whose eigenvalue exceeds the 95 % quantile of column-permuted data.
    from isograph.network.programs import decompose_programs

    decomposition = decompose_programs(
        x, n_null=config.null_permutations, fdr=config.null_fdr, max_factors=max(config.candidates), seed=seed
    )
    info: dict[str, Any] = {
        "eigenvalues": [round(float(v), 4) for v in decomposition.eigenvalues],
        "null_eigenvalues": [round(float(v), 4) for v in decomposition.null_eigenvalues],
    }
    info["explained"] = decomposition.labels >= 0
    return max(int(decomposition.n_factors), 1), info


def factor_model_of(state: dict[str, Any]) -> FactorModel:
    """The rotated factor model saved in a latent or graph backend state."""
    return FactorModel(
        np.asarray(state["loadings"]),
        np.asarray(state["noise_variance"]),
        n_iter=0,
        converged=True,
        loglik=float("nan"),
    )


def _robust_z(values: np.ndarray) -> np.ndarray:
    centre = np.median(values, axis=0)
    mad = 1.4826 * np.median(np.abs(values - centre), axis=0)
    return (values - centre) / np.where(mad > 0, mad, 1.0)


def _assign_by_loadings(rotated: np.ndarray, z_cut: float) -> tuple[np.ndarray, np.ndarray]:
    z = np.abs(_robust_z(rotated))
    best = z.argmax(axis=1)
    top = z[np.arange(len(best)), best]
    return np.where(top >= z_cut, best, -1), top


def _assign_by_clusters(
    rotated: np.ndarray, total: np.ndarray, min_communality: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.cluster import KMeans

    communality = (rotated**2).sum(axis=1) / total
    keep = communality >= min_communality
    label = np.full(len(rotated), -1, dtype=np.int64)
    k = rotated.shape[1]
    if keep.sum() > k:
        rows = rotated[keep] / np.linalg.norm(rotated[keep], axis=1, keepdims=True)
        label[keep] = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(rows)
    return label, communality


def _assign_by_lines(
    rotated: np.ndarray, total: np.ndarray, explained: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    # Features the permutation null says the factors explain are grouped by the direction of
    # their rotated loading vector (k-lines from the rotated axes, as in
    # isograph.network.programs): correlated programs stay apart. Strength: the correlation
    # of the feature with its factor-implied signal, sqrt(communality).
    from isograph.network.programs import k_lines

    scaled = rotated / np.sqrt(total)[:, None]
    norms = np.linalg.norm(scaled, axis=1)
    factor = np.full(len(rotated), -1, dtype=np.int64)
    if explained.any():
        directions = scaled[explained] / np.maximum(norms[explained, None], 1e-12)
        factor[explained] = k_lines(directions, np.eye(rotated.shape[1]))
    return factor, norms


def _gene_labels(factor: np.ndarray, strength: np.ndarray, group: np.ndarray, n_genes: int) -> np.ndarray:
    # A gene takes the label of its strongest assigned feature.
    table = pd.DataFrame({"gene": group, "factor": factor, "strength": strength})
    table = table[table["factor"] >= 0].sort_values(
        ["gene", "strength"], ascending=[True, False], kind="mergesort"
    )
    best = table.drop_duplicates("gene")
    out = np.full(n_genes, -1, dtype=np.int64)
    out[best["gene"].to_numpy()] = best["factor"].to_numpy()
    return out


def _soft_membership(
    rotated: np.ndarray,
    total: np.ndarray,
    group: np.ndarray,
    gene_index: pd.Index,
    gene_factor: np.ndarray,
    labels: np.ndarray,
    module_names: np.ndarray,
) -> pd.DataFrame:
    # Share of each feature's variance explained by each factor; a module owns the factors
    # whose assigned genes ended in it (after size filter and merges); gene = max over features.
    share = rotated**2 / total[:, None]
    n_modules = len(module_names)
    owner = np.full(rotated.shape[1], -1, dtype=np.int64)
    placed = (gene_factor >= 0) & (labels >= 0)
    if placed.any():
        pairs = pd.DataFrame({"factor": gene_factor[placed], "module": labels[placed]})
        top = pairs.value_counts().reset_index().drop_duplicates("factor")
        owner[top["factor"].to_numpy()] = top["module"].to_numpy()
    module_share = np.zeros((rotated.shape[0], n_modules))
    for j in np.flatnonzero(owner >= 0):
        module_share[:, owner[j]] += share[:, j]
    gene_share = pd.DataFrame(module_share).groupby(group).max().to_numpy()
    return pd.DataFrame(gene_share, index=gene_index.astype(str), columns=list(module_names))


def _implied_edges(
    rotated: np.ndarray,
    total: np.ndarray,
    feature_module: np.ndarray,
    group: np.ndarray,
    gene_index: pd.Index,
    is_abundance: np.ndarray,
    *,
    min_r: float,
    allow_aa: bool,
    max_partners: int,
    block: int = 512,
) -> pd.DataFrame:
    # Model-implied correlations within each module, blockwise; one row per gene pair (max |r|).
    # A pair is kept when it is among the ``max_partners`` strongest of either feature: within
    # a module of 8,000 genes (macrophage) nearly every pair passes ``min_r``, and the full
    # list (tens of millions of rows) cost 2.4-3.3 GB and minutes to write.
    scaled = rotated / np.sqrt(total)[:, None]
    parts = []
    for module in np.unique(feature_module[feature_module >= 0]):
        idx = np.flatnonzero(feature_module == module)
        for start in range(0, len(idx), block):
            rows = idx[start : start + block]
            r = scaled[rows] @ scaled[idx].T
            r[group[rows][:, None] == group[idx][None, :]] = 0.0  # no self or same-gene pairs
            if not allow_aa:
                r[is_abundance[rows][:, None] & is_abundance[idx][None, :]] = 0.0
            if len(idx) > max_partners:  # each feature keeps its strongest partners only
                top = np.argpartition(-np.abs(r), max_partners - 1, axis=1)[:, :max_partners]
                kept = np.zeros_like(r)
                np.put_along_axis(kept, top, np.take_along_axis(r, top, axis=1), axis=1)
                r = kept
            i, j = np.nonzero(np.abs(r) >= min_r)
            a, b = group[rows[i]], group[idx[j]]
            parts.append(pd.DataFrame({"a": np.minimum(a, b), "b": np.maximum(a, b), "w": r[i, j]}))
    names = gene_index.astype(str).to_numpy()
    if not parts:
        return pd.DataFrame(
            {
                "gene_a": pd.Series(dtype=object),
                "gene_b": pd.Series(dtype=object),
                "weight": pd.Series(dtype=np.float64),
            }
        )
    table = pd.concat(parts, ignore_index=True)
    table["abs"] = table["w"].abs()
    table = table.sort_values(
        ["a", "b", "abs"], ascending=[True, True, False], kind="mergesort"
    ).drop_duplicates(["a", "b"])
    return pd.DataFrame(
        {
            "gene_a": names[table["a"].to_numpy()],
            "gene_b": names[table["b"].to_numpy()],
            "weight": table["w"].to_numpy(dtype=np.float64),
        }
    )


def _reconstruction_rmse(x: np.ndarray, scores: np.ndarray, loadings: np.ndarray, block_size: int) -> float:
    sq = 0.0
    for start in range(0, x.shape[1], block_size):
        block = np.asarray(x[:, start : start + block_size], dtype=np.float64)
        sq += float(((block - scores @ loadings[start : start + block_size].T) ** 2).sum())
    return float(np.sqrt(sq / x.size))
