"""The registered PerturbFM models ``perturbfm-v0`` ... ``perturbfm-v3`` (user-facing part).

Each is a :class:`~perturbfm.models.base.PerturbationModel`: keyword hyperparameters,
``fit(ds, train_idx, val_idx, *, seed)`` (``val_idx``: the split's OOD-validation rows, the
early-stopping set), ``predict`` returning the Gaussian head's mean and variance in delta
space. Graph hyperparameters (``graphs``) are paths of ``graphs/<name>.npz`` files whose
genes must equal the dataset's ``var``.

Training-only options that are not hyperparameters (checkpoint folder, resume, progress
callback) are set with :meth:`NeuralModel.set_training_options`.

Unseen inputs (``unseen_inputs``): a context without perturbed training rows and a
perturbed gene that is neither measured nor in a training perturbation carry nothing a
network has learned. ``"mean"`` (default) gives the context the mean of the learned
context embeddings and the gene no signal. ``"sample"`` draws, deterministically from the
model's seed, the context's embedding from a Gaussian with the learned embeddings'
per-dimension mean and spread, and the gene's intervention signal from a Gaussian with
the training footprints' mean and covariance (:class:`ContextEmbedding`,
:meth:`Featurizer.sampled_footprints`); v0, v2 and v3 also draw the embedding column of a
measured gene that no training perturbation touched (:func:`fill_unseen_columns`). A
single model gains nothing from a draw, but the members of a deep ensemble (each its own
seed) then disagree exactly where none has data, in the spirit of randomized prior
functions (Osband et al., NeurIPS 2018), so the epistemic variance rises on such inputs.
Seen inputs are encoded identically under both settings and the initial weights are the
same; the fitted networks differ only when the early-stopping (OOD-validation) rows hold
unseen inputs.
:class:`~perturbfm.models.uncertainty.DeepEnsemble` with K > 1 defaults to ``"sample"``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch

from omicsrun import InputError
from perturbfm.data.dataset import PerturbDataset
from perturbfm.data.graph import load_graph
from perturbfm.models.base import PerturbationModel, pert_context_keys
from perturbfm.models.neural.features import Featurizer
from perturbfm.models.neural.modules import (
    GATING_MODES,
    CGIONet,
    ContextEmbedding,
    GatedGraph,
    UnseenGeneColumns,
    V0Net,
    V1Net,
    edges_from_adjacency,
)
from perturbfm.models.neural.trainer import TrainConfig, TrainResult, predict_module, train_module
from perturbfm.models.registry import register_model

UnseenInputs = Literal["mean", "sample"]
UNSEEN_INPUTS: tuple[str, ...] = ("mean", "sample")


class NeuralModel(PerturbationModel):
    """Shared fit/predict of the torch models; subclasses build the network."""

    _residual_variance = False
    uses_graphs = False

    # Training hyperparameters shared by every version (set by subclasses' __init__).
    hidden_dim: int
    latent_dim: int
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    grad_clip: float
    patience: int
    monitor: str
    device: str
    mixed_precision: bool
    graphs: Sequence[str]
    gating: str
    use_graph: bool
    unseen_inputs: str

    def set_training_options(
        self,
        *,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        resume: bool = False,
        progress: Callable[[str], None] | None = None,
    ) -> NeuralModel:
        """Where to checkpoint, whether to resume from it, and a progress callback."""
        self._checkpoint_dir = checkpoint_dir
        self._resume = resume
        self._progress = progress
        return self

    def _train_config(self) -> TrainConfig:
        return TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            grad_clip=self.grad_clip,
            patience=self.patience,
            monitor=self.monitor,
            device=self.device,
            mixed_precision=self.mixed_precision,
        )

    def _load_graphs(self, ds: PerturbDataset) -> list[GatedGraph]:
        if not (self.uses_graphs and self.use_graph):
            return []
        if not self.graphs:
            msg = (
                f"model {self.name!r} with use_graph=true needs at least one graph "
                "(--graph NAME or graphs=[path]); use use_graph=false for the no-graph ablation"
            )
            raise InputError(msg)
        if self.gating not in GATING_MODES:
            msg = f"gating must be one of {list(GATING_MODES)}; found {self.gating!r}"
            raise InputError(msg)
        return [
            GatedGraph(edges_from_adjacency(load_graph(path, var=ds.var)), ds.n_genes, self.gating)
            for path in self.graphs
        ]

    def _build(self, ds: PerturbDataset, n_contexts: int) -> torch.nn.Module:
        raise NotImplementedError

    def check_params(self) -> None:
        """The choices (``unseen_inputs``, ``gating``) and the trainer's settings."""
        self._train_config()  # monitor, epochs, batch size, learning rate...
        if self.unseen_inputs not in UNSEEN_INPUTS:
            msg = f"unseen_inputs must be one of {list(UNSEEN_INPUTS)}; found {self.unseen_inputs!r}"
            raise InputError(msg)
        if self.uses_graphs and self.gating not in GATING_MODES:
            msg = f"gating must be one of {list(GATING_MODES)}; found {self.gating!r}"
            raise InputError(msg)

    def _fit_with_validation(
        self, ds: PerturbDataset, pert_idx: np.ndarray, seed: int, val_pert_idx: np.ndarray
    ) -> None:
        self.check_params()
        config = self._train_config()
        features = Featurizer.fit(ds, self.train_idx_)
        torch.manual_seed(seed)
        module = self._build(ds, features.n_contexts)
        train = (features.inputs(ds, pert_idx), features.target(ds, pert_idx))
        self.unseen_gene_seed_ = None
        if self.unseen_inputs == "sample":
            # Own generator: the network's initial weights stay those of unseen_inputs="mean".
            generator = torch.Generator().manual_seed(int(seed))
            for part in module.modules():
                if isinstance(part, ContextEmbedding):
                    part.set_unseen_noise(torch.randn(part.table.shape[1], generator=generator))
            if isinstance(module, UnseenGeneColumns):
                # Embedding columns no training mask reaches (measured genes never perturbed
                # in training) keep their initialisation: draw them around the learned ones.
                unseen = torch.from_numpy(~(train[0]["mask"] != 0).any(axis=0))
                noise = torch.randn(module.unseen_gene_noise.shape, generator=generator)
                module.set_unseen_genes(unseen, noise)
            self.unseen_gene_seed_ = int(seed)
        val = None
        if val_pert_idx.size:
            val = (
                features.inputs(ds, val_pert_idx, unseen_gene_seed=self.unseen_gene_seed_),
                features.target(ds, val_pert_idx),
                pert_context_keys(ds, val_pert_idx).astype(str),
            )
        result: TrainResult = train_module(
            module,
            train,
            val,
            config=config,
            seed=seed,
            checkpoint_dir=getattr(self, "_checkpoint_dir", None),
            resume=getattr(self, "_resume", False),
            progress=getattr(self, "_progress", None),
        )
        self.features_ = features
        self.module_ = module
        self.training_ = result.to_dict()
        self.n_val_rows_ = int(val_pert_idx.size)

    def _inputs(self, ds: PerturbDataset, idx: np.ndarray) -> dict[str, np.ndarray]:
        # Models saved before unseen_inputs existed have no unseen_gene_seed_ ("mean").
        return self.features_.inputs(ds, idx, unseen_gene_seed=getattr(self, "unseen_gene_seed_", None))

    def _predict_mean_var(
        self, ds: PerturbDataset, idx: np.ndarray, **forward_kwargs: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        inputs = self._inputs(ds, idx)
        mean, var = predict_module(self.module_, inputs, **forward_kwargs)
        sd = self.features_.delta_sd.astype(np.float64)
        if mean.size == 0:
            return np.zeros((len(idx), ds.n_genes)), np.ones((len(idx), ds.n_genes))
        return mean * sd, var * sd**2

    def _predict_mean(self, ds: PerturbDataset, idx: np.ndarray) -> np.ndarray:
        return self._predict_mean_var(ds, idx)[0]

    def diagnostics(self, ds: PerturbDataset, idx: np.ndarray) -> dict[str, Any]:
        """Training summary and, for graph models, graph reliance on rows ``idx``.

        ``graph_reliance``: ``relative_change`` = ||mu - mu_no_graph|| / ||mu|| over the rows
        (how much the prediction moves when graph propagation is switched off), the mean
        edge gate of every graph, and (v2/v3) the mean mixture weight of every graph.
        """
        out: dict[str, Any] = {"training": self.training_, "n_ood_val_rows": self.n_val_rows_}
        module = self.module_
        graphs = list(
            getattr(module, "graphs", []) or ([module.graph] if getattr(module, "graph", None) else [])
        )
        if not graphs or not len(idx):
            return out
        with_graph, _ = self._predict_mean_var(ds, idx)
        without, _ = self._predict_mean_var(ds, idx, use_graph=False)
        reliance: dict[str, Any] = {
            "relative_change": float(
                np.linalg.norm(with_graph - without) / max(float(np.linalg.norm(with_graph)), 1e-12)
            ),
            "mean_gate": [float(g.gates().detach().mean()) for g in graphs],
            "graphs": [str(p) for p in self.graphs],
        }
        if isinstance(module, CGIONet):
            inputs = self._inputs(ds, idx)
            with torch.no_grad():
                batch = {k: torch.from_numpy(v) for k, v in inputs.items()}
                _, _, weights = module.representation(batch, module.condition(batch))
            if weights is not None:
                reliance["mean_mixture_weight"] = weights.mean(dim=0).tolist()
        out["graph_reliance"] = reliance
        return out


@register_model("perturbfm-v0")
class PerturbFMv0(NeuralModel):
    """v0: probabilistic, no graph: basal(z) + systematic shift(c) + effect(z, c, p), Gaussian head.

    Ablations: ``use_context=False`` (v0.no_context), ``use_basal=False`` (v0.no_basal),
    ``use_perturbation=False`` (v0.no_perturbation).
    """

    def __init__(
        self,
        *,
        hidden_dim: int = 128,
        latent_dim: int = 32,
        use_basal: bool = True,
        use_context: bool = True,
        use_perturbation: bool = True,
        epochs: int = 60,
        batch_size: int = 128,
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        grad_clip: float = 1.0,
        patience: int = 10,
        monitor: str = "rmse",
        device: str = "cpu",
        mixed_precision: bool = False,
        unseen_inputs: UnseenInputs = "mean",
    ) -> None:
        self.hidden_dim = hidden_dim
        self.latent_dim = latent_dim
        self.use_basal = use_basal
        self.use_context = use_context
        self.use_perturbation = use_perturbation
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.grad_clip = grad_clip
        self.patience = patience
        self.monitor = monitor
        self.device = device
        self.mixed_precision = mixed_precision
        self.unseen_inputs = unseen_inputs

    def _build(self, ds: PerturbDataset, n_contexts: int) -> torch.nn.Module:
        return V0Net(
            ds.n_genes,
            n_contexts,
            hidden_dim=self.hidden_dim,
            latent_dim=self.latent_dim,
            use_basal=self.use_basal,
            use_context=self.use_context,
            use_perturbation=self.use_perturbation,
        )


@register_model("perturbfm-v1")
class PerturbFMv1(NeuralModel):
    """v1: v0 whose perturbation embedding is gene embeddings refined over a gated gene graph.

    Ablations: ``use_graph=False`` (v1.no_graph), ``gating="none"`` (v1.graph_no_gating),
    ``gating="node"`` (default; v1.graph_with_gating). Gating modes: none, scalar, node,
    lowrank, mlp. Only the first graph of ``graphs`` is used.
    """

    uses_graphs = True

    def __init__(
        self,
        *,
        graphs: Sequence[str] = (),
        use_graph: bool = True,
        gating: str = "node",
        n_layers: int = 2,
        hidden_dim: int = 128,
        latent_dim: int = 32,
        epochs: int = 60,
        batch_size: int = 128,
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        grad_clip: float = 1.0,
        patience: int = 10,
        monitor: str = "rmse",
        device: str = "cpu",
        mixed_precision: bool = False,
        unseen_inputs: UnseenInputs = "mean",
    ) -> None:
        self.graphs = graphs
        self.use_graph = use_graph
        self.gating = gating
        self.n_layers = n_layers
        self.hidden_dim = hidden_dim
        self.latent_dim = latent_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.grad_clip = grad_clip
        self.patience = patience
        self.monitor = monitor
        self.device = device
        self.mixed_precision = mixed_precision
        self.unseen_inputs = unseen_inputs

    def _build(self, ds: PerturbDataset, n_contexts: int) -> torch.nn.Module:
        graphs = self._load_graphs(ds)
        return V1Net(
            ds.n_genes,
            n_contexts,
            hidden_dim=self.hidden_dim,
            latent_dim=self.latent_dim,
            graph=graphs[0] if graphs else None,
            n_layers=self.n_layers,
            use_basal=True,
            use_context=True,
            use_perturbation=True,
        )


@register_model("perturbfm-v2")
class PerturbFMv2(NeuralModel):
    """v2 (CGIO): gated propagation of the intervention mask over one or more graphs, a
    mixture over graphs, and a context-conditioned low-rank operator (see :class:`CGIONet`).

    Ablations: ``use_graph=False`` (v2.no_graph), ``gating="none"`` (v2.single_graph_fixed),
    one graph gated (v2.single_graph_gated), several graphs (v2.multi_graph_gated),
    ``contextual_operator=False`` (v2.operator_global) / ``True`` (v2.operator_contextual).
    """

    uses_graphs = True
    _state = False

    def __init__(
        self,
        *,
        graphs: Sequence[str] = (),
        use_graph: bool = True,
        gating: str = "node",
        n_hops: int = 2,
        n_bases: int = 4,
        contextual_operator: bool = True,
        systematic_shift: bool = True,
        direct_effect: bool = True,
        hidden_dim: int = 128,
        latent_dim: int = 32,
        epochs: int = 60,
        batch_size: int = 128,
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        grad_clip: float = 1.0,
        patience: int = 10,
        monitor: str = "rmse",
        device: str = "cpu",
        mixed_precision: bool = False,
        unseen_inputs: UnseenInputs = "mean",
    ) -> None:
        self.graphs = graphs
        self.use_graph = use_graph
        self.gating = gating
        self.n_hops = n_hops
        self.n_bases = n_bases
        self.contextual_operator = contextual_operator
        self.systematic_shift = systematic_shift
        self.direct_effect = direct_effect
        self.hidden_dim = hidden_dim
        self.latent_dim = latent_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.grad_clip = grad_clip
        self.patience = patience
        self.monitor = monitor
        self.device = device
        self.mixed_precision = mixed_precision
        self.unseen_inputs = unseen_inputs

    def _build(self, ds: PerturbDataset, n_contexts: int) -> torch.nn.Module:
        return CGIONet(
            ds.n_genes,
            n_contexts,
            hidden_dim=self.hidden_dim,
            latent_dim=self.latent_dim,
            graphs=self._load_graphs(ds),
            n_hops=self.n_hops,
            n_bases=self.n_bases,
            contextual=self.contextual_operator,
            shift=self.systematic_shift,
            state=self._state,
            direct_effect=self.direct_effect,
        )


@register_model("perturbfm-v3")
class PerturbFMv3(PerturbFMv2):
    """v3: v2 conditioned on the cell's control state (state-dependent CGIO)."""

    _state = True
