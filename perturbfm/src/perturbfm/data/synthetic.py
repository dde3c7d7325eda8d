"""Synthetic perturbation data with a planted gene graph and context-specific operators.

Generative model (all draws from one ``numpy.random.Generator(seed)``):

1. Gene graph: a sparse random symmetric graph (about ``mean_degree`` edges per gene),
   row-normalised, ``A`` [G, G], modular: genes fall into ``n_programs`` programs and most
   edges join genes of one program (:func:`synthetic_graph`).
2. Perturbations: ``n_perts`` ids. Most are a random gene set of 1-3 genes (``pert_genes``);
   about ``combo_fraction`` of them are pairs of two single-gene perturbations that also
   exist on their own, so combination splits have seen singles. A pert id is its genes
   joined by ``+`` (``"G0003+G0117"``).
3. Effect of a gene set in context c: mask m (the signs of the set's genes: -1 for a
   knock-down, +1 for an activation; each gene's direction is drawn once, activation with
   probability ``activation_fraction``, so a combination's mask is exactly the sum of its
   singles' masks, as a double perturbation of two measured genes would be), propagated
   ``h = m + a A m + a^2 A^2 m`` (a = ``propagation``), then the context operator
   ``h (I + U_c V_c')`` (rank ``operator_rank``; a gene's row of ``U_c`` is its program's
   plus gene-level noise, so perturbing a gene triggers roughly the response its graph
   neighbours trigger), then ``effect_scale * tanh(.)``, so effects are graph-shaped,
   context-specific and sub-additive for combinations (the additive baseline is good but
   not exact), and the effect of a gene never perturbed in training can be inferred only
   through the graph.
4. Cells: controls (about ``control_fraction``, at least 4 per context) and perturbed cells
   spread evenly over every (perturbation, context). Basal state ``x0 = mu_c + noise``;
   ``X_control = x0`` (the synthetic pairing is the exact counterfactual);
   ``X_pert = x0 + effect(p, c) + noise * N(0, 1)``; controls get only the noise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from omicsrun import InputError
from perturbfm.data.dataset import CONTROL_ID, PerturbDataset


def gene_programs(n_genes: int, n_programs: int) -> np.ndarray:
    """Program (module) of every gene, (n_genes,) int: contiguous blocks of near-equal size."""
    n_programs = max(1, min(int(n_programs), n_genes))
    return (np.arange(n_genes) * n_programs) // n_genes


def synthetic_graph(
    *,
    n_genes: int,
    seed: int,
    mean_degree: float = 4.0,
    n_programs: int = 8,
    within_program: float = 0.9,
) -> np.ndarray:
    """Sparse random symmetric gene graph, row-normalised, dense float32 (n_genes, n_genes).

    Genes fall into ``n_programs`` programs (:func:`gene_programs`); each edge joins two genes
    of one program with probability ``within_program``, else two random genes (a sparse
    stochastic-block graph: real gene graphs are modular). Deterministic in its arguments;
    :func:`make_synthetic` uses it with the same seed.
    """
    rng = np.random.default_rng([seed, 1])
    n_edges = round(mean_degree * n_genes / 2)
    program = gene_programs(n_genes, n_programs)
    # programs are contiguous blocks: a uniform member of row r's program is first + floor(u size)
    size = np.bincount(program)
    first = np.concatenate([[0], np.cumsum(size)[:-1]])
    rows = rng.integers(0, n_genes, size=n_edges)
    random_cols = rng.integers(0, n_genes, size=n_edges)
    same = rng.random(n_edges) < within_program
    pick = rng.random(n_edges)
    block_cols = first[program[rows]] + (pick * size[program[rows]]).astype(np.int64)
    cols = np.where(same, block_cols, random_cols)
    keep = rows != cols
    weights = rng.uniform(0.5, 1.0, size=int(keep.sum()))
    adj = sp.coo_matrix((weights, (rows[keep], cols[keep])), shape=(n_genes, n_genes)).tocsr()
    adj = adj.maximum(adj.T)
    degree = np.asarray(adj.sum(axis=1)).ravel()
    inv = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0)
    return (sp.diags(inv) @ adj).toarray().astype(np.float32)


def _gene_sets(
    rng: np.random.Generator, genes: list[str], n_perts: int, combo_fraction: float
) -> list[list[str]]:
    n_genes = len(genes)
    n_combo = round(combo_fraction * n_perts) if n_perts >= 4 else 0
    n_base = n_perts - n_combo
    sizes = rng.choice([1, 2, 3], size=n_base, p=[0.6, 0.25, 0.15])
    sizes[: min(n_base, 4)] = 1  # enough singles to build combinations from
    if sizes.sum() > n_genes:  # not enough distinct genes for larger sets
        sizes[:] = 1
    chosen = rng.permutation(n_genes)
    sets: list[list[str]] = []
    pos = 0
    for size in sizes:
        sets.append(sorted(genes[g] for g in chosen[pos : pos + size]))
        pos += size
    singles = [s[0] for s in sets if len(s) == 1]
    pairs = [(a, b) for i, a in enumerate(singles) for b in singles[i + 1 :]]
    order = rng.permutation(len(pairs))[:n_combo]
    sets.extend(sorted(pairs[i]) for i in order)
    return sets


def make_synthetic(
    *,
    n_obs: int = 2000,
    n_genes: int = 200,
    n_contexts: int = 3,
    n_perts: int = 20,
    seed: int = 0,
    control_fraction: float = 0.15,
    combo_fraction: float = 0.25,
    mean_degree: float = 4.0,
    propagation: float = 0.5,
    operator_rank: int = 4,
    effect_scale: float = 1.5,
    noise: float = 0.3,
    activation_fraction: float = 0.0,
    n_programs: int = 8,
) -> PerturbDataset:
    """Simulate a paired perturbation dataset with a planted graph signal.

    Parameters
    ----------
    n_obs, n_genes, n_contexts, n_perts
        Cells, genes, contexts (``"C0"``, ``"C1"``...) and distinct perturbations.
    seed
        Seed of every draw; equal arguments give equal data.
    control_fraction
        Share of cells that are controls (at least 4 per context).
    combo_fraction
        Share of perturbations that are pairs of two existing single-gene perturbations.
    mean_degree, propagation, operator_rank, effect_scale, noise
        Graph density, propagation weight ``a``, rank of each context's operator, size of
        the effects and standard deviation of the cell noise (see the module docstring).
    n_programs
        Gene programs of the graph and the operators (see the module docstring).
    activation_fraction
        Probability that a gene's perturbation is an activation rather than a knock-down
        (drawn once per gene, shared by every perturbation containing it). The default 0
        (knock-downs only, as in CRISPRi Perturb-seq screens) makes the direction of a gene
        never perturbed in training predictable from the others.

    Returns
    -------
    PerturbDataset
        ``n_obs`` rows x ``n_genes`` genes; ``metadata["synthetic"]`` records the parameters
        and the gene set of every perturbation. The graph is :func:`synthetic_graph` with the
        same ``n_genes``, ``seed`` and ``mean_degree``.
    """
    from omicsrun.validate import check_number

    for count_name, count in (("n_genes", n_genes), ("n_contexts", n_contexts), ("n_perts", n_perts)):
        check_number(count, count_name, low=1, integer=True)
    check_number(n_obs, "n_obs", low=1, integer=True)
    check_number(seed, "seed", low=0, integer=True)
    check_number(operator_rank, "operator_rank", low=1, integer=True)
    for share_name, share in (
        ("control_fraction", control_fraction),
        ("combo_fraction", combo_fraction),
        ("activation_fraction", activation_fraction),
    ):
        check_number(share, share_name, low=0, high=1)
    for param_name, param in (("mean_degree", mean_degree), ("propagation", propagation), ("noise", noise)):
        check_number(param, param_name, low=0)
    check_number(effect_scale, "effect_scale")
    if n_perts > n_genes:
        msg = (
            f"n_perts must not exceed n_genes (each perturbation targets genes); found {n_perts} > {n_genes}"
        )
        raise InputError(msg)
    n_ctrl = max(4 * n_contexts, round(control_fraction * n_obs))
    n_groups = n_perts * n_contexts
    if n_obs < n_ctrl + n_groups:
        msg = (
            f"n_obs={n_obs} is too small: need at least {n_ctrl + n_groups} cells "
            f"({n_ctrl} controls + one per perturbation x context)"
        )
        raise InputError(msg)
    rng = np.random.default_rng([seed, 0])
    genes = [f"G{i:04d}" for i in range(n_genes)]
    contexts = [f"C{i}" for i in range(n_contexts)]
    adjacency = synthetic_graph(n_genes=n_genes, seed=seed, mean_degree=mean_degree, n_programs=n_programs)
    sets = _gene_sets(rng, genes, n_perts, combo_fraction)
    pert_ids = ["+".join(s) for s in sets]

    gene_pos = {g: i for i, g in enumerate(genes)}
    # One direction per gene, shared by every perturbation containing it: a random sign per
    # gene *set* would give a combination a direction unrelated to its singles'.
    gene_sign = np.where(rng.random(n_genes) < activation_fraction, 1.0, -1.0)
    mask = np.zeros((len(sets), n_genes))
    for p, s in enumerate(sets):
        cols = [gene_pos[g] for g in s]
        mask[p, cols] = gene_sign[cols]
    step = mask @ adjacency.T.astype(np.float64)
    h = mask + propagation * step + propagation**2 * (step @ adjacency.T)
    # The operator's input factor of a gene is its program's plus a little gene-level noise,
    # so genes of one program (graph neighbours, mostly) drive similar responses.
    program = gene_programs(n_genes, n_programs)
    u_program = rng.normal(0.0, 0.3, size=(n_contexts, int(program.max()) + 1, operator_rank))
    u = u_program[:, program] + rng.normal(0.0, 0.1, size=(n_contexts, n_genes, operator_rank))
    v = rng.normal(0.0, 0.3, size=(n_contexts, n_genes, operator_rank))
    effect = effect_scale * np.tanh(h[None] + (h[None] @ u) @ v.transpose(0, 2, 1))  # [C, P, G]
    mu = rng.gamma(2.0, 0.5, size=(n_contexts, n_genes)) + rng.normal(0, 0.3, size=(n_contexts, 1))

    ctrl_ctx = np.arange(n_ctrl) % n_contexts
    group = rng.permutation(np.arange(n_obs - n_ctrl) % n_groups)
    pert_idx = np.concatenate([np.full(n_ctrl, -1), group // n_contexts])
    ctx_idx = np.concatenate([ctrl_ctx, group % n_contexts])
    order = rng.permutation(n_obs)
    pert_idx, ctx_idx = pert_idx[order], ctx_idx[order]
    is_control = pert_idx < 0

    x0 = mu[ctx_idx] + rng.normal(0.0, noise, size=(n_obs, n_genes))
    signal = np.where(is_control[:, None], 0.0, effect[ctx_idx, np.maximum(pert_idx, 0)])
    x_pert = x0 + signal + rng.normal(0.0, noise, size=(n_obs, n_genes))
    obs = pd.DataFrame(
        {
            "pert_id": np.where(is_control, CONTROL_ID, np.array(pert_ids, dtype=object)[pert_idx]),
            "context_id": np.array(contexts, dtype=object)[ctx_idx],
            "batch_id": "b0",
            "is_control": is_control,
            "pert_genes": [[] if p < 0 else list(sets[p]) for p in pert_idx],
            "obs_idx": np.arange(n_obs, dtype=np.int64),
        }
    )
    params = {
        "n_obs": n_obs,
        "n_genes": n_genes,
        "n_contexts": n_contexts,
        "n_perts": n_perts,
        "seed": seed,
        "control_fraction": control_fraction,
        "combo_fraction": combo_fraction,
        "mean_degree": mean_degree,
        "propagation": propagation,
        "operator_rank": operator_rank,
        "effect_scale": effect_scale,
        "noise": noise,
        "activation_fraction": activation_fraction,
        "n_programs": n_programs,
    }
    return PerturbDataset(
        X_control=x0.astype(np.float32),
        X_pert=x_pert.astype(np.float32),
        obs=obs,
        var=genes,
        metadata={
            "name": "synthetic",
            "source": "perturbfm.data.synthetic.make_synthetic",
            "synthetic": params,
            "pert_genes": dict(zip(pert_ids, map(list, sets), strict=False)),
            "pairing": "synthetic: X_control is the cell's own basal state (exact counterfactual)",
            "graphs": ["synthetic"],
        },
    )
