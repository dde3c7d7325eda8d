"""One contract every registered model must keep."""

from __future__ import annotations

import numpy as np
import pytest

from omicsrun import InputError
from perturbfm.models import available_models, get_model
from perturbfm.models.fixtures import make_planted

ALL = available_models()
# Tiny settings so the torch models keep the suite fast.
TINY = {"hidden_dim": 8, "latent_dim": 4, "epochs": 3, "batch_size": 32}


@pytest.fixture(scope="module")
def planted():
    return make_planted()


@pytest.fixture(scope="module")
def chain_graph(planted, tmp_path_factory):
    from perturbfm.data.graph import save_graph

    n = planted.n_genes
    adjacency = np.eye(n, k=1) + np.eye(n, k=-1)
    return str(save_graph(tmp_path_factory.mktemp("graphs") / "chain.npz", adjacency, planted.var))


def _params(name, graph):
    if not name.startswith("perturbfm-"):
        return {}
    extra = {"graphs": [graph]} if name != "perturbfm-v0" else {}
    return {**TINY, **extra}


def _split(ds):
    # Hold out the combinations of context c1 (their singles stay in training).
    obs = ds.obs
    test = (obs["context_id"] == "c1") & obs["pert_id"].str.contains("+", regex=False)
    return np.flatnonzero(~test), np.flatnonzero(test)


def test_expected_baselines_registered():
    expected = {
        "control_only",
        "global_mean",
        "per_perturbation_mean",
        "per_perturbation_context_mean",
        "ridge",
        "latent_shift",
        "additive",
        "linear",
    }
    assert expected <= set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_contract(name, planted, chain_graph, tmp_path):
    train, test = _split(planted)
    params = _params(name, chain_graph)
    model = get_model(name, **params)
    assert model.fit(planted, train, seed=3) is model
    mean, var = model.predict(planted, test)
    assert mean.shape == var.shape == (len(test), planted.n_genes)
    assert mean.dtype == var.dtype == np.float32
    assert np.isfinite(mean).all() and np.isfinite(var).all()
    assert (var > 0).all()
    # determinism: same data and seed, same numbers
    mean2, var2 = get_model(name, **params).fit(planted, train, seed=3).predict(planted, test)
    np.testing.assert_array_equal(mean, mean2)
    np.testing.assert_array_equal(var, var2)
    # hyperparameters round-trip through get_params; clone is unfitted with equal params
    assert type(get_model(name, **model.get_params())) is type(model)
    twin = model.clone()
    assert twin.get_params() == model.get_params() and not twin.is_fitted
    # save / load gives the same predictions
    from perturbfm.models import load_model

    again = load_model(model.save(tmp_path / "model"))
    np.testing.assert_array_equal(again.predict(planted, test)[0], mean)


@pytest.mark.parametrize("name", ALL)
def test_no_leakage_through_predict(name, planted, chain_graph):
    # Changing the test rows' truth (X_pert, delta) must not change the predictions.
    from perturbfm.data.dataset import PerturbDataset

    train, test = _split(planted)
    rng = np.random.default_rng(0)
    x_pert = planted.X_pert.copy()
    x_pert[test] += rng.normal(0, 5, size=(test.size, planted.n_genes)).astype(np.float32)
    # delta recomputed in both, so training rows are bit-identical
    real, forged = (
        PerturbDataset(X_control=planted.X_control, X_pert=x, obs=planted.obs, var=planted.var)
        for x in (planted.X_pert, x_pert)
    )
    params = _params(name, chain_graph)
    a = get_model(name, **params).fit(real, train, seed=1).predict(real, test)
    b = get_model(name, **params).fit(forged, train, seed=1).predict(forged, test)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_set_params_refuses_unknown():
    model = get_model("ridge")
    assert model.set_params(alpha=2.0).alpha == 2.0
    with pytest.raises(InputError, match="has no parameter 'beta'"):
        model.set_params(beta=1.0)


def test_base_module_imports_no_plugin():
    import subprocess
    import sys

    code = (
        "import sys, perturbfm.models.base; "
        "print(any(m.startswith('perturbfm.models.baselines') or m == 'torch' for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", ALL)
def test_predict_before_fit_refused(name, planted):
    with pytest.raises(InputError, match="not fitted"):
        get_model(name).predict(planted, np.arange(3))


def test_unknown_model_lists_names():
    with pytest.raises(InputError, match=r"available models are .*global_mean"):
        get_model("gears")


def test_unknown_parameter_refused():
    with pytest.raises(InputError, match=r"has no parameter 'beta'.*alpha"):
        get_model("ridge", beta=1.0)


def test_bad_indices_refused(planted):
    with pytest.raises(InputError, match="must index rows"):
        get_model("global_mean").fit(planted, np.array([0, 10_000]))
    controls = np.flatnonzero(planted.is_control)
    with pytest.raises(InputError, match="no perturbed"):
        get_model("global_mean").fit(planted, controls)


@pytest.mark.parametrize("name", ["global_mean", "additive", "linear", "ridge"])
def test_predict_mean_without_variance_equals_predict(name, planted):
    """The mean-only path (reference baselines) gives predict's mean, fitted without the variance pass."""
    train, test = _split(planted)
    full = get_model(name).fit(planted, train, seed=0)
    lean = get_model(name).fit(planted, train, seed=0, mean_only=True)
    assert not hasattr(lean, "resid_var_global_")
    np.testing.assert_array_equal(lean.predict_mean(planted, test), full.predict(planted, test)[0])
    with pytest.raises(InputError, match="mean_only=True; it predicts means only"):
        lean.predict(planted, test)
    with pytest.raises(InputError, match="not fitted"):
        get_model(name).predict_mean(planted, test)
