"""The VAE backend: recovery on a planted fixture, checkpoint round trip, collapse, devices."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from isograph.backends.base import apply_overrides, get_backend, load_backend_state  # noqa: E402
from isograph.backends.vae import CHECKPOINT_NAME, VaeConfig, load_vae  # noqa: E402
from isograph.backends.vae.engine import build_network, fit_vae, rms_jacobian  # noqa: E402
from isograph.backends.vae.modules import DecodedCovariance, explained_variance  # noqa: E402
from isograph.features import build_features  # noqa: E402
from isograph.fit import fit_bundle, write_fit  # noqa: E402
from isograph.fixtures import make_fixture  # noqa: E402
from isograph.scoring import score_fit  # noqa: E402
from omicsrun import InputError  # noqa: E402

FAST = {"vae.progress": "false", "vae.threads": "1"}


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny networks: one thread is faster than two contending ones, and results do not depend on it.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def standard_fit(tmp_path_factory):
    bundle = make_fixture("core_v1", "standard", seed=0)
    result = fit_bundle(bundle, backend="vae", seed=0, overrides=FAST)
    out = write_fit(result, tmp_path_factory.mktemp("fits") / "vae_fit")
    return bundle, result, out


@pytest.mark.slow
def test_vae_recovers_planted_modules(standard_fit):
    # Planted truth: core_v1/standard has 12 modules; the baseline scores F_rr 0.86 here.
    bundle, result, _ = standard_fit
    scores = score_fit(bundle, result.modules)
    assert scores["f_rr"] >= 0.8
    assert abs(scores["n_modules"] - scores["n_true_modules"]) <= 2


@pytest.mark.slow
def test_checkpoint_round_trip_reproduces_decoded_signal(standard_fit):
    bundle, result, out = standard_fit
    assert (out / "backend" / CHECKPOINT_NAME).is_file()
    config = json.loads((out / "backend" / "vae_config.json").read_text())
    assert config["latent_dim"] == VaeConfig().latent_dim
    handle = load_vae(out)
    features = build_features(bundle)
    assert list(handle.feature_ids) == list(features.feature_ids)
    x = torch.as_tensor(features.matrix)
    with torch.no_grad():
        decoded = handle.decoded(x).numpy()
    # The same network rebuilt from the state the backend kept in memory gives the same bits.
    state = result.backend_result.state
    network = build_network(state["n_features"], state["n_latent"], state["n_hidden"], state["dropout"])
    network.load_state_dict(state["state_dict"])
    network.eval()
    with torch.no_grad():
        expected = network.decode(network.encode(x)[0]).numpy()
    np.testing.assert_array_equal(decoded, expected)
    # Module drivers name real, active latent dims for every module found.
    found = sorted(set(result.modules["module_id"]) - {"unassigned"})
    assert sorted(handle.module_latent_dims) == found
    assert set(handle.module_latent_dims.values()) <= set(handle.active_dims)
    # Through the contract's loader too.
    fitted = load_backend_state(out)
    assert fitted.backend == "vae"
    assert fitted.state["feature_ids"] == list(handle.feature_ids)
    assert fitted.sample_scores is not None and fitted.feature_loadings is not None
    # The encoder is differentiable in its input (what Integrated Gradients needs).
    xg = x[:3].clone().requires_grad_(requires_grad=True)
    handle.encoder_mean(xg).sum().backward()
    assert xg.grad is not None and torch.isfinite(xg.grad).all() and xg.grad.abs().sum() > 0


def test_load_vae_refuses_a_fit_without_checkpoint(tmp_path):
    with pytest.raises(InputError, match="no VAE checkpoint"):
        load_vae(tmp_path)
    folder = tmp_path / "backend"
    folder.mkdir()
    torch.save({"format": "something-else"}, folder / CHECKPOINT_NAME)
    with pytest.raises(InputError, match="expected format 'isograph-vae-checkpoint'"):
        load_vae(tmp_path)


def _planted(n_samples=90, n_factors=2, n_per=30, n_noise=60, seed=3):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n_samples, n_factors))
    blocks = [np.outer(z[:, k], rng.uniform(0.8, 1.2, n_per)) for k in range(n_factors)]
    x = np.hstack([*blocks, np.zeros((n_samples, n_noise))]) + 0.6 * rng.normal(
        size=(n_samples, n_factors * n_per + n_noise)
    )
    x = (x - x.mean(0)) / x.std(0)
    return x.astype(np.float32), z


def test_collapsed_dimensions_are_reported_and_dropped():
    # Two planted factors in an 8-dim latent space: exactly two dims stay informative.
    x, z = _planted(n_samples=400, n_per=12, n_noise=16)
    config = VaeConfig(
        latent_dim=8,
        collapse_kl=0.2,
        progress=False,
        max_epochs=120,
        warmup_epochs=10,
        patience=15,
        batch_size=100,
    )
    trained = fit_vae(x, config=config, seed=0, device=torch.device("cpu"))
    assert len(trained.active_dims) == 2
    inactive = np.setdiff1d(np.arange(8), trained.active_dims)
    assert (trained.kl_per_dim[inactive] < config.collapse_kl).all()
    assert trained.loadings.shape == (x.shape[1], 2)
    # The active posterior means carry the planted factors (canonical correlations near 1).
    with torch.no_grad():
        mu = trained.network.encode(torch.as_tensor(x))[0].numpy()[:, trained.active_dims]
    q_mu, _ = np.linalg.qr(mu - mu.mean(0))
    q_z, _ = np.linalg.qr(z - z.mean(0))
    canonical = np.linalg.svd(q_mu.T @ q_z, compute_uv=False)
    assert canonical.min() > 0.9
    # Planted features are explained, noise features are not.
    r2 = explained_variance(x, trained.decoded)
    assert r2[:24].mean() > 0.5 > 0.15 > r2[24:].mean()


def test_training_is_deterministic_on_cpu_and_seed_matters():
    x, _ = _planted(n_samples=40, n_per=10, n_noise=20)
    config = VaeConfig(latent_dim=4, progress=False, max_epochs=15, warmup_epochs=3)
    cpu = torch.device("cpu")
    state = torch.get_rng_state()
    a = fit_vae(x, config=config, seed=5, device=cpu)
    assert torch.equal(state, torch.get_rng_state())  # the caller's random state is untouched
    b = fit_vae(x, config=config, seed=5, device=cpu)
    c = fit_vae(x, config=config, seed=6, device=cpu)
    np.testing.assert_array_equal(a.decoded, b.decoded)
    assert not np.array_equal(a.decoded, c.decoded)


def test_latent_grid_keeps_the_best_validation_elbo():
    x, _ = _planted(n_samples=60, n_per=15, n_noise=20)
    config = VaeConfig(latent_grid=(1, 4), progress=False, max_epochs=40, warmup_epochs=5, patience=5)
    trained = fit_vae(x, config=config, seed=0, device=torch.device("cpu"))
    assert [row["latent_dim"] for row in trained.grid] == [1, 4]
    best = max(trained.grid, key=lambda row: row["best_val_elbo"])
    assert trained.network.n_latent == best["latent_dim"]
    # Two planted factors cannot be held in one dimension: the grid must not keep k = 1.
    assert best["latent_dim"] == 4


def test_rms_jacobian_matches_finite_differences():
    torch.manual_seed(0)
    network = build_network(12, 3, 8, 0.0).eval()
    data = torch.randn(7, 12, dtype=torch.float64)
    network = network.double()
    loadings = rms_jacobian(network, data, np.array([0, 2]))
    with torch.no_grad():
        mu = network.encode(data)[0]
        eps = 1e-6
        for col, dim in enumerate([0, 2]):
            step = torch.zeros_like(mu)
            step[:, dim] = eps
            slope = (network.decode(mu + step) - network.decode(mu - step)) / (2 * eps)
            np.testing.assert_allclose(loadings[:, col], torch.sqrt((slope**2).mean(0)).numpy(), rtol=1e-5)


def test_decoded_covariance_matches_numpy():
    rng = np.random.default_rng(1)
    decoded = rng.normal(size=(20, 9)) @ np.diag(rng.uniform(0.2, 1.0, 9))
    cov = DecodedCovariance(decoded)
    expected = np.cov(decoded, rowvar=False, bias=True)
    np.fill_diagonal(expected, 1.0)
    np.testing.assert_allclose(cov.rows(slice(None)), expected, rtol=1e-5, atol=1e-6)
    blocks = np.vstack([b for _, b in cov.blocks(block_size=4)])
    np.testing.assert_allclose(blocks, expected, rtol=1e-5, atol=1e-6)


def test_device_and_rule_options_are_checked():
    with pytest.raises(InputError, match=r"vae.device=.*expected one of auto/cpu/cuda"):
        apply_overrides(VaeConfig(), {"vae.device": "tpu"}, prefix="vae")
    with pytest.raises(InputError, match=r"vae\.latent_grid must be positive integers"):
        apply_overrides(VaeConfig(), {"vae.latent_grid": "4,0"}, prefix="vae")
    if not torch.cuda.is_available():
        features = build_features(make_fixture("core_v1", "standard", seed=0))
        with pytest.raises(InputError, match="no CUDA device is available"):
            get_backend("vae").fit(features, config=VaeConfig(device="cuda"), seed=0)


def test_too_few_samples_is_one_clear_error():
    bundle = make_fixture("core_v1", "standard", seed=0)
    features = build_features(bundle)
    small = type(features)(
        matrix=features.matrix[:5],
        feature_ids=features.feature_ids,
        feature_type=features.feature_type,
        gene_ids=features.gene_ids,
        sample_ids=features.sample_ids[:5],
    )
    with pytest.raises(InputError, match=r"at least 6 samples.*found 5"):
        get_backend("vae").fit(small, config=VaeConfig(progress=False), seed=0)


@pytest.mark.slow
def test_decoded_rule_beats_loadings_rule(standard_fit):
    # The measurement behind the default module rule (see isograph.backends.vae.modules):
    # the latent axes of a VAE are not one program each, so per-axis modules split programs.
    bundle, decoded_fit, _ = standard_fit
    result = fit_bundle(bundle, backend="vae", seed=0, overrides={**FAST, "vae.modules": "loadings"})
    assert result.diagnostics["module_rule"] == "loadings"
    decoded_score = score_fit(bundle, decoded_fit.modules)["f_rr"]
    assert score_fit(bundle, result.modules)["f_rr"] < decoded_score - 0.2


@pytest.mark.slow
def test_support_gate_removes_spurious_modules_on_a_null():
    # A 24-sample negative-binomial null with no co-regulation: the decoded network alone
    # finds modules (a decoder's output is correlated whatever the input), the gate none.
    bundle = make_fixture("null_v1", "null_n24_2k", seed=0)
    ungated = fit_bundle(bundle, backend="vae", seed=0, overrides={**FAST, "vae.support_gate": "false"})
    gated = fit_bundle(bundle, backend="vae", seed=0, overrides=FAST)
    assert (ungated.modules["module_id"] != "unassigned").sum() > 0
    assert (gated.modules["module_id"] == "unassigned").all()
    assert gated.diagnostics["support_gate"]["n_factors"] == 0
