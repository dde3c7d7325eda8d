"""One contract every registered model must keep."""

from __future__ import annotations

import numpy as np
import pytest

from omicsrun import InputError
from perturbfm.models import available_models, get_model
from perturbfm.models.fixtures import make_planted

ALL = available_models()


@pytest.fixture
def planted():
    return make_planted()


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
def test_contract(name, planted):
    train, test = _split(planted)
    model = get_model(name)
    assert model.fit(planted, train, seed=3) is model
    mean, var = model.predict(planted, test)
    assert mean.shape == var.shape == (len(test), planted.n_genes)
    assert mean.dtype == var.dtype == np.float32
    assert np.isfinite(mean).all() and np.isfinite(var).all()
    assert (var > 0).all()
    mean2, var2 = get_model(name).fit(planted, train, seed=3).predict(planted, test)
    np.testing.assert_array_equal(mean, mean2)
    np.testing.assert_array_equal(var, var2)
    # hyperparameters round-trip through get_params
    assert type(get_model(name, **model.get_params())) is type(model)


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
