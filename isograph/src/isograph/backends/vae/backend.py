"""The ``vae`` backend users see: config, fit, save/load (torch stays inside)."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, cast

import numpy as np
import pandas as pd

from isograph.backends.base import UNASSIGNED, BackendResult, register
from isograph.backends.baseline import _gene_edges, _leiden_gene_modules
from isograph.backends.multiplex import calibrate_alpha_abundance, class_cutoffs, describe
from isograph.backends.vae._torch import require_torch, resolve_device
from isograph.backends.vae.gate import support_gate
from isograph.backends.vae.modules import (
    DecodedCovariance,
    explained_variance,
    loading_modules,
    module_latent_dims,
    split_components_by_programs,
)
from isograph.features.build import ABUNDANCE, FeatureSet
from isograph.network import empirical_null_scale, threshold_edges
from isograph.network.eigengenes import merge_gene_modules
from isograph.network.partial import ShrunkPartialCorrelation
from isograph.network.threshold import EdgeList, count_pairs
from omicsrun import InputError

CHECKPOINT_NAME = "vae_checkpoint.pt"
CONFIG_NAME = "vae_config.json"
CHECKPOINT_FORMAT = "isograph-vae-checkpoint"
CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class VaeConfig:
    """Hyper-parameters of the VAE backend (dotted overrides ``vae.<name>``).

    Attributes
    ----------
    latent_dim
        Latent dimensions when ``latent_grid`` is empty.
    latent_grid
        Latent sizes to try; the one with the best validation ELBO is kept.
    hidden_dim
        Hidden units of encoder and decoder.
    dropout
        Dropout on the encoder input.
    max_epochs, patience
        Epoch cap and early-stopping patience on the validation ELBO.
    warmup_epochs
        Linear KL warm-up (no early stopping before it ends).
    learning_rate, weight_decay, batch_size, grad_clip
        AdamW settings, samples per step, gradient-norm clip.
    val_fraction
        Samples held out for early stopping (at least 2).
    collapse_kl
        Latent dims whose mean KL (nats) is below this are inactive: reported and dropped.
    device
        ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
    modules
        Module rule: ``decoded`` (implied covariance of the decoded signal, thresholded like
        the baseline's network) or ``loadings`` (strongest decoder-Jacobian latent dim); see
        :mod:`isograph.backends.vae.modules` for why ``decoded`` is the default.
    min_module_size, null_rows, block_size, max_component_fraction, leiden_resolution,
    merge_cut_height
        As for the baseline backend.
    component_split
        What happens to a component of the decoded network (``decoded`` rule): ``programs``
        splits each component of at least ``2 * min_module_size`` features into its programs
        when the permutation null of the measured features supports more than one
        (:func:`isograph.backends.vae.modules.split_components_by_programs`); ``leiden``
        splits only components above ``max_component_fraction`` by Leiden; ``auto``
        (default) takes ``programs`` for multiplex features, and otherwise ``leiden`` unless
        its merged modules number fewer than half the factors the permutation null supports,
        in which case ``programs``. By measurement (README, VAE section; seed 0): the
        decoder's shared latent space chains programs into one component (``multiplex_hard``:
        13 programs in 1 module before; ``scale_12k``: 17 programs, 1 module with ``leiden``,
        14 modules and F_rr 0.59 with ``programs``; mean F_rr on ``multiplex_v1`` 0.61
        against 0.42), while on ``core_v1`` the linear factors cut some non-linear programs
        apart (``nonlinear`` 0.39 against 0.58; ``standard`` 0.70 against 0.81), so
        ``programs`` everywhere was not kept.
    factor_fallback, program_null, program_fdr
        When the decoded network yields no module (no edge survives at small n), the
        programs of all features (permutation null with ``program_null`` permutations,
        membership at Benjamini-Hochberg ``program_fdr``), as the baseline does.
    support_gate, support_fraction
        Keep only the modules of which at least ``support_fraction`` of the features are
        explained by factors above a permutation null (:mod:`isograph.backends.vae.gate`).
        A decoder always produces correlated output, so on data with no co-regulation the
        decoded network alone found 1-5 spurious modules per 2,000-gene null (``null_v1``);
        the gate removes them and leaves planted fixtures as they were.
    alpha_switch, alpha_abundance, allow_abundance_abundance, alpha_abundance_grid
        The multiplex edge policy (:mod:`isograph.backends.multiplex`).
    progress
        Show a progress bar (epoch, losses) on a terminal.
    threads
        CPU threads torch may use during the fit (0: torch's default); restored afterwards.
        Default 1: the networks are small (one row per sample), so thread synchronisation
        costs more than it saves; on this project's shared 2-core machine a core_v1/standard
        fit took 26 s with one thread and 137 s with two.
    """

    latent_dim: int = 16
    latent_grid: tuple[int, ...] = ()
    hidden_dim: int = 128
    dropout: float = 0.1
    max_epochs: int = 300
    patience: int = 25
    warmup_epochs: int = 40
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 64
    grad_clip: float = 5.0
    val_fraction: float = 0.15
    collapse_kl: float = 0.01
    device: Literal["auto", "cpu", "cuda"] = "auto"
    modules: Literal["decoded", "loadings"] = "decoded"
    min_module_size: int = 10
    alpha_switch: float = 10.0
    alpha_abundance: float = 10.0
    allow_abundance_abundance: bool = False
    alpha_abundance_grid: tuple[float, ...] = ()
    null_rows: int = 512
    block_size: int = 512
    max_component_fraction: float = 0.2
    leiden_resolution: float = 1.0
    merge_cut_height: float = 0.15
    component_split: Literal["auto", "programs", "leiden"] = "auto"
    factor_fallback: bool = True
    program_null: int = 20
    program_fdr: float = 0.05
    support_gate: bool = True
    support_fraction: float = 0.25
    progress: bool = True
    threads: int = 1

    def validate(self) -> None:
        """Raise :class:`InputError` naming the first out-of-range field."""
        checks = [
            ("latent_dim", self.latent_dim >= 1, ">= 1"),
            ("latent_grid", all(k >= 1 for k in self.latent_grid), "positive integers"),
            ("hidden_dim", self.hidden_dim >= 1, ">= 1"),
            ("dropout", 0 <= self.dropout < 1, "in [0, 1)"),
            ("max_epochs", self.max_epochs >= 1, ">= 1"),
            ("patience", self.patience >= 1, ">= 1"),
            ("warmup_epochs", self.warmup_epochs >= 0, ">= 0"),
            ("learning_rate", self.learning_rate > 0, "> 0"),
            ("weight_decay", self.weight_decay >= 0, ">= 0"),
            ("batch_size", self.batch_size >= 1, ">= 1"),
            ("grad_clip", self.grad_clip > 0, "> 0"),
            ("val_fraction", 0 < self.val_fraction < 1, "in (0, 1)"),
            ("collapse_kl", self.collapse_kl >= 0, ">= 0"),
            ("device", self.device in {"auto", "cpu", "cuda"}, "one of auto, cpu, cuda"),
            ("modules", self.modules in {"decoded", "loadings"}, "one of decoded, loadings"),
            ("min_module_size", self.min_module_size >= 2, ">= 2"),
            ("alpha_switch", self.alpha_switch > 0, "> 0"),
            ("alpha_abundance", self.alpha_abundance > 0, "> 0"),
            ("alpha_abundance_grid", all(a > 0 for a in self.alpha_abundance_grid), "values > 0"),
            ("null_rows", self.null_rows >= 16, ">= 16"),
            ("block_size", self.block_size >= 1, ">= 1"),
            ("max_component_fraction", 0 < self.max_component_fraction <= 1, "in (0, 1]"),
            ("leiden_resolution", self.leiden_resolution > 0, "> 0"),
            ("merge_cut_height", 0 <= self.merge_cut_height < 1, "in [0, 1)"),
            (
                "component_split",
                self.component_split in {"auto", "programs", "leiden"},
                "auto, programs or leiden",
            ),
            ("program_null", self.program_null >= 10, ">= 10"),
            ("program_fdr", 0 < self.program_fdr < 1, "in (0, 1)"),
            ("threads", self.threads >= 0, ">= 0 (0: torch's default)"),
            ("support_fraction", 0 < self.support_fraction <= 1, "in (0, 1]"),
        ]
        for name, ok, expected in checks:
            if not ok:
                msg = f"vae.{name} must be {expected}; found {getattr(self, name)!r}"
                raise InputError(msg)


@register("vae")
class VaeNetworkModel:
    """Variational autoencoder over the feature matrix; modules from its decoded signal.

    Learned state after :meth:`fit`: ``network_`` (the torch module, CPU, eval mode),
    ``checkpoint_`` (what :meth:`save` writes), ``decoded_`` (n_samples x n_features).
    """

    name: ClassVar[str] = "vae"
    config_class: ClassVar[type] = VaeConfig
    requires: ClassVar[tuple[str, ...]] = ("torch",)
    install_hint: ClassVar[str] = "pip install 'isograph[vae]' (or a torch build for your CPU/GPU)"

    def fit(self, features: FeatureSet, *, config: VaeConfig, seed: int = 0) -> BackendResult:
        """Train the VAE on the features and infer modules.

        Parameters
        ----------
        features
            Standardised features, shape (n_samples, n_features); both channels in multiplex.
        config
            Hyper-parameters.
        seed
            Seeds the held-out split, weights, shuffling, noise and Leiden.

        Returns
        -------
        BackendResult

        Raises
        ------
        InputError
            Bad hyper-parameter, torch missing, ``device=cuda`` without a GPU, or too few samples.
        """
        config.validate()
        torch = require_torch()
        device = resolve_device(torch, config.device)
        if features.n_samples < 6:
            msg = (
                "the vae backend needs at least 6 samples (4 to train, 2 held out); "
                f"found {features.n_samples}"
            )
            raise InputError(msg)
        from isograph.backends.vae.engine import fit_vae

        x = np.asarray(features.matrix, dtype=np.float32)
        previous_threads = torch.get_num_threads()
        if config.threads:
            torch.set_num_threads(config.threads)
        try:
            trained = fit_vae(x, config=config, seed=seed, device=device)
        finally:
            torch.set_num_threads(previous_threads)
        r2 = explained_variance(x, trained.decoded)

        node_class = (features.feature_type == ABUNDANCE).astype(np.int64)
        gene_index = pd.Index(pd.unique(features.gene_ids))
        group = gene_index.get_indexer(features.gene_ids)
        alpha_table: list[dict[str, Any]] = []
        alpha_abundance = config.alpha_abundance
        multiplex = bool(node_class.any() and (node_class == 0).any())
        if config.alpha_abundance_grid and multiplex:

            def partition(alpha: float, rows: np.ndarray) -> np.ndarray:
                cfg = dataclasses.replace(config, alpha_abundance=alpha)
                edges, *_ = _decoded_edges(trained.decoded[rows], node_class, group, cfg)
                labels, _ = _leiden_gene_modules(
                    edges,
                    group,
                    len(gene_index),
                    min_size=cfg.min_module_size,
                    max_fraction=cfg.max_component_fraction,
                    resolution=cfg.leiden_resolution,
                    seed=seed,
                )
                return labels

            alpha_abundance, alpha_table = calibrate_alpha_abundance(
                config.alpha_abundance_grid, partition, features.n_samples, seed=seed
            )
        used = dataclasses.replace(config, alpha_abundance=alpha_abundance)

        if config.modules == "decoded":
            edges, scale, z, cutoff = _decoded_edges(trained.decoded, node_class, group, used)
            split: str = used.component_split
            if split == "auto":
                split = "programs" if multiplex else "leiden"
            gene_label, n_split = self._components(features, edges, group, len(gene_index), used, split, seed)
            if used.component_split == "auto" and split == "leiden":
                # A decoded network that joins the programs the samples support: fewer merged
                # modules than half the factors above the permutation null (scale_12k: 1
                # module for 17 programs) -> split its components into programs instead.
                merged, _ = merge_gene_modules(
                    features.matrix,
                    gene_label,
                    group,
                    cut_height=used.merge_cut_height,
                    min_size=used.min_module_size,
                )
                if merged.max(initial=-1) + 1 < self._supported(features, seed).n_factors / 2:
                    split = "programs"
                    gene_label, n_split = self._components(
                        features, edges, group, len(gene_index), used, split, seed
                    )
            fallback = used.factor_fallback and gene_label.max(initial=-1) < 0
            if fallback:
                gene_label = _program_fallback(features.matrix, group, len(gene_index), used, seed)
        else:
            fallback, split = False, "none"
            edges = EdgeList(
                i=np.zeros(0, np.int64), j=np.zeros(0, np.int64), weight=np.zeros(0), n_nodes=len(group)
            )
            scale = z = cutoff = np.full((2, 2), np.nan)
            gene_label = loading_modules(
                trained.loadings,
                r2,
                group,
                len(gene_index),
                alpha=used.alpha_switch,
                min_size=used.min_module_size,
            )
            n_split = 0
        gene_label, n_merged = merge_gene_modules(
            features.matrix,
            gene_label,
            group,
            cut_height=used.merge_cut_height,
            min_size=used.min_module_size,
        )
        support: dict[str, Any] | None = None
        if used.support_gate and (gene_label >= 0).any():
            gene_label, support = support_gate(
                features.matrix,
                gene_label,
                group,
                min_fraction=used.support_fraction,
                seed=seed,
                supported=self._supported(features, seed),
            )
        n_modules = int(gene_label.max(initial=-1)) + 1
        module_names = [f"M{m:03d}" for m in range(n_modules)]
        module_ids = np.where(
            gene_label >= 0, np.char.add("M", np.char.zfill(gene_label.astype(str), 3)), UNASSIGNED
        )
        modules = pd.DataFrame({"gene_id": gene_index.to_numpy().astype(str), "module_id": module_ids})
        drivers = module_latent_dims(trained.loadings, gene_label[group], n_modules, trained.active_dims)

        self.network_ = trained.network
        self.decoded_ = trained.decoded
        self.checkpoint_: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "format_version": CHECKPOINT_VERSION,
            "state_dict": trained.network.state_dict(),
            "n_features": int(x.shape[1]),
            "n_latent": int(trained.network.n_latent),
            "n_hidden": int(config.hidden_dim),
            "dropout": float(config.dropout),
            "feature_ids": [str(f) for f in features.feature_ids],
            "feature_types": [str(f) for f in features.feature_type],
            "active_dims": [int(d) for d in trained.active_dims],
            "module_ids": module_names,
            "module_latent_dims": drivers,
            "seed": int(seed),
            "config": _plain(asdict(used)),
        }
        inactive = np.setdiff1d(np.arange(trained.network.n_latent), trained.active_dims)
        diagnostics: dict[str, Any] = {
            "config": _plain(asdict(used)),
            "device": str(device),
            "latent_grid": trained.grid,
            "latent_dim": int(trained.network.n_latent),
            "best_epoch": trained.history.best_epoch,
            "n_epochs": trained.history.n_epochs,
            "stopped_early": trained.history.stopped_early,
            "best_val_elbo": trained.history.best_val_elbo,
            "kl_per_dim": [float(v) for v in trained.kl_per_dim],
            "inactive_latent_dims": [int(d) for d in inactive],
            "n_active_latent_dims": len(trained.active_dims),
            "explained_variance_median": float(np.median(r2)),
            "module_rule": used.modules,
            "support_gate": support,
            "module_latent_dims": dict(zip(module_names, drivers, strict=True)),
            "alpha_abundance_used": float(alpha_abundance),
            "alpha_abundance_calibration": alpha_table,
            "null_scale": describe(scale),
            "z_cutoff": describe(z),
            "cov_cutoff": describe(cutoff),
            "n_feature_edges": edges.n_edges,
            "n_components_split": n_split,
            "component_split": split if used.modules == "decoded" else None,
            "factor_fallback_used": bool(fallback),
            "n_modules_merged": n_merged,
            "n_modules": n_modules,
            "unassigned_fraction": float(np.mean(gene_label < 0)),
        }
        factor_names = [f"F{d:02d}" for d in trained.active_dims]
        with torch.no_grad():
            mu, _ = trained.network.encode(torch.as_tensor(x))
        sample_scores = pd.DataFrame(
            mu.numpy()[:, trained.active_dims].astype(np.float64),
            index=pd.Index(features.sample_ids.astype(str), name="sample_id"),
            columns=factor_names,
        )
        feature_loadings = pd.DataFrame(
            trained.loadings.astype(np.float64),
            index=pd.Index(features.feature_ids.astype(str), name="feature_id"),
            columns=factor_names,
        )
        calibration = {
            "latent_grid": trained.grid,
            "latent_dim": int(trained.network.n_latent),
            "kl_per_dim": [float(v) for v in trained.kl_per_dim],
            "inactive_latent_dims": [int(d) for d in inactive],
            "val_elbo_per_epoch": [float(v) for v in trained.history.val_elbo],
            "alpha_abundance_used": float(alpha_abundance),
            "alpha_abundance_calibration": alpha_table,
        }
        return BackendResult(
            modules=modules,
            edges=_gene_edges(edges, group, gene_index),
            diagnostics=diagnostics,
            calibration=calibration,
            sample_scores=sample_scores,
            feature_loadings=feature_loadings,
            state=self.checkpoint_,
        )

    def _supported(self, features: FeatureSet, seed: int) -> Any:
        # The permutation null of factors of the measured features (support gate, auto split),
        # computed once per fit.
        cached = getattr(self, "_support_cache", None)
        if cached is None or cached[0] is not features:
            from isograph.network.programs import decompose_programs

            found = decompose_programs(np.asarray(features.matrix, dtype=np.float64), seed=seed)
            self._support_cache = (features, found)
            return found
        return cached[1]

    def _components(
        self,
        features: FeatureSet,
        edges: EdgeList,
        group: np.ndarray,
        n_genes: int,
        config: VaeConfig,
        split: str,
        seed: int,
    ) -> tuple[np.ndarray, int]:
        if split == "programs":
            return _program_gene_modules(features.matrix, edges, group, n_genes, config, seed)
        return _leiden_gene_modules(
            edges,
            group,
            n_genes,
            min_size=config.min_module_size,
            max_fraction=config.max_component_fraction,
            resolution=config.leiden_resolution,
            seed=seed,
        )

    def save_state(self, state: dict[str, Any], folder: str | Path) -> None:
        """Write ``vae_checkpoint.pt`` (weights, architecture, feature ids, module drivers) and
        ``vae_config.json`` (the config, readable without torch) into ``folder``."""
        import json

        torch = require_torch()
        folder = Path(folder)
        torch.save(state, folder / CHECKPOINT_NAME)
        (folder / CONFIG_NAME).write_text(json.dumps(state["config"], indent=2, sort_keys=True) + "\n")

    def load_state(self, folder: str | Path) -> dict[str, Any]:
        """The checkpoint dictionary :meth:`save_state` wrote (tensors on CPU)."""
        from isograph.backends.vae.handle import read_checkpoint

        return read_checkpoint(Path(folder) / CHECKPOINT_NAME)


def _plain(config: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}


def _program_gene_modules(
    matrix: np.ndarray, edges: EdgeList, group: np.ndarray, n_genes: int, config: VaeConfig, seed: int
) -> tuple[np.ndarray, int]:
    # Components of the decoded network, each split into its programs when the permutation
    # null supports more than one (split_components_by_programs); one module per gene: its
    # strongest feature wins.
    from isograph.backends.baseline import _label_genes
    from isograph.network.components import connected_modules

    comp, _ = connected_modules(edges.n_nodes, edges.i, edges.j, min_size=1)
    sizes = np.bincount(comp[comp >= 0], minlength=1)
    comp = np.where(sizes[np.maximum(comp, 0)] > 1, comp, -1)
    comp, strength, n_split = split_components_by_programs(
        matrix,
        comp,
        edges.strength(),
        min_size=config.min_module_size,
        n_null=config.program_null,
        fdr=config.program_fdr,
        seed=seed,
    )
    labels = _label_genes(comp, strength, group, n_genes, min_size=config.min_module_size)
    return labels, n_split


def _program_fallback(
    matrix: np.ndarray, group: np.ndarray, n_genes: int, config: VaeConfig, seed: int
) -> np.ndarray:
    # No decoded edge survived (small n: factorial_n24 after library-size regression): the
    # programs of all features, as the baseline's factor fallback does; on a null the
    # permutation null finds none.
    from isograph.backends.baseline import _label_genes
    from isograph.network.programs import decompose_programs

    found = decompose_programs(
        np.asarray(matrix), n_null=config.program_null, fdr=config.program_fdr, seed=seed
    )
    return _label_genes(found.labels, found.communality, group, n_genes, min_size=config.min_module_size)


def _decoded_edges(
    decoded: np.ndarray, node_class: np.ndarray, group: np.ndarray, config: VaeConfig
) -> tuple[EdgeList, np.ndarray, np.ndarray, np.ndarray]:
    # DecodedCovariance has ShrunkPartialCorrelation's row interface; the baseline's
    # blockwise null-scale and thresholding code applies as is.
    cov = cast(ShrunkPartialCorrelation, DecodedCovariance(decoded))
    scale = empirical_null_scale(cov, node_class, n_classes=2, group=group, n_rows=config.null_rows)
    pairs = count_pairs(node_class, 2, group)
    z, cutoff = class_cutoffs(
        scale,
        pairs,
        alpha_switch=config.alpha_switch,
        alpha_abundance=config.alpha_abundance,
        allow_abundance_abundance=config.allow_abundance_abundance,
    )
    edges = threshold_edges(cov, cutoff, node_class, group=group, block_size=config.block_size)
    return edges, scale, z, cutoff
