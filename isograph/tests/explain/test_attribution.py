import numpy as np
import pandas as pd
import pytest
import torch

from isograph.explain.attribution import decoder_jacobian, integrated_gradients, vae_drivers


class TinyVae:
    """A small VAE-shaped handle: nonlinear encoder mean and decoder."""

    def __init__(self, n_features=6, n_latent=2, seed=0):
        torch.manual_seed(seed)
        self.enc = torch.nn.Sequential(
            torch.nn.Linear(n_features, 8), torch.nn.Tanh(), torch.nn.Linear(8, n_latent)
        )
        self.dec = torch.nn.Sequential(
            torch.nn.Linear(n_latent, 8), torch.nn.Tanh(), torch.nn.Linear(8, n_features)
        )
        self.feature_ids = [f"G{i}:switch" for i in range(n_features)]
        self.module_latent_dims = {"M000": 1}

    def encoder_mean(self, x):
        return self.enc(x)

    def decoder(self, z):
        return self.dec(z)


def test_integrated_gradients_completeness():
    pytest.importorskip("captum")  # the optional isograph[torch-explain] extra
    handle = TinyVae()
    x = np.random.default_rng(1).normal(size=(5, 6))
    for baseline in ("zero", "mean"):
        attributions, _ = integrated_gradients(handle, x, 1, baseline=baseline, n_steps=200)
        xt = torch.as_tensor(x, dtype=torch.float32)
        base = torch.zeros_like(xt) if baseline == "zero" else xt.mean(0, keepdim=True).expand_as(xt)
        with torch.no_grad():
            diff = (handle.encoder_mean(xt)[:, 1] - handle.encoder_mean(base)[:, 1]).double().numpy()
        # Completeness axiom: attributions of a sample sum to f(x) - f(baseline).
        np.testing.assert_allclose(attributions.sum(axis=1), diff, atol=2e-3)


def test_decoder_jacobian_matches_autograd_and_own_difference():
    handle = TinyVae()
    z0 = np.array([0.3, -0.2])
    jac = decoder_jacobian(handle, z0, 1, step=1e-3)
    zt = torch.tensor(z0, dtype=torch.float64, requires_grad=True)
    dec64 = handle.dec.double()
    full = torch.autograd.functional.jacobian(lambda z: dec64(z), zt).numpy()  # (n_features, n_latent)
    handle.dec.float()
    np.testing.assert_allclose(jac, full[:, 1], atol=5e-3)
    # An independent forward difference with a smaller step agrees as well.
    with torch.no_grad():
        a = handle.decoder(torch.tensor(np.array([z0]), dtype=torch.float32)).numpy()[0]
        b = handle.decoder(torch.tensor(np.array([z0 + np.array([0.0, 1e-2])]), dtype=torch.float32)).numpy()[
            0
        ]
    np.testing.assert_allclose(jac, (b - a) / 1e-2, atol=2e-2)


def test_vae_drivers_three_criteria():
    handle = TinyVae()
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 6))
    with torch.no_grad():
        z = handle.encoder_mean(torch.as_tensor(x, dtype=torch.float32)).numpy()
    eigengene = -z[:, 1]  # anti-correlated latent: the direction must be corrected
    drivers = pd.DataFrame(
        {
            "gene_id": [f"G{i}" for i in range(6)],
            "gene_name": [f"N{i}" for i in range(6)],
            "r": [0.9, -0.8, 0.7, -0.6, 0.5, 0.4],
            "qvalue": [0.001, 0.001, 0.001, 0.2, 0.001, 0.001],
            "in_module": True,
        }
    )
    table = vae_drivers(handle, x, eigengene, drivers, "M000", percentile_threshold=50.0, step=1e-3)
    jac = decoder_jacobian(handle, z.mean(axis=0), 1, step=1e-3)
    np.testing.assert_allclose(
        table.set_index("feature_id").loc[handle.feature_ids, "decoded_delta"], -jac, atol=1e-4
    )
    expected = (
        (table["qvalue"] <= 0.05)
        & (table["abs_delta"] >= np.percentile(table["abs_delta"], 50))
        & (np.sign(table["decoded_delta"]) == np.sign(table["r"]))
    )
    assert (table["high_confidence"] == expected).all()
