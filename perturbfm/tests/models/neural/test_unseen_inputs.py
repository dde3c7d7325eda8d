"""Inputs no network has learned: which contexts count as seen, and ``unseen_inputs``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from omicsrun import InputError
from perturbfm.models import get_model
from perturbfm.models.fixtures import make_planted
from perturbfm.models.neural.features import Featurizer
from perturbfm.models.neural.modules import fill_unseen_columns
from perturbfm.models.uncertainty import DeepEnsemble, member_params

SMALL = {"hidden_dim": 8, "latent_dim": 4, "epochs": 3, "patience": 3}


def test_a_context_with_only_control_training_rows_is_unseen():
    # The context_ood bug: the held-out cell line's controls are training rows; they must
    # not give it an embedding index (that embedding would never be trained).
    ds = make_planted(contexts=("c0", "c1", "c2"))
    ctx = ds.obs["context_id"].to_numpy()
    train = np.flatnonzero((ctx != "c1") | ds.is_control)
    features = Featurizer.fit(ds, train)
    assert list(features.contexts) == ["c0", "c2"]
    codes = features.inputs(ds, np.arange(ds.n_obs))["context"]
    np.testing.assert_array_equal(codes[ctx == "c1"], -1)
    np.testing.assert_array_equal(codes[ctx == "c0"], 0)
    np.testing.assert_array_equal(codes[ctx == "c2"], 1)


def test_sampled_footprints_are_seeded_unit_draws_of_unseen_genes_only():
    ds = make_planted(singles=("u0", "u1", "u2", "u3"), combos=(("u0", "u3"),))  # not in var
    genes = ds.obs["pert_genes"].map(tuple).to_numpy()
    train = np.flatnonzero([("u3" not in g) for g in genes])  # u3: no training footprint
    features = Featurizer.fit(ds, train)
    assert "u3" not in set(features.footprint_genes) and len(features.footprint_genes) == 3
    rows = np.arange(ds.n_obs)
    plain = features.inputs(ds, rows)["mask"]
    a = features.inputs(ds, rows, unseen_gene_seed=1)["mask"]
    b = features.inputs(ds, rows, unseen_gene_seed=1)["mask"]
    c = features.inputs(ds, rows, unseen_gene_seed=2)["mask"]
    has_u3 = np.array(["u3" in g for g in genes])
    np.testing.assert_array_equal(a, b)  # deterministic per seed
    np.testing.assert_array_equal(a[~has_u3], plain[~has_u3])  # seen genes untouched
    added = a[has_u3] - plain[has_u3]
    np.testing.assert_allclose(np.linalg.norm(added, axis=1), 1.0, rtol=1e-5)  # a footprint's norm
    np.testing.assert_allclose(
        added, added[:1].repeat(len(added), axis=0), atol=1e-6
    )  # same draw in every row
    assert not np.allclose(a[has_u3], c[has_u3])  # another seed, another draw


def test_sampled_footprints_follow_the_footprints_mean_and_spread():
    # closed forms: no spread -> the common footprint itself; spread on one gene only and a
    # zero mean -> +-(that gene's unit vector), both signs across genes
    def featurizer(footprints):
        n = footprints.shape[1]
        return Featurizer(
            x_mean=np.zeros(n, np.float32),
            x_sd=np.ones(n, np.float32),
            delta_sd=np.ones(n, np.float32),
            contexts=pd.Index(["c0"]),
            measured=pd.Index([f"g{i}" for i in range(n)]),
            footprint_genes=pd.Index([f"u{i}" for i in range(len(footprints))]),
            footprints=np.asarray(footprints, np.float32),
        )

    genes = pd.Index([f"x{i}" for i in range(40)])
    v = np.array([0.6, 0.0, 0.8])
    np.testing.assert_allclose(
        featurizer(np.stack([v, v])).sampled_footprints(genes, 0),
        np.tile(v, (40, 1)),
        atol=1e-6,
    )
    draws = featurizer(np.array([[1.0, 0, 0], [-1.0, 0, 0]])).sampled_footprints(genes, 0)
    np.testing.assert_allclose(np.abs(draws), np.tile([1.0, 0, 0], (40, 1)))
    assert 10 < (draws[:, 0] > 0).sum() < 30
    # full covariance: draws stay in the footprints' affine span (here the e0-e1 plane)
    plane = featurizer(np.array([[1.0, 0, 0], [0, 1.0, 0]])).sampled_footprints(genes, 5)
    np.testing.assert_allclose(plane[:, 2], 0.0)
    assert np.unique(np.round(plane, 6), axis=0).shape[0] == 40
    # one footprint: no spread to sample from -> no signal (the "mean" behaviour)
    assert not featurizer(v[None]).sampled_footprints(genes, 0).any()


def test_sample_members_disagree_only_on_the_unseen_context():
    ds = make_planted(contexts=("c0", "c1", "c2"), n_cells=6)
    ctx = ds.obs["context_id"].to_numpy()
    train = np.flatnonzero((ctx != "c2") | ds.is_control)
    seen = np.flatnonzero((ctx == "c0") & ~ds.is_control)
    unseen = np.flatnonzero((ctx == "c2") & ~ds.is_control)
    fits = {
        (mode, seed): get_model("perturbfm-v0", unseen_inputs=mode, **SMALL).fit(ds, train, seed=seed)
        for mode in ("mean", "sample")
        for seed in (0, 1)
    }

    def pred(key, rows):
        return fits[key].predict(ds, rows)[0]

    # seen inputs: "sample" is exactly "mean" (same weights, same encoding)
    np.testing.assert_array_equal(pred(("sample", 0), seen), pred(("mean", 0), seen))
    # deterministic per seed
    again = get_model("perturbfm-v0", unseen_inputs="sample", **SMALL).fit(ds, train, seed=0)
    np.testing.assert_array_equal(again.predict(ds, unseen)[0], pred(("sample", 0), unseen))
    # the unseen context: "mean" members agree on its embedding, "sample" members do not
    emb = {k: m.module_.context.unseen().detach().numpy() for k, m in fits.items()}
    table = {k: m.module_.context.table.detach().numpy() for k, m in fits.items()}
    for seed in (0, 1):
        np.testing.assert_allclose(emb[("mean", seed)], table[("mean", seed)].mean(0, keepdims=True))
    spread = table[("sample", 0)].std(axis=0)
    offset = (emb[("sample", 0)] - table[("sample", 0)].mean(0)) / spread
    np.testing.assert_allclose(
        offset,
        fits[("sample", 0)].module_.context.unseen_noise.numpy()[None],
        rtol=1e-4,
    )
    assert not np.allclose(pred(("sample", 0), unseen), pred(("mean", 0), unseen))
    gap_mean = np.abs(pred(("mean", 0), unseen) - pred(("mean", 1), unseen)).mean()
    gap_sample = np.abs(pred(("sample", 0), unseen) - pred(("sample", 1), unseen)).mean()
    assert gap_sample > gap_mean


def test_ensembles_default_to_sample_unless_set():
    assert member_params("perturbfm-v2", {}, 5)["unseen_inputs"] == "sample"
    assert "unseen_inputs" not in member_params("perturbfm-v2", {}, 1)
    assert member_params("perturbfm-v2", {"unseen_inputs": "mean"}, 5)["unseen_inputs"] == "mean"
    assert member_params("global_mean", {}, 5) == {}  # a baseline has no such parameter
    assert get_model("perturbfm-v0").get_params()["unseen_inputs"] == "mean"
    ds = make_planted()
    ens = DeepEnsemble(name="perturbfm-v0", params=SMALL, n_members=2).fit(ds, np.arange(ds.n_obs), seed=0)
    assert {m.unseen_inputs for m in ens.members_} == {"sample"}
    assert ens.member_params_["unseen_inputs"] == "sample"


def test_bad_unseen_inputs_refused():
    ds = make_planted()
    with pytest.raises(InputError, match="unseen_inputs must be one of"):
        get_model("perturbfm-v0", unseen_inputs="zero", **SMALL).fit(ds, np.arange(ds.n_obs))


@pytest.mark.parametrize("name", ["perturbfm-v0", "perturbfm-v2"])
def test_sample_draws_the_columns_of_measured_genes_never_perturbed(name):
    # g0..g3 are measured genes (var); g3 is never perturbed in training, so its embedding
    # column gets no gradient. "sample" draws it around the learned columns.
    ds = make_planted(combos=(("g0", "g1"),), contexts=("c0",), n_cells=6)
    genes = ds.obs["pert_genes"].map(tuple).to_numpy()
    train = np.flatnonzero(["g3" not in g for g in genes])
    seen, novel = (
        np.flatnonzero([bool(g) and "g3" not in g for g in genes]),
        np.flatnonzero(["g3" in g for g in genes]),
    )
    params = {**SMALL, "use_graph": False} if name == "perturbfm-v2" else SMALL
    fits = {
        (mode, seed): get_model(name, unseen_inputs=mode, **params).fit(ds, train, seed=seed)
        for mode in ("mean", "sample")
        for seed in (0, 1)
    }
    module = fits[("sample", 0)].module_
    np.testing.assert_array_equal(
        module.unseen_genes.numpy(), [i not in (0, 1, 2) for i in range(ds.n_genes)]
    )
    assert not fits[("mean", 0)].module_.unseen_genes.any()
    layer = module.pert_embedding if name == "perturbfm-v0" else module.direct
    weight = layer.weight.detach()
    learned = weight[:, :3]
    expected = learned.mean(1) + learned.std(1, unbiased=False) * module.unseen_gene_noise[:, 3]
    drawn = fill_unseen_columns(weight, module.unseen_genes, module.unseen_gene_noise)
    np.testing.assert_allclose(drawn[:, 3].numpy(), expected.numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(drawn[:, :3].numpy(), learned.numpy())

    def pred(key, rows):
        return fits[key].predict(ds, rows)[0]

    np.testing.assert_array_equal(pred(("sample", 0), seen), pred(("mean", 0), seen))
    assert not np.allclose(pred(("sample", 0), novel), pred(("mean", 0), novel))
    assert not np.allclose(pred(("sample", 0), novel), pred(("sample", 1), novel))


def test_models_pickled_before_unseen_inputs_still_predict():
    # A module saved by an earlier version lacks the new buffers and the model lacks
    # unseen_gene_seed_: prediction must fall back to the "mean" behaviour.
    ds = make_planted(contexts=("c0", "c1"))
    ctx = ds.obs["context_id"].to_numpy()
    train = np.flatnonzero(ctx == "c0")
    model = get_model("perturbfm-v2", use_graph=False, **SMALL).fit(ds, train, seed=0)
    before = model.predict(ds, np.arange(ds.n_obs))[0]
    del model.module_.context._buffers["unseen_noise"]
    del model.module_._buffers["unseen_genes"], model.module_._buffers["unseen_gene_noise"]
    del model.unseen_gene_seed_
    np.testing.assert_array_equal(model.predict(ds, np.arange(ds.n_obs))[0], before)
