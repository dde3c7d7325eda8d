"""The networks of PerturbFM v0-v3 (``torch.nn.Module``); they see tensors, never a dataset.

Every network maps a batch ``{"x", "mask", "context"}`` (standardised control expression
(B, G), intervention mask (B, G), context index (B,), -1 for an unseen context) to a mean
and a variance of the *scaled* delta, both (B, G).

Gene graphs enter as edge lists ``(dst, src, weight)`` of a row-normalised adjacency, so a
propagation step is ``out[:, dst] += weight * in[:, src]`` (one ``index_add_``), linear in
the number of edges; no dense G x G matrix is formed.

Gating (trust in a graph's edges), ``gate(e)`` in (0, 1) multiplies edge e's weight:
``none`` 1; ``scalar`` one learned gate per graph; ``node`` a learned gate per source gene;
``lowrank`` sigmoid(u_src . v_dst) with rank-r gene factors; ``mlp`` sigmoid(MLP([n_src, n_dst]))
over learned gene embeddings. Learned gates start at sigmoid(1) = 0.73, so a graph starts
trusted and the data can shut it off.
"""

from __future__ import annotations

from typing import Literal, cast

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

GatingMode = Literal["none", "scalar", "node", "lowrank", "mlp"]
GATING_MODES: tuple[str, ...] = ("none", "scalar", "node", "lowrank", "mlp")
VAR_EPS = 1e-4
_GATE_INIT = 1.0


def edges_from_adjacency(adjacency: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row-normalised edge list ``(dst, src, weight)`` of a (G, G) adjacency (self-loops dropped)."""
    adj = np.abs(np.asarray(adjacency, dtype=np.float64))
    np.fill_diagonal(adj, 0.0)
    dst, src = np.nonzero(adj)
    weight = adj[dst, src]
    row_sum = np.bincount(dst, weights=weight, minlength=adj.shape[0])
    weight = weight / row_sum[dst]
    return dst.astype(np.int64), src.astype(np.int64), weight.astype(np.float32)


def _mlp(n_in: int, n_hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, n_hidden), nn.GELU(), nn.Linear(n_hidden, n_out))


class ContextEmbedding(nn.Module):
    """Learned context vectors; an unseen context (index -1) gets ``mean + sd * noise``.

    ``mean`` and ``sd`` are the per-dimension mean and (population) standard deviation of
    the learned vectors, read at every call, and ``noise`` a fixed (dim,) buffer: zero by
    default (the unseen context is the mean context), a standard normal draw after
    :meth:`set_unseen_noise` (the ``unseen_inputs="sample"`` models: each ensemble member
    places the unseen context at its own plausible point, so members disagree there).
    With one learned context ``sd`` is 0 and both are the mean.
    """

    def __init__(self, n_contexts: int, dim: int) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.randn(max(n_contexts, 1), dim) * 0.01)
        self.register_buffer("unseen_noise", torch.zeros(dim))
        self.unseen_noise: torch.Tensor

    def set_unseen_noise(self, noise: torch.Tensor) -> None:
        """Fix the standard-normal ``noise`` (dim,) of the unseen context's draw."""
        self.unseen_noise.copy_(noise)

    def unseen(self) -> torch.Tensor:
        """The vector an unseen context gets, (1, dim)."""
        noise = getattr(self, "unseen_noise", None)  # absent in modules pickled before it existed
        if noise is None or not bool(noise.any()):
            return self.table.mean(dim=0, keepdim=True)
        return draw_around(self.table, noise, dim=0)

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        seen = context >= 0
        out = self.table[context.clamp(min=0)]
        return torch.where(seen[:, None], out, self.unseen().expand_as(out))


def fill_unseen_columns(weight: torch.Tensor, unseen: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """``weight`` (d, G) whose ``unseen`` columns are ``mean + sd * noise`` of the other columns.

    A gene column of a perturbation embedding receives gradient only from training masks
    that are nonzero at that gene; a measured gene never perturbed in training keeps its
    random initialisation. Under ``unseen_inputs="sample"`` it gets a draw with the
    per-dimension mean and (population) spread of the learned columns instead (the same rule
    as :class:`ContextEmbedding`), so ensemble members disagree on it.
    """
    seen = ~unseen
    if not bool(unseen.any()) or not bool(seen.any()):
        return weight
    return torch.where(unseen[None, :], draw_around(weight[:, seen], noise, dim=1), weight)


def draw_around(learned: torch.Tensor, noise: torch.Tensor, *, dim: int) -> torch.Tensor:
    """``mean + sd * noise`` of the learned vectors along ``dim`` (population sd), broadcast."""
    return learned.mean(dim=dim, keepdim=True) + learned.std(dim=dim, unbiased=False, keepdim=True) * noise


class UnseenGeneColumns:
    """Mixin of networks with a gene-space perturbation embedding ``Linear(G, d)``."""

    unseen_genes: torch.Tensor
    unseen_gene_noise: torch.Tensor

    def _register_unseen_genes(self, n_genes: int, dim: int) -> None:
        module = cast(nn.Module, self)
        module.register_buffer("unseen_genes", torch.zeros(n_genes, dtype=torch.bool))
        module.register_buffer("unseen_gene_noise", torch.zeros(dim, n_genes))

    def set_unseen_genes(self, unseen: torch.Tensor, noise: torch.Tensor) -> None:
        """Genes (G,) bool whose embedding column is drawn, and the standard-normal noise (d, G)."""
        self.unseen_genes.copy_(unseen)
        self.unseen_gene_noise.copy_(noise)

    def embed_mask(self, layer: nn.Linear, mask: torch.Tensor) -> torch.Tensor:
        """``layer(mask)`` with the unseen genes' columns drawn (:func:`fill_unseen_columns`)."""
        unseen = getattr(self, "unseen_genes", None)  # absent in modules pickled before it existed
        if unseen is None or not bool(unseen.any()):
            return layer(mask)
        return F.linear(mask, fill_unseen_columns(layer.weight, unseen, self.unseen_gene_noise), layer.bias)


class GatedGraph(nn.Module):
    """One gene graph with learned edge gates; ``propagate_*`` is one gated step."""

    def __init__(self, edges: tuple[np.ndarray, np.ndarray, np.ndarray], n_genes: int, gating: str) -> None:
        super().__init__()
        dst, src, weight = edges
        self.register_buffer("dst", torch.as_tensor(dst, dtype=torch.long))
        self.register_buffer("src", torch.as_tensor(src, dtype=torch.long))
        self.register_buffer("weight", torch.as_tensor(weight, dtype=torch.float32))
        self.gating = gating
        self.dst: torch.Tensor
        self.src: torch.Tensor
        self.weight: torch.Tensor
        if gating == "scalar":
            self.logit = nn.Parameter(torch.tensor(_GATE_INIT))
        elif gating == "node":
            self.logit = nn.Parameter(torch.full((n_genes,), _GATE_INIT))
        elif gating == "lowrank":
            rank = 4
            self.u = nn.Parameter(torch.randn(n_genes, rank) * 0.1)
            self.v = nn.Parameter(torch.randn(n_genes, rank) * 0.1)
            self.bias = nn.Parameter(torch.tensor(_GATE_INIT))
        elif gating == "mlp":
            self.node = nn.Parameter(torch.randn(n_genes, 8) * 0.1)
            self.net = _mlp(16, 16, 1)
            nn.init.constant_(cast(nn.Linear, self.net[-1]).bias, _GATE_INIT)
        self.n_genes = n_genes

    def gates(self) -> torch.Tensor:
        """Gate of every edge, (n_edges,)."""
        if self.gating == "none":
            return torch.ones_like(self.weight)
        if self.gating == "scalar":
            return torch.sigmoid(self.logit).expand_as(self.weight)
        if self.gating == "node":
            return torch.sigmoid(self.logit[self.src])
        if self.gating == "lowrank":
            return torch.sigmoid((self.u[self.src] * self.v[self.dst]).sum(-1) + self.bias)
        pair = torch.cat([self.node[self.src], self.node[self.dst]], dim=-1)
        return torch.sigmoid(self.net(pair).squeeze(-1))

    def propagate_nodes(self, nodes: torch.Tensor) -> torch.Tensor:
        """One step over node features ``nodes`` (G, d)."""
        w = self.weight * self.gates()
        return torch.zeros_like(nodes).index_add_(0, self.dst, nodes[self.src] * w[:, None])

    def propagate_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """One step over gene-space rows ``mask`` (B, G)."""
        w = self.weight * self.gates()
        return torch.zeros_like(mask).index_add_(1, self.dst, mask[:, self.src] * w)


class _Additive(nn.Module):
    """The seed's decomposition: delta = basal(z) + systematic shift(c) + perturbation effect."""

    def __init__(
        self,
        n_genes: int,
        n_contexts: int,
        hidden_dim: int,
        latent_dim: int,
        *,
        use_basal: bool,
        use_context: bool,
        use_perturbation: bool,
    ) -> None:
        super().__init__()
        self.use_basal, self.use_context, self.use_perturbation = use_basal, use_context, use_perturbation
        self.encoder = _mlp(n_genes, hidden_dim, latent_dim)
        self.context = ContextEmbedding(n_contexts, latent_dim)
        self.bias = nn.Parameter(torch.zeros(n_genes))
        self.basal = nn.Linear(latent_dim, n_genes)
        self.shift = nn.Linear(latent_dim, n_genes, bias=False)
        self.fusion = _mlp(3 * latent_dim, hidden_dim, n_genes)
        self.var_head = nn.Linear(3 * latent_dim, n_genes)

    def combine(self, batch: dict[str, torch.Tensor], p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(batch["x"])
        c = self.context(batch["context"])
        z = z if self.use_basal else torch.zeros_like(z)
        c = c if self.use_context else torch.zeros_like(c)
        p = p if self.use_perturbation else torch.zeros_like(p)
        mean = self.bias + self.shift(c)
        if self.use_basal:
            mean = mean + self.basal(z)
        features = torch.cat([z, c, p], dim=-1)
        if self.use_perturbation:
            mean = mean + self.fusion(features)
        var = F.softplus(self.var_head(features)) + VAR_EPS
        return mean, var


class V0Net(_Additive, UnseenGeneColumns):
    """v0: MLP cell encoder + perturbation embedding (sum over the mask) + context embedding."""

    def __init__(
        self, n_genes: int, n_contexts: int, *, hidden_dim: int, latent_dim: int, **switches: bool
    ) -> None:
        super().__init__(n_genes, n_contexts, hidden_dim, latent_dim, **switches)
        self.pert_embedding = nn.Linear(n_genes, latent_dim, bias=False)
        self._register_unseen_genes(n_genes, latent_dim)

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.combine(batch, self.embed_mask(self.pert_embedding, batch["mask"]))


class V1Net(_Additive):
    """v1: gene embeddings refined by gated message passing, pooled over the perturbed genes.

    ``p = mask @ (N + sum_l GNN_l(N))`` (the identity term is the residual bypass of the
    graph); without a graph ``p = mask @ N``.
    """

    def __init__(
        self,
        n_genes: int,
        n_contexts: int,
        *,
        hidden_dim: int,
        latent_dim: int,
        graph: GatedGraph | None,
        n_layers: int = 2,
        **switches: bool,
    ) -> None:
        super().__init__(n_genes, n_contexts, hidden_dim, latent_dim, **switches)
        self.nodes = nn.Parameter(torch.randn(n_genes, latent_dim) * 0.1)
        self.graph = graph
        self.layers = nn.ModuleList(nn.Linear(latent_dim, latent_dim) for _ in range(n_layers))

    def gene_embeddings(self, *, use_graph: bool = True) -> torch.Tensor:
        out: torch.Tensor = self.nodes
        if self.graph is not None and use_graph:
            h: torch.Tensor = self.nodes
            for layer in self.layers:
                h = torch.tanh(layer(self.graph.propagate_nodes(h)))
                out = out + h
        return out

    def forward(
        self, batch: dict[str, torch.Tensor], *, use_graph: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.combine(batch, batch["mask"] @ self.gene_embeddings(use_graph=use_graph))


class CGIONet(nn.Module, UnseenGeneColumns):
    """v2 (CGIO) and, with ``state=True``, v3: the seed's implementation-ready contract.

    1. ``h_m = sum_{t=0..T} (A_m^gated)^t mask @ P_t`` per graph m (t=0, the direct mask
       pooling, is shared by every graph; without graphs ``h = mask @ P_0``).
    2. ``h = sum_m w_m(z, c) h_m`` with softmax mixture weights.
    3. ``mu = sum_k alpha_k(z, c) B_k h`` over K global gene bases B_k (G x d); alpha is a
       softmax of ``(z, c)`` (``contextual=True``) or one learned global vector.
       With ``shift=True`` a systematic shift ``b + S c`` is added (PerturbFM's addition:
       without it a perturbation with no known gene would predict exactly zero).
    4. ``var = softplus(V [z, c, h]) + eps``.

    With ``direct_effect=True`` (default) ``mu`` also gets a gene-space term
    ``sum_m w_m sum_t g_{m,t} (A_m^gated)^t mask`` with one learned gain per hop (hop 0
    shared by the graphs): the low-rank operator alone cannot express "the perturbed gene
    itself and its graph neighbours move", an identity-like map that a rank-d bottleneck
    loses, and scalar gains carry over to genes never perturbed in training.

    ``z`` is empty for v2 (conditioning on context only); for v3 it is an MLP encoding of
    the cell's control expression, which also modulates ``h`` (FiLM: ``h * (1 + tanh(W z))``)
    so the effect depends on the cell's state.
    """

    def __init__(
        self,
        n_genes: int,
        n_contexts: int,
        *,
        hidden_dim: int,
        latent_dim: int,
        graphs: list[GatedGraph],
        n_hops: int = 2,
        n_bases: int = 4,
        contextual: bool = True,
        shift: bool = True,
        state: bool = False,
        direct_effect: bool = True,
    ) -> None:
        super().__init__()
        self.graphs = nn.ModuleList(graphs)
        self.direct_effect = direct_effect
        # Gains of the propagated mask itself (hop 0 = the perturbed genes), one per hop and
        # shared by all genes, so they transfer to genes never perturbed in training.
        self.gain0 = nn.Parameter(torch.zeros(()))
        self.gains = nn.ParameterList(nn.Parameter(torch.zeros(n_hops)) for _ in graphs)
        self.n_hops, self.contextual, self.use_shift, self.state = n_hops, contextual, shift, state
        d = latent_dim
        self.direct = nn.Linear(n_genes, d, bias=False)
        self._register_unseen_genes(n_genes, d)
        self.hops = nn.ModuleList(
            nn.ModuleList(nn.Linear(n_genes, d, bias=False) for _ in range(n_hops)) for _ in graphs
        )
        self.context = ContextEmbedding(n_contexts, d)
        self.encoder = _mlp(n_genes, hidden_dim, d) if state else None
        self.film = nn.Linear(d, d) if state else None
        cond = 2 * d if state else d
        self.mixture = nn.Linear(cond, max(len(graphs), 1))
        self.alpha = nn.Linear(cond, n_bases) if contextual else None
        self.alpha_global = nn.Parameter(torch.zeros(n_bases))
        self.bases = nn.Parameter(torch.randn(n_bases, n_genes, d) / np.sqrt(d))
        self.bias = nn.Parameter(torch.zeros(n_genes))
        self.shift = nn.Linear(d, n_genes, bias=False)
        self.var_head = nn.Linear(cond + d, n_genes)

    def condition(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        c = self.context(batch["context"])
        if self.encoder is None:
            return c
        return torch.cat([self.encoder(batch["x"]), c], dim=-1)

    def representation(
        self, batch: dict[str, torch.Tensor], zc: torch.Tensor, *, use_graph: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``h`` (B, d), the gene-space direct term (B, G) and the mixture weights (B, M) or None."""
        mask = batch["mask"]
        direct = self.embed_mask(self.direct, mask)
        gene_space = mask * self.gain0 if self.direct_effect else torch.zeros_like(mask)
        if not len(self.graphs) or not use_graph:
            return direct, gene_space, None
        per_graph, per_graph_genes = [], []
        for graph, hops, gains in zip(self.graphs, self.hops, self.gains, strict=True):
            signal, h, g = mask, direct, gene_space
            gated = cast(GatedGraph, graph)
            for t, hop in enumerate(cast(nn.ModuleList, hops)):
                signal = gated.propagate_mask(signal)
                h = h + hop(signal)
                if self.direct_effect:
                    g = g + signal * cast(torch.Tensor, gains)[t]
            per_graph.append(h)
            per_graph_genes.append(g)
        weights = torch.softmax(self.mixture(zc), dim=-1)  # (B, M)
        h = (torch.stack(per_graph, dim=1) * weights[:, :, None]).sum(dim=1)
        genes = (torch.stack(per_graph_genes, dim=1) * weights[:, :, None]).sum(dim=1)
        return h, genes, weights

    def forward(
        self, batch: dict[str, torch.Tensor], *, use_graph: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        zc = self.condition(batch)
        h, gene_space, _ = self.representation(batch, zc, use_graph=use_graph)
        if self.film is not None and self.encoder is not None:
            h = h * (1 + torch.tanh(self.film(zc[:, : h.shape[-1]])))
        if self.alpha is not None:
            alpha = torch.softmax(self.alpha(zc), dim=-1)
        else:
            alpha = torch.softmax(self.alpha_global, dim=-1).expand(h.shape[0], -1)
        per_basis = torch.einsum("kgd,bd->bkg", self.bases, h)
        mean = (per_basis * alpha[:, :, None]).sum(dim=1) + gene_space
        if self.use_shift:
            mean = mean + self.bias + self.shift(zc[:, -h.shape[-1] :])
        var = F.softplus(self.var_head(torch.cat([zc, h], dim=-1))) + VAR_EPS
        return mean, var
