"""The ``baseline`` backend: a shrunk sparse partial-correlation network and its components.

Algorithm
---------
1. Features (samples x p, standardised; switch and, in multiplex mode, abundance) are taken
   as they come from :mod:`isograph.features`.
2. Covariance shrinkage towards a scaled identity: ``Sigma = (1 - l) S + l mu I`` with S of
   rank n and ``mu = trace(S) / p`` (1 for standardised features).
   The Ledoit-Wolf intensity is computed in closed form (from an n x n Gram matrix) and
   recorded; the network uses ``l = max(l_LW, min_shrinkage)``. Why a floor: a module whose
   genes share one latent program has within-module partial correlations that fall like
   ``1 / module size`` (the other members explain the program away), so at Ledoit-Wolf's
   intensity (0.6 on ``core_v1``) most members have no detectable edge; near ``l = 1`` the
   shrunk partial correlation moves towards the marginal correlation while still
   discounting the strongest shared directions. On ``core_v1/standard`` F_rr rises from
   0.43 (l = 0.9) to 0.86 (l = 0.99).
3. Partial correlations come from the Woodbury form of ``Sigma^-1`` (an n x n inverse) one
   block of rows at a time, and each block is thresholded at once (see
   :mod:`isograph.network.threshold`): ``|pcor| >= sigma_class * Phi^-1(1 - alpha / 2m)``,
   with sigma the robust (median-based) null scale of the pair class and ``alpha`` the
   expected number of false edges in the class (``alpha_switch`` for switch-switch pairs,
   ``alpha_abundance`` for pairs involving an abundance feature). Pairs of one gene's own
   switch and abundance features are never edges.
4. Feature modules are the connected components of the sparse graph. A component holding
   more than ``max_component_fraction`` of the features is a giant module: on real data a
   few strong shared factors (a stimulus, its interaction with a second one) chain most
   genes into one (the macrophage data: 13,033 of 18,584 genes). The guard
   (``giant_split="factors"``, :mod:`isograph.network.programs`) looks for the programs
   inside it and among the features no edge placed: the number of factors the samples
   support (parallel analysis against column permutations in the residual space), the
   features those factors explain (permutation p values, BH), and programs as directions
   of the varimax-rotated loadings (k-lines). Splitting the graph with Leiden and merging
   the parts back by eigengene correlation (``giant_split="leiden"``) glued the macrophage
   parts back into one program, because every part carried the condition factor; the
   factor guard separates the interferon-gamma and Salmonella programs there. Planted
   fixtures never trigger it.
5. Too few samples for the edge bound (the macrophage switch channel at 18 residual
   degrees of freedom needs |r| of about 0.9 for one edge): when the network yields no
   module at all, the same factor programs are sought among all features
   (``factor_fallback``); on a null they find nothing (``null_v1``).
6. Modules whose eigengenes correlate at ``1 - merge_cut_height`` or more are one program
   and are merged (WGCNA's ``mergeCloseModules``, cut height 0.15 as in WGCNA;
   :mod:`isograph.network.eigengenes`).

Multiplex edge policy: ``allow_abundance_abundance`` defaults to false. Abundance programs
are broad (library composition, cell-type mixture) and abundance-abundance edges chain
switch modules together; with the default an abundance feature joins a module only through
edges to switch features, so modules stay anchored on switch programs and abundance-only
members are still placed.

Gene modules: a gene takes the component (or program) of its features, before the merge of
step 6; when its switch and abundance features sit in different ones, the feature with the
larger strength (sum of |pcor| over its edges; its communality for program members) wins,
then the larger module. Components with fewer than ``min_module_size`` genes become
:data:`~isograph.backends.base.UNASSIGNED`; modules are ``M000``, ``M001``... by decreasing gene
count. The only randomness is the permutations of the factor guard (or Leiden's), seeded by
``seed``; when neither runs the seed has no effect.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from isograph.backends.base import UNASSIGNED, BackendResult, register
from isograph.features.build import ABUNDANCE, FeatureSet
from isograph.network import (
    ShrunkPartialCorrelation,
    connected_modules,
    empirical_null_scale,
    ledoit_wolf_shrinkage,
    threshold_edges,
)
from isograph.network.communities import split_large_components
from isograph.network.components import relabel_by_size
from isograph.network.eigengenes import merge_gene_modules
from isograph.network.programs import decompose_programs
from isograph.network.threshold import EdgeList, bonferroni_z, count_pairs
from omicsrun import InputError

_GIANT_SPLITS = ("factors", "leiden", "none")


@dataclass(frozen=True)
class BaselineConfig:
    """Hyper-parameters of the baseline backend (dotted overrides ``baseline.<name>``).

    Attributes
    ----------
    min_module_size
        Components with fewer genes are unassigned.
    min_shrinkage
        Floor on the shrinkage intensity (the Ledoit-Wolf value is used when larger).
    shrinkage
        Fixed intensity in (0, 1]; overrides Ledoit-Wolf and the floor when set.
    alpha_switch
        Expected number of false switch-switch edges (Bonferroni level over all pairs).
    alpha_abundance
        Expected number of false edges among pairs involving an abundance feature.
    allow_abundance_abundance
        Whether abundance-abundance pairs can be edges.
    alpha_abundance_grid
        When not empty (multiplex), ``alpha_abundance`` is chosen from these values by
        split-half stability (:func:`isograph.backends.multiplex.calibrate_alpha_abundance`).
    null_rows
        Rows sampled to estimate the null scale of the partial correlations.
    block_size
        Rows of the partial-correlation matrix held at a time.
    max_component_fraction
        Components holding more than this fraction of the features are split by Leiden;
        ``1`` keeps plain connected components.
    leiden_resolution
        Resolution of that Leiden split (1 is modularity; higher gives smaller modules).
    merge_cut_height
        Modules whose eigengenes correlate at ``1 - merge_cut_height`` or more are merged
        (WGCNA's mergeCutHeight); 0 merges nothing.
    giant_split
        What happens to a component above ``max_component_fraction``: ``factors`` (default)
        finds the programs inside it and among the features no edge placed
        (:mod:`isograph.network.programs`: permutation-calibrated factors, rotated, grouped
        by direction); ``leiden`` splits the graph by Leiden communities; ``none`` keeps it.
    factor_fallback
        When the network yields no module (too few samples for its edge bound), look for
        permutation-calibrated factor programs among all features instead.
    program_null
        Permutations behind the factor count and the membership test of the programs.
    program_fdr
        Benjamini-Hochberg level of the programs' membership test.
    """

    min_module_size: int = 10
    min_shrinkage: float = 0.99
    shrinkage: float | None = None
    alpha_switch: float = 10.0
    alpha_abundance: float = 10.0
    allow_abundance_abundance: bool = False
    alpha_abundance_grid: tuple[float, ...] = ()
    null_rows: int = 512
    block_size: int = 512
    max_component_fraction: float = 0.2
    leiden_resolution: float = 1.0
    merge_cut_height: float = 0.15
    giant_split: str = "factors"
    factor_fallback: bool = True
    program_null: int = 20
    program_fdr: float = 0.05

    def validate(self) -> None:
        """Raise :class:`InputError` naming the first out-of-range field."""
        checks = [
            ("min_module_size", self.min_module_size >= 2, ">= 2"),
            ("min_shrinkage", 0 <= self.min_shrinkage <= 1, "in [0, 1]"),
            ("shrinkage", self.shrinkage is None or 0 < self.shrinkage <= 1, "in (0, 1] or none"),
            ("alpha_switch", self.alpha_switch > 0, "> 0"),
            ("alpha_abundance", self.alpha_abundance > 0, "> 0"),
            ("alpha_abundance_grid", all(a > 0 for a in self.alpha_abundance_grid), "values > 0"),
            ("null_rows", self.null_rows >= 16, ">= 16"),
            ("block_size", self.block_size >= 1, ">= 1"),
            ("max_component_fraction", 0 < self.max_component_fraction <= 1, "in (0, 1]"),
            ("leiden_resolution", self.leiden_resolution > 0, "> 0"),
            ("merge_cut_height", 0 <= self.merge_cut_height < 1, "in [0, 1)"),
            ("giant_split", self.giant_split in _GIANT_SPLITS, f"one of {list(_GIANT_SPLITS)}"),
            ("program_null", self.program_null >= 10, ">= 10"),
            ("program_fdr", 0 < self.program_fdr < 1, "in (0, 1)"),
        ]
        for name, ok, expected in checks:
            if not ok:
                msg = f"baseline.{name} must be {expected}; found {getattr(self, name)!r}"
                raise InputError(msg)


@register("baseline")
class BaselineNetworkModel:
    """Shrinkage-regularised sparse partial-correlation network.

    Modules are its connected components, giant ones resolved into factor programs, then merged where
    their eigengenes nearly coincide (see the module docstring).
    """

    name: ClassVar[str] = "baseline"
    config_class: ClassVar[type] = BaselineConfig

    def fit(self, features: FeatureSet, *, config: BaselineConfig, seed: int = 0) -> BackendResult:
        """Modules and edges of a feature set.

        Parameters
        ----------
        features
            Standardised features, shape (n_samples, n_features).
        config
            Hyper-parameters.
        seed
            Seed of the factor-program permutations (or Leiden split); unused when neither runs.

        Returns
        -------
        BackendResult
            Gene modules (every gene with a feature), gene-gene edges, diagnostics.
        """
        config.validate()
        config, alpha_table = _calibrated(features, config, seed)
        x = np.asarray(features.matrix, dtype=np.float64)
        lw = ledoit_wolf_shrinkage(x - x.mean(axis=0))
        used = config.shrinkage if config.shrinkage is not None else max(lw, config.min_shrinkage)
        pcor = ShrunkPartialCorrelation(x, shrinkage=used)
        del x

        node_class = (features.feature_type == ABUNDANCE).astype(np.int64)
        n_classes = 2
        gene_index = pd.Index(pd.unique(features.gene_ids))
        group = gene_index.get_indexer(features.gene_ids)
        scale = empirical_null_scale(
            pcor, node_class, n_classes=n_classes, group=group, n_rows=config.null_rows
        )
        pairs = count_pairs(node_class, n_classes, group)
        alpha = np.array(
            [[config.alpha_switch, config.alpha_abundance], [config.alpha_abundance, config.alpha_abundance]]
        )
        z = np.vectorize(bonferroni_z)(alpha, pairs)
        cutoff = np.where(np.isfinite(scale), scale * z, np.inf)
        if not config.allow_abundance_abundance:
            cutoff[1, 1] = np.inf
        edges = threshold_edges(
            pcor, cutoff.astype(np.float64), node_class, group=group, block_size=config.block_size
        )

        gene_label, n_split, programs = _gene_modules(
            edges,
            group,
            len(gene_index),
            features.matrix,
            config=config,
            seed=seed,
        )
        gene_label, n_merged = merge_gene_modules(
            features.matrix,
            gene_label,
            group,
            cut_height=config.merge_cut_height,
            min_size=config.min_module_size,
        )
        module_ids = np.where(
            gene_label >= 0, np.char.add("M", np.char.zfill(gene_label.astype(str), 3)), UNASSIGNED
        )
        modules = pd.DataFrame({"gene_id": gene_index.to_numpy().astype(str), "module_id": module_ids})
        gene_edges = _gene_edges(edges, group, gene_index)
        kinds = ["switch", "abundance"]
        diagnostics: dict[str, Any] = {
            "config": asdict(config),
            "shrinkage_ledoit_wolf": lw,
            "shrinkage_used": pcor.shrinkage_,
            "null_scale": {
                f"{kinds[a]}-{kinds[b]}": _num(scale[a, b]) for a in range(2) for b in range(a, 2)
            },
            "z_cutoff": {f"{kinds[a]}-{kinds[b]}": _num(z[a, b]) for a in range(2) for b in range(a, 2)},
            "pcor_cutoff": {
                f"{kinds[a]}-{kinds[b]}": _num(cutoff[a, b]) for a in range(2) for b in range(a, 2)
            },
            "n_feature_edges": edges.n_edges,
            "n_gene_edges": len(gene_edges),
            "n_components_split_by_leiden": n_split if config.giant_split == "leiden" else 0,
            "programs": programs,
            "n_modules_merged": n_merged,
            "n_modules": int((gene_label.max(initial=-1)) + 1),
            "unassigned_fraction": float(np.mean(gene_label < 0)),
            "alpha_abundance_calibration": alpha_table,
        }
        return BackendResult(modules=modules, edges=gene_edges, diagnostics=diagnostics)


def _calibrated(
    features: FeatureSet, config: BaselineConfig, seed: int
) -> tuple[BaselineConfig, list[dict[str, Any]]]:
    # alpha_abundance from its grid by split-half stability (multiplex fits with a grid only).
    if not config.alpha_abundance_grid or not features.is_multiplex:
        return config, []
    from dataclasses import replace

    from isograph.backends.multiplex import calibrate_alpha_abundance

    x_all = np.asarray(features.matrix, dtype=np.float64)
    node_class = (features.feature_type == ABUNDANCE).astype(np.int64)
    gene_index = pd.Index(pd.unique(features.gene_ids))
    group = gene_index.get_indexer(features.gene_ids)

    def partition(alpha: float, rows: np.ndarray) -> np.ndarray:
        x = x_all[rows]
        lw = ledoit_wolf_shrinkage(x - x.mean(axis=0))
        pcor = ShrunkPartialCorrelation(
            x, shrinkage=config.shrinkage if config.shrinkage is not None else max(lw, config.min_shrinkage)
        )
        scale = empirical_null_scale(pcor, node_class, n_classes=2, group=group, n_rows=config.null_rows)
        pairs = count_pairs(node_class, 2, group)
        z = np.vectorize(bonferroni_z)(np.array([[config.alpha_switch, alpha], [alpha, alpha]]), pairs)
        cutoff = np.where(np.isfinite(scale), scale * z, np.inf)
        if not config.allow_abundance_abundance:
            cutoff[1, 1] = np.inf
        edges = threshold_edges(pcor, cutoff, node_class, group=group, block_size=config.block_size)
        labels, _, _ = _gene_modules(edges, group, len(gene_index), x, config=config, seed=seed)
        return labels

    best, table = calibrate_alpha_abundance(
        config.alpha_abundance_grid, partition, features.n_samples, seed=seed
    )
    return replace(config, alpha_abundance=best), table


def _num(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _leiden_gene_modules(
    edges: EdgeList,
    group: np.ndarray,
    n_genes: int,
    *,
    min_size: int,
    max_fraction: float,
    resolution: float,
    seed: int,
) -> tuple[np.ndarray, int]:
    # Feature components (no size filter; oversized ones split by Leiden), then one component
    # per gene: its strongest feature wins. The VAE's decoded network uses this form; the
    # baseline's own networks go through _gene_modules and its factor-program guard.
    comp, _ = connected_modules(edges.n_nodes, edges.i, edges.j, min_size=1)
    comp, comp_sizes, n_split = split_large_components(
        comp, edges.i, edges.j, edges.weight, max_fraction=max_fraction, resolution=resolution, seed=seed
    )
    strength = edges.strength()
    table = pd.DataFrame({"gene": group, "comp": comp, "strength": strength, "size": comp_sizes[comp]})
    table = table[table["size"] > 1].sort_values(
        ["gene", "strength", "size", "comp"], ascending=[True, False, False, True], kind="mergesort"
    )
    best = table.drop_duplicates("gene")
    raw = np.full(n_genes, -1, dtype=np.int64)
    raw[best["gene"].to_numpy()] = best["comp"].to_numpy()
    labels, _ = relabel_by_size(raw, min_size=min_size)
    return labels, n_split


def _gene_modules(
    edges: EdgeList,
    group: np.ndarray,
    n_genes: int,
    matrix: np.ndarray,
    *,
    config: BaselineConfig,
    seed: int,
) -> tuple[np.ndarray, int, dict[str, Any] | None]:
    # Feature components (no size filter); an oversized one goes to the giant-module guard
    # (factor programs, or Leiden); then one component per gene: its strongest feature wins.
    comp, _ = connected_modules(edges.n_nodes, edges.i, edges.j, min_size=1)
    strength = edges.strength()
    sizes = np.bincount(comp[comp >= 0], minlength=1)
    giant = sizes > config.max_component_fraction * edges.n_nodes
    if config.max_component_fraction >= 1:
        giant[:] = False
    programs: dict[str, Any] | None = None
    n_split = int(np.sum(giant))
    if n_split and config.giant_split == "factors":
        # The giant components and every feature no edge placed: what the network could not separate.
        pool = giant[comp] | (sizes[comp] <= 1)
        comp, strength, programs = _factor_programs(matrix, pool, comp, strength, config=config, seed=seed)
        programs["trigger"] = "giant_component"
    elif n_split and config.giant_split == "leiden":
        comp, _, n_split = split_large_components(
            comp,
            edges.i,
            edges.j,
            edges.weight,
            max_fraction=config.max_component_fraction,
            resolution=config.leiden_resolution,
            seed=seed,
        )
    labels = _label_genes(comp, strength, group, n_genes, min_size=config.min_module_size)
    if labels.max(initial=-1) < 0 and config.factor_fallback:
        pool = np.ones(edges.n_nodes, dtype=bool)
        comp, strength, programs = _factor_programs(matrix, pool, comp, strength, config=config, seed=seed)
        programs["trigger"] = "no_network_module"
        labels = _label_genes(comp, strength, group, n_genes, min_size=config.min_module_size)
    return labels, n_split, programs


def _factor_programs(
    matrix: np.ndarray,
    pool: np.ndarray,
    comp: np.ndarray,
    strength: np.ndarray,
    *,
    config: BaselineConfig,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    found = decompose_programs(
        np.asarray(matrix)[:, pool], n_null=config.program_null, fdr=config.program_fdr, seed=seed
    )
    comp = comp.copy()
    strength = strength.copy()
    offset = int(comp.max(initial=-1)) + 1
    comp[pool] = np.where(found.labels >= 0, found.labels + offset, -1)
    strength[pool] = found.communality
    return comp, strength, {**found.summary(), "n_pooled_features": int(pool.sum())}


def _label_genes(
    comp: np.ndarray, strength: np.ndarray, group: np.ndarray, n_genes: int, *, min_size: int
) -> np.ndarray:
    comp_sizes = np.bincount(comp[comp >= 0], minlength=1)
    size = np.where(comp >= 0, comp_sizes[np.maximum(comp, 0)], 0)
    table = pd.DataFrame({"gene": group, "comp": comp, "strength": strength, "size": size})
    table = table[table["size"] > 1].sort_values(
        ["gene", "strength", "size", "comp"], ascending=[True, False, False, True], kind="mergesort"
    )
    best = table.drop_duplicates("gene")
    raw = np.full(n_genes, -1, dtype=np.int64)
    raw[best["gene"].to_numpy()] = best["comp"].to_numpy()
    labels, _ = relabel_by_size(raw, min_size=min_size)
    return labels


def _gene_edges(edges: EdgeList, group: np.ndarray, gene_index: pd.Index) -> pd.DataFrame:
    # One row per gene pair: the feature edge with the largest |pcor| (sign kept).
    ga, gb = group[edges.i], group[edges.j]
    lo, hi = np.minimum(ga, gb), np.maximum(ga, gb)
    table = pd.DataFrame({"a": lo, "b": hi, "w": edges.weight, "abs": np.abs(edges.weight)})
    table = table.sort_values(["a", "b", "abs"], ascending=[True, True, False], kind="mergesort")
    table = table.drop_duplicates(["a", "b"])
    names = gene_index.to_numpy().astype(str)
    return pd.DataFrame(
        {
            "gene_a": names[table["a"].to_numpy()],
            "gene_b": names[table["b"].to_numpy()],
            "weight": table["w"].to_numpy(dtype=np.float64),
        }
    )
