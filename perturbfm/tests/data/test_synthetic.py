import numpy as np
import pytest

from omicsrun import InputError
from perturbfm.data import make_synthetic, synthetic_graph


def test_deterministic_and_seed_dependent():
    a = make_synthetic(n_obs=400, n_genes=40, n_contexts=3, n_perts=8, seed=1)
    b = make_synthetic(n_obs=400, n_genes=40, n_contexts=3, n_perts=8, seed=1)
    c = make_synthetic(n_obs=400, n_genes=40, n_contexts=3, n_perts=8, seed=2)
    np.testing.assert_array_equal(a.X_pert, b.X_pert)
    assert a.obs["pert_id"].tolist() == b.obs["pert_id"].tolist()
    assert not np.array_equal(a.X_pert, c.X_pert)


def test_structure_matches_the_regime():
    ds = make_synthetic(n_obs=2000, n_genes=200, n_contexts=3, n_perts=20, seed=0)
    obs = ds.obs
    ctrl = obs["is_control"].to_numpy()
    assert obs.loc[~ctrl, "pert_id"].nunique() == 20
    sizes = obs.loc[~ctrl].groupby("pert_id")["pert_genes"].first().map(len)
    assert set(sizes) <= {1, 2, 3} and (sizes == 1).any()
    # pert ids are their genes joined by "+"
    first = obs.loc[~ctrl].groupby("pert_id")["pert_genes"].first()
    assert all("+".join(g) == p for p, g in first.items())
    # some pairs have both singles present (so combo splits can label 2)
    singles = set(first.index[sizes == 1])
    both = [p for p, g in first.items() if len(g) == 2 and set(g) <= singles]
    assert both
    # controls in every context, every perturbation in every context
    assert (obs.loc[ctrl].groupby("context_id").size() >= 4).all()
    assert obs.loc[ctrl, "context_id"].nunique() == 3
    assert (obs.loc[~ctrl].groupby("pert_id")["context_id"].nunique() == 3).all()
    np.testing.assert_allclose(ds.delta, ds.X_pert - ds.X_control, atol=1e-6)
    # controls: delta is pure noise N(0, 0.3^2)
    assert abs(float(ds.delta[ctrl].std()) - 0.3) < 0.01
    assert abs(float(ds.delta[ctrl].mean())) < 0.01
    # a perturbation moves its own genes far more than noise
    gene = next(iter(singles))
    g = ds.var.index(gene)
    rows = (obs["pert_id"] == gene).to_numpy()
    assert abs(float(ds.delta[rows, g].mean())) > 0.5


def test_graph_is_sparse_symmetric_row_normalised():
    adj = synthetic_graph(n_genes=100, seed=0)
    assert adj.shape == (100, 100) and adj.dtype == np.float32
    nz = adj > 0
    np.testing.assert_array_equal(nz, nz.T)
    assert 1.0 < nz.sum(axis=1).mean() < 8.0
    deg = adj.sum(axis=1)
    np.testing.assert_allclose(deg[deg > 0], 1.0, rtol=1e-5)
    assert not np.diag(adj).any()


def test_bad_sizes():
    with pytest.raises(InputError, match="too small"):
        make_synthetic(n_obs=20, n_genes=20, n_contexts=3, n_perts=10)
    with pytest.raises(InputError, match="n_perts must not exceed n_genes"):
        make_synthetic(n_obs=2000, n_genes=5, n_perts=10)


def test_a_combination_moves_its_genes_as_its_singles_do():
    # Each gene has one direction shared by every perturbation containing it, so the additive
    # picture holds on the perturbed genes themselves (a sign per gene *set* broke it).
    ds = make_synthetic(n_obs=3000, n_genes=150, n_perts=40, seed=3, activation_fraction=0.5)
    obs = ds.obs
    pert = obs["pert_id"].to_numpy()
    genes = obs.groupby("pert_id")["pert_genes"].first()
    singles = {p for p, g in genes.items() if len(g) == 1 and p != "control"}
    combos = [p for p, g in genes.items() if len(g) == 2 and set(g) <= singles]
    assert combos
    signs = set()
    for combo in combos:
        for gene in genes[combo]:
            col = ds.var.index(gene)
            alone = float(ds.delta[pert == gene, col].mean())
            together = float(ds.delta[pert == combo, col].mean())
            assert np.sign(alone) == np.sign(together), (combo, gene, alone, together)
            signs.add(np.sign(alone))
    assert signs == {-1.0, 1.0}  # activations and knock-downs both occur at 0.5


def test_graph_is_modular_and_effects_follow_it():
    from perturbfm.data.synthetic import gene_programs

    adj = synthetic_graph(n_genes=160, seed=0, n_programs=8)
    program = gene_programs(160, 8)
    dst, src = np.nonzero(adj)
    assert (program[dst] == program[src]).mean() > 0.8
    flat = synthetic_graph(n_genes=160, seed=0, n_programs=8, within_program=0.0)
    dst, src = np.nonzero(flat)
    assert (program[dst] == program[src]).mean() < 0.3
    # knock-downs (the default) lower the perturbed gene and, less, its graph neighbours
    ds = make_synthetic(n_obs=3000, n_genes=160, n_perts=40, seed=0, n_programs=8)
    graph = synthetic_graph(n_genes=160, seed=0, n_programs=8)
    pert = ds.obs["pert_id"].to_numpy()
    own, neighbours, others = [], [], []
    for gene in {p for p in pert if "+" not in p and p != "control"}:
        col = ds.var.index(gene)
        mean = ds.delta[pert == gene].mean(axis=0)
        near = np.flatnonzero(graph[:, col] > 0)
        far = np.setdiff1d(np.arange(160), np.r_[near, col])
        own.append(mean[col])
        neighbours.append(mean[near].mean())
        others.append(mean[far].mean())
    assert np.mean(own) < np.mean(neighbours) < np.mean(others) - 0.05
